#include "ibsm/publisher.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <deque>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "alert_signing.h"
#include "backoff.h"
#include "ibsm/alert_rules.h"
#include "ibsm/grpc_status.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "publish_util.h"

namespace ibsm {

namespace internal {

absl::Status StatusFromCode(int32_t code, absl::string_view message) {
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > 16) {
    return absl::UnknownError(absl::StrCat(
        "code ", code, ": ", message.empty() ? "(no message)" : message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      message.empty() ? "refused by the node" : message);
}

}  // namespace internal

namespace {

// Keeps a batch well under gRPC's default 4 MiB receive limit on the node.
constexpr size_t kMaxBatchBytes = 3 << 20;
constexpr absl::Duration kDestructorFlush = absl::Seconds(5);

// Stream endings after which unacknowledged alerts are simply sent again.
bool ResendAfter(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

PublishReceipt ReceiptOf(const v1::PublishResult& r) {
  return PublishReceipt{r.alert_id(), r.sequence(), r.duplicate(),
                        std::vector<std::string>(r.forwarded_to().begin(),
                                                 r.forwarded_to().end())};
}

void SetNow(google::protobuf::Timestamp* t) {
  absl::Time now = absl::Now();
  int64_t secs = absl::ToUnixSeconds(now);
  t->set_seconds(secs);
  t->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(now - absl::FromUnixSeconds(secs))));
}

}  // namespace

struct Publisher::Impl {
  struct Item {
    uint64_t order = 0;
    v1::Alert alert;
    Callback done;
    absl::Time deadline;
  };
  using Completion = std::pair<Item, absl::StatusOr<PublishReceipt>>;

  Impl(std::shared_ptr<grpc::Channel> ch, const ClientOptions& co,
       const PublisherOptions& po,
       std::shared_ptr<const internal::AlertSigning> sign_with)
      : channel(std::move(ch)),
        stub(v1::Publisher::NewStub(channel)),
        client_options(co),
        signing(std::move(sign_with)),
        options(po) {
    if (!options.classification_levels.empty()) {
      limits.classification_levels = &options.classification_levels;
    }
    options.max_in_flight = std::max<size_t>(1, options.max_in_flight);
    options.max_batch = std::clamp<size_t>(options.max_batch, 1, 1024);
  }

  ~Impl() {
    // Best effort: results of outstanding alerts still reach their callbacks.
    (void)Flush(kDestructorFlush);  // on timeout, the rest is cancelled below
    {
      absl::MutexLock lock(&mu);
      shutting_down = true;
      if (current_ctx != nullptr) current_ctx->TryCancel();
      cv.SignalAll();
    }
    if (worker.joinable()) worker.join();
    std::vector<Completion> rest;
    {
      absl::MutexLock lock(&mu);
      for (Item& item : pending)
        rest.emplace_back(std::move(item), absl::StatusOr<PublishReceipt>());
      pending.clear();
      for (auto& [id, items] : in_flight) {
        for (Item& item : items)
          rest.emplace_back(std::move(item), absl::StatusOr<PublishReceipt>());
      }
      in_flight.clear();
    }
    for (Completion& c : rest) {
      c.second = absl::CancelledError(
          absl::StrCat("publisher closed before the node answered for alert '",
                       c.first.alert.id(), "'; publish it again to be sure"));
    }
    Complete(rest);
  }

  absl::Status Prepare(v1::Alert& alert) const {
    if (options.fill_created_at && !alert.has_created_at()) {
      SetNow(alert.mutable_created_at());
    }
    // Signed once here: retries of this alert send the same bytes.
    if (signing != nullptr) IBSM_RETURN_IF_ERROR(signing->Sign(&alert));
    if (options.validate_locally)
      IBSM_RETURN_IF_ERROR(ValidateAlert(alert, limits));
    return absl::OkStatus();
  }

  absl::StatusOr<PublishReceipt> PublishBlocking(v1::Alert alert) {
    IBSM_RETURN_IF_ERROR(Prepare(alert));
    v1::PublishRequest request;
    *request.add_alerts() = std::move(alert);
    const std::string& id = request.alerts(0).id();
    internal::Backoff backoff(client_options.backoff);
    absl::Time give_up = absl::Now() + client_options.retry_timeout;
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(
          std::min(give_up, absl::Now() + client_options.call_timeout)));
      v1::PublishResponse response;
      absl::Status status =
          FromGrpcStatus(stub->Publish(&ctx, request, &response));
      if (status.ok()) {
        const v1::PublishResult* result = nullptr;
        for (const v1::PublishResult& r : response.results()) {
          if (r.alert_id() == id) result = &r;
        }
        if (result == nullptr) {
          return absl::InternalError(
              absl::StrCat("the node returned no result for alert '", id, "'"));
        }
        status = internal::StatusFromCode(result->code(), result->message());
        if (status.ok()) return ReceiptOf(*result);
      }
      absl::Duration wait = backoff.Next();
      if (!internal::IsRetryable(status)) return status;
      if (absl::Now() + wait >= give_up) {
        return absl::Status(status.code(),
                            absl::StrCat(status.message(), " (gave up after ",
                                         backoff.attempt(), " attempts)"));
      }
      backoff.Wait(*channel, wait);
    }
  }

  void Enqueue(v1::Alert alert, Callback done) {
    if (absl::Status s = Prepare(alert); !s.ok()) {
      done(s);
      return;
    }
    {
      absl::MutexLock lock(&mu);
      while (outstanding.size() >= options.max_in_flight && !shutting_down) {
        cv.Wait(&mu);
      }
      if (!shutting_down) {
        if (!worker.joinable()) worker = std::thread([this] { Run(); });
        Item item;
        item.order = next_order++;
        item.alert = std::move(alert);
        item.done = std::move(done);
        item.deadline = absl::Now() + options.async_timeout;
        outstanding.insert(item.order);
        pending.push_back(std::move(item));
        cv.SignalAll();
        return;
      }
    }
    done(absl::CancelledError("publisher is closing"));
  }

  absl::Status Flush(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu);
    const uint64_t target = next_order;
    while (!outstanding.empty() && *outstanding.begin() < target) {
      if (cv.WaitWithDeadline(&mu, deadline)) {
        if (!outstanding.empty() && *outstanding.begin() < target) {
          return absl::DeadlineExceededError(absl::StrCat(
              outstanding.size(), " alerts still without a result after ",
              absl::FormatDuration(timeout)));
        }
      }
    }
    return absl::OkStatus();
  }

  // Runs the callbacks (outside the lock), then marks the alerts complete.
  void Complete(std::vector<Completion>& done) {
    if (done.empty()) return;
    for (Completion& c : done) {
      if (c.first.done) c.first.done(std::move(c.second));
    }
    absl::MutexLock lock(&mu);
    for (Completion& c : done) outstanding.erase(c.first.order);
    cv.SignalAll();
  }

  // Alerts past their deadline leave the queue with DEADLINE_EXCEEDED.
  void ExpirePending(std::vector<Completion>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    absl::Time now = absl::Now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->deadline <= now) {
        std::string why = absl::StrCat(
            "no result for alert '", it->alert.id(), "' within ",
            absl::FormatDuration(options.async_timeout),
            last_error.ok()
                ? ""
                : absl::StrCat("; last error: ", last_error.message()));
        out.emplace_back(std::move(*it), absl::DeadlineExceededError(why));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }

  void HandleResponse(const v1::PublishResponse& response) {
    std::vector<Completion> done;
    {
      absl::MutexLock lock(&mu);
      progress = true;
      last_result = absl::Now();
      for (const v1::PublishResult& r : response.results()) {
        auto it = in_flight.find(r.alert_id());
        if (it == in_flight.end() || it->second.empty()) continue;
        Item item = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) in_flight.erase(it);
        --in_flight_count;
        absl::Status status = internal::StatusFromCode(r.code(), r.message());
        if (status.ok()) {
          done.emplace_back(std::move(item), ReceiptOf(r));
        } else if (internal::IsRetryable(status) &&
                   item.deadline > absl::Now()) {
          last_error = status;
          pending.push_front(std::move(item));  // same id: idempotent
          cv.SignalAll();
        } else {
          done.emplace_back(std::move(item), status);
        }
      }
    }
    Complete(done);
  }

  // The worker: (re)opens the stream whenever there is something to send.
  void Run() {
    internal::Backoff backoff(client_options.backoff);
    while (true) {
      std::vector<Completion> expired;
      {
        absl::MutexLock lock(&mu);
        while (!shutting_down && pending.empty()) cv.Wait(&mu);
        if (shutting_down) return;
      }
      absl::Status status = RunStream();
      bool wait;
      {
        absl::MutexLock lock(&mu);
        if (shutting_down) return;
        if (progress) backoff.Reset();
        progress = false;
        if (!status.ok()) last_error = status;
        // Unanswered alerts go back to the front of the queue, in order, or
        // fail when the node refused the stream itself.
        std::vector<Item> unanswered;
        for (auto& [id, items] : in_flight) {
          for (Item& item : items) unanswered.push_back(std::move(item));
        }
        in_flight.clear();
        in_flight_count = 0;
        std::sort(
            unanswered.begin(), unanswered.end(),
            [](const Item& a, const Item& b) { return a.order < b.order; });
        if (ResendAfter(status)) {
          for (auto it = unanswered.rbegin(); it != unanswered.rend(); ++it) {
            pending.push_front(std::move(*it));
          }
        } else {
          for (Item& item : unanswered)
            expired.emplace_back(std::move(item), status);
        }
        ExpirePending(expired);
        wait = !status.ok() || !pending.empty();
      }
      Complete(expired);
      if (wait) {
        backoff.Wait(*channel, backoff.Next(), [this] {
          absl::MutexLock lock(&mu);
          return shutting_down;
        });
      }
    }
  }

  // One PublishStream: writes batches from `pending` until the stream breaks,
  // stalls, or the publisher closes. Returns how the stream ended.
  absl::Status RunStream() {
    grpc::ClientContext ctx;
    {
      absl::MutexLock lock(&mu);
      if (shutting_down) return absl::CancelledError("closing");
      current_ctx = &ctx;
      reader_done = false;
      last_result = absl::Now();
    }
    std::unique_ptr<
        grpc::ClientReaderWriter<v1::PublishRequest, v1::PublishResponse>>
        stream = stub->PublishStream(&ctx);
    std::thread reader([&] {
      v1::PublishResponse response;
      while (stream->Read(&response)) HandleResponse(response);
      absl::MutexLock lock(&mu);
      reader_done = true;
      cv.SignalAll();
    });
    bool stalled = false;
    while (true) {
      v1::PublishRequest request;
      std::vector<Completion> expired;
      {
        absl::MutexLock lock(&mu);
        while (!shutting_down && !reader_done && pending.empty()) {
          cv.WaitWithTimeout(&mu, absl::Seconds(1));
          if (in_flight_count > 0 &&
              absl::Now() - last_result > client_options.call_timeout) {
            stalled = true;
            break;
          }
        }
        if (shutting_down || reader_done || stalled) break;
        ExpirePending(expired);
        size_t bytes = 0;
        while (!pending.empty() &&
               static_cast<size_t>(request.alerts_size()) < options.max_batch) {
          size_t size = pending.front().alert.ByteSizeLong();
          if (request.alerts_size() > 0 && bytes + size > kMaxBatchBytes) break;
          bytes += size;
          Item item = std::move(pending.front());
          pending.pop_front();
          *request.add_alerts() = item.alert;
          if (in_flight_count == 0) last_result = absl::Now();
          ++in_flight_count;
          in_flight[item.alert.id()].push_back(std::move(item));
        }
      }
      Complete(expired);
      if (request.alerts_size() > 0 && !stream->Write(request)) break;
    }
    ctx.TryCancel();  // no-op when the stream has already ended
    reader.join();
    absl::Status status = FromGrpcStatus(stream->Finish());
    absl::MutexLock lock(&mu);
    current_ctx = nullptr;
    if (stalled) {
      return absl::DeadlineExceededError(
          absl::StrCat("no publish result from the node for ",
                       absl::FormatDuration(client_options.call_timeout)));
    }
    return status;
  }

  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Publisher::Stub> stub;
  const ClientOptions client_options;
  // Null when the client does not sign (ClientOptions::sign_alerts).
  const std::shared_ptr<const internal::AlertSigning> signing;
  PublisherOptions options;  // normalised in the constructor, then constant
  AlertLimits limits;

  absl::Mutex mu;
  absl::CondVar cv;  // any change of the state below
  std::deque<Item> pending ABSL_GUARDED_BY(mu);  // not yet written
  // Written, awaiting their result, by alert id (in order of writing).
  std::unordered_map<std::string, std::deque<Item>> in_flight
      ABSL_GUARDED_BY(mu);
  size_t in_flight_count ABSL_GUARDED_BY(mu) = 0;
  // Orders of every alert whose callback has not yet returned.
  std::set<uint64_t> outstanding ABSL_GUARDED_BY(mu);
  uint64_t next_order ABSL_GUARDED_BY(mu) = 0;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  bool reader_done ABSL_GUARDED_BY(mu) = false;
  bool progress ABSL_GUARDED_BY(mu) = false;  // a result since last open
  absl::Time last_result ABSL_GUARDED_BY(mu);
  absl::Status last_error ABSL_GUARDED_BY(mu);
  grpc::ClientContext* current_ctx ABSL_GUARDED_BY(mu) = nullptr;
  // Started under mu by the first PublishAsync; joined by the destructor.
  std::thread worker;
};

Publisher::Publisher(std::shared_ptr<grpc::Channel> channel,
                     const ClientOptions& client_options,
                     const PublisherOptions& options,
                     std::shared_ptr<const internal::AlertSigning> signing)
    : impl_(std::make_unique<Impl>(std::move(channel), client_options, options,
                                   std::move(signing))) {}

Publisher::~Publisher() = default;

absl::StatusOr<PublishReceipt> Publisher::Publish(v1::Alert alert) {
  return impl_->PublishBlocking(std::move(alert));
}

void Publisher::PublishAsync(v1::Alert alert, Callback done) {
  impl_->Enqueue(std::move(alert), std::move(done));
}

std::future<absl::StatusOr<PublishReceipt>> Publisher::PublishAsync(
    v1::Alert alert) {
  auto promise =
      std::make_shared<std::promise<absl::StatusOr<PublishReceipt>>>();
  std::future<absl::StatusOr<PublishReceipt>> future = promise->get_future();
  impl_->Enqueue(std::move(alert),
                 [promise](absl::StatusOr<PublishReceipt> result) {
                   promise->set_value(std::move(result));
                 });
  return future;
}

absl::Status Publisher::Flush(absl::Duration timeout) {
  return impl_->Flush(timeout);
}

size_t Publisher::outstanding() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->outstanding.size();
}

}  // namespace ibsm
