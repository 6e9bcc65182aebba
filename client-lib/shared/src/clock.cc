#include "ibsm/clock.h"

namespace ibsm {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithDeadline(condition, deadline);
  }
};

}  // namespace

Clock* RealClock() {
  static SystemClock* const clock = new SystemClock();  // never destroyed
  return clock;
}

FakeClock::FakeClock() : FakeClock(absl::Now()) {}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu,
                                  const absl::Condition& condition,
                                  absl::Time deadline) const {
  // Lock order: the caller's `mu`, then mu_ (in Now()); Advance() takes
  // only mu_.
  while (!mu->AwaitWithTimeout(condition, kFakeClockRecheck)) {
    if (Now() >= deadline) return condition.Eval();
  }
  return true;
}

void FakeClock::Advance(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return;
  absl::MutexLock lock(&mu_);
  now_ += d;
}

}  // namespace ibsm
