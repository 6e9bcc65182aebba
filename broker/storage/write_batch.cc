#include "storage/write_batch.h"

#include <rocksdb/write_batch.h>

#include <string>
#include <utility>

#include "storage/key_codec.h"
#include "storage/key_ring.h"
#include "storage/store.h"

namespace ibsm::broker::storage {
namespace {

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

}  // namespace

Batch::Batch(const Store* store)
    : store_(store), writes_(std::make_unique<rocksdb::WriteBatch>()) {}

Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

absl::Status Batch::PutAlert(uint64_t sequence,
                             const internal::v1::StoredAlert& stored) {
  absl::StatusOr<std::string> value =
      SealStoredAlert(store_->keys(), sequence, stored);
  if (!value.ok()) return value.status();
  Put(Family::kLog, EncodeSequence(sequence), *value);
  return absl::OkStatus();
}

void Batch::RemoveAlert(uint64_t sequence) {
  Delete(Family::kLog, EncodeSequence(sequence));
}

void Batch::PutDedup(absl::string_view dedup_key, uint64_t sequence,
                     absl::string_view content_sha256) {
  Put(Family::kDedup, dedup_key, DedupValue(sequence, content_sha256));
}

void Batch::RemoveDedup(absl::string_view dedup_key) {
  Delete(Family::kDedup, dedup_key);
}

void Batch::PutCursor(absl::string_view cursor_key, uint64_t sequence) {
  Put(Family::kCursor, cursor_key, EncodeSequence(sequence));
}

void Batch::AppendAuditRecord(uint64_t index, absl::string_view record) {
  Put(Family::kAudit, AuditKey(index), record);
}

void Batch::PutMerkleNode(int level, uint64_t index, absl::string_view hash) {
  Put(Family::kMerkle, MerkleKey(level, index), hash);
}

void Batch::PutNodeMeta(absl::string_view node_meta) {
  Put(Family::kMeta, kNodeMetaKey, node_meta);
}

void Batch::PutLastSequence(uint64_t sequence) {
  Put(Family::kMeta, kLastSequenceKey, EncodeSequence(sequence));
}

void Batch::PutAlertAuditLink(uint64_t sequence, uint64_t audit_index) {
  Put(Family::kMeta, AlertAuditLinkKey(sequence), EncodeSequence(audit_index));
}

void Batch::PutAlertAuditLinksVersion(uint64_t version) {
  Put(Family::kMeta, kAlertAuditLinksVersionKey, EncodeSequence(version));
}

void Batch::PutCheckpoint(uint64_t tree_size,
                          absl::string_view signed_checkpoint) {
  Put(Family::kMeta, kLatestCheckpointKey, signed_checkpoint);
  Put(Family::kMeta, CheckpointKey(tree_size), signed_checkpoint);
}

void Batch::PutOutbox(const OutboxKey& key, absl::string_view outbox_entry) {
  Put(Family::kOutbox, EncodeOutboxKey(key), outbox_entry);
}

void Batch::RemoveOutbox(const OutboxKey& key) {
  Delete(Family::kOutbox, EncodeOutboxKey(key));
}

void Batch::PutForTesting(Family family, absl::string_view key,
                          absl::string_view value) {
  Put(family, key, value);
}

void Batch::DeleteForTesting(Family family, absl::string_view key) {
  Delete(family, key);
}

bool Batch::empty() const { return writes_->Count() == 0; }

void Batch::Put(Family family, absl::string_view key, absl::string_view value) {
  // Fails only for a key or value over 4 GiB, which no record comes near
  // (every size a caller controls is bounded far below).
  (void)writes_->Put(store_->handle(family), ToSlice(key), ToSlice(value));
}

void Batch::Delete(Family family, absl::string_view key) {
  // As for Put: fails only for a key over 4 GiB.
  (void)writes_->Delete(store_->handle(family), ToSlice(key));
}

}  // namespace ibsm::broker::storage
