// The audit trail of a node: every action as an AuditRecord (metadata only,
// never a payload) in the `audit` column family, the RFC 9162 Merkle tree over
// them in the `merkle` family, and checkpoints of that tree signed with the
// node's key in `meta`. Records are appended by the Committer in the same
// storage::Batch as the alerts they describe, so an alert and its record
// share one fate. Formats: docs/audit.md.
//
// AuditTrail (the writer) is owned by the Committer and used only on its
// thread. The read functions below it are safe from any thread.
#ifndef IBSM_BROKER_AUDIT_AUDIT_TRAIL_H_
#define IBSM_BROKER_AUDIT_AUDIT_TRAIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ibsm/checkpoint.h"
#include "ibsm/clock.h"
#include "ibsm/merkle.h"
#include "ibsm/v1/audit.pb.h"
#include "storage/key_codec.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm::broker {

class Store;
namespace storage {
class Batch;
}  // namespace storage

struct AuditOptions {
  std::string node_id;
  // A checkpoint is signed once this many records were added since the
  // last one, or this long after the first record that it does not cover.
  uint64_t checkpoint_every_records = 1000;
  absl::Duration checkpoint_every = absl::Seconds(10);
  // Measures `checkpoint_every`; must outlive the trail.
  Clock* clock = RealClock();
  // Where each new checkpoint is recorded before it is stored
  // (published_checkpoint.h); empty: nowhere (tests of the trail alone).
  std::string published_checkpoint_file;
};

class AuditTrail {
 public:
  // Reads the tree size and latest checkpoint from `store` (which must
  // outlive the trail). `key` signs checkpoints.
  static absl::StatusOr<std::unique_ptr<AuditTrail>> Open(Store* store,
                                                          SigningKey key,
                                                          AuditOptions options);

  // Fills in index, node and (if unset) time of `records`, and puts them and
  // their Merkle nodes into `batch`. Call at most once per batch. The tree
  // grows only once Committed() is called after the batch was written.
  absl::Status Append(std::vector<v1::AuditRecord>* records,
                      storage::Batch* batch);
  void Committed();
  void Aborted();  // the batch was not written: forget the appended records

  // Signs and stores a checkpoint of the committed tree if one is due at
  // `now` (or `force` and the tree grew since the last one).
  absl::Status MaybeCheckpoint(absl::Time now, bool force);

  uint64_t size() const { return size_; }
  // Signs the checkpoints; shared with whoever replaces the node's key
  // while it runs. Never null.
  const std::shared_ptr<CheckpointSigner>& signer() const { return signer_; }
  // When the next time-based checkpoint is due; InfiniteFuture if none.
  absl::Time next_checkpoint_due() const;

 private:
  AuditTrail(Store* store, SigningKey key, AuditOptions options);

  Store* const store_;
  const std::shared_ptr<CheckpointSigner> signer_;
  const AuditOptions options_;
  uint64_t size_ = 0;     // committed records
  uint64_t pending_ = 0;  // appended to the batch being written
  uint64_t checkpointed_size_ = 0;
  absl::Time first_uncheckpointed_ = absl::InfiniteFuture();
};

// A record of `action` by `actor` (index, node and time are filled in when
// it is appended). Thread-safe helpers for the places that report events.
v1::AuditRecord AuditEvent(v1::AuditAction action, absl::string_view actor,
                           bool allowed, absl::string_view reason);
// Copies the alert's metadata (never its payload) into `record`.
void DescribeAlert(const v1::Alert& alert, v1::AuditRecord* record);

// Every string a caller can influence is bounded before it enters the
// trail, so that one huge request cannot become a record that queries and
// exports cannot carry: each string field longer than kMaxAuditFieldBytes
// (kMaxAuditDetailBytes for reason and detail) plus room for the marker is
// cut at a UTF-8 character boundary and ends with "…[truncated, N bytes]"
// (N: the original length); bounding twice changes nothing;
// at most kMaxAuditedAlerts alerts are listed. Applied by the Committer to
// every record it queues and again at Append.
inline constexpr size_t kMaxAuditFieldBytes = 1024;
inline constexpr size_t kMaxAuditDetailBytes = 4096;
inline constexpr int kMaxAuditedAlerts = 8192;
void BoundAuditRecord(v1::AuditRecord* record);
// The same cut for one string that the caller built only in part: `*s`
// holds the first bytes of a text of `original` bytes (at least s->size()).
// Strings within the limit are left as they are.
void BoundAuditText(std::string* s, size_t limit, size_t original);

// Read side (thread-safe).

// The key layouts (AuditKey, MerkleKey) are in key_codec.h.

// The Merkle tree as stored in `store`.
class StoredMerkleTree final : public MerkleStorage {
 public:
  explicit StoredMerkleTree(const Store* store) : store_(store) {}
  // nullopt when absent or unreadable; Read() tells the two apart.
  std::optional<Hash> Get(int level, uint64_t index) const override;
  // A RocksDB read error is returned as such (INTERNAL, with its cause); a
  // stored value that is not 32 bytes is DATA_LOSS.
  absl::StatusOr<std::optional<Hash>> Read(int level,
                                           uint64_t index) const override;

 private:
  const Store* store_;
};

// Number of records in the trail.
absl::StatusOr<uint64_t> AuditSize(const Store& store);
// The latest signed checkpoint; NOT_FOUND before the first one.
absl::StatusOr<v1::SignedCheckpoint> LatestCheckpoint(const Store& store);
// The checkpoint signed at exactly `tree_size`; NOT_FOUND if none was.
absl::StatusOr<v1::SignedCheckpoint> CheckpointAt(const Store& store,
                                                  uint64_t tree_size);
// Calls fn(index, serialized record) for records from `from_index` on until
// fn returns false or `max_records` were visited.
absl::Status ScanAudit(
    const Store& store, uint64_t from_index, size_t max_records,
    const std::function<bool(uint64_t, absl::string_view)>& fn);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_AUDIT_AUDIT_TRAIL_H_
