// The ibsm CLI as a person or a script uses it, against a real broker.
#include <catch2/catch.hpp>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST_CASE("ibsm publish, subscribe and node info against a node") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const int port = broker.port();
  std::ofstream(dir.File("payload.json")) << R"({"vehicle":"white pickup"})";

  RunResult published = RunBinary(
      CliBinary(), CliArgs(port, "agency-CIV_police",
                           {"--json", "publish", "--id", "cli-1", "--topic",
                            "border.incident", "--classification", "RESTRICTED",
                            "--severity", "high", "--attr", "post=Pogo",
                            "--content-type", "application/json",
                            "--payload-file", dir.File("payload.json")}));
  INFO(published.output);
  REQUIRE(published.exit_code == 0);
  REQUIRE(Lines(published.output).size() == 1);
  CHECK_THAT(published.output, Catch::Contains("\"sequence\":\"1\"") ||
                                   Catch::Contains("\"sequence\":1"));

  // A true retry (same content; the CLI stamps a new created_at, which is
  // not content) is a duplicate; other content under the id is refused.
  RunResult again = RunBinary(
      CliBinary(),
      CliArgs(port, "agency-CIV_police",
              {"publish", "--id", "cli-1", "--topic", "border.incident",
               "--classification", "RESTRICTED", "--severity", "high", "--attr",
               "post=Pogo", "--content-type", "application/json",
               "--payload-file", dir.File("payload.json")}));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("duplicate"));
  RunResult changed = RunBinary(
      CliBinary(), CliArgs(port, "agency-CIV_police",
                           {"publish", "--id", "cli-1", "--topic",
                            "border.incident", "--classification", "RESTRICTED",
                            "--severity", "HIGH", "--payload", "x"}));
  INFO(changed.output);
  CHECK(changed.exit_code != 0);
  CHECK_THAT(changed.output, Catch::Contains("ALREADY_EXISTS"));

  REQUIRE(RunBinary(CliBinary(), CliArgs(port, "agency-CIV_police",
                                         {"publish", "--id", "cli-2", "--topic",
                                          "border.closure", "--classification",
                                          "UNCLASSIFIED", "--severity", "LOW",
                                          "--payload", "Post closed"}))
              .exit_code == 0);

  RunResult received = RunBinary(
      CliBinary(),
      CliArgs(port, "agency-CIV_customs",
              {"subscribe", "--json", "--topic", "border.>", "--durable",
               "cli-desk", "--from", "earliest", "--count", "2"}));
  INFO(received.output);
  REQUIRE(received.exit_code == 0);
  std::vector<std::string> lines = Lines(received.output);
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], Catch::Contains("cli-1"));
  CHECK_THAT(lines[0], Catch::Contains("CIV/police"));
  CHECK_THAT(lines[1], Catch::Contains("cli-2"));

  RunResult info = RunBinary(
      CliBinary(), CliArgs(port, "agency-CIV_customs", {"node", "info"}));
  INFO(info.output);
  CHECK(info.exit_code == 0);
  CHECK_THAT(info.output, Catch::Contains("CIV/customs"));
}

TEST_CASE(
    "ibsm subscribe --progress reports the drain of a durable backlog on "
    "stderr, and stays quiet without it when stderr is not a terminal") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const int port = broker.port();
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(RunBinary(CliBinary(),
                      CliArgs(port, "agency-CIV_police",
                              {"publish", "--id", absl::StrCat("drain-", i),
                               "--topic", "border.closure", "--classification",
                               "UNCLASSIFIED", "--severity", "LOW", "--payload",
                               "Post closed"}))
                .exit_code == 0);
  }
  RunResult drained = RunBinary(
      CliBinary(), CliArgs(port, "agency-CIV_customs",
                           {"subscribe", "--json", "--progress", "--topic",
                            "border.>", "--durable", "drain-desk", "--from",
                            "earliest", "--count", "5"}));
  INFO(drained.output);
  REQUIRE(drained.exit_code == 0);
  CHECK_THAT(
      drained.output,
      Catch::Contains("caught up: 5 alerts of the backlog up to sequence 5"));

  RunResult quiet = RunBinary(
      CliBinary(),
      CliArgs(port, "agency-CIV_customs",
              {"subscribe", "--json", "--topic", "border.>", "--durable",
               "quiet-desk", "--from", "earliest", "--count", "5"}));
  INFO(quiet.output);
  REQUIRE(quiet.exit_code == 0);
  CHECK(Lines(quiet.output).size() == 5);
  CHECK_THAT(quiet.output, !Catch::Contains("caught up"));
}

TEST_CASE("ibsm exits non-zero with a clear message on every error") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const int port = broker.port();
  struct Case {
    const char* name;
    std::vector<std::string> args;
    int exit_code;
    const char* mentions;
  };
  std::vector<Case> cases = {
      {"unknown command", CliArgs(port, "agency-CIV_police", {"frobnicate"}), 2,
       "ibsm: unknown command 'frobnicate'\n"},
      {"unknown command first",
       {"frobnicate", "--json"},
       2,
       "ibsm: unknown command 'frobnicate'\n"},
      {"unknown command with --help",
       {"frobnicate", "--help"},
       2,
       "ibsm: unknown command 'frobnicate'\n"},
      {"unknown subcommand",
       CliArgs(port, "agency-CIV_police", {"node", "frob"}), 2,
       "unknown command 'node frob'"},
      {"no command", {"--json"}, 2, "no command given"},
      {"missing required flag",
       CliArgs(port, "agency-CIV_police",
               {"publish", "--topic", "border.incident"}),
       2, "--id"},
      {"bad severity",
       CliArgs(port, "agency-CIV_police",
               {"publish", "--id", "x", "--topic", "border.incident",
                "--classification", "RESTRICTED", "--severity", "HUGE",
                "--payload", "x"}),
       2, "HUGE"},
      {"refused by the node: agency of another node",
       CliArgs(port, "agency-MLI_customs",
               {"publish", "--id", "x", "--topic", "border.incident",
                "--classification", "RESTRICTED", "--severity", "LOW",
                "--payload", "x"}),
       1, "PERMISSION_DENIED"},
      {"unreachable node",
       {"--target", "127.0.0.1:1", "--ca", Tls("agency-CIV_police").ca_file,
        "--cert", Tls("agency-CIV_police").cert_file, "--key",
        Tls("agency-CIV_police").key_file, "--timeout", "2s", "node", "info"},
       1,
       "UNAVAILABLE"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    RunResult r = RunBinary(CliBinary(), c.args);
    INFO(r.output);
    CHECK(r.exit_code == c.exit_code);
    CHECK_THAT(r.output, Catch::Contains(c.mentions));
    CHECK(absl::StartsWith(r.output, "ibsm: "));
    // One line saying what is wrong, at most one more (the usage hint).
    if (c.exit_code == 2) CHECK(Lines(r.output).size() <= 2);
  }
}

}  // namespace
}  // namespace ibsm::testing
