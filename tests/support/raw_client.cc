#include "tests/support/raw_client.h"

#include <grpcpp/generic/generic_stub.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "absl/synchronization/notification.h"

namespace ibsm::testing {

void SetTestDeadline(grpc::ClientContext& context, absl::Duration deadline) {
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(deadline));
}

grpc::Status RawPublish(const std::shared_ptr<grpc::Channel>& channel,
                        const std::vector<v1::Alert>& alerts,
                        v1::PublishResponse* response) {
  auto stub = v1::Publisher::NewStub(channel);
  v1::PublishRequest request;
  for (const v1::Alert& a : alerts) *request.add_alerts() = a;
  v1::PublishResponse ignored;
  grpc::ClientContext context;
  SetTestDeadline(context);
  return stub->Publish(&context, request,
                       response != nullptr ? response : &ignored);
}

std::vector<v1::AuditRecord> RawAuditQuery(
    const std::shared_ptr<grpc::Channel>& channel, const v1::AuditQuery& query,
    grpc::Status* status) {
  auto stub = v1::Auditor::NewStub(channel);
  grpc::ClientContext context;
  SetTestDeadline(context);
  auto reader = stub->Query(&context, query);
  std::vector<v1::AuditRecord> out;
  v1::AuditQueryResponse response;
  while (reader->Read(&response)) {
    for (const auto& r : response.records()) out.push_back(r);
  }
  grpc::Status s = reader->Finish();
  if (status != nullptr) *status = s;
  return out;
}

std::vector<v1::StoredAlertDigest> RawStoredAlerts(
    const std::shared_ptr<grpc::Channel>& auditor) {
  auto stub = v1::Auditor::NewStub(auditor);
  std::vector<v1::StoredAlertDigest> stored;
  uint64_t from = 1;
  while (true) {
    grpc::ClientContext context;
    SetTestDeadline(context);
    v1::AlertExportRequest request;
    request.set_from_sequence(from);
    request.set_limit(10000);
    v1::AlertExport page;
    grpc::Status status = stub->ExportAlerts(&context, request, &page);
    INFO("Auditor.ExportAlerts: " << status.error_message());
    REQUIRE(status.ok());
    for (const v1::StoredAlertDigest& digest : page.alerts()) {
      if (!digest.absent()) stored.push_back(digest);
    }
    if (page.alerts_size() == 0 || page.to_sequence() < from) break;
    from = page.to_sequence() + 1;
    if (page.alerts_size() < 10000) break;
  }
  return stored;
}

grpc::Status RawNodeInfo(const std::shared_ptr<grpc::Channel>& channel,
                         v1::NodeInfo* info) {
  auto stub = v1::Node::NewStub(channel);
  grpc::ClientContext context;
  SetTestDeadline(context, absl::Seconds(10));
  v1::NodeInfo ignored;
  return stub->GetInfo(&context, v1::NodeInfoRequest(),
                       info != nullptr ? info : &ignored);
}

namespace {

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

grpc::Status RawBytesUnary(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& method,
                           const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  SetTestDeadline(context);
  grpc::ByteBuffer request_buffer = ToByteBuffer(request);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

grpc::Status RawBytesStream(const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& method,
                            const std::vector<std::string>& messages) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  SetTestDeadline(context);
  grpc::CompletionQueue cq;
  // Each operation is started and then awaited on its own, so one tag will
  // do; `ok` false means the stream is done for that direction.
  auto await = [&cq]() {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  void* const tag = reinterpret_cast<void*>(1);
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &cq);
  call->StartCall(tag);
  bool open = await();
  for (const std::string& message : messages) {
    if (!open) break;
    grpc::ByteBuffer buffer = ToByteBuffer(message);
    call->Write(buffer, tag);
    open = await();
  }
  if (open) {
    call->WritesDone(tag);
    (void)await();  // a failed half-close shows in the final status
    grpc::ByteBuffer response;
    while (true) {
      call->Read(&response, tag);
      if (!await()) break;
    }
  }
  grpc::Status status;
  call->Finish(&status, tag);
  (void)await();
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  return status;
}

RawSubscription::RawSubscription(const std::shared_ptr<grpc::Channel>& channel,
                                 const v1::SubscribeRequest::Open& open,
                                 absl::Duration deadline)
    : stub_(v1::Subscriber::NewStub(channel)) {
  SetTestDeadline(context_, deadline);
  stream_ = stub_->Subscribe(&context_);
  v1::SubscribeRequest request;
  *request.mutable_open() = open;
  stream_->Write(request);
}

RawSubscription::~RawSubscription() {
  if (!ended_) {
    context_.TryCancel();
    (void)stream_->Finish();  // status of a cancelled test stream is moot
  }
}

bool RawSubscription::ReadOne() {
  if (ended_) return false;
  v1::SubscribeResponse response;
  if (!stream_->Read(&response)) {
    end_status_ = stream_->Finish();
    ended_ = true;
    return false;
  }
  if (response.has_opened()) {
    opened_ = true;
    info_ = response.opened();
  }
  for (const v1::Delivery& d : response.deliveries()) deliveries_.push_back(d);
  return true;
}

const std::vector<v1::Delivery>& RawSubscription::ReadDeliveries(size_t n) {
  while (deliveries_.size() < n && ReadOne()) {
  }
  return deliveries_;
}

bool RawSubscription::WaitOpened() {
  while (!opened_ && ReadOne()) {
  }
  return opened_;
}

bool RawSubscription::SendFlow(uint64_t ack, uint32_t credit) {
  v1::SubscribeRequest request;
  request.mutable_flow()->set_ack_sequence(ack);
  request.mutable_flow()->set_credit(credit);
  return stream_->Write(request);
}

grpc::Status RawSubscription::Close() {
  if (ended_) return end_status_;
  stream_->WritesDone();
  while (ReadOne()) {
  }
  return end_status_;
}

grpc::Status RawSubscription::AwaitEnd() {
  while (ReadOne()) {
  }
  return end_status_;
}

v1::SubscribeRequest::Open OpenRequest(std::vector<std::string> topics,
                                       const std::string& durable_name,
                                       v1::SubscribeRequest::Open::Start start,
                                       uint32_t credit) {
  v1::SubscribeRequest::Open open;
  for (std::string& t : topics) open.add_topics(std::move(t));
  open.set_durable_name(durable_name);
  open.set_start(start);
  open.set_credit(credit);
  return open;
}

}  // namespace ibsm::testing
