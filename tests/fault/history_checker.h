// The one history checker of the fault harness (docs/reliability.md,
// "History checker"): it reads the events of a run (tests/fault/history.h)
// and says whether the federation kept its promises. Pure logic: events and
// a Policy go in, a CheckReport comes out; no file, clock or network.
//
//   HistoryChecker checker(policy);           // ibsm::Policy, no local node
//   for (const HistoryEvent& e : events) checker.Add(e);
//   CheckReport report = checker.Check();
//   if (!report.violations.empty()) ... report.violations[0] ...
//
// Rules (each violation names its rule):
//   lost              an acknowledged alert never reached a durable
//                     subscriber entitled to it, local or remote
//   unentitled        a subscriber was handed an alert it is not entitled to
//   order             a publisher's node acknowledged its alerts with
//                     sequences that do not increase, or a subscriber at
//                     that node was handed them out of order
//   duplicate         the client library handed one alert twice to one
//                     subscriber
//   content           an alert was handed with other content than published
//                     (or one id was published with two contents)
//   retraction        a subscriber that got an alert did not get its
//                     acknowledged retraction (or update)
//   refused-delivered an alert whose every publish was refused was handed out
//   unknown-alert     a subscriber was handed an alert nobody published
//   unknown-subscriber a delivery names a subscriber no event declared
// Outcomes: an alert is acknowledged when any attempt was acknowledged;
// otherwise unknown when any attempt timed out or failed in transit
// (UNAVAILABLE, DEADLINE_EXCEEDED, ...): never counted as success or as
// failure; otherwise refused.
//
// Entitlement is decided with the project's policy engine: subscriber S
// (agency A at node N) is entitled to alert X when X can reach N -- N is
// X's origin node, or a path of topology links leads there on which every
// step is allowed (Decide(X, Node(next))), and every node that passes X on
// that is not its origin may relay it (Decide(X, Node(self, relay))) -- and
// Decide(X, Agency(A, N)) allows, and X's topic matches S's patterns.
//
// A HistoryChecker is not thread-safe; it keeps what Add gave it.
#ifndef IBSM_TESTS_FAULT_HISTORY_CHECKER_H_
#define IBSM_TESTS_FAULT_HISTORY_CHECKER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ibsm/policy.h"
#include "tests/fault/history.h"

namespace ibsm::testing {

struct Violation {
  std::string rule;        // see above: "lost", "unentitled", ...
  std::string alert;       // ORIGINATOR/ID
  std::string subscriber;  // when one is concerned
  std::string node;        // the subscriber's node, when one is concerned
  std::string detail;      // what was expected and what happened
};

// One entitlement the checker decided, for the history ("decision" events).
struct EntitlementDecision {
  std::string alert;
  std::string subscriber;
  bool allowed = false;
  std::string reason;  // the policy's reason, or why the alert cannot reach
};

struct CheckReport {
  uint64_t alerts_published = 0;  // distinct alerts requested
  uint64_t publish_attempts = 0;
  uint64_t acknowledged = 0;         // alerts with an acknowledged attempt
  uint64_t unknown = 0;              // alerts with a timeout and no ack
  uint64_t refused = 0;              // alerts whose every attempt was refused
  uint64_t acked_as_duplicate = 0;   // acks of a retry the node held already
  uint64_t deliveries = 0;           // handed to applications
  uint64_t expected_deliveries = 0;  // (acked alert, entitled subscriber)
  uint64_t checked = 0;              // of those, found
  uint64_t lost = 0;                 // of those, missing
  uint64_t unknown_delivered = 0;    // unknown alerts that were delivered
  std::map<std::string, uint64_t> faults;  // by fault kind
  std::map<std::string, int64_t> stats;    // "stat" events summed by name
  std::vector<Violation> violations;       // in rule order, then alert
};

class HistoryChecker {
 public:
  // `policy` decides entitlement (a tool's policy: Policy::Parse without a
  // local node). Must not be null.
  explicit HistoryChecker(std::shared_ptr<const Policy> policy);

  // Takes one event; events of one publisher or one subscriber must come
  // in the order they happened (one file per role keeps it). INVALID_ARGUMENT
  // for an event the checker cannot use (an unknown type, a publish without
  // an id, ...): a history it cannot read is a failed check.
  absl::Status Add(const HistoryEvent& event);

  CheckReport Check() const;
  // The (acknowledged alert, entitled subscriber) pairs not delivered yet:
  // what a harness waits for before it checks.
  uint64_t MissingDeliveries() const;
  // Every (alert, subscriber) entitlement, sorted.
  std::vector<EntitlementDecision> Decisions() const;

 private:
  struct Attempt {
    std::string outcome;  // "", "ack", "error", "timeout"
    std::string code;
    uint64_t sequence = 0;
    bool duplicate = false;
  };
  struct PublishedAlert {
    HistoryEvent request;  // the first request: the alert's facts
    std::string publisher;
    std::set<std::string> digests;
    std::map<int64_t, Attempt> attempts;
    bool acked() const;
    uint64_t acked_sequence() const;  // of the first acknowledged attempt
    bool unknown() const;             // not acked, some attempt not refused
  };
  struct Subscriber {
    HistoryEvent declared;
    std::vector<HistoryEvent> deliveries;  // in the order handed over
    std::set<std::string> delivered;       // their ORIGINATOR/ID
  };
  struct Reach {
    bool allowed = false;
    std::string reason;
  };

  Reach Entitled(const HistoryEvent& alert, const Subscriber& s) const;
  Reach Reaches(const HistoryEvent& alert, const std::string& node) const;
  bool Delivered(const std::string& alert, const Subscriber& s) const;

  std::shared_ptr<const Policy> policy_;
  std::vector<std::string> nodes_;
  std::map<std::string, std::set<std::string>> links_;  // both ways
  std::map<std::string, PublishedAlert> alerts_;        // by ORIGINATOR/ID
  // Per publisher, its alerts in the order their acks came.
  std::map<std::string, std::vector<std::string>> acked_order_;
  std::map<std::string, Subscriber> subscribers_;
  std::vector<HistoryEvent> orphan_deliveries_;  // unknown subscriber
  std::map<std::string, uint64_t> faults_;
  std::map<std::string, int64_t> stats_;
};

// The report as text: the figures, then each violation on its own line.
std::string FormatReport(const CheckReport& report);
// The figures as one "stat"-free JSON object (for docs and CI logs).
std::string ReportJson(const CheckReport& report);

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_FAULT_HISTORY_CHECKER_H_
