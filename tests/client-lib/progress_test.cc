// The CLI's progress line (client-lib/cli/progress.h): rate limits, in
// place on a terminal, one line each otherwise, and off when disabled.
#include "progress.h"

#include <catch2/catch.hpp>
#include <sstream>

namespace ibsm::cli {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST_CASE(
    "progress: on a terminal the line is rewritten at most 5 times a "
    "second and erased by Done") {
  std::ostringstream err;
  ProgressLine line(err, /*enabled=*/true, /*terminal=*/true);
  line.Update("a", kT0);
  line.Update("b", kT0 + absl::Milliseconds(100));  // too soon: dropped
  line.Update("c", kT0 + absl::Milliseconds(250));
  line.Done("done");
  CHECK(err.str() == "\ra\x1b[K\rc\x1b[K\r\x1b[Kdone\n");
}

TEST_CASE(
    "progress: into a file each update is a line, at most one a "
    "second; disabled, nothing is written") {
  std::ostringstream err;
  ProgressLine line(err, true, false);
  line.Update("1", kT0);
  line.Update("2", kT0 + absl::Milliseconds(900));
  line.Update("3", kT0 + absl::Milliseconds(1000));
  line.Done("");
  CHECK(err.str() == "1\n3\n");

  std::ostringstream quiet;
  ProgressLine off(quiet, false, true);
  off.Update("x", kT0);
  off.Done("y");
  CHECK(quiet.str().empty());
  CHECK(CountOf(1, 4) == "1 of 4 (25%)");
  CHECK(CountOf(0, 0) == "0 of 0 (100%)");
}

TEST_CASE(
    "progress: WithElapsedTime returns the call's result and shows "
    "nothing for a call shorter than a second") {
  std::ostringstream err;
  ProgressLine line(err, true, false);
  CHECK(WithElapsedTime(line, "waiting", [] { return 7; }) == 7);
  // A call shorter than the first tick shows nothing.
  CHECK(err.str().empty());
}

}  // namespace
}  // namespace ibsm::cli
