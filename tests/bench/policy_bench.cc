// ibsm-policy-bench [POLICY_FILE | --generated]: times Policy::Decide over a
// realistic policy -- the given file, else policies/ibsm-west-africa.textproto
// from the source tree, else a generated one (15 nodes, 60 agencies, 30 rules)
// -- and prints one JSON line {"decisions":N,"ns_per_decision":X}. Details go
// to stderr. Not run by ctest.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "ibsm/internal/v1/policy.pb.h"
#include "ibsm/policy.h"

#ifndef IBSM_SOURCE_DIR
#define IBSM_SOURCE_DIR "."
#endif

namespace {

using ibsm::AlertFacts;
using ibsm::Policy;
using ibsm::Recipient;

std::string GeneratedPolicy() {
  const char* kNodes[] = {"CIV", "GHA",      "TGO",   "BEN", "NGA",
                          "SEN", "GIN",      "MRT",   "MLI", "BFA",
                          "NER", "INTERPOL", "UNODC", "IOM", "UNOCT"};
  const char* kAgencies[] = {"police", "customs", "gendarmerie", "intel"};
  const char* kTopics[] = {"terrorism", "trafficking", "migration",
                           "border",    "documents",   "cyber"};
  std::string t =
      "name: \"generated\"\n"
      "classification_levels: [\"UNCLASSIFIED\", \"RESTRICTED\", "
      "\"CONFIDENTIAL\", \"SECRET\"]\n";
  const char* kLevels[] = {"UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL",
                           "SECRET"};
  for (int n = 0; n < 15; ++n) {
    bool intl = n >= 11;
    absl::StrAppend(&t, "nodes { id: \"", kNodes[n], "\" groups: \"",
                    intl ? "INTL" : "ECOWAS", "\"",
                    n >= 7 && !intl ? " groups: \"SAHEL\"" : "",
                    " clearance: \"", kLevels[intl ? 2 : 3], "\"",
                    n == 11 ? " hub: true" : "", " }\n");
    for (int a = 0; a < 4; ++a) {
      absl::StrAppend(
          &t, "agencies { id: \"", kNodes[n], "/", kAgencies[a],
          "\" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: \"",
          kLevels[1 + (a + n) % 3], "\" }\n");
    }
  }
  for (int r = 0; r < 30; ++r) {
    const char* top = kTopics[r % 6];
    std::string pattern = r < 6
                              ? absl::StrCat(top, ".>")
                              : absl::StrCat(top, ".sub", r, r % 2 ? ".*" : "");
    absl::StrAppend(
        &t, "topic_rules { name: \"rule", r, "\" topics: \"", pattern,
        "\" publishers: \"@ECOWAS\" subscribers: [\"*/police\", \"*/",
        kAgencies[r % 4], "\", \"@SAHEL\"] max_classification: \"",
        kLevels[1 + r % 3], "\" share { to: \"ECOWAS\" max_classification: \"",
        kLevels[1 + r % 3],
        "\" } share { to: [\"INTERPOL\", \"UNODC\"] "
        "max_classification: \"RESTRICTED\" } }\n");
  }
  return t;
}

// A concrete topic matched by `pattern`.
std::string Concrete(const std::string& pattern) {
  std::string out = absl::StrReplaceAll(pattern, {{"*", "x"}, {">", "y.z"}});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // "--generated" forces the generated policy.
  const bool generated = argc > 1 && std::string(argv[1]) == "--generated";
  std::string path = argc > 1 && !generated
                         ? argv[1]
                         : std::string(IBSM_SOURCE_DIR) +
                               "/policies/ibsm-west-africa.textproto";
  absl::StatusOr<std::shared_ptr<const Policy>> policy;
  std::string source = path;
  if (!generated && std::ifstream(path).good()) {
    policy = Policy::Load(path);
  } else if (argc > 1 && !generated) {
    std::cerr << "ibsm-policy-bench: cannot open " << path << "\n";
    return 2;
  } else {
    source = "generated (15 nodes, 60 agencies, 30 rules)";
    policy = Policy::Parse(GeneratedPolicy(), "generated");
  }
  if (!policy.ok()) {
    std::cerr << "ibsm-policy-bench: " << policy.status().message() << "\n";
    return 1;
  }
  const Policy& p = **policy;
  const auto& proto = p.proto();

  // Alerts: every pattern of every rule made concrete, at every level, with
  // and without releasability and ORCON, from a random agency.
  std::mt19937 rng(42);
  std::vector<AlertFacts> alerts;
  for (const auto& rule : proto.topic_rules()) {
    for (const std::string& pattern : rule.topics()) {
      for (const std::string& level : p.classification_levels()) {
        for (int variant = 0; variant < 3; ++variant) {
          AlertFacts a;
          a.topic = Concrete(pattern);
          a.classification = level;
          a.originator = proto.agencies(rng() % proto.agencies_size()).id();
          if (variant >= 1) {
            a.releasable_to = {proto.nodes(rng() % proto.nodes_size()).id(),
                               proto.nodes(rng() % proto.nodes_size()).id()};
          }
          a.orcon = variant == 2;
          alerts.push_back(std::move(a));
        }
      }
    }
  }
  std::vector<Recipient> recipients;
  for (const auto& agency : proto.agencies()) {
    recipients.push_back(Recipient::Agency(agency.id()));
  }
  for (const auto& node : proto.nodes())
    recipients.push_back(Recipient::Node(node.id()));
  if (alerts.empty() || recipients.empty()) {
    std::cerr
        << "ibsm-policy-bench: the policy has no rules or no recipients\n";
    return 1;
  }

  // Warm up, then time at least ~1 s of decisions.
  size_t allowed = 0;
  for (const AlertFacts& a : alerts)
    allowed += p.Decide(a, recipients[0]).allowed;
  uint64_t decisions = 0;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = std::chrono::nanoseconds(0);
  allowed = 0;
  while (elapsed < std::chrono::seconds(1)) {
    for (const AlertFacts& a : alerts) {
      for (const Recipient& r : recipients) {
        allowed += p.Decide(a, r).allowed;
        ++decisions;
      }
    }
    elapsed = std::chrono::steady_clock::now() - start;
  }
  double ns =
      static_cast<double>(elapsed.count()) / static_cast<double>(decisions);
  std::cerr << "policy: " << source << " version " << p.version() << ", "
            << proto.nodes_size() << " nodes, " << proto.agencies_size()
            << " agencies, " << proto.topic_rules_size() << " rules; "
            << alerts.size() << " alerts x " << recipients.size()
            << " recipients; " << (100.0 * allowed / decisions)
            << "% allowed\n";
  std::printf("{\"decisions\":%llu,\"ns_per_decision\":%.1f}\n",
              static_cast<unsigned long long>(decisions), ns);
  return 0;
}
