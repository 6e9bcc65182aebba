// Eventually and EventuallyValue: when they stop polling and what they
// return. No assertion about elapsed time: only about calls and results.
#include "tests/support/eventually.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

namespace ibsm::testing {
namespace {

TEST_CASE("Eventually: a predicate true at once is called once") {
  int calls = 0;
  CHECK(Eventually([&] {
    ++calls;
    return true;
  }));
  CHECK(calls == 1);
}

TEST_CASE("Eventually: a predicate that becomes true is polled until then") {
  int calls = 0;
  CHECK(Eventually([&] { return ++calls == 5; }));
  CHECK(calls == 5);
}

TEST_CASE(
    "Eventually: a predicate never true gives false after the deadline, "
    "checked again at the deadline") {
  int calls = 0;
  CHECK_FALSE(Eventually(
      [&] {
        ++calls;
        return false;
      },
      absl::Milliseconds(20)));
  CHECK(calls >= 2);  // at the start and at the deadline
}

TEST_CASE("Eventually: a zero or negative deadline checks exactly once") {
  const absl::Duration deadline =
      GENERATE(absl::ZeroDuration(), absl::Seconds(-1));
  int calls = 0;
  CHECK_FALSE(Eventually(
      [&] {
        ++calls;
        return false;
      },
      deadline));
  CHECK(calls == 1);
}

TEST_CASE("EventuallyValue: returns the first value the poll yields") {
  int calls = 0;
  std::optional<std::string> got = EventuallyValue([&] {
    return ++calls < 3 ? std::nullopt
                       : std::optional<std::string>("found on call 3");
  });
  REQUIRE(got.has_value());
  CHECK(*got == "found on call 3");
  CHECK(calls == 3);
}

TEST_CASE("EventuallyValue: no value before the deadline gives nullopt") {
  std::optional<int> got = EventuallyValue([] { return std::optional<int>(); },
                                           absl::Milliseconds(20));
  CHECK_FALSE(got.has_value());
}

}  // namespace
}  // namespace ibsm::testing
