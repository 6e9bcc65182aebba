// Table-driven decisions of the sharing policy: every check of publish,
// agency delivery and node delivery, and the precedence of topic rules.
// Formatting is off in this file: its raw strings hold policy and config
// text whose line numbers the tests check.
// clang-format off
#include <string>
#include <vector>

#include "ibsm/spiffe_id.h"
#include "ibsm/policy.h"
#include "catch2/catch.hpp"
#include "ibsm/v1/alert.pb.h"
#include "ibsm/internal/v1/policy.pb.h"

namespace ibsm::broker {
namespace {

// 5 nodes (INTERPOL is the only hub), groups ECOWAS / SAHEL / GULF / INTL,
// 10 agencies, 11 rules with wildcards, shares, ceilings and ties.
inline constexpr char kTestPolicy[] = R"pb(
name: "decision-test"
classification_levels: ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]

nodes { id: "CIV" kind: NODE_KIND_NATIONAL groups: ["ECOWAS", "GULF"] clearance: "SECRET" }
nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: ["ECOWAS", "SAHEL"] clearance: "SECRET" }
nodes { id: "GHA" kind: NODE_KIND_NATIONAL groups: ["ECOWAS", "GULF"] clearance: "CONFIDENTIAL" }
nodes { id: "INTERPOL" kind: NODE_KIND_INTERNATIONAL groups: "INTL" clearance: "SECRET" hub: true }
nodes { id: "IOM" kind: NODE_KIND_INTERNATIONAL groups: "INTL" clearance: "RESTRICTED" }

agencies { id: "CIV/police"    roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "CIV/customs"   roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "CONFIDENTIAL" }
agencies { id: "CIV/intel"     roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "CIV/audit"     roles: ROLE_AUDITOR clearance: "SECRET" }
agencies { id: "MLI/police"    roles: ROLE_SUBSCRIBER clearance: "SECRET" }
agencies { id: "MLI/customs"   roles: ROLE_SUBSCRIBER clearance: "RESTRICTED" }
agencies { id: "GHA/police"    roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "GHA/customs"   roles: ROLE_SUBSCRIBER clearance: "CONFIDENTIAL" }
agencies { id: "INTERPOL/nccb" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "IOM/field"     roles: ROLE_SUBSCRIBER clearance: "RESTRICTED" }

topic_rules {
  name: "terrorism-intel"
  topics: "terrorism.>"
  publishers: ["CIV/intel", "CIV/police", "GHA/police"]
  subscribers: ["*/police", "CIV/intel", "INTERPOL/nccb"]
  max_classification: "SECRET"
  share { to: "ECOWAS" max_classification: "SECRET" }
  share { to: "INTERPOL" max_classification: "CONFIDENTIAL" }
  retention { seconds: 86400 }
}
topic_rules {
  name: "terrorism-public"
  topics: "terrorism.advisory"
  publishers: "CIV/*"
  subscribers: "*"
  max_classification: "RESTRICTED"
  share { to: ["ECOWAS", "INTL"] max_classification: "RESTRICTED" }
}
topic_rules {
  name: "trafficking"
  topics: "trafficking.*"
  publishers: "@ECOWAS"
  subscribers: ["*/customs", "*/police"]
  max_classification: "CONFIDENTIAL"
  share { to: ["ECOWAS", "INTERPOL"] max_classification: "CONFIDENTIAL" }
}
topic_rules {
  name: "trafficking-persons"
  topics: ["trafficking.persons", "migration.>"]
  publishers: "*"
  subscribers: "*"
  max_classification: "CONFIDENTIAL"
  share { to: "INTL" max_classification: "RESTRICTED" }
  share { to: "ECOWAS" max_classification: "CONFIDENTIAL" }
}
topic_rules {
  name: "local-only"
  topics: "crime.local"
  publishers: "CIV/*"
  subscribers: "*"
  max_classification: "SECRET"
}
topic_rules { name: "border-closure" topics: "border.*.closure" subscribers: "CIV/*" max_classification: "RESTRICTED" }
topic_rules { name: "border-all" topics: "border.>" subscribers: "CIV/*" max_classification: "RESTRICTED" }
topic_rules { name: "border-deep" topics: "border.*.>" subscribers: "CIV/*" max_classification: "RESTRICTED" }
topic_rules { name: "incidents" topics: "*.incident" subscribers: "CIV/*" max_classification: "RESTRICTED" }
topic_rules { name: "docs-a" topics: "documents.*" subscribers: "CIV/*" max_classification: "RESTRICTED" }
topic_rules { name: "docs-b" topics: "*.fraud" subscribers: "CIV/*" max_classification: "RESTRICTED" }
)pb";

std::shared_ptr<const Policy> TestPolicy() {
  static const auto* policy = [] {
    auto parsed = Policy::Parse(kTestPolicy, "test.textproto");
    if (!parsed.ok()) FAIL(parsed.status().ToString());
    return new std::shared_ptr<const Policy>(*parsed);
  }();
  return *policy;
}

AlertFacts Facts(std::string topic, std::string classification,
                 std::vector<std::string> releasable_to = {},
                 bool orcon = false, std::string tlp = "",
                 std::string originator = "CIV/intel") {
  AlertFacts f;
  f.topic = std::move(topic);
  f.classification = std::move(classification);
  f.releasable_to = std::move(releasable_to);
  f.orcon = orcon;
  f.tlp = std::move(tlp);
  f.originator = std::move(originator);
  return f;
}

struct Case {
  const char* what;
  AlertFacts alert;
  Recipient recipient;
  bool allowed;
  const char* rule;
  const char* reason;  // a substring of the reason
};

void Check(const Decision& d, const Case& c, const Policy& policy) {
  INFO(c.what << " -> " << (d.allowed ? "ALLOW" : "DENY") << " [" << d.rule
               << "] " << d.reason);
  CHECK(d.allowed == c.allowed);
  CHECK(d.rule == c.rule);
  CHECK(d.reason.find(c.reason) != std::string::npos);
  CHECK(d.policy_version == policy.version());
}

TEST_CASE("DecidePublish checks role, rule, publishers, ceiling and clearance") {
  auto policy = TestPolicy();
  struct PublishCase {
    const char* what;
    AlertFacts alert;
    const char* publisher;
    bool allowed;
    const char* rule;
    const char* reason;
  };
  const std::vector<PublishCase> cases = {
      {"listed publisher at the ceiling", Facts("terrorism.attack", "SECRET"),
       "CIV/intel", true, "terrorism-intel", "may publish"},
      {"agency not among the publishers", Facts("terrorism.attack", "RESTRICTED"),
       "CIV/customs", false, "terrorism-intel", "not among the publishers"},
      {"no ROLE_PUBLISHER", Facts("terrorism.attack", "RESTRICTED"),
       "MLI/police", false, "role", "ROLE_PUBLISHER"},
      {"unknown agency", Facts("terrorism.attack", "RESTRICTED"), "XXX/nobody",
       false, "unknown-agency", "not in the policy"},
      {"above the topic ceiling", Facts("trafficking.drugs", "SECRET"),
       "CIV/police", false, "trafficking", "above the topic ceiling CONFIDENTIAL"},
      {"at own clearance", Facts("trafficking.drugs", "CONFIDENTIAL"),
       "CIV/customs", true, "trafficking", "may publish"},
      {"group principal @ECOWAS", Facts("trafficking.arms", "RESTRICTED"),
       "GHA/police", true, "trafficking", "may publish"},
      {"group principal excludes other nodes", Facts("trafficking.arms", "RESTRICTED"),
       "INTERPOL/nccb", false, "trafficking", "not among the publishers"},
      {"node principal CIV/*", Facts("terrorism.advisory", "RESTRICTED"),
       "CIV/customs", true, "terrorism-public", "may publish"},
      {"above own clearance", Facts("crime.local", "SECRET"), "CIV/customs",
       false, "local-only", "CIV/customs clearance CONFIDENTIAL < alert classification SECRET"},
      {"no rule covers the topic", Facts("weather.rain", "UNCLASSIFIED"),
       "CIV/police", false, "no-rule", "no topic rule covers topic weather.rain; deny by default"},
      {"unknown classification", Facts("terrorism.attack", "TOP-SECRET"),
       "CIV/police", false, "unknown-classification", "not a level"},
      {"wildcard principal *", Facts("migration.flows", "RESTRICTED"),
       "INTERPOL/nccb", true, "trafficking-persons", "may publish"},
  };
  for (const PublishCase& c : cases) {
    Decision d = policy->DecidePublish(c.alert, c.publisher);
    Check(d, Case{c.what, c.alert, Recipient::Agency(c.publisher), c.allowed,
                  c.rule, c.reason},
          *policy);
  }
}

TEST_CASE("Decide for agencies: subscribers, clearances, sharing, releasability, ORCON") {
  auto policy = TestPolicy();
  using R = Recipient;
  const std::vector<Case> cases = {
      {"*/police on another node, shared by group", Facts("terrorism.attack", "SECRET"),
       R::Agency("MLI/police"), true, "terrorism-intel", "shared with its node"},
      {"not a subscriber", Facts("terrorism.attack", "RESTRICTED"),
       R::Agency("MLI/customs"), false, "terrorism-intel", "not among the subscribers"},
      {"node clearance below", Facts("terrorism.attack", "SECRET"),
       R::Agency("GHA/police"), false, "terrorism-intel",
       "node GHA clearance CONFIDENTIAL < alert classification SECRET"},
      {"node clearance suffices", Facts("terrorism.attack", "CONFIDENTIAL"),
       R::Agency("GHA/police"), true, "terrorism-intel", ""},
      {"agency clearance below", Facts("trafficking.drugs", "CONFIDENTIAL"),
       R::Agency("MLI/customs"), false, "trafficking",
       "MLI/customs clearance RESTRICTED < alert classification CONFIDENTIAL"},
      {"shared only up to a lower level", Facts("terrorism.attack", "SECRET"),
       R::Agency("INTERPOL/nccb"), false, "terrorism-intel", "only up to CONFIDENTIAL"},
      {"shared up to its level", Facts("terrorism.attack", "CONFIDENTIAL"),
       R::Agency("INTERPOL/nccb"), true, "terrorism-intel", ""},
      {"originator's node needs no share", Facts("terrorism.attack", "SECRET"),
       R::Agency("CIV/police"), true, "terrorism-intel", "originator's node"},
      {"topic not shared with the node", Facts("crime.local", "RESTRICTED", {}, false, "", "CIV/police"),
       R::Agency("MLI/police"), false, "local-only", "not shared with node MLI"},
      {"local topic on the local node", Facts("crime.local", "SECRET", {}, false, "", "CIV/police"),
       R::Agency("CIV/intel"), true, "local-only", ""},
      {"releasability excludes the node", Facts("terrorism.attack", "CONFIDENTIAL", {"MLI"}),
       R::Agency("GHA/police"), false, "terrorism-intel", "not in the alert's releasability [MLI]"},
      {"releasability names the node", Facts("terrorism.attack", "CONFIDENTIAL", {"MLI"}),
       R::Agency("MLI/police"), true, "terrorism-intel", ""},
      {"releasability does not bind the originator's node",
       Facts("terrorism.attack", "CONFIDENTIAL", {"MLI"}), R::Agency("CIV/police"),
       true, "terrorism-intel", ""},
      {"releasability by group", Facts("terrorism.attack", "SECRET", {"SAHEL"}),
       R::Agency("MLI/police"), true, "terrorism-intel", ""},
      {"releasability by a group the node is not in",
       Facts("terrorism.attack", "CONFIDENTIAL", {"SAHEL"}), R::Agency("GHA/police"),
       false, "terrorism-intel", "releasability"},
      {"ORCON: a group is not enough", Facts("terrorism.attack", "SECRET", {"SAHEL"}, true),
       R::Agency("MLI/police"), false, "terrorism-intel", "ORCON alert: node MLI is not named explicitly"},
      {"ORCON: named explicitly", Facts("terrorism.attack", "SECRET", {"MLI"}, true),
       R::Agency("MLI/police"), true, "terrorism-intel", ""},
      {"ORCON without releasability stays home", Facts("terrorism.attack", "CONFIDENTIAL", {}, true),
       R::Agency("GHA/police"), false, "terrorism-intel", "ORCON"},
      {"ORCON on the originator's node", Facts("terrorism.attack", "SECRET", {}, true),
       R::Agency("CIV/police"), true, "terrorism-intel", ""},
      {"TLP:RED acts as ORCON", Facts("terrorism.attack", "CONFIDENTIAL", {"ECOWAS"}, false, "RED"),
       R::Agency("MLI/police"), false, "terrorism-intel", "TLP:RED"},
      {"TLP:AMBER+STRICT acts as ORCON", Facts("terrorism.attack", "CONFIDENTIAL", {"ECOWAS"}, false, "AMBER+STRICT"),
       R::Agency("MLI/police"), false, "terrorism-intel", "TLP:AMBER+STRICT"},
      {"TLP:AMBER+STRICT named explicitly", Facts("terrorism.attack", "CONFIDENTIAL", {"MLI"}, false, "AMBER+STRICT"),
       R::Agency("MLI/police"), true, "terrorism-intel", ""},
      {"TLP:AMBER is not originator control", Facts("terrorism.attack", "CONFIDENTIAL", {"ECOWAS"}, false, "AMBER"),
       R::Agency("MLI/police"), true, "terrorism-intel", ""},
      {"no ROLE_SUBSCRIBER", Facts("terrorism.attack", "RESTRICTED"),
       R::Agency("CIV/audit"), false, "role", "ROLE_SUBSCRIBER"},
      {"unknown agency", Facts("terrorism.attack", "RESTRICTED"),
       R::Agency("CIV/nobody"), false, "unknown-agency", "CIV/nobody"},
      {"unknown classification", Facts("terrorism.attack", "PUBLIC"),
       R::Agency("CIV/police"), false, "unknown-classification", "PUBLIC"},
      {"no rule: deny by default", Facts("weather.rain", "UNCLASSIFIED"),
       R::Agency("CIV/police"), false, "no-rule", "deny by default"},
      {"international node via INTL share", Facts("terrorism.advisory", "RESTRICTED"),
       R::Agency("IOM/field"), true, "terrorism-public", ""},
      {"IOM gets no terrorism intelligence", Facts("terrorism.attack", "RESTRICTED"),
       R::Agency("IOM/field"), false, "terrorism-intel", "not among the subscribers"},
      {"migration reaches IOM at RESTRICTED", Facts("migration.flows.north", "RESTRICTED"),
       R::Agency("IOM/field"), true, "trafficking-persons", ""},
      {"migration above the INTL share level", Facts("migration.flows", "CONFIDENTIAL"),
       R::Agency("INTERPOL/nccb"), false, "trafficking-persons", "only up to RESTRICTED"},
      {"alert above the topic ceiling is never delivered", Facts("trafficking.drugs", "SECRET"),
       R::Agency("CIV/police"), false, "trafficking", "above the topic ceiling"},
  };
  for (const Case& c : cases) Check(policy->Decide(c.alert, c.recipient), c, *policy);
}

TEST_CASE("Decide for nodes: origin, share, clearance, releasability, ORCON, relay") {
  auto policy = TestPolicy();
  using R = Recipient;
  const std::vector<Case> cases = {
      {"shared by group", Facts("terrorism.attack", "SECRET"), R::Node("MLI"),
       true, "terrorism-intel", "shared with node MLI up to SECRET"},
      {"shared only up to CONFIDENTIAL", Facts("terrorism.attack", "SECRET"),
       R::Node("INTERPOL"), false, "terrorism-intel", "only up to CONFIDENTIAL"},
      {"shared at CONFIDENTIAL", Facts("terrorism.attack", "CONFIDENTIAL"),
       R::Node("INTERPOL"), true, "terrorism-intel", ""},
      {"not shared", Facts("terrorism.attack", "RESTRICTED"), R::Node("IOM"),
       false, "terrorism-intel", "not shared with node IOM"},
      {"originator's node", Facts("crime.local", "SECRET"), R::Node("CIV"), true,
       "origin", "originator's node"},
      {"node clearance", Facts("terrorism.attack", "SECRET"), R::Node("GHA"),
       false, "terrorism-intel", "node GHA clearance CONFIDENTIAL"},
      {"releasability by id", Facts("terrorism.attack", "SECRET", {"MLI"}),
       R::Node("MLI"), true, "terrorism-intel", ""},
      {"releasability by group, not the node's",
       Facts("terrorism.attack", "CONFIDENTIAL", {"SAHEL"}), R::Node("GHA"),
       false, "terrorism-intel", "releasability"},
      {"ORCON named explicitly", Facts("terrorism.attack", "SECRET", {"MLI"}, true),
       R::Node("MLI"), true, "terrorism-intel", ""},
      {"ORCON by group only", Facts("terrorism.attack", "SECRET", {"ECOWAS"}, true),
       R::Node("MLI"), false, "terrorism-intel", "named explicitly"},
      {"hub relay", Facts("terrorism.attack", "CONFIDENTIAL"), R::Node("INTERPOL", true),
       true, "terrorism-intel", "hub relay"},
      {"relay by a node that is not a hub", Facts("terrorism.attack", "CONFIDENTIAL"),
       R::Node("MLI", true), false, "terrorism-intel", "not a hub"},
      {"ORCON is never relayed", Facts("terrorism.attack", "CONFIDENTIAL", {"INTERPOL"}, true),
       R::Node("INTERPOL", true), false, "terrorism-intel", "may not relay"},
      {"TLP:RED is never relayed", Facts("terrorism.attack", "CONFIDENTIAL", {"INTERPOL"}, false, "RED"),
       R::Node("INTERPOL", true), false, "terrorism-intel", "may not relay"},
      {"ORCON is not relayed even by the originator's node",
       Facts("terrorism.attack", "CONFIDENTIAL", {}, true), R::Node("CIV", true),
       false, "terrorism-intel", "may not relay"},
      {"unknown node", Facts("terrorism.attack", "SECRET"), R::Node("XXX"), false,
       "unknown-node", "XXX"},
      {"no rule", Facts("weather.rain", "UNCLASSIFIED"), R::Node("MLI"), false,
       "no-rule", "deny by default"},
  };
  for (const Case& c : cases) Check(policy->Decide(c.alert, c.recipient), c, *policy);
}

TEST_CASE("The most specific pattern decides; ties go to the first rule; no fall-through") {
  auto policy = TestPolicy();
  struct Precedence {
    const char* topic;
    const char* rule;
  };
  const std::vector<Precedence> cases = {
      {"terrorism.advisory", "terrorism-public"},   // literal beats '>'
      {"terrorism.advisory.x", "terrorism-intel"},
      {"border.pogo.closure", "border-closure"},    // 2 literals beat 1
      {"border.pogo", "border-all"},
      {"border.pogo.gate", "border-deep"},          // more segments win
      {"border.incident", "incidents"},             // no '>' beats '>'
      {"documents.fraud", "docs-a"},                // exact tie: file order
      {"documents.passport", "docs-a"},
      {"visa.fraud", "docs-b"},
      {"trafficking.persons", "trafficking-persons"},  // literal beats '*'
      {"trafficking.drugs", "trafficking"},
  };
  for (const Precedence& c : cases) {
    Decision d = policy->Decide(Facts(c.topic, "UNCLASSIFIED"),
                                Recipient::Agency("CIV/police"));
    INFO(c.topic << " -> " << d.rule << ": " << d.reason);
    CHECK(d.rule == c.rule);
  }
  // No fall-through: the more specific rule denies although the general one
  // would allow.
  Decision d = policy->Decide(Facts("terrorism.advisory", "CONFIDENTIAL"),
                              Recipient::Agency("MLI/police"));
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "terrorism-public");
  d = policy->Decide(Facts("terrorism.advisory", "RESTRICTED"),
                     Recipient::Agency("MLI/customs"));
  CHECK(d.allowed);
  CHECK(d.rule == "terrorism-public");
}

TEST_CASE("A lone '>' rule loses to every other pattern") {
  auto policy = Policy::Parse(R"pb(
    classification_levels: "U"
    nodes { id: "A" clearance: "U" }
    agencies { id: "A/x" roles: ROLE_SUBSCRIBER clearance: "U" }
    topic_rules { name: "all" topics: ">" subscribers: "*" max_classification: "U" }
    topic_rules { name: "star" topics: "*" subscribers: "*" max_classification: "U" }
    topic_rules { name: "one" topics: "a.>" subscribers: "*" max_classification: "U" }
  )pb", "inline");
  REQUIRE(policy.ok());
  auto rule = [&](const char* topic) {
    return (*policy)->Decide(Facts(topic, "U"), Recipient::Agency("A/x")).rule;
  };
  CHECK(rule("b") == "star");
  CHECK(rule("b.c") == "all");
  CHECK(rule("a.c.d") == "one");
  CHECK(rule("a") == "star");
}

// The policy as a node enforces it: the entry points decide for callers
// connected to `node`.
std::shared_ptr<const Policy> AtNode(const std::string& node,
                                     const std::string& text = kTestPolicy) {
  auto parsed = Policy::Parse(text, "test.textproto", node);
  if (!parsed.ok()) FAIL(parsed.status().ToString());
  return *parsed;
}

TEST_CASE("Authorizer entry points use the certificate identity") {
  auto civ = AtNode("CIV");
  auto mli = AtNode("MLI");
  v1::Alert alert;
  alert.set_topic("terrorism.attack");
  alert.set_classification("SECRET");
  alert.set_originator("MLI/police");  // ignored by MayPublish
  Decision d = civ->MayPublish(Identity{"CIV", "intel"}, alert);
  CHECK(d.allowed);
  d = civ->MayPublish(Identity{"CIV", ""}, alert);
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "agencies-only");

  alert.set_originator("CIV/intel");
  CHECK(mli->MayReceive(Identity{"MLI", "police"}, alert).allowed);
  CHECK_FALSE(mli->MayReceive(Identity{"GHA", "police"}, alert).allowed);
  CHECK_FALSE(mli->MayReceive(Identity{"MLI", ""}, alert).allowed);

  d = mli->MaySubscribe(Identity{"MLI", "customs"}, "terrorism.>");
  CHECK(d.allowed);
  CHECK(d.rule == "terrorism-public");
  d = AtNode("IOM")->MaySubscribe(Identity{"IOM", "field"}, "border.>");
  CHECK(d.allowed);
  CHECK(d.reason.find("no rule currently") != std::string::npos);
  d = civ->MaySubscribe(Identity{"CIV", "audit"}, "border.>");
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "role");
  d = civ->MaySubscribe(Identity{"XXX", "a"}, ">");
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "unknown-agency");
  CHECK_FALSE(civ->MaySubscribe(Identity{"CIV", ""}, ">").allowed);
}

TEST_CASE("A policy loaded without its node refuses every entry point") {
  auto tool = TestPolicy();  // as `ibsm policy` loads it
  v1::Alert alert;
  alert.set_topic("terrorism.attack");
  alert.set_classification("SECRET");
  alert.set_originator("CIV/intel");
  for (const Decision& d :
       {tool->MayPublish(Identity{"CIV", "intel"}, alert),
        tool->MayReceive(Identity{"CIV", "police"}, alert),
        tool->MaySubscribe(Identity{"CIV", "police"}, ">"),
        tool->MayAudit(Identity{"CIV", "audit"}),
        tool->MayGetNodeInfo(Identity{"CIV", "police"}),
        tool->MaySeeNodeCounts(Identity{"CIV", "audit"})}) {
    CHECK_FALSE(d.allowed);
    CHECK(d.rule == "unbound-policy");
  }
  auto unknown = Policy::Parse(kTestPolicy, "test.textproto", "XXX");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message().find("XXX, is not a node of the policy") !=
        std::string::npos);
}

// The policy above plus grants: MLI/police may subscribe at CIV and GHA (by
// group), INTERPOL/nccb may publish at every node, GHA/audit audits at MLI
// and sees all metadata.
std::string GrantPolicy() {
  std::string text = kTestPolicy;
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  };
  replace(R"(agencies { id: "MLI/police"    roles: ROLE_SUBSCRIBER clearance: "SECRET" })",
          R"(agencies { id: "MLI/police"    roles: ROLE_SUBSCRIBER clearance: "SECRET"
                        remote_access { nodes: ["CIV", "GULF"] roles: ROLE_SUBSCRIBER } })");
  replace(R"(agencies { id: "INTERPOL/nccb" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" })",
          R"(agencies { id: "INTERPOL/nccb" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET"
                        remote_access { nodes: "*" roles: ROLE_PUBLISHER } })");
  text += R"(agencies { id: "GHA/audit" roles: ROLE_AUDITOR clearance: "RESTRICTED"
                        remote_access { nodes: "MLI" roles: ROLE_AUDITOR }
                        audit_metadata_above_clearance: true })";
  return text;
}

TEST_CASE("An agency publishes, subscribes and receives only at its own node unless granted") {
  auto plain = TestPolicy();
  auto granted = Policy::Parse(GrantPolicy(), "grant.textproto");
  REQUIRE(granted.ok());
  using R = Recipient;
  struct VenueCase {
    const char* what;
    const Policy* policy;
    AlertFacts alert;
    Recipient recipient;
    bool allowed;
    const char* rule;
    const char* reason;
  };
  const AlertFacts attack = Facts("terrorism.attack", "SECRET");
  const std::vector<VenueCase> cases = {
      {"'*/police' names MLI/police, but it receives at MLI, not at CIV",
       plain.get(), attack, R::Agency("MLI/police", "CIV"), false, "own-node",
       "MLI/police acts only at its own node MLI, not at CIV"},
      {"at its own node (named)", plain.get(), attack,
       R::Agency("MLI/police", "MLI"), true, "terrorism-intel", "shared with its node"},
      {"at its own node (default)", plain.get(), attack,
       R::Agency("MLI/police"), true, "terrorism-intel", "shared with its node"},
      {"granted at CIV", granted->get(), attack, R::Agency("MLI/police", "CIV"),
       true, "terrorism-intel", "shared with its node"},
      {"granted at GHA through group GULF", granted->get(), attack,
       R::Agency("MLI/police", "GHA"), true, "terrorism-intel", ""},
      {"not granted at INTERPOL", granted->get(), attack,
       R::Agency("MLI/police", "INTERPOL"), false, "own-node",
       "no remote_access with ROLE_SUBSCRIBER at INTERPOL"},
      {"a grant does not widen what it receives: not shared with MLI",
       granted->get(), Facts("crime.local", "RESTRICTED", {}, false, "", "CIV/police"),
       R::Agency("MLI/police", "CIV"), false, "local-only", "not shared with node MLI"},
      {"unknown node", plain.get(), attack, R::Agency("MLI/police", "XXX"),
       false, "unknown-node", "not in the policy"},
  };
  for (const VenueCase& c : cases) {
    Decision d = c.policy->Decide(c.alert, c.recipient);
    Check(d, Case{c.what, c.alert, c.recipient, c.allowed, c.rule, c.reason},
          *c.policy);
  }

  // Publishing: the same check, before the topic rule.
  const AlertFacts advisory = Facts("terrorism.advisory", "RESTRICTED");
  Decision d = plain->DecidePublish(Facts("terrorism.attack", "SECRET"),
                                    "GHA/police", "CIV");
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "own-node");
  CHECK(d.reason.find("GHA/police acts only at its own node GHA, not at CIV") !=
        std::string::npos);
  CHECK(plain->DecidePublish(Facts("terrorism.attack", "SECRET"), "GHA/police",
                             "GHA").rule != "own-node");
  CHECK((*granted)->DecidePublish(Facts("migration.flows", "RESTRICTED"),
                                  "INTERPOL/nccb", "CIV").allowed);
  // A remote grant of subscription is not one of publication.
  CHECK((*granted)->DecideAccess("MLI/police", internal::v1::ROLE_PUBLISHER, "CIV").rule ==
        "role");
  d = (*granted)->DecideAccess("INTERPOL/nccb", internal::v1::ROLE_SUBSCRIBER, "CIV");
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "own-node");
  d = (*granted)->DecideAccess("INTERPOL/nccb", internal::v1::ROLE_PUBLISHER, "CIV");
  CHECK(d.allowed);
  CHECK(d.rule == "remote-access");

  // The entry points at CIV.
  auto civ = AtNode("CIV");
  auto civ_granted = AtNode("CIV", GrantPolicy());
  v1::Alert alert;
  alert.set_topic("terrorism.attack");
  alert.set_classification("SECRET");
  alert.set_originator("CIV/intel");
  CHECK(civ->MayReceive(Identity{"MLI", "police"}, alert).rule == "own-node");
  CHECK(civ->MaySubscribe(Identity{"MLI", "police"}, ">").rule == "own-node");
  CHECK(civ->MayPublish(Identity{"GHA", "police"}, alert).rule == "own-node");
  CHECK(civ_granted->MayReceive(Identity{"MLI", "police"}, alert).allowed);
  CHECK(civ_granted->MaySubscribe(Identity{"MLI", "police"}, ">").allowed);
  (void)advisory;
}

TEST_CASE("An auditor audits its own node only unless granted; metadata above its clearance needs a grant") {
  auto civ = AtNode("CIV");
  auto mli = AtNode("MLI", GrantPolicy());
  auto gha = AtNode("GHA", GrantPolicy());
  Decision d = civ->MayAudit(Identity{"CIV", "audit"});
  CHECK(d.allowed);
  CHECK(d.rule == "own-node");
  d = AtNode("MLI")->MayAudit(Identity{"CIV", "audit"});
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "own-node");
  CHECK(d.reason.find("CIV/audit acts only at its own node CIV, not at MLI") !=
        std::string::npos);
  d = mli->MayAudit(Identity{"GHA", "audit"});
  CHECK(d.allowed);
  CHECK(d.rule == "remote-access");
  CHECK(civ->MayAudit(Identity{"CIV", "police"}).rule == "role");
  CHECK(civ->MayAudit(Identity{"CIV", ""}).rule == "unknown-agency");

  // CIV/audit is SECRET: sees everything; an unknown level is above anyone.
  CHECK(civ->MaySeeAuditMetadata(Identity{"CIV", "audit"}, "SECRET").allowed);
  d = civ->MaySeeAuditMetadata(Identity{"CIV", "audit"}, "TOP-SECRET");
  CHECK_FALSE(d.allowed);
  CHECK(d.rule == "audit-clearance");
  CHECK_FALSE(civ->MaySeeAuditMetadata(Identity{"CIV", "police"}, "UNCLASSIFIED").allowed);
  // GHA/audit is RESTRICTED but granted all metadata.
  CHECK(gha->MaySeeAuditMetadata(Identity{"GHA", "audit"}, "SECRET").allowed);
  CHECK(gha->MaySeeAuditMetadata(Identity{"GHA", "audit"}, "").rule ==
        "audit-metadata");
  // Without the grant, a RESTRICTED auditor does not see CONFIDENTIAL.
  std::string text = GrantPolicy();
  text.replace(text.find("audit_metadata_above_clearance: true"),
               std::string("audit_metadata_above_clearance: true").size(), "");
  auto plain_gha = AtNode("GHA", text);
  CHECK(plain_gha->MaySeeAuditMetadata(Identity{"GHA", "audit"}, "RESTRICTED").allowed);
  d = plain_gha->MaySeeAuditMetadata(Identity{"GHA", "audit"}, "CONFIDENTIAL");
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == "GHA/audit clearance RESTRICTED < record classification CONFIDENTIAL");
}

TEST_CASE("NodeInfo: only identities the policy knows and that act here; counts for admins and auditors") {
  const std::string text = std::string(kTestPolicy) +
      R"(agencies { id: "CIV/focal" roles: [ROLE_SUBSCRIBER, ROLE_ADMIN] clearance: "SECRET" })";
  auto civ = AtNode("CIV", text);
  CHECK(civ->MayGetNodeInfo(Identity{"CIV", "police"}).allowed);
  CHECK(civ->MayGetNodeInfo(Identity{"CIV", "audit"}).allowed);
  CHECK(civ->MayGetNodeInfo(Identity{"MLI", ""}).allowed);  // a node of the policy
  CHECK(civ->MayGetNodeInfo(Identity{"XXX", ""}).rule == "unknown-node");
  CHECK(civ->MayGetNodeInfo(Identity{"CIV", "nobody"}).rule == "unknown-agency");
  CHECK(civ->MayGetNodeInfo(Identity{"MLI", "police"}).rule == "own-node");

  CHECK_FALSE(civ->MaySeeNodeCounts(Identity{"CIV", "police"}).allowed);
  CHECK_FALSE(civ->MaySeeNodeCounts(Identity{"MLI", ""}).allowed);
  CHECK(civ->MaySeeNodeCounts(Identity{"CIV", "focal"}).allowed);
  CHECK(civ->MaySeeNodeCounts(Identity{"CIV", "audit"}).allowed);
  CHECK_FALSE(AtNode("MLI", text)->MaySeeNodeCounts(Identity{"CIV", "audit"}).allowed);
}

TEST_CASE("RetentionFor uses the deciding rule") {
  auto policy = TestPolicy();
  CHECK(policy->RetentionFor("terrorism.attack") == absl::Hours(24));
  CHECK(policy->RetentionFor("terrorism.advisory") == absl::ZeroDuration());
  CHECK(policy->RetentionFor("weather.rain") == absl::ZeroDuration());
}

TEST_CASE("AlertFacts::Of copies what a decision needs") {
  v1::Alert alert;
  alert.set_topic("a.b");
  alert.set_classification("SECRET");
  alert.add_releasable_to("MLI");
  alert.set_orcon(true);
  alert.set_tlp("RED");
  alert.set_originator("CIV/police");
  alert.set_payload("secret payload");
  AlertFacts f = AlertFacts::Of(alert);
  CHECK(f.topic == "a.b");
  CHECK(f.classification == "SECRET");
  CHECK(f.releasable_to == std::vector<std::string>{"MLI"});
  CHECK(f.orcon);
  CHECK(f.tlp == "RED");
  CHECK(f.originator == "CIV/police");
}

}  // namespace
}  // namespace ibsm::broker
// clang-format on
