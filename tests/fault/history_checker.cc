#include "tests/fault/history_checker.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ibsm/topic.h"

namespace ibsm::testing {
namespace {

AlertFacts FactsOf(const HistoryEvent& e) {
  AlertFacts facts;
  facts.topic = e.topic;
  facts.classification = e.classification;
  facts.releasable_to = e.releasable_to;
  facts.orcon = e.orcon;
  facts.tlp = e.tlp;
  facts.originator = e.originator;
  return facts;
}

std::string NodeOf(const std::string& agency) {
  return agency.substr(0, agency.find('/'));
}

// A definite refusal: the node said no and stored nothing. Every other
// failure (the transport, a deadline, a node going away) leaves the outcome
// unknown.
bool IsDefiniteRefusal(const std::string& code) {
  static const std::set<std::string> kDefinite = {
      "INVALID_ARGUMENT",   "PERMISSION_DENIED", "FAILED_PRECONDITION",
      "RESOURCE_EXHAUSTED", "ALREADY_EXISTS",    "NOT_FOUND",
      "OUT_OF_RANGE",       "UNAUTHENTICATED",   "UNIMPLEMENTED"};
  return kDefinite.count(code) > 0;
}

int RuleRank(const std::string& rule) {
  static const std::vector<std::string> kOrder = {"unknown-subscriber",
                                                  "unknown-alert",
                                                  "unentitled",
                                                  "refused-delivered",
                                                  "content",
                                                  "duplicate",
                                                  "lost",
                                                  "retraction",
                                                  "order"};
  auto it = std::find(kOrder.begin(), kOrder.end(), rule);
  return static_cast<int>(it - kOrder.begin());
}

}  // namespace

bool HistoryChecker::PublishedAlert::acked() const {
  for (const auto& [n, a] : attempts) {
    if (a.outcome == "ack") return true;
  }
  return false;
}

uint64_t HistoryChecker::PublishedAlert::acked_sequence() const {
  for (const auto& [n, a] : attempts) {
    if (a.outcome == "ack") return a.sequence;
  }
  return 0;
}

bool HistoryChecker::PublishedAlert::unknown() const {
  if (acked()) return false;
  for (const auto& [n, a] : attempts) {
    // A request without a result (the harness stopped first) is unknown too.
    if (a.outcome != "error" || !IsDefiniteRefusal(a.code)) return true;
  }
  return false;
}

HistoryChecker::HistoryChecker(std::shared_ptr<const Policy> policy)
    : policy_(std::move(policy)) {}

absl::Status HistoryChecker::Add(const HistoryEvent& e) {
  auto need = [&](const std::string& value, const char* field) {
    return value.empty() ? absl::InvalidArgumentError(absl::StrCat(
                               "a '", e.type, "' event needs '", field, "'"))
                         : absl::OkStatus();
  };
  if (e.type == "topology") {
    for (const std::string& n : e.nodes) nodes_.push_back(n);
    for (const std::string& link : e.links) {
      std::vector<std::string> ends = absl::StrSplit(link, '>');
      if (ends.size() != 2 || ends[0].empty() || ends[1].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("link '", link, "' is not DIALER>ACCEPTOR"));
      }
      links_[ends[0]].insert(ends[1]);
      links_[ends[1]].insert(ends[0]);
    }
  } else if (e.type == "subscriber") {
    for (auto [v, f] : {std::pair{&e.subscriber, "subscriber"},
                        {&e.node, "node"},
                        {&e.agency, "agency"}}) {
      if (auto s = need(*v, f); !s.ok()) return s;
    }
    for (const std::string& t : e.topics) {
      if (!TopicPattern::Parse(t).ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("subscriber ", e.subscriber, ": bad pattern ", t));
      }
    }
    subscribers_[e.subscriber].declared = e;
  } else if (e.type == "publish") {
    for (auto [v, f] : {std::pair{&e.originator, "originator"},
                        {&e.id, "id"},
                        {&e.publisher, "publisher"}}) {
      if (auto s = need(*v, f); !s.ok()) return s;
    }
    PublishedAlert& a = alerts_[e.alert_key()];
    if (a.request.type.empty()) {
      a.request = e;
      a.publisher = e.publisher;
    }
    a.digests.insert(e.digest);
    a.attempts[e.attempt];  // a request without a result stays unknown
  } else if (e.type == "publish_result") {
    for (auto [v, f] : {std::pair{&e.originator, "originator"},
                        {&e.id, "id"},
                        {&e.outcome, "outcome"}}) {
      if (auto s = need(*v, f); !s.ok()) return s;
    }
    if (e.outcome != "ack" && e.outcome != "error" && e.outcome != "timeout") {
      return absl::InvalidArgumentError(absl::StrCat(
          "outcome '", e.outcome, "' is not ack, error or timeout"));
    }
    auto it = alerts_.find(e.alert_key());
    if (it == alerts_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a result for ", e.alert_key(), " before any publish of it"));
    }
    Attempt& attempt = it->second.attempts[e.attempt];
    bool first_ack = e.outcome == "ack" && !it->second.acked();
    attempt.outcome = e.outcome;
    attempt.code = e.code;
    attempt.sequence = e.sequence;
    attempt.duplicate = e.duplicate;
    if (first_ack) acked_order_[it->second.publisher].push_back(e.alert_key());
  } else if (e.type == "delivery") {
    for (auto [v, f] : {std::pair{&e.originator, "originator"},
                        {&e.id, "id"},
                        {&e.subscriber, "subscriber"}}) {
      if (auto s = need(*v, f); !s.ok()) return s;
    }
    auto it = subscribers_.find(e.subscriber);
    if (it == subscribers_.end()) {
      orphan_deliveries_.push_back(e);
    } else {
      it->second.deliveries.push_back(e);
      it->second.delivered.insert(e.alert_key());
    }
  } else if (e.type == "fault") {
    if (auto s = need(e.fault, "fault"); !s.ok()) return s;
    ++faults_[e.fault];
  } else if (e.type == "stat") {
    if (auto s = need(e.name, "name"); !s.ok()) return s;
    stats_[e.name] += e.value;
  } else if (e.type == "decision") {
    // Written by the harness from Decisions(): output, not input.
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown event type '", e.type, "'"));
  }
  return absl::OkStatus();
}

HistoryChecker::Reach HistoryChecker::Reaches(const HistoryEvent& alert,
                                              const std::string& node) const {
  const std::string origin = NodeOf(alert.originator);
  if (node == origin) return {true, "its origin node"};
  const AlertFacts facts = FactsOf(alert);
  // Breadth first over paths (a node may be reached over several, and a
  // path matters: an alert never goes back to a node on it).
  struct Path {
    std::string at;
    std::vector<std::string> hops;
  };
  std::deque<Path> queue = {{origin, {origin}}};
  std::string why_not = absl::StrCat("no link path from ", origin, " to ", node,
                                     " in the topology");
  while (!queue.empty()) {
    Path p = std::move(queue.front());
    queue.pop_front();
    if (p.at != origin) {
      Decision relay = policy_->Decide(facts, Recipient::Node(p.at, true));
      if (!relay.allowed) {
        why_not = absl::StrCat(p.at, " may not relay it: ", relay.reason);
        continue;
      }
    }
    auto links = links_.find(p.at);
    if (links == links_.end()) continue;
    for (const std::string& next : links->second) {
      if (std::find(p.hops.begin(), p.hops.end(), next) != p.hops.end()) {
        continue;
      }
      Decision hold = policy_->Decide(facts, Recipient::Node(next, false));
      if (!hold.allowed) {
        if (next == node) {
          why_not = absl::StrCat(node, " may not hold it: ", hold.reason);
        }
        continue;
      }
      std::vector<std::string> hops = p.hops;
      hops.push_back(next);
      if (next == node) return {true, absl::StrJoin(hops, ">")};
      queue.push_back({next, std::move(hops)});
    }
  }
  return {false, why_not};
}

HistoryChecker::Reach HistoryChecker::Entitled(const HistoryEvent& alert,
                                               const Subscriber& s) const {
  std::vector<TopicPattern> patterns;
  for (const std::string& t : s.declared.topics) {
    if (auto p = TopicPattern::Parse(t); p.ok()) patterns.push_back(*p);
  }
  if (!MatchesAny(patterns, alert.topic)) {
    return {false, absl::StrCat("topic ", alert.topic,
                                " is not among the subscription's patterns")};
  }
  Reach reach = Reaches(alert, s.declared.node);
  if (!reach.allowed) return reach;
  Decision d = policy_->Decide(
      FactsOf(alert), Recipient::Agency(s.declared.agency, s.declared.node));
  if (!d.allowed) return {false, d.reason};
  return {true, absl::StrCat("via ", reach.reason, "; ", d.reason)};
}

bool HistoryChecker::Delivered(const std::string& alert,
                               const Subscriber& s) const {
  return s.delivered.count(alert) > 0;
}

uint64_t HistoryChecker::MissingDeliveries() const {
  uint64_t missing = 0;
  for (const auto& [key, a] : alerts_) {
    if (!a.acked()) continue;
    for (const auto& [name, s] : subscribers_) {
      if (Entitled(a.request, s).allowed && !Delivered(key, s)) ++missing;
    }
  }
  return missing;
}

std::vector<EntitlementDecision> HistoryChecker::Decisions() const {
  std::vector<EntitlementDecision> out;
  for (const auto& [key, a] : alerts_) {
    for (const auto& [name, s] : subscribers_) {
      Reach r = Entitled(a.request, s);
      out.push_back({key, name, r.allowed, r.reason});
    }
  }
  return out;
}

CheckReport HistoryChecker::Check() const {
  CheckReport report;
  report.faults = faults_;
  report.stats = stats_;
  auto violate = [&](std::string rule, std::string alert, const Subscriber* s,
                     std::string detail) {
    report.violations.push_back({std::move(rule), std::move(alert),
                                 s ? s->declared.subscriber : std::string(),
                                 s ? s->declared.node : std::string(),
                                 std::move(detail)});
  };

  for (const auto& [key, a] : alerts_) {
    ++report.alerts_published;
    report.publish_attempts += a.attempts.size();
    if (a.acked()) {
      ++report.acknowledged;
    } else if (a.unknown()) {
      ++report.unknown;
    } else {
      ++report.refused;
    }
    for (const auto& [n, attempt] : a.attempts) {
      if (attempt.outcome == "ack" && attempt.duplicate) {
        ++report.acked_as_duplicate;
      }
    }
    if (a.digests.size() > 1) {
      violate("content", key, nullptr,
              absl::StrCat("published with ", a.digests.size(),
                           " different contents"));
    }
  }

  for (const HistoryEvent& d : orphan_deliveries_) {
    violate("unknown-subscriber", d.alert_key(), nullptr,
            absl::StrCat("delivered to '", d.subscriber,
                         "', which no subscriber event declares"));
  }

  std::set<std::string> unknown_delivered;
  for (const auto& [name, s] : subscribers_) {
    std::map<std::string, int> seen;
    for (const HistoryEvent& d : s.deliveries) {
      ++report.deliveries;
      const std::string key = d.alert_key();
      if (++seen[key] == 2) {
        violate("duplicate", key, &s,
                "handed to the application more than once");
      }
      // Entitlement from the facts the subscriber was handed: whatever
      // was published, this is what it saw.
      Reach r = Entitled(d, s);
      if (!r.allowed) {
        violate("unentitled", key, &s,
                absl::StrCat("clearance ", s.declared.clearance,
                             ", not entitled: ", r.reason));
      }
      auto it = alerts_.find(key);
      if (it == alerts_.end()) {
        violate("unknown-alert", key, &s, "no publish event for it");
        continue;
      }
      const PublishedAlert& a = it->second;
      if (!a.digests.count(d.digest)) {
        violate("content", key, &s,
                absl::StrCat("handed with content ", d.digest,
                             ", published as ", *a.digests.begin()));
      }
      if (!a.acked() && !a.unknown()) {
        violate("refused-delivered", key, &s,
                "every publish of it was refused, yet it was handed out");
      }
      if (a.unknown()) unknown_delivered.insert(key);
    }
  }
  report.unknown_delivered = unknown_delivered.size();

  for (const auto& [key, a] : alerts_) {
    if (!a.acked()) continue;
    for (const auto& [name, s] : subscribers_) {
      Reach r = Entitled(a.request, s);
      if (!r.allowed) continue;
      ++report.expected_deliveries;
      if (Delivered(key, s)) {
        ++report.checked;
      } else {
        ++report.lost;
        violate("lost", key, &s,
                absl::StrCat("acknowledged, entitled (", r.reason,
                             "), never handed over"));
      }
    }
    // Retractions and updates take the route of their original.
    if (!a.request.references.empty() &&
        (a.request.kind == "RETRACTION" || a.request.kind == "UPDATE")) {
      for (const auto& [name, s] : subscribers_) {
        if (Delivered(a.request.references, s) && !Delivered(key, s)) {
          violate("retraction", key, &s,
                  absl::StrCat("got ", a.request.references, " but not its ",
                               a.request.kind, " ", key));
        }
      }
    }
  }

  // Order: a publisher publishes one alert after another, so its
  // acknowledged alerts have increasing sequences at its node, and a
  // subscriber there is handed them in that order (docs/client-library.md;
  // remote nodes promise order only per priority and route, not checked).
  for (const auto& [publisher, keys] : acked_order_) {
    std::map<std::string, size_t> rank;
    for (size_t i = 0; i < keys.size(); ++i) rank.emplace(keys[i], i);
    const std::string origin =
        keys.empty() ? "" : NodeOf(alerts_.at(keys[0]).request.originator);
    // The node's own part: each acknowledgement names a higher sequence
    // than the one before (a retry held already names its first one,
    // which came after the previous alert's acknowledgement too).
    uint64_t previous = 0;
    for (const std::string& key : keys) {
      const uint64_t sequence = alerts_.at(key).acked_sequence();
      if (sequence <= previous) {
        violate("order", key, nullptr,
                absl::StrCat("acknowledged by ", origin, " with sequence ",
                             sequence, " after an earlier alert of ", publisher,
                             " got ", previous));
        break;
      }
      previous = sequence;
    }
    for (const auto& [name, s] : subscribers_) {
      if (s.declared.node != origin) continue;
      size_t last = 0;
      std::string last_key;
      std::set<std::string> handed;
      for (const HistoryEvent& d : s.deliveries) {
        auto it = rank.find(d.alert_key());
        if (it == rank.end() || !handed.insert(d.alert_key()).second) continue;
        if (!last_key.empty() && it->second < last) {
          violate("order", d.alert_key(), &s,
                  absl::StrCat("handed after ", last_key, ", which ", publisher,
                               " published later"));
          break;
        }
        last = it->second;
        last_key = d.alert_key();
      }
    }
  }

  std::stable_sort(report.violations.begin(), report.violations.end(),
                   [](const Violation& x, const Violation& y) {
                     return RuleRank(x.rule) < RuleRank(y.rule);
                   });
  return report;
}

std::string FormatReport(const CheckReport& r) {
  std::string out = absl::StrCat(
      "alerts published ", r.alerts_published, " (", r.publish_attempts,
      " attempts); acknowledged ", r.acknowledged, ", unknown ", r.unknown,
      " (of which delivered ", r.unknown_delivered, "), refused ", r.refused,
      "; acks of a retry already held ", r.acked_as_duplicate, "\n",
      "deliveries handed to applications ", r.deliveries,
      "; expected (acknowledged x entitled) ", r.expected_deliveries,
      ", checked ", r.checked, ", lost ", r.lost, "\n");
  if (!r.faults.empty()) {
    absl::StrAppend(&out, "faults:");
    for (const auto& [kind, n] : r.faults) {
      absl::StrAppend(&out, " ", kind, "=", n);
    }
    absl::StrAppend(&out, "\n");
  }
  if (!r.stats.empty()) {
    absl::StrAppend(&out, "stats:");
    for (const auto& [name, v] : r.stats) {
      absl::StrAppend(&out, " ", name, "=", v);
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "violations: ", r.violations.size(), "\n");
  for (const Violation& v : r.violations) {
    absl::StrAppend(&out, "  ", v.rule, " ", v.alert);
    if (!v.subscriber.empty()) {
      absl::StrAppend(&out, " at ", v.node, " subscriber ", v.subscriber);
    }
    absl::StrAppend(&out, ": ", v.detail, "\n");
  }
  return out;
}

std::string ReportJson(const CheckReport& r) {
  std::string out = absl::StrCat(
      "{\"alerts_published\":", r.alerts_published,
      ",\"publish_attempts\":", r.publish_attempts,
      ",\"acknowledged\":", r.acknowledged, ",\"unknown\":", r.unknown,
      ",\"unknown_delivered\":", r.unknown_delivered,
      ",\"refused\":", r.refused,
      ",\"acked_as_duplicate\":", r.acked_as_duplicate,
      ",\"deliveries\":", r.deliveries,
      ",\"expected_deliveries\":", r.expected_deliveries,
      ",\"checked\":", r.checked, ",\"lost\":", r.lost,
      ",\"violations\":", r.violations.size(), ",\"faults\":{");
  bool first = true;
  for (const auto& [kind, n] : r.faults) {
    absl::StrAppend(&out, first ? "" : ",", "\"", kind, "\":", n);
    first = false;
  }
  absl::StrAppend(&out, "},\"stats\":{");
  first = true;
  for (const auto& [name, v] : r.stats) {
    absl::StrAppend(&out, first ? "" : ",", "\"", name, "\":", v);
    first = false;
  }
  absl::StrAppend(&out, "}}");
  return out;
}

}  // namespace ibsm::testing
