// Routing across real nodes (tests/federation/federation-policy.textproto):
// the policy decides where an alert goes, the hub relays what it may hold
// and may pass on, and nothing else; a retraction follows its original; a
// loop of hubs delivers each alert once.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"
#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

const std::vector<std::string> kNodes = {"CIV", "MLI", "NER", "INTERPOL",
                                         "UNODC"};

// The topology of these tests: every node dials the hub INTERPOL, and CIV
// also has a direct link to MLI. NER and UNODC reach CIV only through the
// hub.
void StartHubTopology(Federation& fed) {
  fed.AddLink("CIV", "INTERPOL");
  fed.AddLink("MLI", "INTERPOL");
  fed.AddLink("NER", "INTERPOL");
  fed.AddLink("UNODC", "INTERPOL");
  fed.AddLink("CIV", "MLI");
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
}

std::set<std::string> AsSet(const std::vector<std::string>& ids) {
  return std::set<std::string>(ids.begin(), ids.end());
}

// Checks that `node` stored exactly `expected`, each once, and that its
// police desk was handed exactly those, each once.
void CheckHeldExactly(Federation& fed, const std::string& node,
                      const Collector& desk,
                      const std::set<std::string>& expected) {
  INFO("at node " << node);
  REQUIRE(
      desk.WaitFor(std::vector<std::string>(expected.begin(), expected.end())));
  const std::vector<std::string> stored = fed.StoredAlertIds(node);
  CHECK(AsSet(stored) == expected);
  for (const auto& [id, n] : CountIds(stored)) {
    INFO("alert " << id);
    CHECK(n == 1);
  }
  const std::vector<std::string> handed = desk.ids();
  CHECK(AsSet(handed) == expected);
  for (const auto& [id, n] : CountIds(handed)) {
    INFO("alert " << id);
    CHECK(n == 1);
  }
}

std::set<std::string> Recipients(const std::vector<v1::AuditRecord>& records) {
  std::set<std::string> recipients;
  for (const v1::AuditRecord& r : records) recipients.insert(r.recipient());
  return recipients;
}

TEST_CASE(
    "routing follows the policy across five nodes: through the hub, never to "
    "the node not cleared for SECRET, ORCON and TLP:RED only to named direct "
    "peers and never relayed",
    "[federation]") {
  Federation fed;
  StartHubTopology(fed);
  std::map<std::string, std::unique_ptr<Collector>> desks;
  for (const std::string& node : kNodes) {
    desks[node] = std::make_unique<Collector>(
        fed.address(node), absl::StrCat("agency-", node, "_police"),
        std::vector<std::string>{"border.>", "trafficking.>"});
  }

  // Published at CIV, all of the same severity, so each link sends them in
  // publish order.
  v1::Alert restricted = MakeAlert("r-1", "border.incident", "RESTRICTED");
  v1::Alert secret = MakeAlert("s-1", "border.incident", "SECRET");
  v1::Alert trafficking = MakeAlert("t-1", "trafficking.drugs", "RESTRICTED");
  // Releasable to MLI and INTERPOL, CIV's direct peers, and to NER, which
  // only the hub could reach: originator control keeps it from the hub's
  // relay.
  v1::Alert orcon = MakeAlert("o-1", "border.incident", "RESTRICTED");
  orcon.set_orcon(true);
  for (const char* node : {"MLI", "NER", "INTERPOL"}) {
    orcon.add_releasable_to(node);
  }
  v1::Alert red = orcon;
  red.set_id("red-1");
  red.set_orcon(false);
  red.set_tlp("RED");
  // Releasable to NER only, which is no direct peer of CIV: it goes nowhere.
  v1::Alert orcon_far = MakeAlert("o-2", "border.incident", "RESTRICTED");
  orcon_far.set_orcon(true);
  orcon_far.add_releasable_to("NER");

  auto civ = fed.Connect("CIV");
  auto publisher = civ->NewPublisher();
  // What the publisher is told: the peers each alert was queued for.
  const std::map<std::string, std::vector<std::string>> queued_for = {
      {"r-1", {"MLI", "INTERPOL"}},   {"s-1", {"MLI", "INTERPOL"}},
      {"t-1", {"MLI", "INTERPOL"}},   {"o-1", {"MLI", "INTERPOL"}},
      {"red-1", {"MLI", "INTERPOL"}}, {"o-2", {}}};
  for (const v1::Alert& alert :
       {restricted, secret, trafficking, orcon, red, orcon_far}) {
    auto receipt = publisher->Publish(alert);
    INFO(alert.id() << ": " << receipt.status().ToString());
    REQUIRE(receipt.ok());
    std::vector<std::string> forwarded = receipt->forwarded_to;
    std::vector<std::string> want = queued_for.at(alert.id());
    std::sort(forwarded.begin(), forwarded.end());
    std::sort(want.begin(), want.end());
    CHECK(forwarded == want);
  }
  REQUIRE(fed.WaitDrained());

  CheckHeldExactly(fed, "CIV", *desks["CIV"],
                   {"r-1", "s-1", "t-1", "o-1", "red-1", "o-2"});
  CheckHeldExactly(fed, "MLI", *desks["MLI"],
                   {"r-1", "s-1", "t-1", "o-1", "red-1"});
  CheckHeldExactly(fed, "INTERPOL", *desks["INTERPOL"],
                   {"r-1", "s-1", "t-1", "o-1", "red-1"});
  CheckHeldExactly(fed, "NER", *desks["NER"], {"r-1", "t-1"});
  CheckHeldExactly(fed, "UNODC", *desks["UNODC"], {"r-1", "s-1"});

  SECTION("the hub relayed what reached NER and UNODC") {
    for (std::string node : {"NER", "UNODC"}) {
      INFO("at " << node);
      auto received = fed.Audit(node, "r-1", v1::AUDIT_FEDERATION_RECEIVE,
                                v1::AuditQuery::DECISION_ALLOWED);
      REQUIRE(received.size() == 1);
      CHECK(absl::StrContains(received[0].actor(), "INTERPOL"));
      CHECK(received[0].originator() == "CIV/police");
    }
    // And to MLI, which had it from CIV already (a duplicate there).
    auto relayed = fed.Audit("INTERPOL", "r-1", v1::AUDIT_FEDERATION_SEND,
                             v1::AuditQuery::DECISION_ALLOWED);
    CHECK(Recipients(relayed) == std::set<std::string>{"MLI", "NER", "UNODC"});
    // CIV queued it for its two direct peers, and said so at publish.
    auto published = fed.Audit("CIV", "r-1", v1::AUDIT_PUBLISH,
                               v1::AuditQuery::DECISION_ALLOWED);
    REQUIRE(published.size() == 1);
    CHECK(absl::StrContains(published[0].detail(), "INTERPOL"));
    CHECK(absl::StrContains(published[0].detail(), "MLI"));
    CHECK(Recipients(fed.Audit("CIV", "r-1", v1::AUDIT_FEDERATION_SEND,
                               v1::AuditQuery::DECISION_ALLOWED)) ==
          std::set<std::string>{"INTERPOL", "MLI"});
  }

  SECTION("NER, cleared to CONFIDENTIAL, never had the SECRET alert") {
    CHECK(fed.Audit("NER", "s-1", v1::AUDIT_FEDERATION_RECEIVE,
                    v1::AuditQuery::DECISION_ALLOWED)
              .empty());
    CHECK(fed.Audit("NER", "s-1", v1::AUDIT_DELIVER).empty());
    // The hub held it and relayed it to the cleared nodes only.
    CHECK(Recipients(fed.Audit("INTERPOL", "s-1", v1::AUDIT_FEDERATION_SEND)) ==
          std::set<std::string>{"MLI", "UNODC"});
  }

  SECTION("the hub held ORCON and TLP:RED alerts and passed on neither") {
    for (std::string id : {"o-1", "red-1"}) {
      INFO("alert " << id);
      CHECK(fed.Audit("INTERPOL", id, v1::AUDIT_FEDERATION_RECEIVE,
                      v1::AuditQuery::DECISION_ALLOWED)
                .size() == 1);
      CHECK(fed.Audit("INTERPOL", id, v1::AUDIT_FEDERATION_SEND).empty());
      CHECK(fed.Audit("NER", id).empty());
      CHECK(fed.Audit("UNODC", id).empty());
      CHECK(Recipients(fed.Audit("CIV", id, v1::AUDIT_FEDERATION_SEND,
                                 v1::AuditQuery::DECISION_ALLOWED)) ==
            std::set<std::string>{"INTERPOL", "MLI"});
    }
    // Releasable only to a node that is no direct peer: sent nowhere.
    CHECK(fed.Audit("CIV", "o-2", v1::AUDIT_FEDERATION_SEND).empty());
    for (std::string node : {"MLI", "NER", "INTERPOL", "UNODC"}) {
      INFO("at " << node);
      CHECK(fed.Audit(node, "o-2").empty());
    }
  }
}

TEST_CASE(
    "a retraction reaches every node that received the original, and no "
    "other; only the originator may retract, with the original's handling",
    "[federation]") {
  Federation fed;
  StartHubTopology(fed);
  std::map<std::string, std::unique_ptr<Collector>> desks;
  for (const std::string& node : kNodes) {
    desks[node] = std::make_unique<Collector>(
        fed.address(node), absl::StrCat("agency-", node, "_police"),
        std::vector<std::string>{"trafficking.>"});
  }
  auto civ = fed.Connect("CIV");
  auto publisher = civ->NewPublisher();
  // Shared with SAHEL and INTERPOL: MLI directly, INTERPOL, NER via the
  // hub; not UNODC.
  const v1::Alert original =
      MakeAlert("convoy-7", "trafficking.drugs", "RESTRICTED");
  REQUIRE(publisher->Publish(original).ok());
  REQUIRE(fed.WaitDrained());

  v1::Alert retraction = original;
  retraction.set_id("convoy-7-retracted");
  retraction.set_payload(
      "Withdrawn: the convoy report was a misidentification.");
  v1::AlertReference* reference = retraction.add_references();
  reference->set_originator("CIV/police");
  reference->set_alert_id("convoy-7");
  reference->set_kind(v1::AlertReference::KIND_RETRACTION);

  SECTION("the retraction follows the original's route") {
    auto receipt = publisher->Publish(retraction);
    INFO(receipt.status().ToString());
    REQUIRE(receipt.ok());
    REQUIRE(fed.WaitDrained());
    for (std::string node : {"CIV", "MLI", "NER", "INTERPOL"}) {
      INFO("at " << node);
      REQUIRE(desks[node]->WaitFor({"convoy-7", "convoy-7-retracted"}));
      const std::vector<std::string> stored = fed.StoredAlertIds(node);
      CHECK(stored ==
            std::vector<std::string>{"convoy-7", "convoy-7-retracted"});
      // Handed over after the original, never before it.
      CHECK(desks[node]->ids() ==
            std::vector<std::string>{"convoy-7", "convoy-7-retracted"});
    }
    CHECK(fed.StoredAlertIds("UNODC").empty());
    CHECK(fed.Audit("UNODC", "convoy-7-retracted").empty());
    CHECK(desks["UNODC"]->ids().empty());
  }

  SECTION("a retraction with other handling than the original is refused") {
    v1::Alert wider = retraction;
    wider.set_classification("UNCLASSIFIED");
    auto refused = publisher->Publish(wider);
    REQUIRE_FALSE(refused.ok());
    INFO(refused.status().ToString());
    CHECK((refused.status().code() == absl::StatusCode::kInvalidArgument ||
           refused.status().code() == absl::StatusCode::kPermissionDenied));
    v1::Alert other_topic = retraction;
    other_topic.set_topic("border.incident");
    CHECK_FALSE(publisher->Publish(other_topic).ok());
  }

  SECTION("another agency cannot retract CIV/police's alert") {
    // MLI holds the original; MLI/police is not its originator.
    auto mli = fed.Connect("MLI");
    auto receipt = mli->NewPublisher()->Publish(retraction);
    REQUIRE_FALSE(receipt.ok());
    INFO(receipt.status().ToString());
    CHECK((receipt.status().code() == absl::StatusCode::kInvalidArgument ||
           receipt.status().code() == absl::StatusCode::kPermissionDenied));
    REQUIRE(fed.WaitDrained());
    for (const std::string& node : kNodes) {
      INFO("at " << node);
      for (const std::string& id : fed.StoredAlertIds(node)) {
        CHECK(id != "convoy-7-retracted");
      }
    }
  }
}

TEST_CASE(
    "a relay loop of three hubs (CIV -> MLI -> INTERPOL -> CIV) delivers "
    "each alert once at each node",
    "[federation]") {
  Federation fed(FederationPolicyPath("loop-policy.textproto"));
  fed.AddLink("MLI", "CIV");
  fed.AddLink("INTERPOL", "MLI");
  fed.AddLink("INTERPOL", "CIV");
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  const std::vector<std::string> nodes = {"CIV", "MLI", "INTERPOL"};
  std::map<std::string, std::unique_ptr<Collector>> desks;
  for (const std::string& node : nodes) {
    desks[node] = std::make_unique<Collector>(
        fed.address(node), absl::StrCat("agency-", node, "_police"),
        std::vector<std::string>{"border.>"});
  }
  std::set<std::string> all;
  for (const std::string& node : nodes) {
    auto client = fed.Connect(node);
    auto publisher = client->NewPublisher();
    for (int i = 0; i < 3; ++i) {
      const std::string id = absl::StrCat("loop-", node, "-", i);
      auto receipt = publisher->Publish(MakeAlert(id));
      INFO(id << ": " << receipt.status().ToString());
      REQUIRE(receipt.ok());
      all.insert(id);
    }
  }
  REQUIRE(fed.WaitDrained());
  for (const std::string& node : nodes) {
    CheckHeldExactly(fed, node, *desks[node], all);
    // An alert never comes back to the node it was published at.
    for (const std::string& id : all) {
      if (!absl::StartsWith(id, "loop-" + node + "-")) continue;
      INFO("at " << node << ", alert " << id);
      CHECK(fed.Audit(node, id, v1::AUDIT_FEDERATION_RECEIVE).empty());
    }
  }
}

}  // namespace
}  // namespace ibsm::testing
