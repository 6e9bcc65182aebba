// Whether the node serves, for the standard gRPC health service
// (grpc.health.v1.Health on the client port) and GET /healthz on the
// metrics listener (docs/operations.md, "Health"). A HealthState starts
// NOT_SERVING ("starting: the store is not open yet"); the node marks it
// serving once its servers run, and then a HealthMonitor re-checks the
// store every interval: less than kMinFreeDiskBytes free in the data
// directory, free space that cannot be read, or RocksDB stopping writes
// make it NOT_SERVING with that reason until the condition passes. At
// shutdown it goes NOT_SERVING for good. Every change is logged once and
// passed to the listeners (the gRPC health service). Safe for concurrent
// use.
#ifndef IBSM_BROKER_METRICS_HEALTH_H_
#define IBSM_BROKER_METRICS_HEALTH_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/periodic_task.h"
#include "ibsm/clock.h"

namespace ibsm::broker {

class Store;

class HealthState {
 public:
  HealthState();

  // Empty when serving; why not otherwise.
  std::string NotServingReason() const;
  bool serving() const { return NotServingReason().empty(); }

  // The node finished starting (its servers run): serving unless the store
  // check says otherwise.
  void SetStarted();
  // The latest result of the store check: empty when fine.
  void SetStoreProblem(std::string problem);
  // The node stops: NOT_SERVING from now on.
  void SetStopping();

  // Called with the new verdict after every change (on the thread that
  // made it). Add before the state can change concurrently (Node adds it
  // before SetStarted).
  void OnChange(std::function<void(bool serving)> listener);

 private:
  std::string ReasonLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Changed(const std::string& before) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string store_problem_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(bool)>> listeners_ ABSL_GUARDED_BY(mu_);
};

// What the store check finds: empty when the node can write, else the
// reason (disk full, free space unreadable, writes stopped by RocksDB).
std::string CheckStoreHealth(const Store& store);

// Runs CheckStoreHealth every `interval` of `clock` and reports it to
// `state`. `store`, `state` and `clock` must outlive the monitor; the
// destructor stops the check.
class HealthMonitor {
 public:
  HealthMonitor(const Store* store, HealthState* state, absl::Duration interval,
                Clock* clock = RealClock());
  // Checks now (also done at construction).
  void CheckNow();

 private:
  const Store* const store_;
  HealthState* const state_;
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_METRICS_HEALTH_H_
