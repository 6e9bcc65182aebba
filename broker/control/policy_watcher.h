// Keeps the node's sharing policy in step with its file. Reload() (on SIGHUP)
// and a background check every `interval` read the file; when its content
// changed and it validates, the new Policy is swapped into the NodeContext
// atomically; when it does not validate, the refusal is logged with
// file:line and the running policy stays. Reload() and the background
// check (a PeriodicTask) are serialized; safe to call from any thread.
#ifndef IBSM_BROKER_POLICY_WATCHER_H_
#define IBSM_BROKER_POLICY_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/periodic_task.h"
#include "ibsm/clock.h"

namespace ibsm::broker {

class NodeContext;

class PolicyWatcher {
 public:
  // `node` and `clock` must outlive the watcher. Starts the background
  // check, every `interval` of `clock`'s time.
  PolicyWatcher(std::string path, absl::Duration interval, NodeContext* node,
                Clock* clock = RealClock());
  ~PolicyWatcher() = default;  // stops the background check (task_ first)

  // Reads the file now. OK when the policy in force is the file's (changed
  // or not); the validation error otherwise (the old policy stays).
  absl::Status Reload();

  // Refused reloads (each distinct problem once, as logged), and whether
  // the file's current content is refused (the running policy is older
  // than the file). For the node's metrics; thread-safe.
  uint64_t reload_failures() const { return reload_failures_; }
  bool reload_failing() const { return reload_failing_; }

 private:
  std::atomic<uint64_t> reload_failures_{0};
  std::atomic<bool> reload_failing_{false};
  const std::string path_;
  NodeContext* const node_;

  absl::Mutex reload_mu_;  // one reload at a time
  std::string last_refusal_ ABSL_GUARDED_BY(reload_mu_);

  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_POLICY_WATCHER_H_
