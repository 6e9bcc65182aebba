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
};

class Publisher {
 public:
  using Callback = std::function<void(absl::StatusOr<PublishReceipt>)>;

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Waits up to 5 seconds for outstanding async alerts (like Flush), then
  // completes the remaining ones with CANCELLED. Their ids may or may not
  // have been stored: publish them again to be sure (it is idempotent).
  ~Publisher();

  // Stores one alert and returns its receipt, or the node's refusal
  // (e.g. PERMISSION_DENIED with the policy's reason), INVALID_ARGUMENT from
  // local validation, or the last transport error once retries are spent.
  absl::StatusOr<PublishReceipt> Publish(v1::Alert alert);

  // Queues `alert` for the stream and returns; `done` is called exactly once
  // with the result. Blocks while max_in_flight alerts are outstanding.
  // Local validation errors are reported through `done` before returning.
  void PublishAsync(v1::Alert alert, Callback done);
  // The same, with a future instead of a callback.
  std::future<absl::StatusOr<PublishReceipt>> PublishAsync(v1::Alert alert);

  // Waits until every alert passed to PublishAsync before this call has
  // completed (its callback has run). DEADLINE_EXCEEDED on timeout. Per-alert
  // errors are reported to the callbacks, not here.
  absl::Status Flush(absl::Duration timeout = absl::InfiniteDuration());

  // Async alerts queued or awaiting their result.
  size_t outstanding() const;

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
