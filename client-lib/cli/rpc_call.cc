#include "rpc_call.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ibsm/grpc_status.h"

namespace ibsm::cli {

std::chrono::system_clock::time_point CallDeadline(const ParsedFlags& flags,
                                                   absl::Duration fallback) {
  absl::Duration d = fallback;
  if (flags.Has("timeout")) {
    // Connect has already rejected a bad value.
    if (absl::StatusOr<absl::Duration> t =
            ParseDurationValue("timeout", flags.Get("timeout"));
        t.ok()) {
      d = *t;
    }
  }
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

int RpcFailed(Io& io, const RpcSpec& spec, const grpc::Status& status) {
  absl::Status s = FromGrpcStatus(status);
  if (s.code() == absl::StatusCode::kResourceExhausted &&
      !spec.when_too_large.empty()) {
    s = absl::ResourceExhaustedError(
        absl::StrCat(s.message(), " (", spec.when_too_large, ")"));
  }
  return CallError(io, spec.what, s);
}

}  // namespace ibsm::cli
