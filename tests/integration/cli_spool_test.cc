// `ibsm publish --spool`, `ibsm spool status` and `ibsm spool flush` end to
// end against a real broker process, including bad input: a missing or
// foreign directory and a spool held by another process.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/broker.pb.h"
#include "tests/support/restartable_broker.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

// The CLI against `target` ("127.0.0.1:PORT") as CIV/police.
RunResult Cli(const std::string& target, std::vector<std::string> args) {
  const int port = std::stoi(target.substr(target.rfind(':') + 1));
  return RunBinary(CliBinary(), CliArgs(port, "agency-CIV_police", args),
                   absl::Seconds(60));
}

std::vector<std::string> PublishArgs(const std::string& id,
                                     const std::string& spool) {
  return {"publish",
          "--id",
          id,
          "--topic",
          "border.incident",
          "--classification",
          "RESTRICTED",
          "--severity",
          "HIGH",
          "--payload",
          "seen at the post",
          "--spool",
          spool,
          "--timeout",
          "3s"};
}

TEST_CASE(
    "cli: publish --spool while the node is down keeps the alert (exit 3); "
    "spool status shows it; spool flush sends it once the node is back") {
  TempDir dir;
  RestartableBroker broker(dir.File("data"));
  const std::string target = broker.target();
  const std::string spool = dir.File("spool");

  // The node is up: published at once, nothing left spooled.
  RunResult up = Cli(target, PublishArgs("cli-sp-0", spool));
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  CHECK(absl::StrContains(up.output, "alert cli-sp-0: sequence 1"));

  REQUIRE(broker.Stop(SIGTERM) == 0);
  for (const std::string id : {"cli-sp-1", "cli-sp-2"}) {
    RunResult down = Cli(target, PublishArgs(id, spool));
    INFO(down.output);
    CHECK(down.exit_code == 3);
    CHECK(absl::StrContains(
        down.output, absl::StrCat("alert ", id, ": spooled in ", spool)));
    CHECK(absl::StrContains(down.output, "ibsm spool flush --spool"));
  }

  RunResult status =
      RunBinary(CliBinary(), {"spool", "status", "--spool", spool});
  INFO(status.output);
  CHECK(status.exit_code == 0);
  CHECK(absl::StrContains(status.output, "waiting: 2 alerts"));
  CHECK(absl::StrContains(status.output, "bounds: 100000 alerts"));
  CHECK(absl::StrContains(status.output, "oldest:  spooled "));
  RunResult json =
      RunBinary(CliBinary(), {"spool", "status", "--spool", spool, "--json"});
  INFO(json.output);
  CHECK(json.exit_code == 0);
  CHECK(absl::StrContains(json.output, "\"alerts\":2,"));
  CHECK(absl::StrContains(json.output, "\"max_alerts\":100000,"));
  CHECK(absl::StrContains(json.output, "\"refused\":0"));

  // Flushing while the node is still down: nothing sent, exit 3.
  RunResult still =
      Cli(target, {"spool", "flush", "--spool", spool, "--timeout", "2s"});
  INFO(still.output);
  CHECK(still.exit_code == 3);
  CHECK(absl::StrContains(still.output, "still spooled 2"));

  broker.Start();
  RunResult flushed =
      Cli(target, {"spool", "flush", "--spool", spool, "--json"});
  INFO(flushed.output);
  CHECK(flushed.exit_code == 0);
  CHECK(absl::StrContains(
      flushed.output,
      "{\"spool\":\"" + spool +
          "\",\"sent\":2,\"duplicates\":0,\"refused\":0,\"spooled\":0}"));
  RunResult empty =
      RunBinary(CliBinary(), {"spool", "status", "--spool", spool});
  CHECK(absl::StrContains(empty.output, "waiting: 0 alerts"));
  RunResult nothing = Cli(target, {"spool", "flush", "--spool", spool});
  CHECK(nothing.exit_code == 0);
  CHECK(absl::StrContains(nothing.output, "sent 0 (0 already stored)"));

  // Stored once each: sequences 1..3, and the same id again is a duplicate.
  auto client = ConnectOrFail(target, "agency-CIV_police");
  CHECK(client->NodeInfo()->last_sequence() == 3);
  RunResult again = Cli(target, PublishArgs("cli-sp-1", spool));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(absl::StrContains(again.output, "sequence 2 duplicate"));
}

TEST_CASE(
    "cli: the spool commands refuse a missing, foreign or busy spool "
    "directory with exit 2") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const std::string target = absl::StrCat("127.0.0.1:", broker.port());

  SECTION("missing --spool, missing directory") {
    RunResult no_flag = RunBinary(CliBinary(), {"spool", "status"});
    CHECK(no_flag.exit_code == 2);
    CHECK(absl::StrContains(no_flag.output, "missing --spool DIR"));
    const std::string missing = dir.File("nowhere");
    RunResult status =
        RunBinary(CliBinary(), {"spool", "status", "--spool", missing});
    CHECK(status.exit_code == 2);
    CHECK(absl::StrContains(
        status.output,
        "--spool: no spool at " + missing + ": the directory does not exist"));
    RunResult flush = Cli(target, {"spool", "flush", "--spool", missing});
    CHECK(flush.exit_code == 2);
    CHECK(absl::StrContains(flush.output, "no spool at " + missing));
    // publish creates its spool, but not missing parents.
    RunResult publish =
        Cli(target, PublishArgs("p-1", dir.File("no/such/spool")));
    INFO(publish.output);
    CHECK(publish.exit_code == 2);
    CHECK(
        absl::StrContains(publish.output, "cannot create the spool directory"));
  }
  SECTION("a directory that is not a spool") {
    const std::string other = dir.File("documents");
    std::filesystem::create_directory(other);
    std::ofstream(other + "/report.txt") << "keep me";
    RunResult publish = Cli(target, PublishArgs("p-2", other));
    INFO(publish.output);
    CHECK(publish.exit_code == 2);
    CHECK(absl::StrContains(publish.output, "exists and is not a spool"));
    CHECK(std::filesystem::exists(other + "/report.txt"));
    RunResult status =
        RunBinary(CliBinary(), {"spool", "status", "--spool", other});
    CHECK(status.exit_code == 2);
    CHECK(absl::StrContains(status.output, "holds no spool database"));
  }
  SECTION("a spool held by another process") {
    // This test process holds the spool, with an alert waiting for a node
    // that is not there.
    const std::string spool = dir.File("busy");
    ClientOptions options =
        ClientOptionsFor("127.0.0.1:1", "agency-CIV_police");
    options.connect_timeout = absl::ZeroDuration();
    auto client = Client::Connect(options);
    REQUIRE(client.ok());
    PublisherOptions publisher_options;
    publisher_options.spool_dir = spool;
    publisher_options.close_timeout = absl::ZeroDuration();
    auto publisher = (*client)->OpenPublisher(publisher_options);
    REQUIRE(publisher.ok());
    (*publisher)->PublishAsync(MakeAlert("held"), [](auto) {});

    RunResult flush = Cli(target, {"spool", "flush", "--spool", spool});
    INFO(flush.output);
    CHECK(flush.exit_code == 2);
    CHECK(absl::StrContains(flush.output, "is in use by another process"));
    RunResult publish = Cli(target, PublishArgs("p-3", spool));
    INFO(publish.output);
    CHECK(publish.exit_code == 2);
    CHECK(absl::StrContains(publish.output, "is in use by another process"));
    // Reading its state does not need the lock.
    RunResult status =
        RunBinary(CliBinary(), {"spool", "status", "--spool", spool});
    INFO(status.output);
    CHECK(status.exit_code == 0);
    CHECK(absl::StrContains(status.output, "waiting: 1 alerts"));
  }
}

}  // namespace
}  // namespace ibsm::testing
