#include "ibsm/publisher.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <deque>
#include <thread>
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
#include "spool.h"

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

// Per-alert results after which a spooled alert stays in the spool and is
// sent again after a backoff: the node did not refuse the alert itself
// (it was unavailable, its disk or a peer's outbox was full, a lookup
// failed). Anything else is a definitive refusal.
bool SpoolRetries(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

// Moves the strings out of `r`, which is not used again.
PublishReceipt TakeReceipt(v1::PublishResult& r) {
  PublishReceipt receipt;
  receipt.alert_id = std::move(*r.mutable_alert_id());
  receipt.sequence = r.sequence();
  receipt.duplicate = r.duplicate();
  receipt.forwarded_to.reserve(r.forwarded_to_size());
  for (std::string& peer : *r.mutable_forwarded_to())
    receipt.forwarded_to.push_back(std::move(peer));
  return receipt;
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
    size_t bytes = 0;  // alert.ByteSizeLong(), taken once for the batch limit
    uint64_t spool_seq = 0;  // its spool record; 0 without a spool
  };
  // An alert written on the stream and awaiting its result. While the
  // request it went out in is being written, the alert itself is in that
  // request (moved there rather than copied: keeping a copy for a resend
  // cost ~12 % of the client's instructions) and `lent` points at it; the
  // writer moves it back as soon as Write returns.
  struct Sent {
    Item item;
    v1::Alert* lent = nullptr;
    bool answered = false;  // its result was handled: a hole until popped
    bool requeue = false;   // a retryable result came while lent: resend it
    const std::string& id() const {
      return lent != nullptr ? lent->id() : item.alert.id();
    }
  };
  struct Completion {
    uint64_t order = 0;
    Callback done;
    absl::StatusOr<PublishReceipt> result;
  };

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
    if (!options.spool_dir.empty()) OpenSpool();
  }

  // Opens the spool and queues what it holds, first, in its order.
  void OpenSpool() {
    internal::SpoolBounds bounds;
    bounds.max_alerts = std::max<uint64_t>(1, options.spool_max_alerts);
    bounds.max_bytes = std::max<uint64_t>(1, options.spool_max_bytes);
    absl::StatusOr<std::unique_ptr<internal::Spool>> opened =
        internal::Spool::Open(options.spool_dir, bounds);
    if (!opened.ok()) {
      spool_error = opened.status();
      return;
    }
    spool = *std::move(opened);
    std::vector<internal::SpooledEntry> recovered = spool->TakeRecovered();
    if (recovered.empty()) return;
    absl::MutexLock lock(&mu);
    for (internal::SpooledEntry& entry : recovered) {
      Item item;
      item.bytes = entry.alert.ByteSizeLong();
      item.alert = std::move(entry.alert);
      item.done = options.spool_recovered_result;
      item.spool_seq = entry.seq;
      item.deadline = absl::InfiniteFuture();
      item.order = next_order++;
      finished.push_back(false);
      ++outstanding_count;
      pending.push_back(std::move(item));
    }
    worker = std::thread([this] { Run(); });
  }

  bool spooled() const { return !options.spool_dir.empty(); }

  ~Impl() {
    // Best effort: results of outstanding alerts still reach their callbacks.
    (void)Flush(options.close_timeout);  // on timeout, cancelled below
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
      auto cancel = [&](Item& item) {
        rest.push_back(Completion{
            item.order, std::move(item.done),
            absl::CancelledError(
                spool != nullptr
                    ? absl::StrCat(
                          "publisher closed before the node answered for "
                          "alert '",
                          item.alert.id(), "'; it stays in the spool ",
                          spool->dir(),
                          " and the next Publisher on it sends it")
                    : absl::StrCat("publisher closed before the node "
                                   "answered for alert '",
                                   item.alert.id(),
                                   "'; publish it again to be sure"))});
      };
      for (Item& item : pending) cancel(item);
      pending.clear();
      for (Item& item : retry_later) cancel(item);
      retry_later.clear();
      // The worker has returned every lent alert before it ended.
      for (Sent& sent : in_flight) {
        if (!sent.answered) cancel(sent.item);
      }
      in_flight.clear();
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
    if (spooled()) return PublishThroughSpool(std::move(alert));
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
        v1::PublishResult* result = nullptr;
        for (v1::PublishResult& r : *response.mutable_results()) {
          if (r.alert_id() == id) result = &r;
        }
        if (result == nullptr) {
          return absl::InternalError(
              absl::StrCat("the node returned no result for alert '", id, "'"));
        }
        status = internal::StatusFromCode(result->code(), result->message());
        if (status.ok()) return TakeReceipt(*result);
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

  // Blocking Publish with a spool: the async path and a bounded wait.
  absl::StatusOr<PublishReceipt> PublishThroughSpool(v1::Alert alert) {
    const std::string id = alert.id();
    auto promise =
        std::make_shared<std::promise<absl::StatusOr<PublishReceipt>>>();
    std::future<absl::StatusOr<PublishReceipt>> future = promise->get_future();
    Enqueue(std::move(alert), [promise](absl::StatusOr<PublishReceipt> r) {
      promise->set_value(std::move(r));
    });
    if (future.wait_for(absl::ToChronoSeconds(client_options.retry_timeout)) ==
        std::future_status::ready) {
      return future.get();
    }
    absl::Status last;
    {
      absl::MutexLock lock(&mu);
      last = last_error;
    }
    return absl::UnavailableError(absl::StrCat(
        "no answer from the node for alert '", id, "' within ",
        absl::FormatDuration(client_options.retry_timeout),
        "; it stays in the spool ", spool->dir(),
        " and is sent when the node is back",
        last.ok() ? "" : absl::StrCat(" (last error: ", last.ToString(), ")")));
  }

  void Enqueue(v1::Alert alert, Callback done) {
    if (absl::Status s = Prepare(alert); !s.ok()) {
      done(s);
      return;
    }
    uint64_t spool_seq = 0;
    if (spooled()) {
      if (spool == nullptr) {
        done(spool_error);
        return;
      }
      // Synced before PublishAsync returns: accepted means durable here.
      absl::StatusOr<uint64_t> seq = spool->Append(alert, absl::Now());
      if (!seq.ok()) {
        done(seq.status());
        return;
      }
      spool_seq = *seq;
    }
    Item item;
    item.bytes = alert.ByteSizeLong();
    item.alert = std::move(alert);
    item.done = std::move(done);
    item.spool_seq = spool_seq;
    {
      absl::MutexLock lock(&mu);
      // With a spool its bounds hold the producers back instead; the worker
      // keeps at most max_in_flight on the stream.
      while (!spooled() && outstanding_count >= options.max_in_flight &&
             !shutting_down) {
        cv.Wait(&mu);
      }
      if (!shutting_down) {
        if (!worker.joinable()) worker = std::thread([this] { Run(); });
        item.order = next_order++;
        item.deadline = spooled() ? absl::InfiniteFuture()
                                  : absl::Now() + options.async_timeout;
        finished.push_back(false);
        ++outstanding_count;
        // The worker waits only for an empty queue to fill.
        if (pending.empty()) cv.SignalAll();
        pending.push_back(std::move(item));
        return;
      }
    }
    item.done(absl::CancelledError(
        spool != nullptr
            ? absl::StrCat("publisher is closing; alert '", item.alert.id(),
                           "' stays in the spool ", spool->dir(),
                           " and the next Publisher on it sends it")
            : std::string("publisher is closing")));
  }

  absl::Status Flush(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu);
    const uint64_t target = next_order;
    while (completed_below < target) {
      if (cv.WaitWithDeadline(&mu, deadline)) {
        if (completed_below < target) {
          return absl::DeadlineExceededError(absl::StrCat(
              outstanding_count, " alerts still without a result after ",
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
      if (c.done) c.done(std::move(c.result));
    }
    absl::MutexLock lock(&mu);
    for (const Completion& c : done) finished[c.order - completed_below] = true;
    outstanding_count -= done.size();
    while (!finished.empty() && finished.front()) {
      finished.pop_front();
      ++completed_below;
    }
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
        out.push_back(Completion{it->order, std::move(it->done),
                                 absl::DeadlineExceededError(why)});
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The first alert written with this id that has no result yet (ids may
  // repeat: each result answers the oldest). Results come in write order
  // in the common case, so this is usually the first entry.
  Sent* FindUnanswered(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (Sent& sent : in_flight) {
      if (!sent.answered && sent.id() == id) return &sent;
    }
    return nullptr;
  }

  void PopAnswered() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!in_flight.empty() && in_flight.front().answered &&
           in_flight.front().lent == nullptr) {
      in_flight.pop_front();
    }
  }

  void HandleResponse(v1::PublishResponse& response) {
    std::vector<Completion> done;
    done.reserve(response.results_size());
    std::vector<internal::SpoolSettlement> settled;
    {
      absl::MutexLock lock(&mu);
      progress = true;
      last_result = absl::Now();
      for (v1::PublishResult& r : *response.mutable_results()) {
        Sent* sent = FindUnanswered(r.alert_id());
        if (sent == nullptr) continue;
        sent->answered = true;
        --in_flight_count;
        Item& item = sent->item;
        absl::Status status = internal::StatusFromCode(r.code(), r.message());
        const bool retry =
            item.spool_seq != 0
                ? SpoolRetries(status)
                : internal::IsRetryable(status) && item.deadline > last_result;
        if (item.spool_seq != 0 && (status.ok() || !retry)) {
          settled.push_back(internal::SpoolSettlement{item.spool_seq, status});
        }
        if (item.spool_seq != 0 && retry && !status.ok()) {
          // Sent again after a backoff, not at once: the node is short of
          // something (its disk, a peer's outbox) and will be for a while.
          throttled = true;
        }
        if (status.ok()) {
          last_error = absl::OkStatus();  // sending works (again)
          done.push_back(
              Completion{item.order, std::move(item.done), TakeReceipt(r)});
        } else if (retry) {
          last_error = status;
          if (sent->lent != nullptr) {
            sent->requeue = true;  // once its alert is back (ReturnLent)
          } else if (item.spool_seq != 0) {
            // Back in order with the stream's other unanswered alerts
            // once it has ended (Run).
            retry_later.push_back(std::move(item));
          } else {
            pending.push_front(std::move(item));  // same id: idempotent
            cv.SignalAll();
          }
        } else {
          done.push_back(Completion{item.order, std::move(item.done), status});
        }
      }
      PopAnswered();
    }
    if (!settled.empty()) {
      // Before the callbacks: an alert the application saw answered is no
      // longer spooled. A failure only means a later resend, which the node
      // answers as a duplicate (or refuses again).
      if (absl::Status s = spool->Settle(settled, absl::Now()); !s.ok()) {
        absl::MutexLock lock(&mu);
        last_error = s;
      }
    }
    Complete(done);
  }

  // After a Write: the alerts of the request just written go back into
  // their entries (the newest ones, at the back of in_flight).
  void ReturnLent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    bool requeued = false;
    for (auto it = in_flight.rbegin();
         it != in_flight.rend() && it->lent != nullptr; ++it) {
      it->item.alert = std::move(*it->lent);
      it->lent = nullptr;
      if (it->requeue && it->item.spool_seq != 0) {
        retry_later.push_back(std::move(it->item));  // see HandleResponse
      } else if (it->requeue) {
        pending.push_front(std::move(it->item));  // same id: idempotent
        requeued = true;
      }
    }
    if (requeued) cv.SignalAll();
    PopAnswered();
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
        if (progress && !throttled) backoff.Reset();
        progress = false;
        throttled = false;
        if (!status.ok()) last_error = status;
        // Unanswered alerts go back to the front of the queue, in order, or
        // fail when the node refused the stream itself. RunStream returned
        // every lent alert.
        std::vector<Item> unanswered;
        for (Sent& sent : in_flight) {
          if (!sent.answered) unanswered.push_back(std::move(sent.item));
        }
        in_flight.clear();
        for (Item& item : retry_later) unanswered.push_back(std::move(item));
        retry_later.clear();
        in_flight_count = 0;
        std::sort(
            unanswered.begin(), unanswered.end(),
            [](const Item& a, const Item& b) { return a.order < b.order; });
        // A spooled alert is only ever completed by its own result: a
        // stream the node ends with an error (a certificate it does not
        // accept now, say) is retried.
        if (spooled() || ResendAfter(status)) {
          for (auto it = unanswered.rbegin(); it != unanswered.rend(); ++it) {
            pending.push_front(std::move(*it));
          }
        } else {
          for (Item& item : unanswered) {
            expired.push_back(
                Completion{item.order, std::move(item.done), status});
          }
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
    // Reused: Clear keeps the cleared Alert objects for the next batch.
    v1::PublishRequest request;
    while (true) {
      request.Clear();
      std::vector<Completion> expired;
      {
        absl::MutexLock lock(&mu);
        while (!shutting_down && !reader_done && !throttled &&
               (pending.empty() || in_flight_count >= options.max_in_flight)) {
          cv.WaitWithTimeout(&mu, absl::Seconds(1));
          if (in_flight_count > 0 &&
              absl::Now() - last_result > client_options.call_timeout) {
            stalled = true;
            break;
          }
        }
        if (shutting_down || reader_done || stalled || throttled) break;
        ExpirePending(expired);
        size_t bytes = 0;
        while (!pending.empty() && in_flight_count < options.max_in_flight &&
               static_cast<size_t>(request.alerts_size()) < options.max_batch) {
          size_t size = pending.front().bytes;
          if (request.alerts_size() > 0 && bytes + size > kMaxBatchBytes) break;
          bytes += size;
          Sent& sent = in_flight.emplace_back();
          sent.item = std::move(pending.front());
          pending.pop_front();
          sent.lent = request.add_alerts();
          *sent.lent = std::move(sent.item.alert);
          if (in_flight_count == 0) last_result = absl::Now();
          ++in_flight_count;
        }
      }
      Complete(expired);
      if (request.alerts_size() == 0) continue;
      const bool written = stream->Write(request);
      {
        absl::MutexLock lock(&mu);
        ReturnLent();
      }
      if (!written) break;
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
    if (throttled && !last_error.ok()) return last_error;
    return status;
  }

  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Publisher::Stub> stub;
  const ClientOptions client_options;
  // Null when the client does not sign (ClientOptions::sign_alerts).
  const std::shared_ptr<const internal::AlertSigning> signing;
  PublisherOptions options;  // normalised in the constructor, then constant
  AlertLimits limits;
  // With spool_dir: the spool, or why it could not be opened. Set in the
  // constructor, then constant (the Spool itself is thread-safe).
  std::unique_ptr<internal::Spool> spool;
  absl::Status spool_error;

  absl::Mutex mu;
  absl::CondVar cv;  // any change of the state below
  std::deque<Item> pending ABSL_GUARDED_BY(mu);  // not yet written
  // Written, in order of writing; answered entries stay as holes until
  // everything before them is answered too. A flat queue rather than an
  // index by id: results normally come in write order.
  std::deque<Sent> in_flight ABSL_GUARDED_BY(mu);
  size_t in_flight_count ABSL_GUARDED_BY(mu) = 0;  // entries not answered
  // Whether the alert of order completed_below + i has completed (its
  // callback returned); every order below completed_below has.
  std::deque<bool> finished ABSL_GUARDED_BY(mu);
  uint64_t completed_below ABSL_GUARDED_BY(mu) = 0;
  size_t outstanding_count ABSL_GUARDED_BY(mu) = 0;  // false in `finished`
  uint64_t next_order ABSL_GUARDED_BY(mu) = 0;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  bool reader_done ABSL_GUARDED_BY(mu) = false;
  bool progress ABSL_GUARDED_BY(mu) = false;  // a result since last open
  // A spooled alert got a retryable result: end the stream and back off.
  bool throttled ABSL_GUARDED_BY(mu) = false;
  // Spooled alerts with a retryable result on the current stream; queued
  // again in their order when it ends.
  std::vector<Item> retry_later ABSL_GUARDED_BY(mu);
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
  return impl_->outstanding_count;
}

absl::StatusOr<SpoolState> Publisher::spool_state() const {
  if (!impl_->spooled()) {
    return absl::FailedPreconditionError(
        "this Publisher has no spool (PublisherOptions::spool_dir)");
  }
  if (impl_->spool == nullptr) return impl_->spool_error;
  SpoolState state = impl_->spool->State(absl::Now());
  absl::MutexLock lock(&impl_->mu);
  state.last_error = impl_->last_error;
  return state;
}

}  // namespace ibsm
