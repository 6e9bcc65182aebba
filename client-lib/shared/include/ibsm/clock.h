// Time that can be injected. Code that expires, retries, checkpoints or backs
// off reads the time and waits through a Clock, so that tests move time with
// a FakeClock instead of sleeping. Pure code (Abseil only, no gRPC).
//
//   absl::MutexLock lock(&mu_);
//   // Like mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval):
//   if (clock->AwaitWithTimeout(&mu_, absl::Condition(&stopping_), interval))
//     return;
//
// Clocks are safe for concurrent use. RealClock() lives for the whole
// process; a FakeClock must outlive everything that uses it.
#ifndef IBSM_CLOCK_H_
#define IBSM_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ibsm {

class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() const = 0;

  // `mu` must be held. Waits, releasing `mu` meanwhile, until `condition`
  // holds or this clock reaches `deadline`; returns with `mu` held and
  // whether `condition` holds, as absl::Mutex::AwaitWithDeadline does.
  virtual bool AwaitWithDeadline(absl::Mutex* mu,
                                 const absl::Condition& condition,
                                 absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& condition,
                        absl::Duration timeout) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return AwaitWithDeadline(mu, condition, Now() + timeout);
  }
};

// The system's clock (absl::Now). Never null.
Clock* RealClock();

// A clock that only moves when told to, for tests. Starts at `start` (by
// default the real time when made, so that timestamps in stored records stay
// plausible). Advance() releases the waiters whose deadline it passes; they
// re-check the fake time every kFakeClockRecheck of real time, so they
// return within milliseconds, never before their fake deadline.
class FakeClock final : public Clock {
 public:
  FakeClock();
  explicit FakeClock(absl::Time start);
  FakeClock(const FakeClock&) = delete;
  FakeClock& operator=(const FakeClock&) = delete;

  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Moves the time forward by `d` (negative: ignored).
  void Advance(absl::Duration d);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// How often a FakeClock waiter looks at the fake time. Polling rather than
// waking: a waiter blocks on its caller's mutex, which Advance() may neither
// lock (lock order, lifetime) nor signal.
inline constexpr absl::Duration kFakeClockRecheck = absl::Milliseconds(2);

}  // namespace ibsm

#endif  // IBSM_CLOCK_H_
