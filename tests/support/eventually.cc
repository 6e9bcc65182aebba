#include "tests/support/eventually.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace ibsm::testing {
namespace {

// Short at first, so that a condition that holds within milliseconds costs
// milliseconds; capped, so that a slow one is not polled in a busy loop.
constexpr absl::Duration kFirstPause = absl::Milliseconds(1);
constexpr absl::Duration kLongestPause = absl::Milliseconds(100);

}  // namespace

bool Eventually(const std::function<bool()>& done, absl::Duration deadline) {
  const absl::Time give_up = absl::Now() + deadline;
  absl::Duration pause = kFirstPause;
  while (true) {
    if (done()) return true;
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(pause, left));
    pause = std::min(pause * 2, kLongestPause);
  }
}

}  // namespace ibsm::testing
