// PeriodicTask: runs a callback on its own thread every `interval`, measured
// on an injected Clock from the end of the previous run, until stopped. The
// node's control loops (policy, TLS and signing-key watchers, retention) are
// PeriodicTasks, so tests drive them by advancing a FakeClock.
//
//   PeriodicTask task(absl::Seconds(5), clock, [this] { CheckOnce(); });
//   task.RunNow();  // e.g. on SIGHUP: run soon instead of at the next tick
//
// The task owns its thread; the callback and whatever it uses must outlive
// the task (destroy the task first). RunNow() and runs() are safe from any
// thread; Stop() and the destructor are for the one thread that controls the
// task, never the callback itself (it would wait for its own end).
#ifndef IBSM_BROKER_CONTROL_PERIODIC_TASK_H_
#define IBSM_BROKER_CONTROL_PERIODIC_TASK_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/clock.h"

namespace ibsm::broker {

class PeriodicTask {
 public:
  // Starts the thread; the first run is one `interval` (of `clock`) after
  // this, each later one `interval` after the previous run ended. `clock`
  // must outlive the task.
  PeriodicTask(absl::Duration interval, Clock* clock,
               absl::AnyInvocable<void()> callback);
  ~PeriodicTask();  // Stop()s
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Wakes the thread: the callback runs as soon as the current run (if any)
  // ends, and the next interval counts from then.
  void RunNow();

  // Ends the wait at once, lets a run in progress finish and joins the
  // thread; no run starts after it returns. Idempotent.
  void Stop();

  // Runs completed so far (tests wait for it to grow).
  int runs() const;

 private:
  void Loop();

  const absl::Duration interval_;
  Clock* const clock_;
  absl::AnyInvocable<void()> callback_;  // the task's thread only
  // When the next run is due. Set before the thread starts and after each
  // run, before runs() counts it, so that a test that advances a FakeClock
  // after seeing runs() grow always moves time past a deadline already set.
  // The task's thread only (after construction).
  absl::Time next_run_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool run_now_ ABSL_GUARDED_BY(mu_) = false;
  int runs_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_PERIODIC_TASK_H_
