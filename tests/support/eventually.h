// Eventually: the one way tests wait for something that happens on another
// thread or in another process (a record reaching the audit trail, a file
// watcher noticing a change, a child process serving). It polls a predicate
// with a short, growing pause until the predicate holds or a deadline
// passes, so tests neither sleep a guessed time nor hang for ever:
//
//   REQUIRE(Eventually([&] {
//     records = RawAuditQuery(auditor, query);
//     return !records.empty();
//   }));
//
// The deadline bounds a hang on a loaded CI machine; it never asserts speed,
// so it is generous. Timing belongs in tests/bench.
//
// Keep REQUIRE out of the predicate where you can: return true to stop
// early on an unexpected answer, and check that answer after the wait.
//
// Both functions call the predicate on the calling thread only; they are as
// thread-safe as the predicate is.
#ifndef IBSM_TESTS_SUPPORT_EVENTUALLY_H_
#define IBSM_TESTS_SUPPORT_EVENTUALLY_H_

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/time/time.h"

namespace ibsm::testing {

// How long a test waits by default before it gives up.
inline constexpr absl::Duration kEventuallyDeadline = absl::Seconds(60);

// Calls `done` until it returns true or `deadline` (from now) has passed,
// pausing between calls (1 ms at first, doubling up to 100 ms). `done` is
// called at least once, and once more when the deadline is reached, so a
// zero deadline means "check once". Returns whether `done` returned true.
bool Eventually(const std::function<bool()>& done,
                absl::Duration deadline = kEventuallyDeadline);

// Calls `poll`, which returns a std::optional, until it returns a value or
// `deadline` has passed; returns that value, or std::nullopt after the
// deadline. For waits whose result the test goes on to use:
//
//   std::optional<v1::SignedCheckpoint> c = EventuallyValue([&] {
//     return CheckpointCovering(auditor, 10);  // std::nullopt if none yet
//   });
//   REQUIRE(c.has_value());
template <typename Poll>
std::invoke_result_t<Poll&> EventuallyValue(
    Poll&& poll, absl::Duration deadline = kEventuallyDeadline) {
  std::invoke_result_t<Poll&> value;
  Eventually(
      [&] {
        value = poll();
        return value.has_value();
      },
      deadline);
  return value;
}

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_EVENTUALLY_H_
