// The Subscriber service: one SubscribeReactor per stream, which is also the
// stream's Subscription (delivery/subscription.h) in the SubscriptionHub.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "context/identity_limits.h"
#include "context/node_context.h"
#include "control/retention.h"
#include "delivery/subscription.h"
#include "delivery/subscription_hub.h"
#include "delivery/worker_pool.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/topic.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "publish/committer.h"
#include "services/authenticate.h"
#include "services/grpc_status.h"
#include "services/raw_message.h"
#include "services/services.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

// Raw bytes both ways: requests are parsed by ParseRequest (so malformed
// bytes get INVALID_ARGUMENT, see raw_message.h), responses serialized here.
using Reactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// Bounds on one fill: deliveries and bytes per response (a client accepts 4
// MiB messages by default), and log records examined before yielding the
// worker to other subscriptions.
constexpr size_t kMaxDeliveriesPerResponse = 256;
constexpr size_t kMaxResponseBytes = 1 << 20;
constexpr size_t kMaxScanPerFill = 2048;
constexpr uint32_t kDefaultCredit = 1024;

absl::Status ValidateDurableName(const std::string& name) {
  if (name.size() > 128) {
    return absl::InvalidArgumentError(
        "durable_name is longer than 128 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("durable_name '", name,
                       "' may only contain letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

// The topics of a refused open as the audit record's detail: what a caller
// writes into the trail is bounded, however many or long its patterns are.
std::string TopicsForAudit(const v1::SubscribeRequest::Open& open) {
  // Built only as far as the record keeps it, with the marker the trail puts
  // on every cut field (BoundAuditRecord).
  std::string detail;
  size_t joined = 0;
  for (const std::string& topic : open.topics()) {
    const size_t separator = joined == 0 ? 0 : 1;
    joined += separator + topic.size();
    if (detail.size() <= kMaxAuditDetailBytes) {
      if (separator != 0) detail += ' ';
      detail.append(topic, 0, kMaxAuditDetailBytes + 1 - detail.size());
    }
  }
  BoundAuditText(&detail, kMaxAuditDetailBytes, joined);
  return detail;
}

class SubscriptionImpl final
    : public Subscription,
      public std::enable_shared_from_this<SubscriptionImpl> {
 public:
  SubscriptionImpl(NodeContext* node, Reactor* reactor, Identity who)
      : node_(node),
        who_(std::move(who)),
        max_credit_(node->config().limits().max_credit()),
        reactor_(reactor) {}

  // First message of the stream, on a reaction thread: checks what needs no
  // I/O here, then hands the cursor lookup to a worker.
  void Open(const v1::SubscribeRequest::Open& open) {
    absl::Status checked = CheckOpen(open);
    if (!checked.ok()) {
      v1::AuditRecord record = AuditEvent(v1::AUDIT_SUBSCRIBE_OPEN, who_.id(),
                                          false, checked.message());
      record.set_detail(TopicsForAudit(open));
      node_->committer()->Audit(std::move(record));
      End(checked);
      return;
    }
    auto self = shared_from_this();
    node_->workers()->Schedule([self, open] { self->DoOpen(open); });
  }

  void OnFlow(const v1::SubscribeRequest::Flow& flow) {
    {
      absl::MutexLock lock(&mu_);
      if (!opened_) {
        // The client may grant credit right after its open, before the
        // node answered `opened`; keep it for the open. Nothing was
        // delivered yet, so there is nothing to acknowledge.
        early_credit_ = static_cast<uint32_t>(std::min<uint64_t>(
            uint64_t{early_credit_} + flow.credit(), max_credit_));
        return;
      }
      credit_ = static_cast<uint32_t>(
          std::min<uint64_t>(uint64_t{credit_} + flow.credit(), max_credit_));
      uint64_t ack = std::min(flow.ack_sequence(), delivered_max_);
      if (ack > acked_) {
        acked_ = ack;
        if (!durable_key_.empty()) {
          node_->committer()->UpdateCursor(durable_key_, ack);
        }
        v1::AuditRecord record =
            AuditEvent(v1::AUDIT_ACK, who_.id(), true, "acknowledged");
        record.set_sequence(ack);
        record.set_detail(durable_name_);
        node_->committer()->Audit(std::move(record));
      }
    }
    Wake();
  }

  void OnWriteDone(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !finishing_) {
        finishing_ = true;
        end_status_ = absl::CancelledError("the client went away");
      }
      if (finishing_) {
        FinishLocked();
        return;
      }
      if (has_pending_) {
        has_pending_ = false;
        WriteLocked();
      }
    }
    Wake();
  }

  void OnReactorDone() {
    bool registered;
    v1::AuditRecord record;
    {
      absl::MutexLock lock(&mu_);
      reactor_ = nullptr;
      finishing_ = finished_ = true;
      registered = registered_;
      record = AuditEvent(
          v1::AUDIT_SUBSCRIBE_CLOSE, who_.id(), true,
          end_status_.ok() ? "closed by the client" : end_status_.ToString());
      record.set_sequence(acked_);
      record.set_detail(durable_name_);
    }
    if (registered) {
      node_->hub()->Unregister(this);
      node_->committer()->Audit(std::move(record));
    }
  }

  void Wake() override {
    absl::MutexLock lock(&mu_);
    ScheduleLocked();
  }

  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    EndLocked(status);
  }

  const std::string& durable_key() const override { return durable_key_; }

 private:
  absl::Status CheckOpen(const v1::SubscribeRequest::Open& open) {
    if (open.topics().empty()) {
      return absl::InvalidArgumentError(
          "subscribe needs at least one topic pattern, e.g. 'trafficking.*' "
          "or 'terrorism.>'");
    }
    const uint32_t max_patterns =
        node_->config().limits().max_subscribe_patterns();
    if (static_cast<size_t>(open.topics().size()) > max_patterns) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a subscription takes at most ", max_patterns, " topic patterns (",
          open.topics().size(),
          " given; limits.max_subscribe_patterns); use wildcards such as "
          "'border.>' or open several subscriptions"));
    }
    std::shared_ptr<const Authorizer> authorizer = node_->authorizer();
    std::vector<TopicPattern> patterns;
    for (const std::string& text : open.topics()) {
      absl::StatusOr<TopicPattern> pattern = TopicPattern::Parse(text);
      if (!pattern.ok()) return pattern.status();
      Decision decision = authorizer->MaySubscribe(who_, text);
      if (!decision.allowed) {
        return absl::PermissionDeniedError(absl::StrCat(
            "subscription to '", text, "' refused: ", decision.reason,
            " (rule ", decision.rule, ", policy ", decision.policy_version,
            ")"));
      }
      patterns.push_back(*std::move(pattern));
    }
    if (absl::Status s = ValidateDurableName(open.durable_name()); !s.ok()) {
      return s;
    }
    if (open.start() == v1::SubscribeRequest::Open::START_AT_SEQUENCE &&
        open.start_sequence() == 0) {
      return absl::InvalidArgumentError(
          "START_AT_SEQUENCE needs start_sequence >= 1");
    }
    absl::MutexLock lock(&mu_);
    // Written once, before the subscription is registered or scheduled;
    // read-only afterwards.
    patterns_ = std::move(patterns);
    if (!open.durable_name().empty()) {
      durable_key_ = CursorKey(who_.id(), open.durable_name());
    }
    durable_name_ = open.durable_name();
    return absl::OkStatus();
  }

  // Runs on a worker: finds the durable cursor, or creates it, then
  // finishes the open.
  void DoOpen(const v1::SubscribeRequest::Open& open) {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;  // ended before it was opened: never register
    }
    const uint64_t start_after = StartPosition(open);
    if (open.durable_name().empty()) {
      FinishOpen(open, start_after, /*resumed=*/false);
      return;
    }
    absl::StatusOr<std::optional<uint64_t>> cursor =
        node_->store()->GetCursor(who_.id(), open.durable_name());
    if (!cursor.ok()) {
      // Fail closed: an unreadable cursor is not "no cursor".
      End(absl::UnavailableError(
          absl::StrCat("the durable cursor cannot be read (",
                       cursor.status().message(), "); retry")));
      return;
    }
    if (cursor->has_value()) {
      FinishOpen(open, **cursor, /*resumed=*/true);
      return;
    }
    // A durable subscription has a stored position from the moment it
    // exists: `opened` is answered only once the cursor is durable, so an
    // alert published after it is never skipped, even if the subscriber
    // goes away before its first delivery.
    auto self = shared_from_this();
    node_->committer()->CreateCursor(
        durable_key_, start_after,
        [self, open](absl::Status status, uint64_t cursor, bool created) {
          // On the committer thread, which must not wait for the hub.
          self->node_->workers()->Schedule(
              [self, open, status = std::move(status), cursor, created] {
                if (!status.ok()) {
                  self->End(status);
                  return;
                }
                self->FinishOpen(open, cursor, /*resumed=*/!created);
              });
        });
  }

  // Where a subscription starts that has no stored cursor yet.
  uint64_t StartPosition(const v1::SubscribeRequest::Open& open) const {
    switch (open.start()) {
      case v1::SubscribeRequest::Open::START_EARLIEST:
        return 0;
      case v1::SubscribeRequest::Open::START_AT_SEQUENCE:
        return open.start_sequence() - 1;  // >= 1, checked by CheckOpen
      default:
        return node_->committer()->last_sequence();
    }
  }

  // Registers the subscription and answers `opened`. Runs on a worker.
  void FinishOpen(const v1::SubscribeRequest::Open& open, uint64_t start_after,
                  bool resumed) {
    absl::Status registered = node_->hub()->Register(shared_from_this());
    {
      absl::MutexLock lock(&mu_);
      if (!registered.ok()) {
        EndLocked(registered);
        return;
      }
      // The reactor may be done already (the client cancelled or
      // half-closed while the open was on a worker). OnReactorDone saw
      // registered_ false and left the slot alone, so it is given back
      // here; both decide under mu_, so exactly one of them does.
      if (reactor_ != nullptr) {
        registered_ = true;
        OpenLocked(open, start_after, resumed);
        return;
      }
    }
    node_->hub()->Unregister(this);
  }

  void OpenLocked(const v1::SubscribeRequest::Open& open, uint64_t start_after,
                  bool resumed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::AuditRecord record =
        AuditEvent(v1::AUDIT_SUBSCRIBE_OPEN, who_.id(), true,
                   resumed ? "resumed after its durable cursor" : "opened");
    record.set_sequence(start_after);
    record.set_detail(absl::StrCat(
        absl::StrJoin(open.topics(), " "),
        open.durable_name().empty() ? "" : " durable=", open.durable_name()));
    node_->committer()->Audit(std::move(record));
    if (finishing_) return;
    next_sequence_ = start_after + 1;
    acked_ = delivered_max_ = start_after;
    credit_ = static_cast<uint32_t>(std::min<uint64_t>(
        uint64_t{open.credit() == 0 ? kDefaultCredit : open.credit()} +
            early_credit_,
        max_credit_));
    opened_ = true;
    v1::SubscribeResponse::Opened* opened = pending_.mutable_opened();
    opened->set_cursor(start_after);
    opened->set_last_sequence(node_->committer()->last_sequence());
    has_pending_ = true;
    if (!writing_) {
      has_pending_ = false;
      WriteLocked();
    }
    ScheduleLocked();
  }

  // What one fill may cover, taken under mu_ when it starts.
  struct FillWindow {
    uint64_t from = 0;  // the next sequence due
    uint64_t last = 0;  // the last committed sequence
    size_t budget = 0;  // deliveries it may queue: credit, at most a response
  };

  // Reads the next due alerts and queues them for writing. Runs on a worker;
  // at most one Fill per subscription runs at a time (scheduled_).
  void Fill() {
    std::optional<FillWindow> window = BeginFill();
    if (!window) return;
    std::vector<std::shared_ptr<const LogRecord>> records;
    std::optional<uint64_t> examined_to = ReadDue(*window, &records);
    if (!examined_to) return;  // the read failed and ended the stream
    std::shared_ptr<const Authorizer> authorizer = node_->authorizer();
    v1::SubscribeResponse response;
    const uint64_t scanned_to = BuildDeliveries(
        records, *authorizer, window->budget, *examined_to, &response);
    if (response.deliveries_size() > 0) AuditDeliveries(response, *authorizer);
    FinishFill(scanned_to, &response);
  }

  // The window of this fill, or nothing (and no fill scheduled) when the
  // subscription is ending, still writing, out of credit or caught up.
  std::optional<FillWindow> BeginFill() {
    absl::MutexLock lock(&mu_);
    FillWindow window;
    window.last = node_->committer()->last_sequence();
    window.budget = std::min<size_t>(credit_, kMaxDeliveriesPerResponse);
    window.from = next_sequence_;
    if (finishing_ || has_pending_ || window.budget == 0 ||
        window.from > window.last) {
      scheduled_ = false;
      return std::nullopt;
    }
    return window;
  }

  // Reads up to kMaxScanPerFill records from window.from on, from the cache
  // or else from the store. Returns how far the log is examined once every
  // record read is: retention leaves holes in the log, so a read from
  // RocksDB may return fewer records than the sequences it covers. Nothing
  // when the read failed, after ending the stream.
  std::optional<uint64_t> ReadDue(
      const FillWindow& window,
      std::vector<std::shared_ptr<const LogRecord>>* records) {
    const uint64_t from = window.from;
    const size_t scan =
        std::min<uint64_t>(window.last - from + 1, kMaxScanPerFill);
    if (node_->cache()->Read(from, scan, records)) {
      return from + records->size() - 1;
    }
    return ReadVerified(from, from + scan - 1, records);
  }

  // Reads [from, to] back from RocksDB, checked against the audit trail
  // first. A record that fails the check ends the stream, but only once the
  // good alerts before it are delivered: then the next fill starts at the bad
  // one.
  std::optional<uint64_t> ReadVerified(
      uint64_t from, uint64_t to,
      std::vector<std::shared_ptr<const LogRecord>>* records) {
    uint64_t bad = 0;
    absl::Status read =
        ReadVerifiedLog(*node_->store(), from, to, records, &bad);
    if (read.ok()) return to;
    if (read.code() != absl::StatusCode::kDataLoss) {
      End(absl::InternalError(
          absl::StrCat("reading the log: ", read.message())));
      return std::nullopt;
    }
    if (records->empty()) {
      node_->committer()->Audit(IntegrityFailureRecord(
          node_->config().node_id(), who_.id(), bad, read));
      End(read);
      return std::nullopt;
    }
    return bad - 1;
  }

  // Adds a delivery to `response` for each record the subscriber may have,
  // up to `budget` deliveries and kMaxResponseBytes. Returns the last
  // sequence the fill has dealt with: `examined_to`, or the last delivered
  // one when a bound stopped it early.
  uint64_t BuildDeliveries(
      const std::vector<std::shared_ptr<const LogRecord>>& records,
      const Authorizer& authorizer, size_t budget, uint64_t examined_to,
      v1::SubscribeResponse* response) const {
    const absl::Time now = node_->clock()->Now();
    size_t count = 0;
    size_t bytes = 0;
    for (const auto& record : records) {
      const v1::Alert& alert = record->stored.alert();
      if (!MatchesAny(patterns_, alert.topic())) continue;
      // The subscriber does not learn of alerts it may not receive, nor of
      // expired ones that retention has not removed yet.
      if (!authorizer.MayReceive(who_, alert).allowed) continue;
      if (IsExpired(record->stored, authorizer, now)) continue;
      v1::Delivery* delivery = response->add_deliveries();
      delivery->set_sequence(record->sequence);
      *delivery->mutable_alert() = alert;
      *delivery->mutable_received_at() = record->stored.received_at();
      bytes += record->bytes;
      if (++count == budget || bytes >= kMaxResponseBytes) {
        return record->sequence;
      }
    }
    return examined_to;
  }

  // One record per response lists every alert delivered in it.
  void AuditDeliveries(const v1::SubscribeResponse& response,
                       const Authorizer& authorizer) {
    const int count = response.deliveries_size();
    node_->counters()->CountDeliveries(count);
    v1::AuditRecord record =
        AuditEvent(v1::AUDIT_DELIVER, who_.id(), true, "delivered");
    for (const v1::Delivery& d : response.deliveries()) {
      v1::AuditedAlert* audited = record.add_alerts();
      audited->set_alert_id(d.alert().id());
      audited->set_originator(d.alert().originator());
      audited->set_topic(d.alert().topic());
      audited->set_classification(d.alert().classification());
      audited->set_sequence(d.sequence());
    }
    if (count == 1) {
      DescribeAlert(response.deliveries(0).alert(), &record);
      record.set_sequence(response.deliveries(0).sequence());
    } else {
      record.set_detail(absl::StrCat(
          count, " alerts, sequences ", response.deliveries(0).sequence(), "..",
          response.deliveries(count - 1).sequence()));
    }
    record.set_recipient(who_.id());
    record.set_policy_version(authorizer.version());
    node_->committer()->Audit(std::move(record));
  }

  // Moves the position past `scanned_to`, spends credit on the deliveries
  // and queues them for writing, then schedules the next fill.
  void FinishFill(uint64_t scanned_to, v1::SubscribeResponse* response) {
    absl::MutexLock lock(&mu_);
    if (finishing_) {
      scheduled_ = false;
      return;
    }
    next_sequence_ = scanned_to + 1;
    const int count = response->deliveries_size();
    if (count > 0) {
      credit_ -= static_cast<uint32_t>(count);
      delivered_max_ = response->deliveries(count - 1).sequence();
      pending_.Swap(response);
      has_pending_ = true;
      if (!writing_) {
        has_pending_ = false;
        WriteLocked();
      }
    }
    scheduled_ = false;
    ScheduleLocked();
  }

  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (scheduled_ || !opened_ || finishing_ || has_pending_ || credit_ == 0 ||
        next_sequence_ > node_->committer()->last_sequence()) {
      return;
    }
    scheduled_ = true;
    auto self = shared_from_this();
    node_->workers()->Schedule([self] { self->Fill(); });
  }

  // Starts writing pending_; requires no write in flight.
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reactor_ == nullptr) return;
    absl::Status serialized = SerializeResponse(pending_, &in_flight_);
    pending_.Clear();
    if (!serialized.ok()) {
      EndLocked(serialized);
      return;
    }
    writing_ = true;
    reactor_->StartWrite(&in_flight_);
  }

  void EndLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    end_status_ = status;
    if (!writing_) FinishLocked();
  }

  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || reactor_ == nullptr) return;
    finished_ = true;
    reactor_->Finish(ToGrpcStatus(end_status_));
  }

  NodeContext* const node_;
  const Identity who_;
  const uint32_t max_credit_;
  // Set by CheckOpen before the subscription is shared; read-only afterwards.
  std::vector<TopicPattern> patterns_;
  std::string durable_key_;
  std::string durable_name_;

  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_);  // null once the reactor is done
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t delivered_max_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t credit_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t early_credit_ ABSL_GUARDED_BY(mu_) = 0;  // granted before opened
  v1::SubscribeResponse pending_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer in_flight_ ABSL_GUARDED_BY(mu_);  // being written
};

class SubscribeReactor final : public Reactor {
 public:
  SubscribeReactor(NodeContext* node, grpc::CallbackServerContext* context)
      : node_(node) {
    absl::StatusOr<Identity> who =
        AuthenticateCall(node, context, "subscribe", &live_);
    if (!who.ok()) {
      Finish(ToGrpcStatus(who.status()));
      return;
    }
    absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>> admitted =
        node->identity_limits()->AdmitStream(who->id(), true);
    if (!admitted.ok()) {
      AuditLimitRefusal(node, who->id(), "subscribe", admitted.status());
      Finish(ToGrpcStatus(admitted.status()));
      return;
    }
    lease_ = *std::move(admitted);
    subscription_ = std::make_shared<SubscriptionImpl>(node, this, *who);
    caller_ = who->id();
    StartRead(&request_bytes_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed: it wants no more deliveries.
      subscription_->End(absl::OkStatus());
      return;
    }
    if (absl::Status parsed = ParseRequest(request_bytes_, &request_);
        !parsed.ok()) {
      AuditRefusedCall(node_, caller_, "subscribe", parsed);
      subscription_->End(parsed);
      return;
    }
    request_bytes_.Clear();
    if (request_.has_open()) {
      if (opened_) {
        subscription_->End(absl::InvalidArgumentError(
            "a subscription is opened once, by the first message"));
        return;
      }
      opened_ = true;
      subscription_->Open(request_.open());
    } else if (request_.has_flow()) {
      subscription_->OnFlow(request_.flow());
    } else {
      subscription_->End(absl::InvalidArgumentError(
          "empty subscribe request: send open first, then flow messages"));
      return;
    }
    StartRead(&request_bytes_);
  }

  void OnWriteDone(bool ok) override { subscription_->OnWriteDone(ok); }

  void OnCancel() override {
    if (subscription_) subscription_->End(absl::CancelledError("cancelled"));
  }

  void OnDone() override {
    if (subscription_) subscription_->OnReactorDone();
    const NodeContext* node = node_;
    delete this;
    node->CallEnded();
  }

 private:
  NodeContext* node_ = nullptr;
  std::string caller_;
  std::shared_ptr<SubscriptionImpl> subscription_;
  grpc::ByteBuffer request_bytes_;  // being read
  v1::SubscribeRequest request_;    // parsed from it
  bool opened_ = false;
  // Keeps this stream in LiveCalls until OnDone deletes the reactor.
  std::unique_ptr<LiveCalls::Registration> live_;
  // This subscription's place among its identity's streams.
  std::unique_ptr<IdentityLimits::Lease> lease_;
};

// Raw method: the reactor parses requests itself (services/raw_message.h).
class SubscriberService final
    : public v1::Subscriber::WithRawCallbackMethod_Subscribe<
          v1::Subscriber::Service> {
 public:
  explicit SubscriberService(NodeContext* node) : node_(node) {}

  Reactor* Subscribe(grpc::CallbackServerContext* context) override {
    return new SubscribeReactor(node_, context);
  }

 private:
  NodeContext* const node_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeSubscriberService(NodeContext* node) {
  return std::make_unique<SubscriberService>(node);
}

}  // namespace ibsm::broker
