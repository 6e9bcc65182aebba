#include "ibsm/subscriber.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backoff.h"
#include "dedup_set.h"
#include "ibsm/grpc_status.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/broker.grpc.pb.h"

namespace ibsm {
namespace {

// How long the end of a stream waits for a flow write in progress before
// cancelling the call to unblock it.
constexpr absl::Duration kFlowWriteGrace = absl::Seconds(1);

using Stream =
    grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>;

// Stream endings after which the subscription is simply reopened.
bool ReopenAfter(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

v1::SubscribeRequest::Open::Start ToProto(SubscribeOptions::Start s) {
  switch (s) {
    case SubscribeOptions::Start::kEarliest:
      return v1::SubscribeRequest::Open::START_EARLIEST;
    case SubscribeOptions::Start::kSequence:
      return v1::SubscribeRequest::Open::START_AT_SEQUENCE;
    case SubscribeOptions::Start::kNew:
      break;
  }
  return v1::SubscribeRequest::Open::START_NEW;
}

}  // namespace

struct Subscriber::Impl {
  enum class Mode { kNone, kPull, kPush };

  Impl(std::shared_ptr<grpc::Channel> ch, const ClientOptions& co,
       const SubscribeOptions& so)
      : channel(std::move(ch)),
        stub(v1::Subscriber::NewStub(channel)),
        client_options(co),
        options(so),
        backoff_options(so.backoff.value_or(co.backoff)),
        dedup(so.dedup_capacity) {}

  ~Impl() { Stop(); }

  // ---- starting and stopping -------------------------------------------

  // Starts the stream on first use and waits until it is open. `*first`
  // tells whether this call started it.
  absl::Status EnsureStarted(Mode wanted, bool* first) {
    absl::MutexLock lock(&mu);
    *first = false;
    if (mode != Mode::kNone) {
      if (mode != wanted) {
        return absl::FailedPreconditionError(
            "a Subscriber is used either with Start (push) or with Next "
            "(pull), not both");
      }
      return absl::OkStatus();
    }
    if (stop_requested) return absl::CancelledError("subscriber stopped");
    mode = wanted;
    *first = true;
    stream_thread = std::thread([this] { Run(); });
    flow_thread = std::thread([this] { FlowLoop(); });
    absl::Time deadline = absl::Now() + options.open_timeout;
    while (!opened_once && terminal.ok()) {
      if (mu.AwaitWithDeadline(absl::Condition(this, &Impl::OpenedOrEnded),
                               deadline)) {
        continue;
      }
      terminal = absl::UnavailableError(absl::StrCat(
          "cannot open the subscription within ",
          absl::FormatDuration(options.open_timeout),
          last_error.ok() ? "" : absl::StrCat(": ", last_error.message())));
    }
    if (!terminal.ok()) {
      absl::Status result = terminal;
      mu.Unlock();
      Stop();
      mu.Lock();
      return result;
    }
    return absl::OkStatus();
  }

  bool OpenedOrEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return opened_once || !terminal.ok();
  }

  void Stop() {
    absl::Time deadline = absl::Now() + options.close_timeout;
    {
      absl::MutexLock lock(&mu);
      if (stopped) return;
      stopped = true;
      stop_requested = true;
      if (std::this_thread::get_id() == dispatch_thread.get_id()) {
        std::fprintf(stderr,
                     "ibsm: Subscriber::Stop called from its own "
                     "delivery callback\n");
        std::abort();
      }
      cv.SignalAll();
      // Let the flow thread send the last acknowledgement.
      while (mode != Mode::kNone && !flow_done) {
        if (cv.WaitWithDeadline(&mu, deadline)) break;
      }
    }
    bool half_closed = false;
    bool flushed;
    {
      absl::MutexLock lock(&mu);
      flushed = flow_done;
    }
    if (flushed) {  // the flow thread no longer writes: we may half-close
      absl::MutexLock write_lock(&write_mu);
      if (live_stream != nullptr) half_closed = live_stream->WritesDone();
    }
    {
      absl::MutexLock lock(&mu);
      // After our half-close the node ends the stream, which proves it has
      // read (and stored) the final acknowledgement.
      while (half_closed && !stream_ended) {
        if (cv.WaitWithDeadline(&mu, deadline)) break;
      }
      hard_stop = true;
      if (current_ctx != nullptr) current_ctx->TryCancel();
      if (terminal.ok()) terminal = absl::CancelledError("subscriber stopped");
      cv.SignalAll();
    }
    if (stream_thread.joinable()) stream_thread.join();
    if (flow_thread.joinable()) flow_thread.join();
    if (dispatch_thread.joinable()) dispatch_thread.join();
  }

  // ---- the stream --------------------------------------------------------

  v1::SubscribeRequest MakeOpen() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    v1::SubscribeRequest request;
    v1::SubscribeRequest::Open* open = request.mutable_open();
    for (const std::string& t : options.topics) open->add_topics(t);
    open->set_durable_name(options.durable_name);
    open->set_credit(options.credit);
    if (!opened_once) {
      open->set_start(ToProto(options.start));
      open->set_start_sequence(options.start_sequence);
    } else {
      // Resume right after what we have seen. A durable subscription with a
      // stored cursor resumes after its cursor instead (which is not later);
      // the overlap is removed by sequence.
      open->set_start(v1::SubscribeRequest::Open::START_AT_SEQUENCE);
      open->set_start_sequence(std::max(highest_passed, first_cursor) + 1);
    }
    return request;
  }

  void Run() {
    internal::Backoff backoff(backoff_options);
    while (true) {
      grpc::ClientContext ctx;
      v1::SubscribeRequest open;
      {
        absl::MutexLock lock(&mu);
        if (stop_requested || hard_stop) break;
        current_ctx = &ctx;
        open = MakeOpen();
      }
      std::unique_ptr<Stream> stream = stub->Subscribe(&ctx);
      v1::SubscribeResponse response;
      bool ok = stream->Write(open) && stream->Read(&response);
      if (ok) {
        {
          absl::MutexLock lock(&mu);
          opened_cursor = response.opened().cursor();
          opened_last_sequence = response.opened().last_sequence();
          if (!opened_once) first_cursor = opened_cursor;
          if (opened_once) ++reconnects;
          opened_once = true;
          queue.clear();  // the node sends them again on this stream
          credit_to_return = 0;
          ++generation;
          flow_generation = generation;
          // Repeat the latest acknowledgement on the new stream, in case
          // the node lost the previous one.
          sent_ack = 0;
          flow_due = true;
          Push(response);
          absl::MutexLock write_lock(&write_mu);
          live_stream = stream.get();
          live_generation = generation;
          cv.SignalAll();
        }
        backoff.Reset();
        while (stream->Read(&response)) {
          absl::MutexLock lock(&mu);
          Push(response);
        }
      }
      // The node has ended the stream or the connection is gone; Finish
      // returns at once. It must not run concurrently with a flow Write:
      // stop further writes and wait for one in progress.
      {
        absl::MutexLock lock(&mu);
        flow_generation = 0;
        absl::Time grace = absl::Now() + kFlowWriteGrace;
        while (flow_writing && !cv.WaitWithDeadline(&mu, grace)) {
        }
        // Cancelling would replace the node's status (UNAVAILABLE on
        // shutdown, ABORTED on takeover) with CANCELLED: only when a write
        // is stuck.
        if (flow_writing) ctx.TryCancel();
        while (flow_writing) cv.Wait(&mu);
      }
      {
        absl::MutexLock write_lock(&write_mu);
        live_stream = nullptr;
      }
      absl::Status status = FromGrpcStatus(stream->Finish());
      absl::Duration wait = absl::ZeroDuration();
      {
        absl::MutexLock lock(&mu);
        current_ctx = nullptr;
        if (stop_requested || hard_stop) break;
        if (!status.ok()) last_error = status;
        if (absl::IsAborted(status) && !options.durable_name.empty()) {
          terminal = absl::AbortedError(absl::StrCat(
              "durable subscription '", options.durable_name,
              "' was taken over by a newer connection: ", status.message()));
          cv.SignalAll();
          break;
        }
        if (!ReopenAfter(status)) {
          terminal = status;
          cv.SignalAll();
          break;
        }
        wait = backoff.Next();
      }
      // Not a plain sleep: waiting this way also drives the channel's
      // reconnection, and ends early once the node is reachable again.
      backoff.Wait(*channel, wait, [this] {
        absl::MutexLock lock(&mu);
        return stop_requested || hard_stop;
      });
    }
    absl::MutexLock lock(&mu);
    stream_ended = true;
    cv.SignalAll();
  }

  // Moves the deliveries out of `response` (read again for the next one).
  void Push(v1::SubscribeResponse& response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (v1::Delivery& d : *response.mutable_deliveries())
      queue.push_back(std::move(d));
    if (response.deliveries_size() > 0) cv.SignalAll();
  }

  // ---- acknowledgements and credit --------------------------------------

  // Everything up to the returned sequence is done: what the application
  // acknowledged, extended over dropped duplicates once the application has
  // acknowledged every alert it was given.
  uint64_t EffectiveAck() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (app_acked >= highest_delivered)
      return std::max(app_acked, highest_passed);
    return app_acked;
  }

  bool FlowWanted() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (flow_generation == 0 || flow_generation != generation) return false;
    uint32_t threshold = std::max<uint32_t>(1, options.credit / 2);
    return credit_to_return >= threshold || flow_due ||
           (EffectiveAck() > sent_ack &&
            absl::Now() - last_flow >= options.ack_interval);
  }

  void FlowLoop() {
    while (true) {
      v1::SubscribeRequest request;
      uint64_t gen;
      bool final_flush;
      {
        absl::MutexLock lock(&mu);
        while (true) {
          if (hard_stop) {
            flow_done = true;
            cv.SignalAll();
            return;
          }
          if (stop_requested || FlowWanted()) break;
          cv.WaitWithTimeout(&mu, options.ack_interval);
        }
        final_flush = stop_requested;
        gen = flow_generation;
        v1::SubscribeRequest::Flow* flow = request.mutable_flow();
        uint64_t ack = EffectiveAck();
        if (ack > sent_ack) flow->set_ack_sequence(ack);
        if (!final_flush) {
          flow->set_credit(credit_to_return);
          credit_to_return = 0;
        }
        flow_due = false;
        last_flow = absl::Now();
        // The stream thread waits for this write before finishing the
        // stream.
        flow_writing = gen != 0;
      }
      bool written = false;
      if (gen != 0 && (request.flow().ack_sequence() != 0 ||
                       request.flow().credit() != 0)) {
        absl::MutexLock write_lock(&write_mu);
        if (live_stream != nullptr && live_generation == gen) {
          written = live_stream->Write(request);
        }
      }
      absl::MutexLock lock(&mu);
      if (flow_writing) {
        flow_writing = false;
        cv.SignalAll();
      }
      if (written) {
        sent_ack = std::max(sent_ack, request.flow().ack_sequence());
      } else if (gen == generation) {
        // Not sent on this stream: keep the credit for the next attempt (a
        // new stream starts with a fresh window anyway).
        credit_to_return += request.flow().credit();
      }
      if (final_flush) {
        flow_done = true;
        cv.SignalAll();
        return;
      }
    }
  }

  // ---- consuming -----------------------------------------------------------

  // Takes queued deliveries until a new one is found; false when the queue
  // ran empty.
  bool TakeNew(v1::Delivery* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!queue.empty()) {
      v1::Delivery d = std::move(queue.front());
      queue.pop_front();
      ++credit_to_return;
      if (credit_to_return >= std::max<uint32_t>(1, options.credit / 2)) {
        cv.SignalAll();
      }
      uint64_t seq = d.sequence();
      if (seq <= highest_passed) continue;  // redelivered after reconnect
      highest_passed = seq;
      if (!dedup.Insert(internal::DedupSet::AlertKey(d.alert().originator(),
                                                     d.alert().id()))) {
        continue;  // the same alert under another sequence
      }
      highest_delivered = seq;
      *out = std::move(d);
      return true;
    }
    return false;
  }

  absl::StatusOr<std::optional<v1::Delivery>> Next(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu);
    while (true) {
      if (hard_stop) return terminal;
      v1::Delivery d;
      if (TakeNew(&d)) return std::optional<v1::Delivery>(std::move(d));
      if (!terminal.ok()) return terminal;
      if (cv.WaitWithDeadline(&mu, deadline) && queue.empty()) {
        return std::optional<v1::Delivery>();
      }
    }
  }

  void Dispatch(DeliveryCallback on_delivery, ErrorCallback on_error) {
    while (true) {
      absl::StatusOr<std::optional<v1::Delivery>> next = Next(absl::Seconds(1));
      if (!next.ok()) {
        if (on_error && !absl::IsCancelled(next.status())) {
          on_error(next.status());
        }
        return;
      }
      if (!next->has_value()) continue;
      on_delivery(**next);
      if (options.auto_ack) Ack((*next)->sequence());
    }
  }

  void Ack(uint64_t sequence) {
    absl::MutexLock lock(&mu);
    if (sequence > app_acked) app_acked = sequence;
  }

  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Subscriber::Stub> stub;
  const ClientOptions client_options;
  const SubscribeOptions options;
  const BackoffOptions backoff_options;

  mutable absl::Mutex mu;
  absl::CondVar cv;  // any change of the state below
  Mode mode ABSL_GUARDED_BY(mu) = Mode::kNone;
  bool stop_requested ABSL_GUARDED_BY(mu) = false;  // finish cleanly
  bool hard_stop ABSL_GUARDED_BY(mu) = false;       // cancel everything
  bool stopped ABSL_GUARDED_BY(mu) = false;
  bool flow_done ABSL_GUARDED_BY(mu) = false;
  bool stream_ended ABSL_GUARDED_BY(mu) = false;
  absl::Status terminal ABSL_GUARDED_BY(mu);    // why the subscription ended
  absl::Status last_error ABSL_GUARDED_BY(mu);  // of the last failed stream
  grpc::ClientContext* current_ctx ABSL_GUARDED_BY(mu) = nullptr;
  bool opened_once ABSL_GUARDED_BY(mu) = false;
  uint64_t first_cursor ABSL_GUARDED_BY(mu) = 0;
  uint64_t opened_cursor ABSL_GUARDED_BY(mu) = 0;
  uint64_t opened_last_sequence ABSL_GUARDED_BY(mu) = 0;
  uint64_t reconnects ABSL_GUARDED_BY(mu) = 0;
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;  // one per opened stream
  // The generation of the open stream the flow thread may write to; 0 from
  // the moment the stream has ended.
  uint64_t flow_generation ABSL_GUARDED_BY(mu) = 0;
  bool flow_writing ABSL_GUARDED_BY(mu) = false;  // a flow Write in progress
  std::deque<v1::Delivery> queue ABSL_GUARDED_BY(mu);  // received, not taken
  internal::DedupSet dedup ABSL_GUARDED_BY(mu);
  uint64_t highest_passed ABSL_GUARDED_BY(mu) = 0;     // taken (new or dup)
  uint64_t highest_delivered ABSL_GUARDED_BY(mu) = 0;  // given to the app
  uint64_t app_acked ABSL_GUARDED_BY(mu) = 0;
  uint64_t sent_ack ABSL_GUARDED_BY(mu) = 0;
  uint32_t credit_to_return ABSL_GUARDED_BY(mu) = 0;
  bool flow_due ABSL_GUARDED_BY(mu) = false;  // send an ack at once
  absl::Time last_flow ABSL_GUARDED_BY(mu) = absl::InfinitePast();

  // Held while writing to the stream; only the flow thread writes after the
  // open message, and Stop half-closes once the flow thread is done.
  absl::Mutex write_mu ABSL_ACQUIRED_AFTER(mu);
  Stream* live_stream ABSL_GUARDED_BY(write_mu) = nullptr;
  uint64_t live_generation ABSL_GUARDED_BY(write_mu) = 0;

  std::thread stream_thread;
  std::thread flow_thread;
  std::thread dispatch_thread;
};

Subscriber::Subscriber(std::shared_ptr<grpc::Channel> channel,
                       const ClientOptions& client_options,
                       const SubscribeOptions& options)
    : impl_(std::make_unique<Impl>(std::move(channel), client_options,
                                   options)) {}

Subscriber::~Subscriber() { Stop(); }

absl::Status Subscriber::Start(DeliveryCallback on_delivery,
                               ErrorCallback on_error) {
  if (!on_delivery) {
    return absl::InvalidArgumentError("Start needs a delivery callback");
  }
  bool first = false;
  IBSM_RETURN_IF_ERROR(impl_->EnsureStarted(Impl::Mode::kPush, &first));
  if (!first) {
    return absl::FailedPreconditionError("subscriber already started");
  }
  absl::MutexLock lock(&impl_->mu);
  impl_->dispatch_thread =
      std::thread([impl = impl_.get(), on_delivery = std::move(on_delivery),
                   on_error = std::move(on_error)] {
        impl->Dispatch(on_delivery, on_error);
      });
  return absl::OkStatus();
}

void Subscriber::Stop() { impl_->Stop(); }

absl::StatusOr<std::optional<v1::Delivery>> Subscriber::Next(
    absl::Duration timeout) {
  bool first = false;
  IBSM_RETURN_IF_ERROR(impl_->EnsureStarted(Impl::Mode::kPull, &first));
  return impl_->Next(timeout);
}

void Subscriber::Ack(uint64_t sequence) { impl_->Ack(sequence); }

uint64_t Subscriber::opened_cursor() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->opened_cursor;
}

uint64_t Subscriber::opened_last_sequence() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->opened_last_sequence;
}

uint64_t Subscriber::reconnects() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->reconnects;
}

}  // namespace ibsm
