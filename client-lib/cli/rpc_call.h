// The CLI's one way to call a node's gRPC service directly (the Auditor
// service; agency calls go through ibsm::Client): connect with the CLI's
// TLS flags (Connect, commands.h), make the call with a deadline, and turn a
// failure into the CLI's error message and exit code. Not thread-safe (one
// command per process).
//
// A unary call:
//
//   v1::SignedCheckpoint checkpoint;
//   if (int code = CallUnary<v1::Auditor>(flags, command, {"audit checkpoint",
//                            absl::Seconds(30)},
//                            &v1::Auditor::Stub::GetCheckpoint,
//                            v1::CheckpointRequest(), &checkpoint, io);
//       code != kExitOk) {
//     return code;
//   }
//
// A streaming call uses RpcCall::Start, the stub and context, and RpcFailed.
#ifndef IBSM_CLIENT_LIB_CLI_RPC_CALL_H_
#define IBSM_CLIENT_LIB_CLI_RPC_CALL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <utility>
#include <variant>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "commands.h"
#include "flags.h"
#include "ibsm/client.h"

namespace ibsm::cli {

// What a call is, for its deadline and error messages.
struct RpcSpec {
  absl::string_view what;          // "audit export": "ibsm: <what> failed: ..."
  absl::Duration default_timeout;  // when --timeout is not given
  // Appended to the message of RESOURCE_EXHAUSTED (an answer too large for
  // the channel), saying how to ask for less; empty for none.
  absl::string_view when_too_large = "";
};

// The deadline of one call: now + --timeout when given, else `fallback`.
std::chrono::system_clock::time_point CallDeadline(const ParsedFlags& flags,
                                                   absl::Duration fallback);

// Prints "ibsm: <what> refused|failed: CODE: message" (CallError) for a call
// that ended with `status` and returns kExitFailed.
int RpcFailed(Io& io, const RpcSpec& spec, const grpc::Status& status);

// A connection to `Service` and the context of one call on it, with its
// deadline set.
template <typename Service>
class RpcCall {
 public:
  // Connects with the common flags, or returns the exit code after
  // printing why not. `command` is the running command (for usage errors).
  static std::variant<RpcCall, int> Start(const ParsedFlags& flags,
                                          const Command& command,
                                          const RpcSpec& spec, Io& io) {
    std::variant<std::unique_ptr<Client>, int> connected =
        Connect(flags, command, io);
    if (int* code = std::get_if<int>(&connected)) return *code;
    RpcCall call;
    call.client_ = std::move(std::get<std::unique_ptr<Client>>(connected));
    call.stub_ = Service::NewStub(call.client_->channel());
    call.context_ = std::make_unique<grpc::ClientContext>();
    call.context_->set_deadline(CallDeadline(flags, spec.default_timeout));
    return call;
  }

  typename Service::Stub& stub() { return *stub_; }
  grpc::ClientContext* context() { return context_.get(); }

 private:
  RpcCall() = default;

  std::unique_ptr<Client> client_;  // owns the channel the stub uses
  std::unique_ptr<typename Service::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
};

// One unary call: RpcCall::Start, `method` with `request`, RpcFailed on an
// error. kExitOk with *response filled, or the exit code after printing why.
// `Service` is the generated service class (v1::Auditor), given
// explicitly: CallUnary<v1::Auditor>(..., &v1::Auditor::Stub::Export, ...).
template <typename Service, typename Request, typename Response>
int CallUnary(const ParsedFlags& flags, const Command& command,
              const RpcSpec& spec,
              grpc::Status (Service::Stub::*method)(grpc::ClientContext*,
                                                    const Request&, Response*),
              const Request& request, Response* response, Io& io) {
  std::variant<RpcCall<Service>, int> started =
      RpcCall<Service>::Start(flags, command, spec, io);
  if (int* code = std::get_if<int>(&started)) return *code;
  RpcCall<Service>& call = std::get<RpcCall<Service>>(started);
  grpc::Status status =
      (call.stub().*method)(call.context(), request, response);
  if (!status.ok()) return RpcFailed(io, spec, status);
  return kExitOk;
}

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_RPC_CALL_H_
