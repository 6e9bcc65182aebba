// Publishing alerts to the agency's node, made by Client::NewPublisher.
//
// Two ways to publish, both idempotent: the alert id is chosen by the
// caller, and the node stores an (originator, id) pair once, so a retry
// after a lost answer never creates a second alert.
//
//  * Publish(alert) blocks until the node has stored the alert durably,
//    retrying UNAVAILABLE and DEADLINE_EXCEEDED with backoff (same id) for
//    up to ClientOptions::retry_timeout. One unary call per alert.
//  * PublishAsync(alert, done) pipelines alerts over one PublishStream:
//    queued alerts are batched into one request, at most
//    PublisherOptions::max_in_flight are unacknowledged at any time
//    (PublishAsync blocks while the window is full), and `done` runs once
//    per alert with its receipt or error. A broken stream is reopened with
//    backoff and its unacknowledged alerts are re-sent with their ids.
//
// Before sending, every alert gets created_at = now when unset; with
// ClientOptions::sign_alerts (the default) it also gets originator = the
// client's identity when unset, and is signed (docs/signature-format.md).
// This happens once per Publish/PublishAsync call, so retries send the same
// bytes. Then it is checked locally with ValidateAlert (INVALID_ARGUMENT,
// nothing sent). Without signing, originator is left empty: the node fills
// it from the certificate.
//
// With PublisherOptions::spool_dir set, the Publisher keeps an offline
// spool (docs/client-library.md, "Offline spool"): PublishAsync writes every
// alert it accepts, signed, to a RocksDB database in that directory and
// syncs it before it returns; an entry leaves the spool only when the node
// has stored the alert (or refused it definitively: the callback gets the
// refusal and the spool keeps a record of it). While the node is
// unreachable, alerts wait there, and a Publisher opened later on the same
// directory (after a crash too) sends them again, with the same id and
// signature, before anything new. A full spool refuses with
// RESOURCE_EXHAUSTED. One process at a time may use a spool directory.
//
// A Publisher is safe for concurrent use by multiple threads. Completion
// callbacks run on an internal thread: they must return quickly and must not
// call back into the Publisher (Flush, PublishAsync, the destructor).
#ifndef IBSM_PUBLISHER_H_
#define IBSM_PUBLISHER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ibsm/client.h"

namespace ibsm {

namespace v1 {
class Alert;
}  // namespace v1
namespace internal {
struct AlertSigning;
}  // namespace internal

// What the node answered for one stored alert.
struct PublishReceipt {
  std::string alert_id;
  // Position of the alert in the node's log (the original position when
  // duplicate is true).
  uint64_t sequence = 0;
  // True when an alert with this id had already been stored: nothing new was
  // written, and this is not an error.
  bool duplicate = false;
  // Federation peers the node queued the alert for (empty for a duplicate
  // or a single node): where it goes next, by the node's policy.
  std::vector<std::string> forwarded_to;
};

// What the node answered definitively "no" to, as the spool keeps it.
struct SpoolRefusal {
  std::string alert_id;
  absl::Status status;  // the node's refusal, e.g. PERMISSION_DENIED
  absl::Time spooled_at;
  absl::Time refused_at;
};

// The state of an offline spool (Publisher::spool_state, ReadSpoolState).
struct SpoolState {
  std::string dir;
  // Alerts accepted and not yet acknowledged by the node, and the bytes of
  // their spool records.
  uint64_t alerts = 0;
  uint64_t bytes = 0;
  // The bounds in force (those of the Publisher that last opened the dir).
  uint64_t max_alerts = 0;
  uint64_t max_bytes = 0;
  // When the oldest waiting alert was accepted, and how long ago (zero and
  // InfinitePast when nothing waits).
  absl::Time oldest_spooled_at = absl::InfinitePast();
  absl::Duration oldest_age = absl::ZeroDuration();
  // Refusal records kept, oldest first: the newest kMaxSpoolRefusals.
  std::vector<SpoolRefusal> refusals;
  // Publisher::spool_state only: the last error sending to the node (why
  // alerts wait), OK once a send succeeded again.
  absl::Status last_error;
};

// How many refusal records a spool keeps; older ones are deleted (their
// callbacks had the refusal already).
inline constexpr size_t kMaxSpoolRefusals = 1000;

// The state of the spool in `dir`, read without taking it: works while a
// Publisher of another process has it open. NOT_FOUND when `dir` does not
// exist or holds no spool; DATA_LOSS when a record cannot be read.
absl::StatusOr<SpoolState> ReadSpoolState(const std::string& dir);

struct PublisherOptions {
  // Unacknowledged alerts allowed on the stream (PublishAsync). The node
  // itself stops reading a stream at 4096 in flight.
  size_t max_in_flight = 512;
  // Alerts per PublishRequest when several are queued (node limit: 1024).
  size_t max_batch = 64;
  // An async alert that has no result after this long (retries included)
  // completes with DEADLINE_EXCEEDED.
  absl::Duration async_timeout = absl::Minutes(5);
  // Set created_at to the current time on alerts that have none. When
  // signing, an alert without created_at is refused (INVALID_ARGUMENT): the
  // signature covers it.
  bool fill_created_at = true;
  // Classification levels accepted by local validation; empty means the
  // IBSM default scheme (DefaultClassificationLevels()). Set it to the
  // node's levels (NodeInfo().classification_levels) when they differ.
  std::vector<std::string> classification_levels;
  // Skip the local ValidateAlert (the node validates in any case).
  bool validate_locally = true;
  // How long the destructor waits for outstanding async alerts before it
  // completes the rest with CANCELLED.
  absl::Duration close_timeout = absl::Seconds(5);

  // The offline spool: a directory of its own (created when missing; its
  // parent must exist). Empty: no spool.
  std::string spool_dir;
  // Bounds of the spool: alerts waiting, and the bytes of their records.
  // PublishAsync refuses an alert past either with RESOURCE_EXHAUSTED
  // naming the bound and the directory; nothing already spooled is dropped.
  // Waiting alerts are held in memory as well, so max_bytes also bounds
  // the Publisher's memory.
  uint64_t spool_max_alerts = 100000;
  uint64_t spool_max_bytes = uint64_t{64} << 20;  // 64 MiB
  // Called with the result of each alert found in the spool when the
  // Publisher opened it (left by an earlier Publisher or process), on the
  // same thread as other callbacks. May be empty.
  std::function<void(absl::StatusOr<PublishReceipt>)> spool_recovered_result;
};

class Publisher {
 public:
  using Callback = std::function<void(absl::StatusOr<PublishReceipt>)>;

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Waits up to close_timeout (5 s) for outstanding async alerts (like
  // Flush), then completes the remaining ones with CANCELLED. Without a
  // spool their ids may or may not have been stored: publish them again to
  // be sure (it is idempotent). With a spool they stay spooled, and the
  // next Publisher on the directory sends them.
  ~Publisher();

  // Stores one alert and returns its receipt, or the node's refusal
  // (e.g. PERMISSION_DENIED with the policy's reason), INVALID_ARGUMENT from
  // local validation, or the last transport error once retries are spent.
  // With a spool: PublishAsync and a wait of up to retry_timeout for the
  // result; after that UNAVAILABLE saying the alert stays spooled (it is
  // sent later; its result then goes only to the spool's records).
  absl::StatusOr<PublishReceipt> Publish(v1::Alert alert);

  // Queues `alert` for the stream and returns; `done` is called exactly once
  // with the result. Blocks while max_in_flight alerts are outstanding.
  // Local validation errors are reported through `done` before returning.
  // With a spool it does not block on max_in_flight: it returns once the
  // alert is synced to the spool, or calls `done` with RESOURCE_EXHAUSTED
  // (spool full), the spool's write error, or the error that kept the
  // spool from opening, before returning. Spooled alerts never time out
  // (async_timeout does not apply) and a stream the node ends with an
  // error is retried: only a per-alert refusal completes them with an
  // error.
  void PublishAsync(v1::Alert alert, Callback done);
  // The same, with a future instead of a callback.
  std::future<absl::StatusOr<PublishReceipt>> PublishAsync(v1::Alert alert);

  // Waits until every alert passed to PublishAsync before this call has
  // completed (its callback has run). DEADLINE_EXCEEDED on timeout. Per-alert
  // errors are reported to the callbacks, not here.
  absl::Status Flush(absl::Duration timeout = absl::InfiniteDuration());

  // Async alerts queued or awaiting their result.
  size_t outstanding() const;

  // The spool's state; FAILED_PRECONDITION without spool_dir, or the error
  // that kept the spool from opening.
  absl::StatusOr<SpoolState> spool_state() const;

 private:
  friend class Client;
  struct Impl;
  Publisher(std::shared_ptr<grpc::Channel> channel,
            const ClientOptions& client_options,
            const PublisherOptions& options,
            std::shared_ptr<const internal::AlertSigning> signing);

  std::unique_ptr<Impl> impl_;
};

}  // namespace ibsm

#endif  // IBSM_PUBLISHER_H_
