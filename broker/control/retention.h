// Retention: removes alerts past their own expiry or past their topic's
// retention (from the policy in force) from the log and the idempotency
// index. Runs on its own thread (a PeriodicTask) every `interval` of the
// node's clock, reads the log in chunks and
// hands removals to the Committer, so publishing is never stalled by it.
// Subscriptions skip expired alerts at delivery time too, so an alert is not
// delivered after its expiry even before the next pass. The audit trail is
// never touched by retention.
//
// RunOnce() may be called from any thread (tests); passes are serialized.
#ifndef IBSM_BROKER_CONTROL_RETENTION_H_
#define IBSM_BROKER_CONTROL_RETENTION_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/periodic_task.h"
#include "ibsm/clock.h"

namespace ibsm::internal::v1 {
class StoredAlert;
}

namespace ibsm {
class Authorizer;
}  // namespace ibsm

namespace ibsm::broker {

class NodeContext;

// True when `stored` must no longer be delivered or kept at `now`.
bool IsExpired(const internal::v1::StoredAlert& stored,
               const Authorizer& policy, absl::Time now);

class RetentionTask {
 public:
  // `node` and `clock` must outlive the task. Starts the background
  // passes, each at `clock`'s time.
  RetentionTask(NodeContext* node, absl::Duration interval,
                Clock* clock = RealClock());
  ~RetentionTask() = default;  // stops the passes (task_ first)

  // One pass over the log; returns how many alerts it handed for removal.
  absl::StatusOr<size_t> RunOnce(absl::Time now);

 private:
  // The background pass: RunOnce at the clock's time, outcome logged.
  void RunAndLog();

  NodeContext* const node_;
  Clock* const clock_;
  absl::Mutex pass_mu_;  // one pass at a time
  PeriodicTask task_;    // last: stopped before the members it uses go
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_RETENTION_H_
