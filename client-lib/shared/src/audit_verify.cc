#include "ibsm/audit_verify.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace ibsm {
namespace {

constexpr absl::string_view kOriginPrefix = "ibsm/";

absl::string_view View(const Hash& hash) {
  return absl::string_view(reinterpret_cast<const char*>(hash.data()),
                           hash.size());
}

// A 32-byte hash from untrusted bytes; false if the length is wrong.
bool ToHash(absl::string_view bytes, Hash* out) {
  if (bytes.size() != out->size()) return false;
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

std::string ShortHex(const Hash& hash) {
  return absl::StrCat(HexEncode(hash).substr(0, 16), "...");
}

// Text of an untrusted string for a message: escaped and cut.
std::string Quote(absl::string_view s) {
  return absl::StrCat("'", absl::CHexEscape(s.substr(0, 80)),
                      s.size() > 80 ? "...'" : "'");
}

VerifyReport Fail(VerifyReport report, std::string problem,
                  std::optional<uint64_t> index = std::nullopt) {
  report.ok = false;
  report.first_bad_index = index;
  report.problem = index.has_value()
                       ? absl::StrCat("record ", *index, ": ", problem)
                       : std::move(problem);
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
  if (fields.root_hash() != View(signed_cp.root)) {
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
  std::optional<Checkpoint> kept;
  if (kept_checkpoint_note != nullptr) {
    absl::StatusOr<Checkpoint> parsed =
        VerifyCheckpoint(*kept_checkpoint_note, origin,
                         kept_key != nullptr ? *kept_key : node_key);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kept checkpoint: ", parsed.status().message()));
    }
    kept = *std::move(parsed);
  }

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
                absl::StrCat("checkpoint: ", cp.status().message()));
  }
  report.checkpoint_verified = true;
  report.tree_size = cp->tree_size;
  report.root = cp->root;
  report.time_unix = cp->time_unix;
  if (std::string m = CheckpointFieldsMismatch(exported.checkpoint(), *cp);
      !m.empty()) {
    return Fail(std::move(report), std::move(m));
  }
  if (exported.node_id() != node) {
    return Fail(std::move(report),
                absl::StrCat("export: node_id is ", Quote(exported.node_id()),
                             " but the log verified is '", origin, "'"));
  }
  const uint64_t first = exported.first_index();
  const uint64_t size = cp->tree_size;
  if (first > size) {
    return Fail(std::move(report),
                absl::StrCat("export: first_index ", first,
                             " is beyond the checkpoint's tree size ", size));
  }

  // 2. Each record in index order, then the count.
  const uint64_t want = size - first;
  const uint64_t have = static_cast<uint64_t>(exported.records_size());
  const auto& stored = exported.stored_leaf_hashes();
  std::vector<Hash> leaves;
  leaves.reserve(exported.records_size());
  v1::AuditRecord record;
  for (uint64_t i = 0; i < have; ++i) {
    const uint64_t index = first + i;
    const std::string& bytes = exported.records(static_cast<int>(i));
    if (i >= want) {
      return Fail(std::move(report),
                  absl::StrCat("extra record beyond the checkpoint's tree "
                               "size ",
                               size, CountNote(have, want)),
                  index);
    }
    if (!record.ParseFromString(bytes)) {
      return Fail(std::move(report),
                  absl::StrCat("does not parse as an AuditRecord",
                               CountNote(have, want)),
                  index);
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
      return Fail(std::move(report), absl::StrCat(what, CountNote(have, want)),
                  index);
    }
    if (record.node() != node) {
      return Fail(std::move(report),
                  absl::StrCat("written by node ", Quote(record.node()),
                               ", not '", node, "'"),
                  index);
    }
    const Hash leaf = LeafHash(bytes);
    if (i < static_cast<uint64_t>(stored.size())) {
      Hash stored_leaf;
      if (!ToHash(stored[static_cast<int>(i)], &stored_leaf)) {
        return Fail(
            std::move(report),
            absl::StrCat("the export's stored leaf hash has ",
                         stored[static_cast<int>(i)].size(), " bytes, not 32"),
            index);
      }
      if (leaf != stored_leaf) {
        return Fail(
            std::move(report),
            absl::StrCat("altered: its bytes do not match the leaf "
                         "hash the node stored for it (leaf ",
                         ShortHex(leaf), ", stored ", ShortHex(stored_leaf),
                         ")", CountNote(have, want)),
            index);
      }
    }
    leaves.push_back(leaf);
    ++report.records_checked;
  }
  if (have < want) {
    return Fail(std::move(report),
                absl::StrCat("missing: the export ends after ", have,
                             " records; the checkpoint covers records ", first,
                             " to ", size - 1, ", so records ", first + have,
                             " to ", size - 1, " are missing"),
                first + have);
  }
  if (!stored.empty() && static_cast<uint64_t>(stored.size()) != have) {
    return Fail(
        std::move(report),
        absl::StrCat("export: ", stored.size(), " stored leaf hashes for ",
                     have, " records (malformed export)"));
  }

  // 3. The root, from the compact range of [0, first) and the records' own
  // leaf hashes (not the stored ones).
  std::vector<Hash> left;
  left.reserve(exported.left_subtree_hashes_size());
  for (int i = 0; i < exported.left_subtree_hashes_size(); ++i) {
    Hash h;
    if (!ToHash(exported.left_subtree_hashes(i), &h)) {
      return Fail(std::move(report),
                  absl::StrCat("export: left subtree hash ", i, " has ",
                               exported.left_subtree_hashes(i).size(),
                               " bytes, not 32"));
    }
    left.push_back(h);
  }
  absl::StatusOr<Hash> root = RootFromRange(left, first, leaves);
  if (!root.ok()) {
    return Fail(std::move(report),
                absl::StrCat("export: ", root.status().message()));
  }
  if (*root != cp->root) {
    return Fail(
        std::move(report),
        absl::StrCat("root mismatch: records or tree were rewritten after the "
                     "checkpoint; index unknown within the export (rebuilt "
                     "root ",
                     ShortHex(*root), ", signed root ", ShortHex(cp->root),
                     first > 0 ? "; the left subtree hashes may be the "
                                 "rewritten part"
                               : "",
                     ")"));
  }

  // 4. Consistency with the checkpoint the auditor kept.
  if (kept.has_value()) {
    const uint64_t m = kept->tree_size;
    const std::string kept_name =
        absl::StrCat("the checkpoint you kept (size ", m, ")");
    if (m > size) {
      return Fail(
          std::move(report),
          absl::StrCat("roll-back: the node serves a shorter trail "
                       "(size ",
                       size, ") than a checkpoint you kept (size ", m, ")"));
    }
    Hash root_m;
    if (m == 0) {
      root_m = EmptyRootHash();
    } else if (m >= first) {
      // The export is authenticated by now, so the root it gives for size m
      // is the node's: compare directly, no proof needed.
      absl::StatusOr<Hash> r = RootFromRange(
          left, first, absl::MakeConstSpan(leaves).first(m - first));
      if (!r.ok()) {
        return Fail(std::move(report),
                    absl::StrCat("export: ", r.status().message()));
      }
      root_m = *r;
    } else {
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
      proof.reserve(exported.consistency_proof_size());
      for (int i = 0; i < exported.consistency_proof_size(); ++i) {
        Hash h;
        if (!ToHash(exported.consistency_proof(i), &h)) {
          return Fail(
              std::move(report),
              absl::StrCat("export: consistency proof hash ", i, " has ",
                           exported.consistency_proof(i).size(),
                           " bytes, not 32"));
        }
        proof.push_back(h);
      }
      absl::Status s = VerifyConsistency(m, size, kept->root, cp->root, proof);
      if (!s.ok()) {
        return Fail(std::move(report),
                    absl::StrCat("not consistent with ", kept_name,
                                 ": records before index ", m,
                                 " were changed after it was signed, or the "
                                 "proof is wrong (",
                                 s.message(), ")"));
      }
      report.earlier_checkpoint_consistent = true;
      report.ok = true;
      return report;
    }
    if (root_m != kept->root) {
      return Fail(
          std::move(report),
          m == size
              ? absl::StrCat("fork: the node signed two different trails of "
                             "size ",
                             m, " (root ", ShortHex(cp->root), " now, ",
                             ShortHex(kept->root), " in ", kept_name, ")")
              : absl::StrCat("not consistent with ", kept_name,
                             ": records before index ", m,
                             " were changed or removed after it was signed "
                             "(root at size ",
                             m, " is now ", ShortHex(root_m), ", kept root ",
                             ShortHex(kept->root), ")"));
    }
    report.earlier_checkpoint_consistent = true;
  }
  report.ok = true;
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
    if (record.action() == v1::AUDIT_PUBLISH && record.allowed()) {
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
