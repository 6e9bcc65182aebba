// `ibsm audit journey`: the pure part. What the command gathered from each
// node (the alert's audit records, each with whether it was proven against
// the node's signed checkpoint, and the checkpoint's verification) goes in;
// one timeline over all nodes, a verdict line per node, and the --json
// object come out. No I/O, so the rendering of every record kind --
// federation sends, receives and link events included -- is unit-tested
// from hand-built records (tests/client-lib/journey_test.cc).
// Thread-compatible.
#ifndef IBSM_CLIENT_LIB_CLI_JOURNEY_H_
#define IBSM_CLIENT_LIB_CLI_JOURNEY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ibsm/v1/audit.pb.h"

namespace ibsm::cli {

// The alert of --alert ORIGINATOR/ID, e.g. "CIV/police/civ-1".
struct AlertRef {
  std::string originator;  // "CIV/police"
  std::string id;          // "civ-1"
  std::string text() const { return originator + "/" + id; }
};

// Parses ORIGINATOR/ID: split at the last '/' (alert ids hold none); the
// originator must be an agency id NODE/AGENCY and the id a valid alert id.
// INVALID_ARGUMENT saying what is wrong otherwise.
absl::StatusOr<AlertRef> ParseAlertRef(absl::string_view value);

// Whether `record` is about `alert`: its alert fields name it, or (a
// delivery of several alerts) one of its listed alerts does.
bool RecordConcernsAlert(const v1::AuditRecord& record, const AlertRef& alert);

// The peers a node's records of the alert name: recipients of sends, the
// "queued for: A, B" of a publish and the "relayed to: A, B" of a receive.
// Sorted, without repeats. Their link events are part of the journey.
std::vector<std::string> JourneyPeers(
    const std::vector<v1::AuditRecord>& records);

// Whether `record` (a LINK_UP/LINK_DOWN) concerns one of `peers`.
bool IsLinkEventFor(const v1::AuditRecord& record,
                    const std::vector<std::string>& peers);

// How one shown record stands against the node's latest signed checkpoint.
enum class ProofState {
  kProven,  // its inclusion proof leads to the verified checkpoint's root
  kNotYetInCheckpoint,  // written after that checkpoint: not a failure
  kFailed,              // the proof does not hold (see `problem`)
};

struct JourneyRecord {
  v1::AuditRecord record;  // as proven when kProven
  ProofState proof = ProofState::kNotYetInCheckpoint;
  std::string problem;  // for kFailed
};

// What the command learnt at one --target.
struct NodeJourney {
  std::string target;  // HOST:PORT as given
  std::string node;    // the node's id (Node.GetInfo); empty if unknown
  // Set when the node could not be asked to the end (unreachable, a call
  // refused or failed): the node's part is incomplete, the command fails.
  std::string error;
  // The checkpoint the records were proven against.
  bool has_checkpoint = false;  // false: the node has signed none yet
  uint64_t checkpoint_size = 0;
  int64_t checkpoint_time_unix = 0;
  bool checkpoint_verified = false;    // signature by a trusted --node-cert
  std::string checkpoint_problem;      // why it did not verify
  std::vector<JourneyRecord> records;  // time order not required
  // Records about the alert served redacted (above the auditor's
  // clearance): counted, not shown.
  uint64_t redacted = 0;
  // The query stopped at the per-node bound before the end of the trail.
  bool truncated = false;
  uint64_t record_bound = 0;  // the bound, for the note
};

// One line of the timeline.
struct JourneyEvent {
  absl::Time time;
  std::string node;
  uint64_t index = 0;  // the record's index in that node's trail
  std::string kind;    // "published", "sent", "received", ... (for JSON)
  std::string text;    // "sent to MLI (acked)"
  // The record it stands for, in the NodeJourney given to Timeline (which
  // must outlive the event); null from DescribeRecord.
  const JourneyRecord* source = nullptr;
};

// The event one record stands for at `node`.
JourneyEvent DescribeRecord(const v1::AuditRecord& record,
                            absl::string_view node);

// Every record of every node, ordered by time (then node, then index).
// The events point into `nodes`, which must outlive them.
std::vector<JourneyEvent> Timeline(const std::vector<NodeJourney>& nodes);

// True when the node's part did not verify or could not be gathered.
bool NodeFailed(const NodeJourney& node);

// "CIV: checkpoint 1234 records, signature verified, 5 records proven" or
// the failure, plus notes (not yet in a checkpoint, redacted, bound).
std::string NodeVerdict(const NodeJourney& node);

// The human-readable journey: a header, the timeline and one verdict line
// per node.
std::string FormatJourney(const AlertRef& alert,
                          const std::vector<NodeJourney>& nodes);

// {"alert":...,"events":[...],"nodes":[...]} on one line.
std::string JourneyJson(const AlertRef& alert,
                        const std::vector<NodeJourney>& nodes);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_JOURNEY_H_
