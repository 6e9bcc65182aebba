// The history of a fault-harness run: what every publisher asked and was
// answered, what every subscriber was handed, which faults were injected,
// as JSON lines (one object per line, one file per role). The schema is in
// docs/reliability.md ("Histories"); HistoryEvent is its one C++ form.
//
//   HistoryWriter out(dir + "/publisher-CIV_police-0.jsonl");
//   HistoryEvent e; e.type = "publish"; ... out.Write(e);
//   absl::StatusOr<std::vector<HistoryEvent>> all = ReadHistoryFile(path);
//
// Encoding and decoding are pure (EncodeHistoryLine, ParseHistoryLine);
// only HistoryWriter and ReadHistoryFile touch files. A HistoryWriter is safe
// for concurrent use; every other function is stateless.
#ifndef IBSM_TESTS_FAULT_HISTORY_H_
#define IBSM_TESTS_FAULT_HISTORY_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm::testing {

// One line of a history. `type` says which fields matter:
//   "topology"       nodes, links ("DIALER>ACCEPTOR"), hubs are the policy's
//   "subscriber"     subscriber, node, agency, clearance, durable, topics
//   "publish"        a request: publisher, node, attempt, and the alert's
//                    facts (originator, id, topic, classification,
//                    releasable_to, orcon, tlp, kind, references, digest)
//   "publish_result" publisher, originator, id, attempt, outcome ("ack",
//                    "error", "timeout"), code, message; for "ack":
//                    sequence, duplicate, forwarded_to
//   "delivery"       subscriber, node, agency, clearance, sequence and the
//                    alert's facts as handed to the application
//   "fault"          fault ("sigkill", "restart", "sigstop", "sigcont",
//                    "link_drop", "link_stall", "link_delay", "link_reset",
//                    "link_pass", "disk_full", "disk_free", "skipped"),
//                    target (a node or "DIALER>ACCEPTOR"), message
//   "stat"           name, node, value: a figure the harness read at the end
// Empty strings, zero numbers, false and empty lists are left out of the
// line and read back as such.
struct HistoryEvent {
  std::string type;
  int64_t time_us = 0;  // wall clock, microseconds since the epoch

  std::string publisher;   // "CIV/police#0": one publishing thread
  std::string subscriber;  // "MLI/police:fault": agency and durable name
  std::string node;        // where it happened
  std::string agency;      // the subscriber's agency
  std::string clearance;   // the subscriber's clearance in the policy
  std::string durable;     // the durable name
  std::vector<std::string> topics;  // subscription patterns

  // The alert.
  std::string originator;
  std::string id;
  std::string topic;
  std::string classification;
  std::vector<std::string> releasable_to;
  bool orcon = false;
  std::string tlp;
  std::string kind;        // "", "UPDATE", "RETRACTION", "RELATED"
  std::string references;  // "ORIGINATOR/ID" of the referenced alert
  std::string digest;      // hex SHA-256 of CanonicalAlertBytes

  // A publish attempt and its result.
  int64_t attempt = 0;
  std::string outcome;  // "ack", "error", "timeout"
  std::string code;     // the status code's name: "UNAVAILABLE"
  std::string message;
  uint64_t sequence = 0;  // publish_result: the log sequence; delivery too
  bool duplicate = false;
  std::vector<std::string> forwarded_to;

  // topology
  std::vector<std::string> nodes;
  std::vector<std::string> links;

  // fault and stat
  std::string fault;
  std::string target;
  std::string name;
  int64_t value = 0;

  // "ORIGINATOR/ID".
  std::string alert_key() const { return originator + "/" + id; }
};

// Fills the alert fields of `event` from `alert` (its originator must be
// set: the digest covers it).
void SetAlertFacts(const v1::Alert& alert, HistoryEvent* event);
// The hex SHA-256 of the alert's canonical bytes: equal for a retry of the
// same content, different for any change but created_at and the signature.
std::string ContentDigest(const v1::Alert& alert);

// One JSON object, no newline.
std::string EncodeHistoryLine(const HistoryEvent& event);
// INVALID_ARGUMENT naming what is wrong for a line that is not such an
// object (unknown fields are refused, so a typo cannot hide an event).
absl::StatusOr<HistoryEvent> ParseHistoryLine(absl::string_view line);

// Every line of `path`, in order. INVALID_ARGUMENT "path:line: reason" for
// a bad line; an empty last line is allowed. At most `max_lines` lines
// (RESOURCE_EXHAUSTED beyond): a history is bounded like any input.
absl::StatusOr<std::vector<HistoryEvent>> ReadHistoryFile(
    const std::string& path, size_t max_lines = 50'000'000);

// Appends lines to one file, each flushed to the kernel as it is written
// (so a history survives the harness being killed; it is not fsynced: the
// harness's own machine does not lose power). Safe for concurrent use.
class HistoryWriter {
 public:
  // Opens `path` for appending; Write reports a failure to open.
  explicit HistoryWriter(std::string path);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  // Stamps time_us (when unset) and appends the line. The first error
  // (open or write) is kept and returned by this and every later call.
  absl::Status Write(HistoryEvent event);
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_FAULT_HISTORY_H_
