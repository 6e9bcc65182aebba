#include "audit/log_integrity.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "ibsm/audit_verify.h"
#include "ibsm/crypto.h"
#include "ibsm/merkle.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/audit.pb.h"
#include "logging/event_log.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/store.h"
#include "storage/write_batch.h"

namespace ibsm::broker {
namespace {

absl::Status Unavailable(uint64_t sequence, const absl::Status& read) {
  return absl::UnavailableError(
      absl::StrCat("cannot check the stored alert at sequence ", sequence,
                   " against the audit trail: ", read.message()));
}

absl::Status Loss(uint64_t sequence, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("the stored alert at sequence ",
                                          sequence, " ", what,
                                          "; the node refuses to serve it"));
}

// The audit record linked to `sequence`, checked against its Merkle leaf.
// A read error is UNAVAILABLE, anything unaccounted for DATA_LOSS.
absl::StatusOr<v1::AuditRecord> LinkedRecord(const Store& store,
                                             uint64_t sequence) {
  absl::StatusOr<std::optional<std::string>> link =
      store.Get(Family::kMeta, AlertAuditLinkKey(sequence));
  if (!link.ok()) return Unavailable(sequence, link.status());
  if (!link->has_value()) {
    return Loss(sequence, "has no link to an audit record");
  }
  std::optional<uint64_t> index = DecodeSequence(**link);
  if (!index.has_value()) {
    return Loss(sequence, "has a malformed link to its audit record");
  }
  absl::StatusOr<std::optional<std::string>> bytes =
      store.Get(Family::kAudit, AuditKey(*index));
  if (!bytes.ok()) return Unavailable(sequence, bytes.status());
  if (!bytes->has_value()) {
    return Loss(sequence, absl::StrCat("is linked to audit record ", *index,
                                       ", which is missing from the trail"));
  }
  absl::StatusOr<std::optional<std::string>> leaf =
      store.Get(Family::kMerkle, MerkleKey(0, *index));
  if (!leaf.ok()) return Unavailable(sequence, leaf.status());
  const Hash want = LeafHash(**bytes);
  if (!leaf->has_value() ||
      **leaf != absl::string_view(reinterpret_cast<const char*>(want.data()),
                                  want.size())) {
    return Loss(sequence,
                absl::StrCat("is linked to audit record ", *index,
                             ", which does not match its Merkle leaf"));
  }
  v1::AuditRecord record;
  if (!record.ParseFromString(**bytes) || record.index() != *index) {
    return Loss(sequence, absl::StrCat("is linked to audit record ", *index,
                                       ", which does not parse"));
  }
  return record;
}

}  // namespace

std::string PayloadDigest(absl::string_view payload) {
  return std::string(crypto::HashView(crypto::Sha256(payload)));
}

void PutAlertAuditLinks(const std::vector<v1::AuditRecord>& records,
                        uint64_t first_new, storage::Batch* batch) {
  // A duplicate within the batch repeats its original's sequence; the
  // original's record comes first.
  absl::flat_hash_set<uint64_t> linked;
  for (const v1::AuditRecord& r : records) {
    const bool stored = StoresAlert(r) && r.sequence() >= first_new;
    const bool removed =
        r.action() == v1::AUDIT_RETENTION_REMOVE && r.sequence() > 0;
    if (stored && !linked.insert(r.sequence()).second) continue;
    if (!stored && !removed) continue;
    batch->PutAlertAuditLink(r.sequence(), r.index());
  }
}

absl::StatusOr<AlertAuditLinkMigration> MigrateAlertAuditLinks(
    Store* store, AuditTrail* trail, absl::string_view node_id,
    size_t batch_records) {
  AlertAuditLinkMigration m;
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> marker,
                        store->Get(Family::kMeta, kAlertAuditLinksVersionKey));
  if (marker.has_value()) return m;
  m.ran = true;
  if (batch_records == 0) batch_records = 1;
  // The trail as it is now; the migration's own record comes after it.
  const uint64_t size = trail->size();
  uint64_t next = 0;
  while (true) {
    storage::Batch batch = store->NewBatch();
    // Links put into this batch, not yet readable from the store.
    absl::flat_hash_map<uint64_t, uint64_t> pending;
    absl::Status failed;
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(batch_records, size - next));
    uint64_t expected = next;
    if (want > 0) {
      IBSM_RETURN_IF_ERROR(ScanAudit(
          *store, next, want, [&](uint64_t index, absl::string_view bytes) {
            v1::AuditRecord r;
            if (index != expected ||
                !r.ParseFromArray(bytes.data(),
                                  static_cast<int>(bytes.size())) ||
                r.index() != index) {
              failed = absl::DataLossError(absl::StrCat(
                  "cannot link the stored alerts to the audit trail: audit "
                  "record ",
                  expected,
                  index != expected ? " is missing" : " does not parse",
                  "; the node does not start"));
              return false;
            }
            ++expected;
            ++m.records_scanned;
            const uint64_t sequence = r.sequence();
            if (sequence == 0) return true;
            if (StoresAlert(r)) {
              if (pending.contains(sequence)) return true;
              absl::StatusOr<std::optional<std::string>> link =
                  store->Get(Family::kMeta, AlertAuditLinkKey(sequence));
              if (!link.ok()) {
                failed = link.status();
                return false;
              }
              if (link->has_value()) return true;
              ++m.publish_links;
            } else if (r.action() == v1::AUDIT_RETENTION_REMOVE) {
              ++m.removal_links;
            } else {
              return true;
            }
            pending[sequence] = index;
            batch.PutAlertAuditLink(sequence, index);
            return true;
          }));
      IBSM_RETURN_IF_ERROR(failed);
      if (expected != next + want) {
        return absl::DataLossError(absl::StrCat(
            "cannot link the stored alerts to the audit trail: audit record ",
            expected, " is missing; the node does not start"));
      }
    }
    next = expected;
    ++m.batches;
    if (next < size) {
      IBSM_RETURN_IF_ERROR(
          store->Commit(std::move(batch), Durability::kSynced));
      continue;
    }
    // The last batch: the marker and the migration's record.
    batch.PutAlertAuditLinksVersion(kAlertAuditLinksVersion);
    std::vector<v1::AuditRecord> records = {AuditEvent(
        v1::AUDIT_ALERT_LINKS_MIGRATED, node_id, true,
        "linked the stored alerts of a data directory written before "
        "alerts were linked to their audit records")};
    records[0].set_detail(absl::StrCat(
        "audit records scanned ", m.records_scanned, ", publish links ",
        m.publish_links, ", retention removal links ", m.removal_links));
    IBSM_RETURN_IF_ERROR(trail->Append(&records, &batch));
    if (absl::Status s = store->Commit(std::move(batch), Durability::kSynced);
        !s.ok()) {
      trail->Aborted();
      return s;
    }
    trail->Committed();
    LogEvent(absl::StrCat("migrated the data directory to alert-audit links: ",
                          records[0].detail(), " in ", m.batches,
                          " synced batches"));
    return m;
  }
}

absl::Status CheckStoredAlert(const Store& store, uint64_t sequence,
                              const internal::v1::StoredAlert& stored) {
  IBSM_ASSIGN_OR_RETURN(v1::AuditRecord record, LinkedRecord(store, sequence));
  if (record.action() == v1::AUDIT_RETENTION_REMOVE) {
    return Loss(sequence,
                absl::StrCat("was removed by retention (audit record ",
                             record.index(), ") but is in the log again"));
  }
  const v1::Alert& alert = stored.alert();
  std::string differs;
  if (!StoresAlert(record)) {
    differs = "the linked record is not an accepted publish or receipt";
  } else if (record.sequence() != sequence) {
    differs = absl::StrCat("the record is of sequence ", record.sequence());
  } else if (record.alert_id() != alert.id()) {
    differs = "alert id";
  } else if (record.originator() != alert.originator()) {
    differs = "originator";
  } else if (record.topic() != alert.topic()) {
    differs = "topic";
  } else if (record.classification() != alert.classification()) {
    differs = "classification";
  } else if (record.payload_sha256() != PayloadDigest(alert.payload())) {
    differs = "payload SHA-256";
  }
  if (!differs.empty()) {
    return Loss(sequence,
                absl::StrCat("does not match its publish record (audit record ",
                             record.index(), "): ", differs, " differs"));
  }
  return absl::OkStatus();
}

absl::Status CheckAbsentAlert(const Store& store, uint64_t sequence) {
  absl::StatusOr<v1::AuditRecord> record = LinkedRecord(store, sequence);
  if (!record.ok()) {
    if (record.status().code() != absl::StatusCode::kDataLoss) {
      return record.status();
    }
    return Loss(sequence, absl::StrCat("is missing from the log, and ",
                                       record.status().message()));
  }
  if (record->action() == v1::AUDIT_RETENTION_REMOVE &&
      record->sequence() == sequence) {
    return absl::OkStatus();
  }
  return Loss(
      sequence,
      absl::StrCat("is missing from the log: it was published (audit "
                   "record ",
                   record->index(), ") and no retention removal is recorded"));
}

absl::Status ReadVerifiedLog(const Store& store, uint64_t from, uint64_t to,
                             std::vector<std::shared_ptr<const LogRecord>>* out,
                             uint64_t* bad_sequence) {
  uint64_t expected = from;
  absl::Status failed;
  auto fail = [&](uint64_t sequence, absl::Status status) {
    *bad_sequence = sequence;
    failed = std::move(status);
    return false;
  };
  auto absent_up_to = [&](uint64_t end) {  // checks [expected, end)
    for (; expected < end; ++expected) {
      if (absl::Status s = CheckAbsentAlert(store, expected); !s.ok()) {
        return fail(expected, std::move(s));
      }
    }
    return true;
  };
  absl::Status read = store.ScanLog(
      from, static_cast<size_t>(to - from + 1),
      [&](uint64_t sequence, absl::string_view value) {
        if (sequence > to) return false;
        if (!absent_up_to(sequence)) return false;
        auto record = std::make_shared<LogRecord>();
        record->sequence = sequence;
        absl::StatusOr<internal::v1::StoredAlert> opened =
            store.DecodeAlert(sequence, value);
        if (!opened.ok()) return fail(sequence, opened.status());
        record->stored = *std::move(opened);
        if (absl::Status s = CheckStoredAlert(store, sequence, record->stored);
            !s.ok()) {
          return fail(sequence, std::move(s));
        }
        record->bytes = value.size();
        out->push_back(std::move(record));
        expected = sequence + 1;
        return true;
      });
  if (!read.ok()) {
    *bad_sequence = expected;
    return Unavailable(expected, read);
  }
  if (!failed.ok()) return failed;
  if (expected <= to && !absent_up_to(to + 1)) return failed;
  return absl::OkStatus();
}

absl::Status CheckLogTail(
    const Store& store, uint64_t last, uint64_t count,
    const std::function<void(uint64_t, const absl::Status&)>& on_failure) {
  uint64_t from = last >= count ? last - count + 1 : 1;
  while (from <= last) {
    std::vector<std::shared_ptr<const LogRecord>> ignored;
    uint64_t bad = 0;
    absl::Status s = ReadVerifiedLog(store, from, last, &ignored, &bad);
    if (s.ok()) return s;
    if (s.code() != absl::StatusCode::kDataLoss) return s;
    on_failure(bad, s);
    from = bad + 1;
  }
  return absl::OkStatus();
}

v1::AuditRecord IntegrityFailureRecord(absl::string_view node_id,
                                       absl::string_view recipient,
                                       uint64_t sequence,
                                       const absl::Status& failure) {
  v1::AuditRecord r = AuditEvent(v1::AUDIT_INTEGRITY_FAILURE, node_id, false,
                                 failure.message());
  r.set_sequence(sequence);
  r.set_recipient(std::string(recipient));
  return r;
}

absl::Status AppendAlertDigests(const Store& store, uint64_t from, uint64_t to,
                                v1::AlertExport* out) {
  uint64_t expected = from;
  auto absent_up_to = [&](uint64_t end) {
    for (; expected < end; ++expected) {
      v1::StoredAlertDigest* d = out->add_alerts();
      d->set_sequence(expected);
      d->set_absent(true);
    }
  };
  IBSM_RETURN_IF_ERROR(
      store.ScanLog(from, static_cast<size_t>(to - from + 1),
                    [&](uint64_t sequence, absl::string_view value) {
                      if (sequence > to) return false;
                      absent_up_to(sequence);
                      expected = sequence + 1;
                      v1::StoredAlertDigest* d = out->add_alerts();
                      d->set_sequence(sequence);
                      absl::StatusOr<internal::v1::StoredAlert> stored =
                          store.DecodeAlert(sequence, value);
                      if (!stored.ok()) {
                        d->set_unparseable(true);
                        return true;
                      }
                      const v1::Alert& alert = stored->alert();
                      d->set_alert_id(alert.id());
                      d->set_originator(alert.originator());
                      d->set_topic(alert.topic());
                      d->set_classification(alert.classification());
                      d->set_payload_sha256(PayloadDigest(alert.payload()));
                      return true;
                    }));
  absent_up_to(to + 1);
  return absl::OkStatus();
}

}  // namespace ibsm::broker
