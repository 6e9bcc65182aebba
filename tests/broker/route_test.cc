// Tests of RoutePeers (broker/publish/route.h): which peers get an alert,
// for local publishes and for relays, under a small real policy.
#include "publish/route.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "ibsm/policy.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm::broker {
namespace {

constexpr char kPolicy[] = R"pb(
  name: "route-test"
  classification_levels: [ "UNCLASSIFIED", "RESTRICTED", "SECRET" ]
  nodes {
    id: "CIV"
    kind: NODE_KIND_NATIONAL
    groups: "ECOWAS"
    clearance: "SECRET"
  }
  nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: "AES" clearance: "SECRET" }
  nodes {
    id: "NER"
    kind: NODE_KIND_NATIONAL
    groups: "AES"
    clearance: "RESTRICTED"
  }
  nodes {
    id: "INTERPOL"
    kind: NODE_KIND_INTERNATIONAL
    groups: "INTL"
    clearance: "SECRET"
    hub: true
  }
  agencies {
    id: "CIV/police"
    roles: [ ROLE_PUBLISHER ]
    clearance: "SECRET"
  }
  topic_rules {
    name: "border"
    topics: [ "border.>" ]
    publishers: [ "CIV/police" ]
    max_classification: "SECRET"
    share {
      to: [ "AES", "INTL" ]
      max_classification: "SECRET"
    }
  }
)pb";

std::shared_ptr<const Policy> PolicyAt(const std::string& node) {
  auto policy = Policy::Parse(kPolicy, "route-test.textproto", node);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  return *policy;
}

v1::Alert Alert(const std::string& classification) {
  v1::Alert alert;
  alert.set_id("a1");
  alert.set_topic("border.incident");
  alert.set_classification(classification);
  alert.set_originator("CIV/police");
  alert.set_signature("signed");
  return alert;
}

const std::vector<std::string> kCivPeers = {"MLI", "NER", "INTERPOL"};

TEST_CASE("RoutePeers: a local publish goes to every peer the policy allows",
          "[route]") {
  auto civ = PolicyAt("CIV");
  CHECK(RoutePeers(*civ, Alert("RESTRICTED"), {}, "CIV", kCivPeers) ==
        kCivPeers);
  // NER is cleared up to RESTRICTED only.
  CHECK(RoutePeers(*civ, Alert("SECRET"), {}, "CIV", kCivPeers) ==
        std::vector<std::string>{"MLI", "INTERPOL"});
  v1::Alert released = Alert("RESTRICTED");
  released.add_releasable_to("MLI");
  CHECK(RoutePeers(*civ, released, {}, "CIV", kCivPeers) ==
        std::vector<std::string>{"MLI"});
}

TEST_CASE("RoutePeers: unsigned alerts never cross a link", "[route]") {
  auto civ = PolicyAt("CIV");
  v1::Alert alert = Alert("RESTRICTED");
  alert.clear_signature();
  CHECK(RoutePeers(*civ, alert, {}, "CIV", kCivPeers).empty());
}

TEST_CASE(
    "RoutePeers: only a hub relays, never ORCON or TLP:RED, and never "
    "back along the hops",
    "[route]") {
  const std::vector<std::string> hub_peers = {"CIV", "MLI", "NER"};
  auto interpol = PolicyAt("INTERPOL");
  const std::vector<std::string> hops = {"CIV"};
  CHECK(RoutePeers(*interpol, Alert("RESTRICTED"), hops, "INTERPOL",
                   hub_peers) == std::vector<std::string>{"MLI", "NER"});
  v1::Alert orcon = Alert("RESTRICTED");
  orcon.set_orcon(true);
  orcon.add_releasable_to("INTERPOL");
  orcon.add_releasable_to("MLI");
  CHECK(RoutePeers(*interpol, orcon, hops, "INTERPOL", hub_peers).empty());
  v1::Alert red = Alert("RESTRICTED");
  red.set_tlp("RED");
  red.add_releasable_to("INTERPOL");
  red.add_releasable_to("MLI");
  CHECK(RoutePeers(*interpol, red, hops, "INTERPOL", hub_peers).empty());
  // MLI is not a hub: it relays nothing it received.
  auto mli = PolicyAt("MLI");
  CHECK(RoutePeers(*mli, Alert("RESTRICTED"), hops, "MLI",
                   {"CIV", "INTERPOL", "NER"})
            .empty());
}

}  // namespace
}  // namespace ibsm::broker
