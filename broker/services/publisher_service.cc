// The Publisher service: unary Publish and the PublishStream bidi stream.
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "context/identity_limits.h"
#include "context/node_context.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "publish/committer.h"
#include "publish/publish_path.h"
#include "services/authenticate.h"
#include "services/grpc_status.h"
#include "services/raw_message.h"
#include "services/services.h"

namespace ibsm::broker {
namespace {

using RawStreamReactor =
    grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// One publishing stream. Reads batches while fewer than
// max_inflight_per_stream alerts wait for their commit, answers each alert as
// soon as its group is durable (coalescing results into one write while a
// write is in flight), and finishes once the client half-closed and every
// alert was answered. Deletes itself in OnDone; it cannot be done while the
// Committer still holds one of its groups, because Finish() waits for
// inflight_ to reach zero.
class PublishStreamReactor final : public RawStreamReactor {
 public:
  PublishStreamReactor(NodeContext* node, grpc::CallbackServerContext* context)
      : node_(node),
        max_inflight_(node->config().limits().max_inflight_per_stream()) {
    absl::StatusOr<Identity> caller =
        AuthenticateCall(node_, context, "publish stream", &live_);
    if (!caller.ok()) {
      absl::MutexLock lock(&mu_);
      // Finished here: a later OnCancel must not finish the call again.
      finished_ = true;
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>> stream =
        node_->identity_limits()->AdmitStream(caller_.id(), false);
    absl::MutexLock lock(&mu_);
    if (!stream.ok()) {
      AuditLimitRefusal(node_, caller_.id(), "publish stream", stream.status());
      finished_ = true;
      Finish(ToGrpcStatus(stream.status()));
      return;
    }
    stream_lease_ = *std::move(stream);
    reading_ = true;
    StartRead(&request_bytes_);
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {
      input_closed_ = true;
      MaybeFinish();
      return;
    }
    if (absl::Status parsed = ParseRequest(request_bytes_, &request_);
        !parsed.ok()) {
      AuditRefusedCall(node_, caller_.id(), "publish", parsed);
      final_status_ = parsed;
      input_closed_ = true;
      MaybeFinish();
      return;
    }
    absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>> admitted =
        node_->identity_limits()->AdmitPublish(
            caller_.id(), request_.alerts_size(), request_bytes_.Length());
    request_bytes_.Clear();
    if (!admitted.ok()) {
      // Each alert of the batch is answered RESOURCE_EXHAUSTED and the
      // stream stays open: the identity may publish again once under its
      // limit, without reconnecting.
      AuditLimitRefusal(node_, caller_.id(), "publish", admitted.status());
      for (const v1::Alert& alert : request_.alerts()) {
        v1::PublishResult* result = pending_.add_results();
        result->set_alert_id(alert.id());
        result->set_code(static_cast<int>(admitted.status().code()));
        result->set_message(std::string(admitted.status().message()));
      }
      request_.Clear();
      PauseReading(node_->identity_limits()->PublishWait(
          caller_.id(), static_cast<uint64_t>(pending_.results_size())));
      MaybeWrite();
      return;
    }
    absl::StatusOr<std::unique_ptr<PublishGroup>> group =
        PreparePublish(*node_, caller_, request_.mutable_alerts());
    request_.Clear();
    if (!group.ok()) {
      AuditRefusedCall(node_, caller_.id(), "publish", group.status());
      final_status_ = group.status();
      input_closed_ = true;
      MaybeFinish();
      return;
    }
    inflight_ += (*group)->entries.size();
    (*group)->done = [this, lease = *std::move(admitted)](
                         std::unique_ptr<PublishGroup> g) mutable {
      lease.reset();  // answered: no longer in flight for the identity
      OnCommitted(std::move(g));
    };
    node_->committer()->Submit(*std::move(group));
    MaybeRead();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone; keep counting commits so we finish cleanly.
      broken_ = true;
      input_closed_ = true;
    }
    MaybeWrite();
    MaybeFinish();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    // Fires the resume callback now (outside mu_: it takes it).
    if (resume_ != nullptr) resume_->Cancel();
    absl::MutexLock lock(&mu_);
    broken_ = true;
    input_closed_ = true;
    if (final_status_.ok()) final_status_ = absl::CancelledError("cancelled");
    MaybeFinish();
  }

  void OnDone() override {
    // Callbacks from outside gRPC (the Committer's, the resume alarm's) may
    // call Finish under mu_: let them release it before the reactor goes.
    { absl::MutexLock lock(&mu_); }
    const NodeContext* node = node_;
    delete this;
    node->CallEnded();
  }

 private:
  void OnCommitted(std::unique_ptr<PublishGroup> group) {
    absl::MutexLock lock(&mu_);
    AppendResults(*group, &pending_);
    inflight_ -= group->entries.size();
    MaybeWrite();
    MaybeRead();
    MaybeFinish();
  }

  // No read before `wait` has passed (the identity's rate refilled); the
  // alarm's callback reads again, or lets the stream finish if cancelled.
  void PauseReading(absl::Duration wait) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    wait = std::clamp(wait, absl::Milliseconds(1), kMaxPause);
    if (cancelled_) return;
    paused_ = true;
    // A new alarm each time: the previous one has fired (paused_ was false).
    resume_ = std::make_unique<grpc::Alarm>();
    resume_->Set(absl::ToChronoTime(absl::Now() + wait), [this](bool) {
      absl::MutexLock lock(&mu_);
      paused_ = false;
      MaybeRead();
      MaybeFinish();
    });
  }

  void MaybeRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || paused_ || input_closed_ || finished_ ||
        inflight_ >= max_inflight_) {
      return;
    }
    reading_ = true;
    StartRead(&request_bytes_);
  }

  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || broken_ || finished_ || pending_.results().empty()) return;
    absl::Status serialized = SerializeResponse(pending_, &response_bytes_);
    pending_.Clear();
    if (!serialized.ok()) {
      // Cannot happen below protobuf's 2 GiB limit; end the stream rather
      // than answer some alerts silently never.
      broken_ = true;
      input_closed_ = true;
      final_status_ = serialized;
      return;
    }
    writing_ = true;
    StartWrite(&response_bytes_);
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !input_closed_ || inflight_ > 0 || writing_ || reading_ ||
        paused_) {
      return;
    }
    if (!broken_ && !pending_.results().empty()) return;
    finished_ = true;
    Finish(ToGrpcStatus(final_status_));
  }

  NodeContext* const node_;
  const size_t max_inflight_;
  Identity caller_;
  // Keeps this stream in LiveCalls until OnDone deletes the reactor.
  std::unique_ptr<LiveCalls::Registration> live_;
  // This stream's place among its identity's streams.
  std::unique_ptr<IdentityLimits::Lease> stream_lease_;
  // The longest a refused stream waits before it reads again.
  static constexpr absl::Duration kMaxPause = absl::Seconds(2);

  absl::Mutex mu_;
  grpc::ByteBuffer request_bytes_ ABSL_GUARDED_BY(mu_);   // being read
  v1::PublishRequest request_ ABSL_GUARDED_BY(mu_);       // parsed from it
  grpc::ByteBuffer response_bytes_ ABSL_GUARDED_BY(mu_);  // being written
  v1::PublishResponse pending_ ABSL_GUARDED_BY(mu_);      // results to write
  size_t inflight_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  // Reading waits for `resume_` after a refusal by the publish rate.
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<grpc::Alarm> resume_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool input_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// Raw methods: requests are parsed by ParseRequest, so bytes that are not a
// PublishRequest get INVALID_ARGUMENT with a reason (see raw_message.h).
class PublisherService final
    : public v1::Publisher::WithRawCallbackMethod_Publish<
          v1::Publisher::WithRawCallbackMethod_PublishStream<
              v1::Publisher::Service>> {
 public:
  explicit PublisherService(NodeContext* node) : node_(node) {}

  // A unary publish is all or nothing: if any alert is refused, nothing is
  // written and the call fails with that alert's status.
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request_bytes,
                                    grpc::ByteBuffer* response_bytes) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<Identity> caller =
        AuthenticateCall(node_, context, "publish");
    if (!caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
    v1::PublishRequest request;
    if (absl::Status parsed = ParseRequest(*request_bytes, &request);
        !parsed.ok()) {
      AuditRefusedCall(node_, caller->id(), "publish", parsed);
      reactor->Finish(ToGrpcStatus(parsed));
      return reactor;
    }
    absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>> admitted =
        node_->identity_limits()->AdmitPublish(
            caller->id(), request.alerts_size(), request_bytes->Length());
    if (!admitted.ok()) {
      AuditLimitRefusal(node_, caller->id(), "publish", admitted.status());
      reactor->Finish(ToGrpcStatus(admitted.status()));
      return reactor;
    }
    google::protobuf::RepeatedPtrField<v1::Alert> alerts;
    alerts.Swap(request.mutable_alerts());
    absl::StatusOr<std::unique_ptr<PublishGroup>> group =
        PreparePublish(*node_, *caller, &alerts);
    if (!group.ok()) {
      AuditRefusedCall(node_, caller->id(), "publish", group.status());
      reactor->Finish(ToGrpcStatus(group.status()));
      return reactor;
    }
    // All or nothing: when one alert is refused, none is stored. The group
    // still goes to the Committer so that every refusal is audited.
    absl::Status refused = FirstError(**group);
    if (!refused.ok()) {
      for (PublishEntry& entry : (*group)->entries) {
        if (entry.status.ok()) {
          entry.status = absl::AbortedError(absl::StrCat(
              "not stored: another alert of the same request was refused: ",
              refused.message()));
        }
      }
    }
    (*group)->done = [reactor, response_bytes, refused,
                      lease = *std::move(admitted)](
                         std::unique_ptr<PublishGroup> g) mutable {
      lease.reset();
      absl::Status failed = refused.ok() ? FirstError(*g) : refused;
      if (!failed.ok()) {
        reactor->Finish(ToGrpcStatus(failed));
        return;
      }
      v1::PublishResponse response;
      AppendResults(*g, &response);
      reactor->Finish(
          ToGrpcStatus(SerializeResponse(response, response_bytes)));
    };
    node_->committer()->Submit(*std::move(group));
    return reactor;
  }

  RawStreamReactor* PublishStream(
      grpc::CallbackServerContext* context) override {
    return new PublishStreamReactor(node_, context);
  }

 private:
  NodeContext* const node_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakePublisherService(NodeContext* node) {
  return std::make_unique<PublisherService>(node);
}

}  // namespace ibsm::broker
