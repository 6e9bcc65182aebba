// Receiving alerts from the agency's node, made by Client::NewSubscriber.
//
// A Subscriber keeps one Subscribe stream open, reopening it with
// exponential backoff and jitter when it breaks, and hands each alert to the
// application once:
//
//  * Delivery is at least once on the wire. The Subscriber drops any
//    delivery whose sequence is not above the highest one already handed to
//    the application, and any alert whose (originator, id) it has handed
//    over recently (a bounded LRU set, SubscribeOptions::dedup_capacity).
//  * Acknowledge with Ack(sequence) once an alert is processed; it is
//    cumulative (everything up to `sequence` is done). Acks are coalesced
//    and sent as flow messages; the node stores the last one as the cursor
//    of a durable subscription, which resumes after it on reconnect, even
//    days later. Unacknowledged alerts are delivered again after a
//    reconnect (and then filtered as above).
//  * Flow control: the node never sends more than `credit` alerts ahead of
//    what the application has taken; credit is returned as alerts are
//    consumed, so memory stays bounded however slow the application is.
//
// Use either push style, Start(callback) ... Stop(), or pull style,
// Next(timeout), not both.
//
// A Subscriber is safe for concurrent use by multiple threads. The callback
// given to Start runs on one internal thread, one delivery at a time; it may
// call Ack but not Stop or the destructor.
#ifndef IBSM_SUBSCRIBER_H_
#define IBSM_SUBSCRIBER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ibsm/client.h"

namespace ibsm {

namespace v1 {
class Delivery;
}  // namespace v1

struct SubscribeOptions {
  // Topic patterns ("trafficking.*", "terrorism.>", ">"); at least one.
  std::vector<std::string> topics;
  // Name of a durable subscription (per agency): its cursor is kept by the
  // node. Empty: an ephemeral subscription, which the library still resumes
  // after the last alert it received when the stream is reopened.
  std::string durable_name;

  enum class Start { kNew, kEarliest, kSequence };
  // Where a subscription starts: alerts published from now on, everything
  // still in the log, or `start_sequence` onwards. For a durable name this
  // applies only when the name is created (its first open, which stores the
  // cursor before the node answers); every later open resumes after the
  // stored cursor (docs/client-library.md).
  Start start = Start::kNew;
  uint64_t start_sequence = 0;

  // Credit window: alerts the node may send ahead of consumption.
  uint32_t credit = 1024;
  // Push style only: acknowledge each delivery when the callback returns.
  bool auto_ack = false;
  // Acks are coalesced for at most this long before being sent.
  absl::Duration ack_interval = absl::Milliseconds(200);
  // How many (originator, id) pairs are remembered for duplicate removal.
  size_t dedup_capacity = 100000;
  // How long the first open may take (Start, first Next) before failing.
  absl::Duration open_timeout = absl::Seconds(10);
  // Upper bound for Stop to send the last acks and close cleanly.
  absl::Duration close_timeout = absl::Seconds(1);
  // Reconnection backoff (defaults to ClientOptions::backoff when unset).
  std::optional<BackoffOptions> backoff;
};

class Subscriber {
 public:
  using DeliveryCallback = std::function<void(const v1::Delivery&)>;
  using ErrorCallback = std::function<void(const absl::Status&)>;

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  ~Subscriber();  // Stop()

  // Opens the subscription (waiting up to open_timeout for the node to
  // accept it) and then calls `on_delivery` for each new alert, on an
  // internal thread. Returns the node's refusal (e.g. PERMISSION_DENIED),
  // UNAVAILABLE when the node cannot be reached in time, or
  // FAILED_PRECONDITION when already started. Later, `on_error` (optional)
  // is called once if the subscription ends for good: refused on reconnect,
  // or ABORTED when a newer connection took over the same durable name.
  absl::Status Start(DeliveryCallback on_delivery,
                     ErrorCallback on_error = nullptr);

  // Sends the pending acknowledgement, closes the stream and joins the
  // internal threads; no callback runs after it returns. Idempotent.
  void Stop();

  // Pull style: the next new alert, std::nullopt after `timeout` without
  // one, or the error that ended the subscription (CANCELLED after Stop).
  // The first call opens the subscription like Start does.
  absl::StatusOr<std::optional<v1::Delivery>> Next(absl::Duration timeout);

  // Marks every alert up to `sequence` processed. Cheap; sent coalesced.
  void Ack(uint64_t sequence);

  // The cursor reported by the node when the subscription was last opened.
  uint64_t opened_cursor() const;
  // The newest sequence in the node's log at that open: with the cursor, how
  // far a durable subscription has to catch up (its backlog is at most
  // opened_last_sequence() - opened_cursor() alerts; fewer when its topics
  // or clearance skip some).
  uint64_t opened_last_sequence() const;
  // How many times the stream has been reopened after a failure.
  uint64_t reconnects() const;

 private:
  friend class Client;
  struct Impl;
  Subscriber(std::shared_ptr<grpc::Channel> channel,
             const ClientOptions& client_options,
             const SubscribeOptions& options);

  std::unique_ptr<Impl> impl_;
};

}  // namespace ibsm

#endif  // IBSM_SUBSCRIBER_H_
