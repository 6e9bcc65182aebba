// Thin synchronous wrappers over the generated stubs, for tests that check
// the wire protocol itself (the client library has its own tests).
#ifndef IBSM_TESTS_SUPPORT_RAW_CLIENT_H_
#define IBSM_TESTS_SUPPORT_RAW_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "ibsm/v1/broker.grpc.pb.h"

namespace ibsm::testing {

// Bounds a call that a test makes with its own ClientContext: every wait in
// tests has a deadline. The deadline bounds a hang; it never asserts speed.
void SetTestDeadline(grpc::ClientContext& context,
                     absl::Duration deadline = absl::Seconds(30));

// Unary publish of `alerts`; returns the call status and fills `response`.
grpc::Status RawPublish(const std::shared_ptr<grpc::Channel>& channel,
                        const std::vector<v1::Alert>& alerts,
                        v1::PublishResponse* response = nullptr);

// Every record an Auditor.Query returns; the call status in `*status`.
std::vector<v1::AuditRecord> RawAuditQuery(
    const std::shared_ptr<grpc::Channel>& channel, const v1::AuditQuery& query,
    grpc::Status* status = nullptr);

// What the node's log holds, in sequence order (Auditor.ExportAlerts page
// by page, as an auditor reads it), the absent sequences left out. Fails
// the test on a call error.
std::vector<v1::StoredAlertDigest> RawStoredAlerts(
    const std::shared_ptr<grpc::Channel>& auditor);

// Unary Node.GetInfo with a 10 s deadline.
grpc::Status RawNodeInfo(const std::shared_ptr<grpc::Channel>& channel,
                         v1::NodeInfo* info = nullptr);

// One subscriber stream driven step by step.
class RawSubscription {
 public:
  RawSubscription(const std::shared_ptr<grpc::Channel>& channel,
                  const v1::SubscribeRequest::Open& open,
                  absl::Duration deadline = absl::Seconds(60));
  ~RawSubscription();

  // Reads responses until `n` deliveries arrived in total or the stream
  // ended; returns all deliveries received so far.
  const std::vector<v1::Delivery>& ReadDeliveries(size_t n);
  // Reads until the server confirmed the subscription (or ended it).
  bool WaitOpened();
  bool opened() const { return opened_; }
  const v1::SubscribeResponse::Opened& opened_info() const { return info_; }
  bool SendFlow(uint64_t ack, uint32_t credit);
  // Half-closes and returns the final status.
  grpc::Status Close();
  // Reads until the server ends the stream; returns its status.
  grpc::Status AwaitEnd();

 private:
  bool ReadOne();

  grpc::ClientContext context_;
  std::unique_ptr<v1::Subscriber::Stub> stub_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>>
      stream_;
  std::vector<v1::Delivery> deliveries_;
  v1::SubscribeResponse::Opened info_;
  bool opened_ = false;
  bool ended_ = false;
  grpc::Status end_status_;
};

// Calls `method` ("/ibsm.v1.Publisher/Publish") with `request` as the raw
// request bytes, as a client with a broken encoder would; returns the status.
grpc::Status RawBytesUnary(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& method,
                           const std::string& request);
// Opens the streaming `method`, writes each of `messages` as raw bytes,
// half-closes, reads until the server ends the stream and returns its status.
grpc::Status RawBytesStream(const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& method,
                            const std::vector<std::string>& messages);

v1::SubscribeRequest::Open OpenRequest(
    std::vector<std::string> topics, const std::string& durable_name = "",
    v1::SubscribeRequest::Open::Start start =
        v1::SubscribeRequest::Open::START_EARLIEST,
    uint32_t credit = 1024);

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_RAW_CLIENT_H_
