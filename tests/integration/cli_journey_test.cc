// `ibsm node links` and `ibsm audit journey` against real ibsm-broker
// processes on loopback (mutual TLS, the development PKI): a node without
// federation shows no links and refuses them to an agency without the
// admin or auditor role; one alert's journey on one node (published,
// delivered, checkpoint verified, records proven), with a wrong node
// certificate, for an unknown alert, with bad syntax, and over two
// independent nodes of which only one knows the alert.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

internal::v1::NodeConfig PolicyNode(const TempDir& dir,
                                    const std::string& node_id) {
  internal::v1::NodeConfig config =
      NodeConfigFor(dir.File(absl::StrCat("data-", node_id)), node_id);
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(1);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  return config;
}

std::string Target(int port) { return absl::StrCat("127.0.0.1:", port); }

std::string NodeCert(const std::string& node) {
  return PkiDir() + "/node-" + node + "-chain.pem";
}

TEST_CASE(
    "ibsm node links: a node without federation has no links; an agency "
    "without the admin or auditor role is refused") {
  TempDir dir;
  BrokerProcess broker(PolicyNode(dir, "CIV"));

  RunResult table = RunBinary(
      CliBinary(),
      CliArgs(broker.port(), "auditor-UNODC_audit", {"node", "links"}));
  INFO(table.output);
  CHECK(table.exit_code == 0);
  CHECK(table.output == "node CIV has no federation links\n");

  RunResult json =
      RunBinary(CliBinary(), CliArgs(broker.port(), "auditor-UNODC_audit",
                                     {"node", "links", "--json"}));
  INFO(json.output);
  CHECK(json.exit_code == 0);
  CHECK_THAT(json.output, Catch::StartsWith("{") &&
                              Catch::Contains("\"node_id\":\"CIV\"") &&
                              Catch::Contains("\"links\":[]"));

  RunResult refused =
      RunBinary(CliBinary(),
                CliArgs(broker.port(), "agency-CIV_police", {"node", "links"}));
  INFO(refused.output);
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.output,
             Catch::Contains("node links refused: PERMISSION_DENIED") &&
                 Catch::Contains("not an administrator or auditor at CIV"));
}

TEST_CASE(
    "ibsm audit journey: one alert published and delivered, verified on "
    "its node; a wrong node certificate, an unknown alert, bad syntax; two "
    "nodes merged") {
  TempDir dir;
  BrokerProcess civ(PolicyNode(dir, "CIV"));
  const std::string ca = PkiDir() + "/ca.pem";

  auto police = Channel(civ.port(), Tls("agency-CIV_police"));
  RawSubscription desk(Channel(civ.port(), Tls("agency-CIV_customs")),
                       OpenRequest({"border.>"}, "desk"));
  REQUIRE(desk.WaitOpened());
  REQUIRE(RawPublish(police, {MakeAlert("jr-1")}).ok());
  REQUIRE(desk.ReadDeliveries(1).size() == 1);
  REQUIRE(desk.SendFlow(1, 0));

  auto journey = [&](std::vector<std::string> args) {
    return RunBinary(CliBinary(), CliArgs(civ.port(), "auditor-UNODC_audit",
                                          std::move(args)));
  };

  SECTION("published and delivered, the checkpoint verified, both proven") {
    RunResult r{1, ""};
    // The delivery record reaches a checkpoint within a second or so.
    CHECK(Eventually([&] {
      r = journey({"audit", "journey", "--alert", "CIV/police/jr-1",
                   "--node-cert", NodeCert("CIV")});
      return r.exit_code == 0 &&
             absl::StrContains(r.output, "2 records proven");
    }));
    INFO(r.output);
    CHECK_THAT(r.output,
               Catch::StartsWith("journey of alert CIV/police/jr-1\n") &&
                   Catch::Contains("published by CIV/police") &&
                   Catch::Contains("delivered to CIV/customs") &&
                   Catch::Contains(absl::StrCat("CIV (", Target(civ.port()),
                                                "): checkpoint ")) &&
                   Catch::Contains("signature verified, 2 records proven"));
    CHECK(r.output.find("published by") < r.output.find("delivered to"));

    RunResult json =
        journey({"--json", "audit", "journey", "--alert", "CIV/police/jr-1",
                 "--node-cert", NodeCert("CIV")});
    INFO(json.output);
    CHECK(json.exit_code == 0);
    CHECK_THAT(json.output,
               Catch::StartsWith("{\"alert\":\"CIV/police/jr-1\"") &&
                   Catch::Contains("\"events\":[{") &&
                   Catch::Contains("\"kind\":\"published\"") &&
                   Catch::Contains("\"kind\":\"delivered\"") &&
                   Catch::Contains("\"nodes\":[{") &&
                   Catch::Contains("\"signature_verified\":true") &&
                   Catch::Contains("\"records_proven\":2"));
  }

  SECTION("another node's certificate fails, naming the node") {
    RunResult r = journey({"audit", "journey", "--alert", "CIV/police/jr-1",
                           "--node-cert", NodeCert("MLI")});
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains("CIV (") &&
                             Catch::Contains("FAILED") &&
                             Catch::Contains("no --node-cert of node CIV"));
  }

  SECTION("an unknown alert: exit 1") {
    RunResult r = journey({"audit", "journey", "--alert", "CIV/police/nope",
                           "--node-cert", NodeCert("CIV")});
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output,
               Catch::Contains("no node knows alert CIV/police/nope"));
  }

  SECTION("bad --alert syntax: usage error, exit 2") {
    for (const char* bad :
         {"jr-1", "CIV/jr-1", "CIV/police/", "/jr-1", "CIV/police/bad id"}) {
      RunResult r = journey(
          {"audit", "journey", "--alert", bad, "--node-cert", NodeCert("CIV")});
      INFO(bad << ": " << r.output);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.output, Catch::Contains("--alert"));
    }
  }

  SECTION("two independent nodes: the timeline merges both") {
    BrokerProcess mli(PolicyNode(dir, "MLI"));
    RunResult r{1, ""};
    CHECK(Eventually([&] {
      r = journey({"audit", "journey", "--alert", "CIV/police/jr-1", "--target",
                   Target(mli.port()), "--node-cert", NodeCert("CIV"),
                   "--node-cert", NodeCert("MLI")});
      return r.exit_code == 0 &&
             absl::StrContains(r.output, "2 records proven");
    }));
    INFO(r.output);
    CHECK_THAT(
        r.output,
        Catch::Contains("published by CIV/police") &&
            Catch::Contains(
                absl::StrCat("CIV (", Target(civ.port()), "): checkpoint ")) &&
            Catch::Contains(absl::StrCat("MLI (", Target(mli.port()), "): ")) &&
            Catch::Contains("the node has no record of the alert"));

    // One of them unreachable: shown with its error, exit 1.
    RunResult down = journey({"--timeout", "2s", "audit", "journey", "--alert",
                              "CIV/police/jr-1", "--target", "127.0.0.1:1",
                              "--node-cert", NodeCert("CIV")});
    INFO(down.output);
    CHECK(down.exit_code == 1);
    CHECK_THAT(down.output, Catch::Contains("published by CIV/police") &&
                                Catch::Contains("127.0.0.1:1: FAILED: "));
  }
}

}  // namespace
}  // namespace ibsm::testing
