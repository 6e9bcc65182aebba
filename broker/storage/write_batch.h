// storage::Batch: the writes of one atomic commit to the node's Store, each
// named by what it stores (an alert, an idempotency entry, a cursor, an audit
// record, ...). It hides the RocksDB WriteBatch and the column families:
// every operation puts its record into its own family under the key that
// key_codec.h defines, so a caller cannot write a record into the wrong
// family or under a key of the wrong shape. Formats: docs/storage.md.
//
// Make one with Store::NewBatch(), add writes, then hand it to
// Store::Commit(std::move(batch), durability): all of it is applied, or none.
// A Batch refers to its Store, which must outlive it; it owns the bytes added
// to it (each operation copies its key and value in, once). Later writes to
// the same key win.
//
// A Batch is thread-compatible: one thread builds it (the Committer's, or
// the one opening or migrating the store); distinct Batches are independent.
#ifndef IBSM_BROKER_STORAGE_WRITE_BATCH_H_
#define IBSM_BROKER_STORAGE_WRITE_BATCH_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb
namespace ibsm::internal::v1 {
class StoredAlert;
}  // namespace ibsm::internal::v1

namespace ibsm::broker {

class Store;
enum class Family;
struct OutboxKey;

namespace storage {

class Batch {
 public:
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // `log`: `stored` under its sequence, sealed under the store's current
  // key when it has keys (key_ring.h: the one place alerts are sealed).
  // INTERNAL only if OpenSSL fails; nothing is added then.
  absl::Status PutAlert(uint64_t sequence,
                        const internal::v1::StoredAlert& stored);
  // `log`: retention's removal of the alert at `sequence`.
  void RemoveAlert(uint64_t sequence);

  // `dedup`: the idempotency entry under `dedup_key` (as DedupKey() makes
  // it: the caller has it already, for the lookup that came first).
  void PutDedup(absl::string_view dedup_key, uint64_t sequence,
                absl::string_view content_sha256);
  void RemoveDedup(absl::string_view dedup_key);

  // `cursor`: a durable subscription's position under `cursor_key` (as
  // CursorKey() makes it).
  void PutCursor(absl::string_view cursor_key, uint64_t sequence);

  // `audit` and `merkle`: the serialized AuditRecord at `index` of the
  // trail, and one node of its Merkle tree (AuditTrail::Append).
  void AppendAuditRecord(uint64_t index, absl::string_view record);
  void PutMerkleNode(int level, uint64_t index, absl::string_view hash);

  // `meta`: the node's identity (a serialized NodeMeta), set once.
  void PutNodeMeta(absl::string_view node_meta);
  // `meta`: the sequence high-water mark (kLastSequenceKey).
  void PutLastSequence(uint64_t sequence);
  // `meta`: the link of log sequence `sequence` to the audit record that
  // accounts for it (log_integrity.h), and the links' format version.
  void PutAlertAuditLink(uint64_t sequence, uint64_t audit_index);
  void PutAlertAuditLinksVersion(uint64_t version);
  // `meta`: a signed checkpoint (serialized SignedCheckpoint) of a tree of
  // `tree_size` records, as the latest one and under its size.
  void PutCheckpoint(uint64_t tree_size, absl::string_view signed_checkpoint);

  // `outbox`: an alert waiting for a peer (a serialized OutboxEntry), and
  // its removal once the peer acknowledged it (or it cannot be sent).
  void PutOutbox(const OutboxKey& key, absl::string_view outbox_entry);
  void RemoveOutbox(const OutboxKey& key);

  // For tests that damage a stored database on purpose, to prove the node
  // detects it: any bytes under any key. The broker never calls these.
  void PutForTesting(Family family, absl::string_view key,
                     absl::string_view value);
  void DeleteForTesting(Family family, absl::string_view key);

  // True when nothing was added.
  bool empty() const;

 private:
  friend class ::ibsm::broker::Store;
  explicit Batch(const Store* store);

  void Put(Family family, absl::string_view key, absl::string_view value);
  void Delete(Family family, absl::string_view key);

  const Store* store_;  // not owned
  std::unique_ptr<rocksdb::WriteBatch> writes_;
};

}  // namespace storage
}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_WRITE_BATCH_H_
