// Tests for broker/periodic_task.h, driven by a FakeClock: no wall-clock
// asserts; every wait has a deadline.
#include "control/periodic_task.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "ibsm/clock.h"
#include "tests/support/eventually.h"

namespace ibsm::broker {
namespace {

// Waits until `task` has completed `runs` runs; true if it has.
bool WaitForRuns(const PeriodicTask& task, int runs) {
  return ::ibsm::testing::Eventually([&] { return task.runs() >= runs; });
}

TEST_CASE("a periodic task runs each time its clock passes the interval") {
  FakeClock clock;
  PeriodicTask task(absl::Seconds(10), &clock, [] {});
  REQUIRE(WaitForRuns(task, 0));
  clock.Advance(absl::Seconds(10));
  REQUIRE(WaitForRuns(task, 1));
  clock.Advance(absl::Seconds(10));
  REQUIRE(WaitForRuns(task, 2));
  // One long jump is one run, not one per interval it covers.
  clock.Advance(absl::Minutes(5));
  REQUIRE(WaitForRuns(task, 3));
  task.Stop();
  CHECK(task.runs() == 3);
}

TEST_CASE(
    "a periodic task counts its interval from the end of the previous run") {
  FakeClock clock;
  const absl::Time start = clock.Now();
  absl::Mutex mu;
  std::vector<absl::Time> ran_at;
  PeriodicTask task(absl::Seconds(10), &clock, [&] {
    absl::MutexLock lock(&mu);
    ran_at.push_back(clock.Now());
  });
  clock.Advance(absl::Seconds(9));
  task.RunNow();  // at 9 s: the next run is due at 19 s, not at 10 s
  REQUIRE(WaitForRuns(task, 1));
  clock.Advance(absl::Seconds(1));
  clock.Advance(absl::Seconds(9));
  REQUIRE(WaitForRuns(task, 2));
  task.Stop();
  absl::MutexLock lock(&mu);
  REQUIRE(ran_at.size() == 2);
  CHECK(ran_at[0] == start + absl::Seconds(9));
  CHECK(ran_at[1] == start + absl::Seconds(19));
}

TEST_CASE("RunNow wakes a periodic task without moving its clock") {
  FakeClock clock;
  PeriodicTask task(absl::Hours(1), &clock, [] {});
  task.RunNow();
  REQUIRE(WaitForRuns(task, 1));
  task.RunNow();
  REQUIRE(WaitForRuns(task, 2));
}

TEST_CASE(
    "Stop ends the wait at once, lets a run in progress finish, and no run "
    "follows") {
  FakeClock clock;
  absl::Notification entered;
  absl::Notification release;
  bool finished = false;  // written by the task's thread before it is joined
  PeriodicTask task(absl::Hours(1), &clock, [&] {
    entered.Notify();
    REQUIRE(release.WaitForNotificationWithTimeout(
        ::ibsm::testing::kEventuallyDeadline));
    finished = true;
  });
  task.RunNow();
  REQUIRE(entered.WaitForNotificationWithTimeout(
      ::ibsm::testing::kEventuallyDeadline));
  release.Notify();
  task.Stop();  // the wait for the next hour is cut short
  CHECK(finished);
  CHECK(task.runs() == 1);
  clock.Advance(absl::Hours(2));
  task.RunNow();
  task.Stop();  // idempotent
  CHECK(task.runs() == 1);
}

TEST_CASE("a periodic task stops promptly while waiting on the real clock") {
  // Destroyed in the middle of an hour's wait: the test would hit ctest's
  // timeout if the destructor waited for it.
  PeriodicTask task(absl::Hours(1), RealClock(), [] {});
}

TEST_CASE("FakeClock releases a waiter once Advance passes its deadline") {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  absl::MutexLock lock(&mu);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return flag; };
  // A deadline already passed returns at once.
  CHECK_FALSE(clock.AwaitWithDeadline(&mu, absl::Condition(&holds),
                                      clock.Now() - absl::Seconds(1)));
  const absl::Time deadline = clock.Now() + absl::Seconds(1);
  std::thread mover([&] { clock.Advance(absl::Seconds(1)); });
  CHECK_FALSE(clock.AwaitWithDeadline(&mu, absl::Condition(&holds), deadline));
  CHECK(clock.Now() >= deadline);
  mover.join();
}

TEST_CASE("FakeClock returns as soon as the condition holds") {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  std::thread setter([&] {
    absl::MutexLock lock(&mu);
    flag = true;
  });
  {
    absl::MutexLock lock(&mu);
    auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return flag; };
    CHECK(clock.AwaitWithTimeout(&mu, absl::Condition(&holds), absl::Hours(1)));
  }
  setter.join();
  // Advance only moves forward.
  const absl::Time now = clock.Now();
  clock.Advance(-absl::Seconds(5));
  CHECK(clock.Now() == now);
}

}  // namespace
}  // namespace ibsm::broker
