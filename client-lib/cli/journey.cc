#include "journey.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "alert_format.h"
#include "ibsm/alert_rules.h"
#include "ibsm/spiffe_id.h"
#include "json_writer.h"
#include "table.h"

namespace ibsm::cli {
namespace {

absl::Time RecordTime(const v1::AuditRecord& r) {
  return absl::FromUnixSeconds(r.time().seconds()) +
         absl::Nanoseconds(r.time().nanos());
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// " (rule R, policy V)", leaving out what the record does not name.
std::string RuleAndPolicy(const v1::AuditRecord& r) {
  std::vector<std::string> parts;
  if (!r.rule().empty()) parts.push_back(absl::StrCat("rule ", r.rule()));
  if (!r.policy_version().empty()) {
    parts.push_back(absl::StrCat("policy ", r.policy_version()));
  }
  if (parts.empty()) return "";
  return absl::StrCat(" (", absl::StrJoin(parts, ", "), ")");
}

// The "; "-separated parts of a record's detail.
std::vector<std::string> DetailParts(const v1::AuditRecord& r) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(r.detail(), ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

// The peers a detail part "<prefix> A, B" lists; empty when the part does
// not start with `prefix`.
std::vector<std::string> ListedPeers(absl::string_view part,
                                     absl::string_view prefix) {
  std::vector<std::string> out;
  if (!absl::ConsumePrefix(&part, prefix)) return out;
  for (absl::string_view peer : absl::StrSplit(part, ',')) {
    peer = absl::StripAsciiWhitespace(peer);
    if (!peer.empty()) out.emplace_back(peer);
  }
  return out;
}

constexpr absl::string_view kQueuedFor = "queued for:";
constexpr absl::string_view kRelayedTo = "relayed to:";

std::string OrUnknown(absl::string_view s) {
  return s.empty() ? std::string("(unknown)") : std::string(s);
}

std::string WithReason(absl::string_view head, absl::string_view reason) {
  if (reason.empty()) return std::string(head);
  return absl::StrCat(head, ": ", reason);
}

std::string ProofText(ProofState p) {
  switch (p) {
    case ProofState::kProven:
      return "proven";
    case ProofState::kNotYetInCheckpoint:
      return "not yet in a checkpoint";
    case ProofState::kFailed:
      break;
  }
  return "PROOF FAILED";
}

std::string ProofName(ProofState p) {
  switch (p) {
    case ProofState::kProven:
      return "proven";
    case ProofState::kNotYetInCheckpoint:
      return "not_yet_in_checkpoint";
    case ProofState::kFailed:
      break;
  }
  return "failed";
}

struct ProofCounts {
  uint64_t proven = 0;
  uint64_t pending = 0;
  uint64_t failed = 0;
  const JourneyRecord* first_failed = nullptr;
};

ProofCounts CountProofs(const NodeJourney& node) {
  ProofCounts c;
  for (const JourneyRecord& r : node.records) {
    switch (r.proof) {
      case ProofState::kProven:
        ++c.proven;
        break;
      case ProofState::kNotYetInCheckpoint:
        ++c.pending;
        break;
      case ProofState::kFailed:
        ++c.failed;
        if (c.first_failed == nullptr) c.first_failed = &r;
        break;
    }
  }
  return c;
}

std::string NodeName(const NodeJourney& node) {
  return node.node.empty() ? node.target : node.node;
}

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// Why the node's part failed, or nullopt.
std::optional<std::string> NodeProblem(const NodeJourney& node) {
  if (!node.error.empty()) return node.error;
  if (node.has_checkpoint && !node.checkpoint_verified) {
    return absl::StrCat("checkpoint of ", node.checkpoint_size,
                        " records does not verify: ", node.checkpoint_problem);
  }
  ProofCounts c = CountProofs(node);
  if (c.first_failed != nullptr) {
    return absl::StrCat(
        "record ", c.first_failed->record.index(),
        " is not proven: ", c.first_failed->problem,
        c.failed > 1 ? absl::StrCat(" (and ", c.failed - 1, " more records)")
                     : std::string());
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<AlertRef> ParseAlertRef(absl::string_view value) {
  const size_t slash = value.rfind('/');
  if (slash == absl::string_view::npos || slash == 0 ||
      slash + 1 == value.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--alert: '", value,
        "' is not ORIGINATOR/ID (e.g. CIV/police/civ-1: the originating "
        "agency, then the alert id)"));
  }
  AlertRef ref{std::string(value.substr(0, slash)),
               std::string(value.substr(slash + 1))};
  absl::StatusOr<Identity> who =
      ParseSpiffeId(absl::StrCat("spiffe://ibsm/", ref.originator));
  if (!who.ok() || !who->is_agency()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--alert: the originator '", ref.originator,
                     "' is not an agency id NODE/AGENCY (e.g. CIV/police)"));
  }
  if (absl::Status s = ValidateAlertId(ref.id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--alert: ", s.message()));
  }
  return ref;
}

bool RecordConcernsAlert(const v1::AuditRecord& record, const AlertRef& alert) {
  if (record.alert_id() == alert.id && record.originator() == alert.originator)
    return true;
  return std::any_of(record.alerts().begin(), record.alerts().end(),
                     [&](const v1::AuditedAlert& a) {
                       return a.alert_id() == alert.id &&
                              a.originator() == alert.originator;
                     });
}

std::vector<std::string> JourneyPeers(
    const std::vector<v1::AuditRecord>& records) {
  std::vector<std::string> peers;
  for (const v1::AuditRecord& r : records) {
    if (r.action() == v1::AUDIT_FEDERATION_SEND && !r.recipient().empty()) {
      peers.push_back(r.recipient());
    }
    if (r.action() != v1::AUDIT_PUBLISH &&
        r.action() != v1::AUDIT_FEDERATION_RECEIVE) {
      continue;
    }
    for (const std::string& part : DetailParts(r)) {
      for (absl::string_view prefix : {kQueuedFor, kRelayedTo}) {
        for (std::string& p : ListedPeers(part, prefix)) {
          peers.push_back(std::move(p));
        }
      }
    }
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

bool IsLinkEventFor(const v1::AuditRecord& record,
                    const std::vector<std::string>& peers) {
  if (record.action() != v1::AUDIT_FEDERATION_LINK_UP &&
      record.action() != v1::AUDIT_FEDERATION_LINK_DOWN) {
    return false;
  }
  return std::find(peers.begin(), peers.end(), record.recipient()) !=
         peers.end();
}

JourneyEvent DescribeRecord(const v1::AuditRecord& r, absl::string_view node) {
  JourneyEvent e;
  e.time = RecordTime(r);
  e.node = std::string(node);
  e.index = r.index();
  const std::string detail = absl::StrJoin(DetailParts(r), "; ");
  switch (r.action()) {
    case v1::AUDIT_PUBLISH:
      if (!r.allowed()) {
        e.kind = "publish_refused";
        e.text = absl::StrCat("refused at publish (", OrUnknown(r.actor()),
                              "): ", r.reason(), RuleAndPolicy(r));
      } else if (absl::StartsWith(r.reason(), "duplicate")) {
        e.kind = "published_again";
        e.text = absl::StrCat("published again by ", OrUnknown(r.actor()), ": ",
                              r.reason());
      } else {
        e.kind = "published";
        e.text = absl::StrCat("published by ", OrUnknown(r.actor()),
                              RuleAndPolicy(r));
        if (r.sequence() != 0)
          absl::StrAppend(&e.text, ", sequence ", r.sequence());
        if (!detail.empty()) absl::StrAppend(&e.text, "; ", detail);
      }
      break;
    case v1::AUDIT_FEDERATION_SEND:
      if (r.allowed()) {
        e.kind = "sent";
        e.text = absl::StrCat("sent to ", OrUnknown(r.recipient()), " (acked)");
        if (!detail.empty()) absl::StrAppend(&e.text, "; ", detail);
      } else if (absl::StrContains(r.reason(), "expired")) {
        e.kind = "not_sent";
        e.text = WithReason(
            absl::StrCat("not sent to ", OrUnknown(r.recipient())), r.reason());
      } else {
        e.kind = "refused_by_peer";
        e.text = WithReason(
            absl::StrCat("refused by ", OrUnknown(r.recipient())), r.reason());
      }
      break;
    case v1::AUDIT_FEDERATION_RECEIVE:
      if (r.allowed()) {
        e.kind = "received";
        std::vector<std::string> hops, rest;
        for (const std::string& part : DetailParts(r)) {
          (absl::StartsWith(part, "hops") ? hops : rest).push_back(part);
        }
        e.text = absl::StrCat("received from ", OrUnknown(r.actor()));
        if (!hops.empty()) {
          absl::StrAppend(&e.text, " (", absl::StrJoin(hops, "; "), ")");
        }
        if (!rest.empty())
          absl::StrAppend(&e.text, "; ", absl::StrJoin(rest, "; "));
        // The committer's reason for an offer of an alert held already.
        if (absl::StartsWith(r.reason(), "duplicate")) {
          e.kind = "received_duplicate";
          absl::StrAppend(&e.text, "; held already, stored once");
        }
      } else {
        e.kind = "refused_from_peer";
        e.text = WithReason(absl::StrCat("refused from ", OrUnknown(r.actor())),
                            r.reason());
      }
      break;
    case v1::AUDIT_DELIVER:
      if (r.allowed()) {
        e.kind = "delivered";
        e.text = absl::StrCat("delivered to ", OrUnknown(r.recipient()));
      } else {
        e.kind = "not_delivered";
        e.text = WithReason(
            absl::StrCat("not delivered to ", OrUnknown(r.recipient())),
            r.reason());
      }
      break;
    case v1::AUDIT_RETENTION_REMOVE:
      e.kind = "retention_removal";
      e.text = WithReason("removed by retention", r.reason());
      break;
    case v1::AUDIT_INTEGRITY_FAILURE:
      e.kind = "integrity_failure";
      e.text = WithReason("INTEGRITY FAILURE", r.reason());
      break;
    case v1::AUDIT_FEDERATION_LINK_UP:
      e.kind = "link_up";
      e.text = absl::StrCat("link to ", OrUnknown(r.recipient()), " up");
      if (!detail.empty()) absl::StrAppend(&e.text, " (", detail, ")");
      break;
    case v1::AUDIT_FEDERATION_LINK_DOWN:
      e.kind = "link_down";
      e.text = WithReason(
          absl::StrCat("link to ", OrUnknown(r.recipient()), " down"),
          r.reason());
      break;
    default: {
      std::string name = v1::AuditAction_Name(r.action());
      if (name.empty()) name = absl::StrCat("action ", r.action());
      absl::string_view action = name;
      absl::ConsumePrefix(&action, "AUDIT_");
      e.kind = absl::AsciiStrToLower(action);
      e.text = WithReason(absl::StrCat(e.kind, " by ", OrUnknown(r.actor()),
                                       r.allowed() ? "" : " (refused)"),
                          r.reason());
      break;
    }
  }
  return e;
}

std::vector<JourneyEvent> Timeline(const std::vector<NodeJourney>& nodes) {
  std::vector<JourneyEvent> events;
  for (const NodeJourney& n : nodes) {
    for (const JourneyRecord& r : n.records) {
      JourneyEvent e = DescribeRecord(r.record, NodeName(n));
      e.source = &r;
      events.push_back(std::move(e));
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const JourneyEvent& a, const JourneyEvent& b) {
                     return std::tie(a.time, a.node, a.index) <
                            std::tie(b.time, b.node, b.index);
                   });
  return events;
}

bool NodeFailed(const NodeJourney& node) {
  return NodeProblem(node).has_value();
}

std::string NodeVerdict(const NodeJourney& node) {
  std::string name = NodeName(node);
  if (!node.node.empty()) absl::StrAppend(&name, " (", node.target, ")");
  if (std::optional<std::string> problem = NodeProblem(node)) {
    return absl::StrCat(name, ": FAILED: ", *problem);
  }
  const ProofCounts c = CountProofs(node);
  std::string out;
  if (node.has_checkpoint) {
    out = absl::StrCat(name, ": checkpoint ", node.checkpoint_size,
                       " records, signature verified, ",
                       Plural(c.proven, "record", "records"), " proven");
  } else {
    out = absl::StrCat(name, ": no signed checkpoint yet, nothing proven");
  }
  if (c.pending > 0) {
    absl::StrAppend(&out, ", ", Plural(c.pending, "record", "records"),
                    " not yet in a checkpoint");
  }
  if (node.records.empty())
    absl::StrAppend(&out, "; the node has no record of the alert");
  if (node.redacted > 0) {
    absl::StrAppend(&out, "; ", Plural(node.redacted, "record", "records"),
                    " about alert ids like it served redacted (above your "
                    "clearance), not shown");
  }
  if (node.truncated) {
    absl::StrAppend(&out, "; stopped after ", node.record_bound,
                    " records: the journey at this node is incomplete");
  }
  return out;
}

std::string FormatJourney(const AlertRef& alert,
                          const std::vector<NodeJourney>& nodes) {
  std::string out = absl::StrCat("journey of alert ", alert.text(), "\n");
  std::vector<JourneyEvent> events = Timeline(nodes);
  if (events.empty()) {
    absl::StrAppend(&out, "(no records)\n");
  } else {
    using Align = Table::Align;
    Table table({"TIME", "NODE", "INDEX", "PROOF", "EVENT"},
                {Align::kLeft, Align::kLeft, Align::kRight});
    for (const JourneyEvent& e : events) {
      table.AddRow({TimeText(e.time), e.node, absl::StrCat(e.index),
                    ProofText(e.source->proof), e.text});
    }
    absl::StrAppend(&out, table.Format(TerminalWidth()));
  }
  absl::StrAppend(&out, "\n");
  for (const NodeJourney& n : nodes)
    absl::StrAppend(&out, NodeVerdict(n), "\n");
  return out;
}

std::string JourneyJson(const AlertRef& alert,
                        const std::vector<NodeJourney>& nodes) {
  std::vector<std::string> events;
  for (const JourneyEvent& e : Timeline(nodes)) {
    const JourneyRecord& r = *e.source;
    // The event carries its record, as `ibsm audit query --json` prints it.
    absl::StatusOr<std::string> record = ToJsonLine(r.record);
    events.push_back(
        JsonObject()
            .String("time", TimeText(e.time))
            .String("node", e.node)
            .Number("index", e.index)
            .String("kind", e.kind)
            .String("event", e.text)
            .String("proof", ProofName(r.proof))
            .OptionalString("proof_problem",
                            r.proof == ProofState::kFailed
                                ? std::optional<std::string>(r.problem)
                                : std::nullopt)
            .Raw("record", record.ok() ? *record : "null")
            .Close());
  }
  std::vector<std::string> node_json;
  for (const NodeJourney& n : nodes) {
    const ProofCounts c = CountProofs(n);
    const std::optional<std::string> problem = NodeProblem(n);
    JsonObject j;
    j.String("target", n.target)
        .OptionalString("node", n.node.empty()
                                    ? std::nullopt
                                    : std::optional<std::string>(n.node))
        .Bool("ok", !problem.has_value())
        .OptionalString("error", n.error.empty()
                                     ? std::nullopt
                                     : std::optional<std::string>(n.error))
        .OptionalNumber("checkpoint_size",
                        n.has_checkpoint
                            ? std::optional<uint64_t>(n.checkpoint_size)
                            : std::nullopt)
        .OptionalString(
            "checkpoint_time",
            n.has_checkpoint
                ? std::optional<std::string>(
                      TimeText(absl::FromUnixSeconds(n.checkpoint_time_unix)))
                : std::nullopt)
        .Bool("signature_verified", n.has_checkpoint && n.checkpoint_verified)
        .Number("records", n.records.size())
        .Number("records_proven", c.proven)
        .Number("records_not_yet_in_checkpoint", c.pending)
        .Number("records_failed", c.failed)
        .Number("redacted", n.redacted)
        .Bool("truncated", n.truncated)
        .OptionalString("problem", problem)
        .String("verdict", NodeVerdict(n));
    node_json.push_back(j.Close());
  }
  return JsonObject()
      .String("alert", alert.text())
      .String("originator", alert.originator)
      .String("alert_id", alert.id)
      .Raw("events", absl::StrCat("[", absl::StrJoin(events, ","), "]"))
      .Raw("nodes", absl::StrCat("[", absl::StrJoin(node_json, ","), "]"))
      .Close();
}

}  // namespace ibsm::cli
