// Offline verification of an audit trail export (ibsm.v1.AuditExport, see
// proto/ibsm/v1/audit.proto): what `ibsm audit verify FILE --node-cert CERT`
// runs, the check of a single inclusion proof (`ibsm audit proof --index`),
// and of an export of the stored log against the trail. Pure code, no I/O;
// thread-safe.
//
// What a successful verification proves: every record of
// [first_index, tree_size) is, byte for byte and in this order, the record
// the node committed to in its signed checkpoint of tree_size records (and,
// with a kept checkpoint, that the node's trail has only grown since that
// checkpoint). Records before first_index are covered by their subtree hashes
// only. What it does not prove: that the node recorded every action it took
// (a node that never writes a record leaves nothing to detect), nor anything
// about records appended after the checkpoint.
//
// The checks, in this order; the first that fails is reported:
//   1. the checkpoint note is signed by the node key under `origin`, and the
//      export's convenience fields (tree_size, root_hash, time) and node_id
//      match it;
//   2. one pass over the records in index order: each parses as an
//      AuditRecord whose `index` is its position (first_index + i) and whose
//      `node` is the node, and whose leaf hash equals the node's stored leaf
//      hash; the first position that fails is first_bad_index (a deleted,
//      reordered, altered or inserted record). Then the record count: a
//      missing tail names its first missing index, an extra record the first
//      index beyond the checkpoint;
//   3. the root rebuilt from left_subtree_hashes and the records' own leaf
//      hashes equals the signed root. If 2 passed and 3 fails, records and
//      stored leaves were rewritten together: detected, but not located;
//   4. with a kept checkpoint of size M: M > tree_size is a roll-back; with
//      first_index <= M <= tree_size the root of size M is rebuilt from the
//      (now authenticated) export and compared with the kept root (simpler
//      and stronger than a proof); with M < first_index the export's
//      consistency proof from size M is verified.
//
// Status errors are reserved for inputs that say nothing about the node's
// trail: an invalid `origin`, a kept checkpoint that is malformed or not
// signed by `node_key` (INVALID_ARGUMENT), and a kept checkpoint that the
// export cannot be checked against (FAILED_PRECONDITION: it starts after the
// kept size and carries no consistency proof from it). Everything wrong
// with the export itself is a report with ok == false.
#ifndef IBSM_AUDIT_VERIFY_H_
#define IBSM_AUDIT_VERIFY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ibsm/checkpoint.h"
#include "ibsm/merkle.h"
#include "ibsm/v1/audit.pb.h"

namespace ibsm {

// Whether `record` accounts for an alert stored in the log under its
// sequence: an accepted publish at this node, or an alert stored from a
// federation link (an allowed AUDIT_FEDERATION_RECEIVE with a sequence; a
// duplicate offer's record repeats the original's sequence).
bool StoresAlert(const v1::AuditRecord& record);

struct VerifyReport {
  bool ok = false;
  // Records of the export that passed check 2 (all of them when ok).
  uint64_t records_checked = 0;
  uint64_t tree_size = 0;  // of the export's checkpoint (0 if unsigned)
  // The first record found altered, missing or out of place.
  std::optional<uint64_t> first_bad_index;
  // Empty when ok. Otherwise human-readable; starts with "record <i>: "
  // when first_bad_index is set.
  std::string problem;
  bool earlier_checkpoint_consistent = false;  // when one was given

  // Context for printing. root and time_unix are those of the signed
  // checkpoint, set once its signature verified (checkpoint_verified).
  bool checkpoint_verified = false;
  uint64_t first_index = 0;
  Hash root{};
  int64_t time_unix = 0;
  std::optional<uint64_t> kept_tree_size;  // when a kept checkpoint was given
  int64_t kept_time_unix = 0;
};

// Verifies `exported` against the node's public key and the log's origin
// ("ibsm/<NODE>"; the export's node_id must be <NODE>). `kept_checkpoint_note`,
// when not null, is a signed checkpoint note of the same log the auditor
// kept from earlier, verified with `kept_key` when not null (the key the
// node signed with at that time, across a key rotation) and else with
// `node_key`. See the file comment for the checks and errors.
absl::StatusOr<VerifyReport> VerifyExport(
    const v1::AuditExport& exported, const VerifyingKey& node_key,
    absl::string_view origin, const std::string* kept_checkpoint_note,
    const VerifyingKey* kept_key = nullptr);

// What an inclusion proof (ibsm.v1.InclusionProof, as the node's Auditor
// service returns it) shows.
enum class InclusionVerdict {
  // The audit path leads from the record to the root of a checkpoint signed
  // by the node key (and trusted by trust_signer, when given).
  kVerified,
  // The path leads to the root of the checkpoint the node returned, but no
  // key was given to check its signature: proves nothing about the node.
  kUnsigned,
  // The node returned no signed checkpoint of the proof's tree size.
  kNoCheckpoint,
  // The checkpoint does not verify with the node key; `problem` says why.
  kBadSignature,
  // The proof does not hold, or trust_signer refused; `problem` says why.
  kFailed,
};

struct InclusionReport {
  InclusionVerdict verdict = InclusionVerdict::kFailed;
  std::string problem;  // for kBadSignature and kFailed
  Hash leaf_hash{};     // LeafHash of the proof's record bytes
  // The checkpoint's root: the signed one once its signature verified, else
  // the one its note names (unset when there is no checkpoint, or its note
  // names none).
  std::optional<Hash> root;
  bool record_parsed = false;
  v1::AuditRecord record;  // when record_parsed
  // Set once the checkpoint's signature verified.
  std::optional<Checkpoint> signed_checkpoint;
};

// Checks `proof` locally. With `node_key`, the checkpoint must be signed by
// it under `origin` ("ibsm/<NODE>"), then `trust_signer` (when not empty)
// decides whether the key's certificate is trusted as of the checkpoint
// (its non-OK status fails the proof with that message), then the
// checkpoint must be of the proof's tree size. Then, in this order: the
// checkpoint's note, root_hash and tree size agree; every path hash is 32
// bytes; the record parses and claims the proof's index; and the RFC 9162
// path leads from its leaf to the root. Never fails on untrusted input:
// every problem is a verdict.
InclusionReport VerifyInclusionProof(
    const v1::InclusionProof& proof, const VerifyingKey* node_key,
    absl::string_view origin,
    const std::function<absl::Status(const Checkpoint&)>& trust_signer = {});

// The result of checking an export of the stored log (ibsm.v1.AlertExport)
// against an audit export.
struct AlertsReport {
  bool ok = false;
  uint64_t alerts_checked = 0;        // stored alerts matching their record
  uint64_t removed_by_retention = 0;  // absent, with a recorded removal
  // Sequences the audit export says nothing about (published after its
  // checkpoint, or before its first_index): neither good nor bad.
  uint64_t not_covered = 0;
  std::optional<uint64_t> first_bad_sequence;
  // Empty when ok; else starts with "sequence <n>: " when one is named.
  std::string problem;
};

// Checks every digest of `alerts` against the publish and retention records
// of `trail`, which the caller has verified with VerifyExport first (this
// function trusts its records). A stored alert must match the first accepted
// AUDIT_PUBLISH record of its sequence (id, originator, topic,
// classification, payload SHA-256) and must not have been removed by
// retention; an absent one must have an AUDIT_RETENTION_REMOVE record. The
// export's sequences must be contiguous and of the trail's node.
AlertsReport VerifyAlerts(const v1::AuditExport& trail,
                          const v1::AlertExport& alerts);

}  // namespace ibsm

#endif  // IBSM_AUDIT_VERIFY_H_
