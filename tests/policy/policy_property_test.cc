// Properties of the decision function over generated policies and alerts
// (seeded, so a failure reproduces): more restrictive alerts never reach more
// recipients, a policy without rules delivers nothing, ORCON never relays.
#include <random>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "google/protobuf/text_format.h"
#include "ibsm/internal/v1/policy.pb.h"
#include "ibsm/policy.h"

namespace ibsm::broker {
namespace {

constexpr int kPolicies = 300;
constexpr int kAlertsPerPolicy = 12;

const std::vector<std::string> kGroups = {"G0", "G1", "G2"};
const std::vector<std::string> kNames = {"police", "customs", "intel"};
const std::vector<std::string> kPatterns = {
    ">", "x.>", "x.y", "x.*", "*.y", "z.*", "x.y.>", "*.*.w", "q", "z.>"};
const std::vector<std::string> kTopics = {"x.y", "x.z", "z.q",   "x.y.w",
                                          "q",   "z.y", "a.b.w", "x"};
const std::vector<std::string> kTlps = {"",      "CLEAR",        "GREEN",
                                        "AMBER", "AMBER+STRICT", "RED"};

struct Generated {
  internal::v1::Policy proto;
  std::vector<std::string> node_ids;
  std::vector<std::string> groups;  // declared by some node
  std::vector<std::string> agency_ids;
};

template <typename T>
const T& Pick(std::mt19937& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

bool Coin(std::mt19937& rng, double p = 0.5) {
  return std::bernoulli_distribution(p)(rng);
}

int Int(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

std::string Principal(std::mt19937& rng, const Generated& g) {
  switch (Int(rng, 0, 4)) {
    case 0:
      return "*";
    case 1:
      if (!g.groups.empty()) return "@" + Pick(rng, g.groups);
      return "*";
    case 2:
      return Pick(rng, g.node_ids) + "/*";
    case 3: {
      std::string id = Pick(rng, g.agency_ids);
      return "*" + id.substr(id.find('/'));
    }
    default:
      return Pick(rng, g.agency_ids);
  }
}

Generated GeneratePolicy(std::mt19937& rng, bool with_rules) {
  Generated g;
  internal::v1::Policy& p = g.proto;
  int levels = Int(rng, 2, 5);
  for (int i = 0; i < levels; ++i)
    p.add_classification_levels("L" + std::to_string(i));
  auto level = [&](int max) { return "L" + std::to_string(Int(rng, 0, max)); };
  int nodes = Int(rng, 2, 6);
  for (int n = 0; n < nodes; ++n) {
    internal::v1::NodeSpec* node = p.add_nodes();
    node->set_id("N" + std::to_string(n));
    g.node_ids.push_back(node->id());
    for (const std::string& group : kGroups) {
      if (Coin(rng, 0.4)) {
        node->add_groups(group);
        if (std::find(g.groups.begin(), g.groups.end(), group) ==
            g.groups.end()) {
          g.groups.push_back(group);
        }
      }
    }
    node->set_clearance(level(levels - 1));
    node->set_hub(Coin(rng, 0.3));
    int agencies = Int(rng, 1, 3);
    for (int a = 0; a < agencies; ++a) {
      internal::v1::AgencySpec* agency = p.add_agencies();
      agency->set_id(node->id() + "/" + kNames[a]);
      g.agency_ids.push_back(agency->id());
      if (Coin(rng, 0.7)) agency->add_roles(internal::v1::ROLE_PUBLISHER);
      if (Coin(rng, 0.8)) agency->add_roles(internal::v1::ROLE_SUBSCRIBER);
      if (Coin(rng, 0.1)) agency->add_roles(internal::v1::ROLE_AUDITOR);
      agency->set_clearance(level(levels - 1));
    }
  }
  if (!with_rules) return g;
  int rules = Int(rng, 1, 7);
  for (int r = 0; r < rules; ++r) {
    internal::v1::TopicRule* rule = p.add_topic_rules();
    rule->set_name("rule" + std::to_string(r));
    int topics = Int(rng, 1, 2);
    for (int t = 0; t < topics; ++t) rule->add_topics(Pick(rng, kPatterns));
    int pubs = Int(rng, 0, 2), subs = Int(rng, 1, 3);
    for (int i = 0; i < pubs; ++i) rule->add_publishers(Principal(rng, g));
    for (int i = 0; i < subs; ++i) rule->add_subscribers(Principal(rng, g));
    int max = Int(rng, 0, levels - 1);
    rule->set_max_classification("L" + std::to_string(max));
    int shares = Int(rng, 0, 2);
    for (int s = 0; s < shares; ++s) {
      internal::v1::Share* share = rule->add_share();
      int to = Int(rng, 1, 2);
      for (int i = 0; i < to; ++i) {
        if (!g.groups.empty() && Coin(rng)) {
          share->add_to(Pick(rng, g.groups));
        } else {
          share->add_to(Pick(rng, g.node_ids));
        }
      }
      share->set_max_classification(level(max));
    }
  }
  return g;
}

AlertFacts GenerateAlert(std::mt19937& rng, const Generated& g) {
  AlertFacts a;
  a.topic = Pick(rng, kTopics);
  a.classification = Pick(
      rng, std::vector<std::string>(g.proto.classification_levels().begin(),
                                    g.proto.classification_levels().end()));
  int releasable = Int(rng, 0, 3);
  for (int i = 0; i < releasable; ++i) {
    if (!g.groups.empty() && Coin(rng, 0.4)) {
      a.releasable_to.push_back(Pick(rng, g.groups));
    } else {
      a.releasable_to.push_back(Pick(rng, g.node_ids));
    }
  }
  a.orcon = Coin(rng, 0.2);
  a.tlp = Pick(rng, kTlps);
  a.originator = Pick(rng, g.agency_ids);
  return a;
}

std::vector<Recipient> AllRecipients(const Generated& g) {
  std::vector<Recipient> out;
  for (const std::string& a : g.agency_ids) out.push_back(Recipient::Agency(a));
  for (const std::string& n : g.node_ids) {
    out.push_back(Recipient::Node(n));
    out.push_back(Recipient::Node(n, true));
  }
  return out;
}

std::shared_ptr<const Policy> Compile(const Generated& g) {
  std::string text;
  REQUIRE(google::protobuf::TextFormat::PrintToString(g.proto, &text));
  auto policy = Policy::Parse(text, "generated");
  INFO(text);
  REQUIRE(policy.ok());
  return *policy;
}

std::string Describe(const AlertFacts& a, const Recipient& r) {
  std::string out = a.topic + " " + a.classification + " from " + a.originator +
                    " to " + r.id + (r.relay ? " (relay)" : "") + " rel=[";
  for (const std::string& e : a.releasable_to) out += e + " ";
  return out + "] orcon=" + (a.orcon ? "1" : "0") + " tlp=" + a.tlp;
}

// Calls `check(policy, alert, recipients)` for every generated case.
template <typename Fn>
void ForAll(uint32_t seed, Fn check) {
  std::mt19937 rng(seed);
  for (int i = 0; i < kPolicies; ++i) {
    Generated g = GeneratePolicy(rng, true);
    auto policy = Compile(g);
    std::vector<Recipient> recipients = AllRecipients(g);
    for (int j = 0; j < kAlertsPerPolicy; ++j) {
      check(g, *policy, GenerateAlert(rng, g), recipients, rng);
    }
  }
}

TEST_CASE("Raising the classification never adds recipients") {
  int allowed = 0;
  ForAll(1, [&](const Generated& g, const Policy& policy, AlertFacts alert,
                const std::vector<Recipient>& recipients, std::mt19937&) {
    const auto& levels = policy.classification_levels();
    for (const Recipient& r : recipients) {
      bool previous = true;
      for (const std::string& level : levels) {
        alert.classification = level;
        bool now = policy.Decide(alert, r).allowed;
        allowed += now;
        INFO(Describe(alert, r));
        REQUIRE((!now || previous));
        previous = now;
      }
    }
  });
  CHECK(allowed > 100);  // the generator produces deliveries at all
}

TEST_CASE("Narrowing releasability never adds recipients") {
  int checked = 0;
  ForAll(2, [&](const Generated& g, const Policy& policy, AlertFacts alert,
                const std::vector<Recipient>& recipients, std::mt19937& rng) {
    // An empty list means "as far as sharing allows", so narrow only to a
    // non-empty list.
    while (alert.releasable_to.size() >= 2) {
      AlertFacts narrower = alert;
      narrower.releasable_to.erase(
          narrower.releasable_to.begin() +
          Int(rng, 0, narrower.releasable_to.size() - 1));
      for (const Recipient& r : recipients) {
        INFO(Describe(alert, r));
        REQUIRE((!policy.Decide(narrower, r).allowed ||
                 policy.Decide(alert, r).allowed));
        ++checked;
      }
      alert = narrower;
    }
  });
  CHECK(checked > 100);
}

TEST_CASE("A policy without rules delivers nothing and accepts nothing") {
  std::mt19937 rng(3);
  for (int i = 0; i < kPolicies; ++i) {
    Generated g = GeneratePolicy(rng, false);
    auto policy = Compile(g);
    for (int j = 0; j < kAlertsPerPolicy; ++j) {
      AlertFacts alert = GenerateAlert(rng, g);
      for (const Recipient& r : AllRecipients(g)) {
        Decision d = policy->Decide(alert, r);
        REQUIRE_FALSE(d.allowed);
      }
      for (const std::string& a : g.agency_ids) {
        REQUIRE_FALSE(policy->DecidePublish(alert, a).allowed);
      }
    }
  }
}

TEST_CASE("ORCON and TLP:RED/AMBER+STRICT alerts are never relayed") {
  ForAll(4, [&](const Generated& g, const Policy& policy, AlertFacts alert,
                const std::vector<Recipient>& recipients, std::mt19937& rng) {
    alert.orcon = true;
    for (const std::string& n : g.node_ids) {
      INFO(Describe(alert, Recipient::Node(n, true)));
      REQUIRE_FALSE(policy.Decide(alert, Recipient::Node(n, true)).allowed);
    }
    alert.orcon = false;
    alert.tlp = Coin(rng) ? "RED" : "AMBER+STRICT";
    for (const std::string& n : g.node_ids) {
      REQUIRE_FALSE(policy.Decide(alert, Recipient::Node(n, true)).allowed);
    }
  });
}

TEST_CASE("Setting ORCON never adds recipients") {
  int removed = 0;
  ForAll(5, [&](const Generated& g, const Policy& policy, AlertFacts alert,
                const std::vector<Recipient>& recipients, std::mt19937&) {
    AlertFacts controlled = alert;
    alert.orcon = false;
    controlled.orcon = true;
    for (const Recipient& r : recipients) {
      bool open = policy.Decide(alert, r).allowed;
      bool orcon = policy.Decide(controlled, r).allowed;
      INFO(Describe(controlled, r));
      REQUIRE((!orcon || open));
      removed += open && !orcon;
    }
  });
  CHECK(removed > 0);  // ORCON does restrict something
}

}  // namespace
}  // namespace ibsm::broker
