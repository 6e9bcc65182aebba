#include "ibsm/audit_verify.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "ibsm/crypto.h"
#include "ibsm/status_macros.h"

namespace ibsm {

bool StoresAlert(const v1::AuditRecord& record) {
  return (record.action() == v1::AUDIT_PUBLISH ||
          record.action() == v1::AUDIT_FEDERATION_RECEIVE) &&
         record.allowed() && record.sequence() > 0;
}
namespace {

constexpr absl::string_view kOriginPrefix = "ibsm/";

using crypto::HashFromBytes;
using crypto::HashView;

std::string ShortHex(const Hash& hash) {
  return absl::StrCat(HexEncode(hash).substr(0, 16), "...");
}

// Text of an untrusted string for a message: escaped and cut.
std::string Quote(absl::string_view s) {
  return absl::StrCat("'", absl::CHexEscape(s.substr(0, 80)),
                      s.size() > 80 ? "...'" : "'");
}

// What is wrong with an export: the text and, when it can be located, the
// first bad record.
struct Problem {
  std::string text;
  std::optional<uint64_t> index = std::nullopt;
};

VerifyReport Fail(VerifyReport report, Problem problem) {
  report.ok = false;
  report.first_bad_index = problem.index;
  report.problem =
      problem.index.has_value()
          ? absl::StrCat("record ", *problem.index, ": ", problem.text)
          : std::move(problem.text);
  return report;
}

// The export's unsigned copy of the checkpoint fields must repeat the signed
// ones: a difference means the file was edited (or the exporter is wrong).
std::string CheckpointFieldsMismatch(const v1::SignedCheckpoint& fields,
                                     const Checkpoint& signed_cp) {
  if (fields.tree_size() != signed_cp.tree_size) {
    return absl::StrCat("checkpoint: the export's tree_size field (",
                        fields.tree_size(), ") differs from its signed note (",
                        signed_cp.tree_size, ")");
  }
  if (fields.root_hash() != HashView(signed_cp.root)) {
    return "checkpoint: the export's root_hash field differs from its signed "
           "note";
  }
  if (!fields.has_time() || fields.time().seconds() != signed_cp.time_unix ||
      fields.time().nanos() != 0) {
    return absl::StrCat(
        "checkpoint: the export's time field (",
        fields.has_time() ? absl::StrCat(fields.time().seconds()) : "unset",
        ") differs from its signed note (", signed_cp.time_unix, ")");
  }
  return "";
}

// " (the export has R records where the checkpoint covers N)" when the
// counts differ, else "".
std::string CountNote(uint64_t have, uint64_t want) {
  if (have == want) return "";
  return absl::StrCat(
      "; the export has ", have, " records where the ", "checkpoint covers ",
      want, have < want ? ": records were removed" : ": records were inserted");
}

// The kept checkpoint, verified; nullopt when none was given.
absl::StatusOr<std::optional<Checkpoint>> VerifyKeptCheckpoint(
    const std::string* note, absl::string_view origin,
    const VerifyingKey& key) {
  if (note == nullptr) return std::nullopt;
  absl::StatusOr<Checkpoint> parsed = VerifyCheckpoint(*note, origin, key);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kept checkpoint: ", parsed.status().message()));
  }
  return *std::move(parsed);
}

// Step 1 after the signature: the export's unsigned fields and its range
// agree with the signed checkpoint `cp` of `origin`.
std::optional<Problem> CheckExportHeader(const v1::AuditExport& exported,
                                         const Checkpoint& cp,
                                         absl::string_view origin,
                                         absl::string_view node) {
  if (std::string m = CheckpointFieldsMismatch(exported.checkpoint(), cp);
      !m.empty()) {
    return Problem{std::move(m)};
  }
  if (exported.node_id() != node) {
    return Problem{absl::StrCat("export: node_id is ",
                                Quote(exported.node_id()),
                                " but the log verified is '", origin, "'")};
  }
  if (exported.first_index() > cp.tree_size) {
    return Problem{absl::StrCat("export: first_index ", exported.first_index(),
                                " is beyond the checkpoint's tree size ",
                                cp.tree_size)};
  }
  return std::nullopt;
}

// Step 2 for record number `index` (`bytes`), the i-th of the export's
// `have` records where the checkpoint covers `want` after first_index:
// parses, is in place, is of `node`, and matches its stored leaf hash when
// the export has one. Sets *leaf to the record's own leaf hash.
std::optional<Problem> CheckRecord(const v1::AuditExport& exported, uint64_t i,
                                   uint64_t want, absl::string_view node,
                                   v1::AuditRecord& record, Hash* leaf) {
  const uint64_t have = static_cast<uint64_t>(exported.records_size());
  const uint64_t index = exported.first_index() + i;
  const std::string& bytes = exported.records(static_cast<int>(i));
  if (i >= want) {
    return Problem{
        absl::StrCat("extra record beyond the checkpoint's tree "
                     "size ",
                     exported.first_index() + want, CountNote(have, want)),
        index};
  }
  if (!record.ParseFromString(bytes)) {
    return Problem{
        absl::StrCat("does not parse as an AuditRecord", CountNote(have, want)),
        index};
  }
  if (record.index() != index) {
    std::string what;
    if (record.index() > index && have < want) {
      what = absl::StrCat("missing (the export jumps to record ",
                          record.index(), " here)");
    } else {
      what = absl::StrCat(
          "out of place (the record at this position "
          "claims index ",
          record.index(), ")");
    }
    return Problem{absl::StrCat(what, CountNote(have, want)), index};
  }
  if (record.node() != node) {
    return Problem{absl::StrCat("written by node ", Quote(record.node()),
                                ", not '", node, "'"),
                   index};
  }
  *leaf = LeafHash(bytes);
  const auto& stored = exported.stored_leaf_hashes();
  if (i >= static_cast<uint64_t>(stored.size())) return std::nullopt;
  const std::string& stored_bytes = stored[static_cast<int>(i)];
  std::optional<Hash> stored_leaf = HashFromBytes(stored_bytes);
  if (!stored_leaf.has_value()) {
    return Problem{absl::StrCat("the export's stored leaf hash has ",
                                stored_bytes.size(), " bytes, not 32"),
                   index};
  }
  if (*leaf != *stored_leaf) {
    return Problem{
        absl::StrCat("altered: its bytes do not match the leaf "
                     "hash the node stored for it (leaf ",
                     ShortHex(*leaf), ", stored ", ShortHex(*stored_leaf), ")",
                     CountNote(have, want)),
        index};
  }
  return std::nullopt;
}

// Step 2: every record in index order (CheckRecord), then the count against
// the checkpoint's `size`. Fills *leaves with the records' own leaf hashes
// and counts report->records_checked.
std::optional<Problem> RecomputeLeaves(const v1::AuditExport& exported,
                                       absl::string_view node, uint64_t size,
                                       std::vector<Hash>* leaves,
                                       VerifyReport* report) {
  const uint64_t first = exported.first_index();
  const uint64_t want = size - first;
  const uint64_t have = static_cast<uint64_t>(exported.records_size());
  leaves->reserve(exported.records_size());
  v1::AuditRecord record;
  for (uint64_t i = 0; i < have; ++i) {
    Hash leaf;
    if (std::optional<Problem> p =
            CheckRecord(exported, i, want, node, record, &leaf);
        p.has_value()) {
      return p;
    }
    leaves->push_back(leaf);
    ++report->records_checked;
  }
  if (have < want) {
    return Problem{absl::StrCat("missing: the export ends after ", have,
                                " records; the checkpoint covers records ",
                                first, " to ", size - 1, ", so records ",
                                first + have, " to ", size - 1, " are missing"),
                   first + have};
  }
  const int stored = exported.stored_leaf_hashes_size();
  if (stored != 0 && static_cast<uint64_t>(stored) != have) {
    return Problem{absl::StrCat("export: ", stored, " stored leaf hashes for ",
                                have, " records (malformed export)")};
  }
  return std::nullopt;
}

// The hashes of a list in the export (`what`: "left subtree", "consistency
// proof"), each 32 bytes.
std::optional<Problem> DecodeHashes(
    const google::protobuf::RepeatedPtrField<std::string>& bytes,
    absl::string_view what, std::vector<Hash>* out) {
  out->reserve(bytes.size());
  for (int i = 0; i < bytes.size(); ++i) {
    std::optional<Hash> h = HashFromBytes(bytes[i]);
    if (!h.has_value()) {
      return Problem{absl::StrCat("export: ", what, " hash ", i, " has ",
                                  bytes[i].size(), " bytes, not 32")};
    }
    out->push_back(*h);
  }
  return std::nullopt;
}

// Step 3: the root rebuilt from the compact range `left` of [0, first) and
// the records' leaves is the signed one.
std::optional<Problem> CheckRoot(absl::Span<const Hash> left, uint64_t first,
                                 absl::Span<const Hash> leaves,
                                 const Checkpoint& cp) {
  absl::StatusOr<Hash> root = RootFromRange(left, first, leaves);
  if (!root.ok()) {
    return Problem{absl::StrCat("export: ", root.status().message())};
  }
  if (*root == cp.root) return std::nullopt;
  return Problem{
      absl::StrCat("root mismatch: records or tree were rewritten after the "
                   "checkpoint; index unknown within the export (rebuilt "
                   "root ",
                   ShortHex(*root), ", signed root ", ShortHex(cp.root),
                   first > 0 ? "; the left subtree hashes may be the "
                               "rewritten part"
                             : "",
                   ")")};
}

// Step 4: the (now authenticated) export extends the kept checkpoint.
// FAILED_PRECONDITION when the export cannot be checked against it.
absl::StatusOr<std::optional<Problem>> CheckKeptConsistency(
    const v1::AuditExport& exported, absl::Span<const Hash> left,
    absl::Span<const Hash> leaves, const Checkpoint& cp,
    const Checkpoint& kept) {
  const uint64_t first = exported.first_index();
  const uint64_t size = cp.tree_size;
  const uint64_t m = kept.tree_size;
  const std::string kept_name =
      absl::StrCat("the checkpoint you kept (size ", m, ")");
  if (m > size) {
    return Problem{
        absl::StrCat("roll-back: the node serves a shorter trail "
                     "(size ",
                     size, ") than a checkpoint you kept (size ", m, ")")};
  }
  if (m > 0 && m < first) {
    // Before the export's records: only its consistency proof can tell.
    if (!exported.has_earlier_checkpoint() ||
        exported.earlier_checkpoint().tree_size() != m) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot check consistency with ", kept_name,
                       ": the export starts at index ", first,
                       " and carries no consistency proof from size ", m,
                       "; export from index ", m,
                       " or lower, or with a proof from that checkpoint"));
    }
    std::vector<Hash> proof;
    if (std::optional<Problem> p = DecodeHashes(exported.consistency_proof(),
                                                "consistency proof", &proof);
        p.has_value()) {
      return p;
    }
    absl::Status s = VerifyConsistency(m, size, kept.root, cp.root, proof);
    if (!s.ok()) {
      return Problem{absl::StrCat("not consistent with ", kept_name,
                                  ": records before index ", m,
                                  " were changed after it was signed, or the "
                                  "proof is wrong (",
                                  s.message(), ")")};
    }
    return std::nullopt;
  }
  Hash root_m = EmptyRootHash();
  if (m > 0) {
    // The export is authenticated by now, so the root it gives for size m
    // is the node's: compare directly, no proof needed.
    absl::StatusOr<Hash> r =
        RootFromRange(left, first, leaves.first(m - first));
    if (!r.ok()) return Problem{absl::StrCat("export: ", r.status().message())};
    root_m = *r;
  }
  if (root_m == kept.root) return std::nullopt;
  return Problem{
      m == size ? absl::StrCat("fork: the node signed two different trails of "
                               "size ",
                               m, " (root ", ShortHex(cp.root), " now, ",
                               ShortHex(kept.root), " in ", kept_name, ")")
                : absl::StrCat("not consistent with ", kept_name,
                               ": records before index ", m,
                               " were changed or removed after it was signed "
                               "(root at size ",
                               m, " is now ", ShortHex(root_m), ", kept root ",
                               ShortHex(kept.root), ")")};
}

struct InclusionFailure {
  InclusionVerdict verdict;
  std::string problem;
};

// The checkpoint of an inclusion proof: signed by `key`, its signer trusted
// (trust_signer), of the proof's tree size. Sets report->root and
// report->signed_checkpoint once the signature verified.
std::optional<InclusionFailure> CheckProofCheckpoint(
    const v1::InclusionProof& proof, const VerifyingKey& key,
    absl::string_view origin,
    const std::function<absl::Status(const Checkpoint&)>& trust_signer,
    InclusionReport* report) {
  absl::StatusOr<Checkpoint> verified =
      VerifyCheckpoint(proof.checkpoint().note(), origin, key);
  if (!verified.ok()) {
    return InclusionFailure{InclusionVerdict::kBadSignature,
                            std::string(verified.status().message())};
  }
  report->root = verified->root;
  report->signed_checkpoint = *verified;
  if (trust_signer) {
    if (absl::Status trusted = trust_signer(*verified); !trusted.ok()) {
      return InclusionFailure{InclusionVerdict::kFailed,
                              std::string(trusted.message())};
    }
  }
  if (verified->tree_size != proof.tree_size()) {
    return InclusionFailure{
        InclusionVerdict::kFailed,
        absl::StrCat("the checkpoint is of tree size ", verified->tree_size,
                     ", not ", proof.tree_size())};
  }
  return std::nullopt;
}

// The proof itself against report.root: the checkpoint's fields agree, the
// path is well-formed, the record is the one asked for, the path holds.
std::optional<InclusionFailure> CheckAuditPath(const v1::InclusionProof& proof,
                                               const InclusionReport& report) {
  auto failed = [](std::string problem) {
    return InclusionFailure{InclusionVerdict::kFailed, std::move(problem)};
  };
  const v1::SignedCheckpoint& c = proof.checkpoint();
  if (!report.root.has_value() || HashFromBytes(c.root_hash()) != report.root ||
      PeekTreeSize(c.note()).value_or(0) != proof.tree_size()) {
    return failed(
        "the checkpoint's note does not match its tree size and root");
  }
  std::vector<Hash> path;
  for (const std::string& h : proof.hashes()) {
    std::optional<Hash> hash = HashFromBytes(h);
    if (!hash.has_value()) {
      return failed("a hash of the audit path is not 32 bytes");
    }
    path.push_back(*hash);
  }
  if (!report.record_parsed || report.record.index() != proof.index()) {
    return failed(
        absl::StrCat("the record does not parse as record ", proof.index()));
  }
  if (absl::Status s = VerifyInclusion(report.leaf_hash, proof.index(),
                                       proof.tree_size(), path, *report.root);
      !s.ok()) {
    return failed(std::string(s.message()));
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyExport(
    const v1::AuditExport& exported, const VerifyingKey& node_key,
    absl::string_view origin, const std::string* kept_checkpoint_note,
    const VerifyingKey* kept_key) {
  if (!absl::StartsWith(origin, kOriginPrefix) ||
      origin.size() == kOriginPrefix.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin ", Quote(origin), " is not of the form 'ibsm/<NODE>'"));
  }
  const absl::string_view node = origin.substr(kOriginPrefix.size());

  // The auditor's own input first: a kept checkpoint that does not verify is
  // not evidence about the node's trail.
  IBSM_ASSIGN_OR_RETURN(
      std::optional<Checkpoint> kept,
      VerifyKeptCheckpoint(kept_checkpoint_note, origin,
                           kept_key != nullptr ? *kept_key : node_key));

  VerifyReport report;
  report.first_index = exported.first_index();
  if (kept.has_value()) {
    report.kept_tree_size = kept->tree_size;
    report.kept_time_unix = kept->time_unix;
  }

  // 1. The signed checkpoint.
  absl::StatusOr<Checkpoint> cp =
      VerifyCheckpoint(exported.checkpoint().note(), origin, node_key);
  if (!cp.ok()) {
    return Fail(std::move(report),
                Problem{absl::StrCat("checkpoint: ", cp.status().message())});
  }
  report.checkpoint_verified = true;
  report.tree_size = cp->tree_size;
  report.root = cp->root;
  report.time_unix = cp->time_unix;
  if (std::optional<Problem> p = CheckExportHeader(exported, *cp, origin, node);
      p.has_value()) {
    return Fail(std::move(report), *std::move(p));
  }

  // 2. Each record in index order, then the count.
  std::vector<Hash> leaves;
  if (std::optional<Problem> p =
          RecomputeLeaves(exported, node, cp->tree_size, &leaves, &report);
      p.has_value()) {
    return Fail(std::move(report), *std::move(p));
  }

  // 3. The root, from the compact range of [0, first) and the records' own
  // leaf hashes (not the stored ones).
  std::vector<Hash> left;
  if (std::optional<Problem> p =
          DecodeHashes(exported.left_subtree_hashes(), "left subtree", &left);
      p.has_value()) {
    return Fail(std::move(report), *std::move(p));
  }
  if (std::optional<Problem> p =
          CheckRoot(left, exported.first_index(), leaves, *cp);
      p.has_value()) {
    return Fail(std::move(report), *std::move(p));
  }

  // 4. Consistency with the checkpoint the auditor kept.
  if (kept.has_value()) {
    IBSM_ASSIGN_OR_RETURN(
        std::optional<Problem> p,
        CheckKeptConsistency(exported, left, leaves, *cp, *kept));
    if (p.has_value()) return Fail(std::move(report), *std::move(p));
    report.earlier_checkpoint_consistent = true;
  }
  report.ok = true;
  return report;
}

InclusionReport VerifyInclusionProof(
    const v1::InclusionProof& proof, const VerifyingKey* node_key,
    absl::string_view origin,
    const std::function<absl::Status(const Checkpoint&)>& trust_signer) {
  InclusionReport report;
  report.leaf_hash = LeafHash(proof.record());
  report.record_parsed = report.record.ParseFromString(proof.record());
  if (!proof.has_checkpoint()) {
    report.verdict = InclusionVerdict::kNoCheckpoint;
    return report;
  }
  report.root = PeekRoot(proof.checkpoint().note());
  std::optional<InclusionFailure> failure;
  if (node_key != nullptr) {
    failure =
        CheckProofCheckpoint(proof, *node_key, origin, trust_signer, &report);
  }
  if (!failure.has_value()) failure = CheckAuditPath(proof, report);
  if (failure.has_value()) {
    report.verdict = failure->verdict;
    report.problem = std::move(failure->problem);
    return report;
  }
  // An unsigned root proves nothing about the node: the path only matches a
  // root the same answer supplied.
  report.verdict = node_key != nullptr ? InclusionVerdict::kVerified
                                       : InclusionVerdict::kUnsigned;
  return report;
}

AlertsReport VerifyAlerts(const v1::AuditExport& trail,
                          const v1::AlertExport& alerts) {
  AlertsReport report;
  auto bad = [&report](uint64_t sequence, std::string problem) {
    report.ok = false;
    report.first_bad_sequence = sequence;
    report.problem = absl::StrCat("sequence ", sequence, ": ", problem);
    return report;
  };
  if (alerts.node_id() != trail.node_id()) {
    report.problem =
        absl::StrCat("the alert export is of node ", Quote(alerts.node_id()),
                     ", the audit export of node ", Quote(trail.node_id()));
    return report;
  }
  // What the trail says about each sequence.
  struct Published {
    uint64_t index;
    v1::AuditRecord record;
  };
  absl::flat_hash_map<uint64_t, Published> published;
  absl::flat_hash_set<uint64_t> removed;
  uint64_t highest_published = 0;
  v1::AuditRecord record;
  for (const std::string& bytes : trail.records()) {
    if (!record.ParseFromString(bytes)) continue;  // VerifyExport judged it
    if (record.sequence() == 0) continue;
    if (StoresAlert(record)) {
      highest_published = std::max(highest_published, record.sequence());
      published.try_emplace(record.sequence(),
                            Published{record.index(), record});
    } else if (record.action() == v1::AUDIT_RETENTION_REMOVE) {
      removed.insert(record.sequence());
    }
  }

  uint64_t expected = alerts.from_sequence();
  for (const v1::StoredAlertDigest& d : alerts.alerts()) {
    const uint64_t seq = d.sequence();
    if (seq != expected) {
      return bad(seq, absl::StrCat("the alert export is not contiguous "
                                   "(expected sequence ",
                                   expected, "): malformed export"));
    }
    ++expected;
    auto it = published.find(seq);
    if (it == published.end()) {
      // Published after the checkpoint, or before the export's first
      // record: the trail says nothing. Within a complete trail, a stored
      // alert without a record is an insertion.
      if (trail.first_index() == 0 && seq <= highest_published && !d.absent()) {
        return bad(seq,
                   "stored, but the trail has no publish record of it "
                   "(inserted into the log)");
      }
      ++report.not_covered;
      continue;
    }
    const v1::AuditRecord& r = it->second.record;
    const std::string where = absl::StrCat("(audit record ", r.index(), ")");
    if (d.absent()) {
      if (removed.contains(seq)) {
        ++report.removed_by_retention;
        continue;
      }
      return bad(seq, absl::StrCat("missing from the log: published ", where,
                                   " and no retention removal recorded"));
    }
    if (removed.contains(seq)) {
      return bad(seq, "removed by retention but stored again");
    }
    if (d.unparseable()) {
      return bad(seq, "the stored alert does not parse");
    }
    std::string differs;
    if (d.alert_id() != r.alert_id()) {
      differs = "alert id";
    } else if (d.originator() != r.originator()) {
      differs = "originator";
    } else if (d.topic() != r.topic()) {
      differs = "topic";
    } else if (d.classification() != r.classification()) {
      differs = "classification";
    } else if (d.payload_sha256() != r.payload_sha256()) {
      differs = "payload SHA-256";
    }
    if (!differs.empty()) {
      return bad(seq, absl::StrCat("the stored alert's ", differs,
                                   " differs from its publish record ", where));
    }
    ++report.alerts_checked;
  }
  report.ok = true;
  return report;
}

}  // namespace ibsm
