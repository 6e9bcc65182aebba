// Binds the stored log to the audit trail: every log sequence has a link, in
// the `meta` family, to the audit record that accounts for it — the
// AUDIT_PUBLISH record that stored it, or later the AUDIT_RETENTION_REMOVE
// record that removed it. Before an alert read from RocksDB is delivered, it
// is checked against that record (and the record against its Merkle leaf); a
// sequence missing from the log must be accounted for by a retention
// removal. Anything else is DATA_LOSS: the node refuses to serve it.
//
// Live-tail deliveries from the LogCache need no check: this process wrote
// them in the same batch as their records. Formats: docs/storage.md,
// docs/audit.md.
//
// Pure functions over a Store; safe to call from any thread.
#ifndef IBSM_BROKER_AUDIT_LOG_INTEGRITY_H_
#define IBSM_BROKER_AUDIT_LOG_INTEGRITY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/key_codec.h"

namespace ibsm::v1 {
class AuditRecord;
class AlertExport;
}  // namespace ibsm::v1
namespace ibsm::internal::v1 {
class StoredAlert;
}  // namespace ibsm::internal::v1

namespace ibsm::broker {

class AuditTrail;
class Store;
struct LogRecord;
namespace storage {
class Batch;
}  // namespace storage

// The links are stored in `meta` under AlertAuditLinkKey() (key_codec.h).

// Called by the Committer once `records` (appended to `batch` by the
// AuditTrail, so their indexes are set) are in the batch: puts the link of
// every alert stored by this batch (sequences >= first_new, the first
// accepted publish record of each) and of every retention removal into
// `batch`, so the link shares the batch's fate.
void PutAlertAuditLinks(const std::vector<v1::AuditRecord>& records,
                        uint64_t first_new, storage::Batch* batch);

// What MigrateAlertAuditLinks did.
struct AlertAuditLinkMigration {
  bool ran = false;              // the store had no links marker
  uint64_t records_scanned = 0;  // audit records read
  uint64_t publish_links = 0;    // links written to a publish record
  uint64_t removal_links = 0;    // links written to a retention removal
  uint64_t batches = 0;          // synced writes, the marker's included
};

// One-time migration of a data directory written before links existed: it
// has no kAlertAuditLinksVersionKey marker in `meta` (a store created since
// has one from its creation). Scans the audit trail in index order and puts
// the missing links: an accepted AUDIT_PUBLISH with a sequence links it
// unless a link exists (the original comes before its duplicates), an
// AUDIT_RETENTION_REMOVE replaces the link of its sequence. Links come from
// the audit records only, never from the log, so a stored alert that was
// altered is still caught by CheckStoredAlert. Writes in synced batches of
// at most `batch_records` records; the last batch holds the marker and one
// AUDIT_ALERT_LINKS_MIGRATED record (appended through `trail`, which must
// not be in use by a Committer yet), so a crash before it leaves no marker
// and the next start reruns the migration from scratch, which is safe: the
// result does not depend on links a previous run wrote. Logs one line with
// the counts. A record that does not parse (or is not at its index) is
// DATA_LOSS: the start must stop. Does nothing when the marker is present.
absl::StatusOr<AlertAuditLinkMigration> MigrateAlertAuditLinks(
    Store* store, AuditTrail* trail, absl::string_view node_id,
    size_t batch_records = 4096);

// OK iff `stored`, read from the log under `sequence`, matches the publish
// record linked to it: sequence, id, originator, topic, classification and
// payload SHA-256, and that record matches its stored Merkle leaf. DATA_LOSS
// naming the sequence and what differs otherwise; a failed read is
// UNAVAILABLE (a check that cannot run does not pass).
absl::Status CheckStoredAlert(const Store& store, uint64_t sequence,
                              const internal::v1::StoredAlert& stored);

// OK iff the log has no alert under `sequence` because retention removed it
// (the link names a retention removal of that sequence). DATA_LOSS for a
// deleted alert or a sequence the trail does not account for.
absl::Status CheckAbsentAlert(const Store& store, uint64_t sequence);

// Reads the log's sequences [from, to] from RocksDB in order, checking each
// present alert with CheckStoredAlert and each absent sequence with
// CheckAbsentAlert. Appends the present ones to `out`. Stops at the first
// sequence that fails: `out` then holds the good alerts before it, the
// status is that failure (DATA_LOSS, or UNAVAILABLE for a read error) and
// `*bad_sequence` is the sequence. Callers bound `to - from`: the work is
// O(to - from + 1) reads.
absl::Status ReadVerifiedLog(const Store& store, uint64_t from, uint64_t to,
                             std::vector<std::shared_ptr<const LogRecord>>* out,
                             uint64_t* bad_sequence);

// Appends to `out` one digest per sequence of [from, to] (absent ones
// included) of what the log stores, for an alert export. Callers bound
// `to - from`.
absl::Status AppendAlertDigests(const Store& store, uint64_t from, uint64_t to,
                                v1::AlertExport* out);

// Checks the newest `count` sequences of the log, up to `last`, as
// ReadVerifiedLog does, and calls `on_failure` for each that fails with
// DATA_LOSS (the node reports them and refuses to serve them at delivery).
// A read error is returned: the check could not run.
absl::Status CheckLogTail(
    const Store& store, uint64_t last, uint64_t count,
    const std::function<void(uint64_t, const absl::Status&)>& on_failure);

// The AUDIT_INTEGRITY_FAILURE record of `failure` (DATA_LOSS from the
// functions above) about `sequence`, found by the node while serving
// `recipient` (empty at the start-up check).
v1::AuditRecord IntegrityFailureRecord(absl::string_view node_id,
                                       absl::string_view recipient,
                                       uint64_t sequence,
                                       const absl::Status& failure);

// SHA-256 of `payload`, as publish records carry it.
std::string PayloadDigest(absl::string_view payload);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_AUDIT_LOG_INTEGRITY_H_
