// Byte layouts of RocksDB keys (see docs/storage.md). Pure code, no I/O.
// Sequences are big-endian so that RocksDB's bytewise order is log order.
#ifndef IBSM_BROKER_STORAGE_KEY_CODEC_H_
#define IBSM_BROKER_STORAGE_KEY_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace ibsm::broker {

// Key in the `meta` family of the sequence high-water mark: the highest
// sequence ever assigned (8 bytes big-endian), written in the same batch as
// the alerts that raise it, so that retention can never make it go back.
inline constexpr char kLastSequenceKey[] = "last_sequence";

// Key in the `meta` family saying that every stored alert has its link to
// the audit trail (log_integrity.h); the value is the links' format version,
// 8 bytes big-endian. Written when a store is created and by the one-time
// migration of a data directory written before links existed, in its last
// batch.
inline constexpr char kAlertAuditLinksVersionKey[] =
    "alert_audit_links_version";
inline constexpr uint64_t kAlertAuditLinksVersion = 1;

std::string EncodeSequence(uint64_t sequence);
// nullopt unless `key` is exactly 8 bytes.
std::optional<uint64_t> DecodeSequence(absl::string_view key);

// Key of the `dedup` family: originator, a 0 byte, alert id. Neither part can
// contain a 0 byte (both are validated), so the key is unambiguous.
std::string DedupKey(absl::string_view originator, absl::string_view alert_id);

// Value of the `dedup` family: the alert's sequence (8 bytes big-endian)
// followed by the SHA-256 of its content (32 bytes). Entries written before
// content hashes were kept hold the sequence only.
struct DedupEntry {
  uint64_t sequence = 0;
  std::string content_sha256;  // empty for an entry without a hash
};
std::string DedupValue(uint64_t sequence, absl::string_view content_sha256);
// nullopt unless `value` is 8 or 40 bytes.
std::optional<DedupEntry> DecodeDedupValue(absl::string_view value);

// Key of the `cursor` family: agency id, a 0 byte, durable subscription name.
std::string CursorKey(absl::string_view agency, absl::string_view name);

// Key in the `meta` family of the node's NodeMeta (node id, schema version).
inline constexpr char kNodeMetaKey[] = "node";

// Key of the `audit` family: the record's index, 8 bytes big-endian.
std::string AuditKey(uint64_t index);
// Key of the `merkle` family: the level (one byte), then the index in that
// level, 8 bytes big-endian.
std::string MerkleKey(int level, uint64_t index);

// Keys in the `meta` family of signed audit checkpoints: the latest one, and
// each one by its tree size ("checkpoint/" then the size, 8 bytes
// big-endian).
inline constexpr char kLatestCheckpointKey[] = "checkpoint";
std::string CheckpointKey(uint64_t tree_size);

// `meta` key of the link of log sequence `sequence` to its audit record
// (log_integrity.h): "alert-audit/" followed by the sequence, 8 bytes
// big-endian. The value is the audit index, 8 bytes big-endian.
inline constexpr char kAlertAuditLinkPrefix[] = "alert-audit/";
std::string AlertAuditLinkKey(uint64_t sequence);

// Where an alert waits in a peer's outbox: CRITICAL first, then HIGH, then
// the rest (docs/federation.md, "Order").
enum class OutboxPriority : uint8_t { kCritical = 0, kHigh = 1, kOther = 2 };
inline constexpr int kOutboxPriorities = 3;

// Key of the `outbox` family: peer node id, a 0 byte, the priority (one
// byte), the log sequence (8 bytes big-endian). RocksDB's key order is
// therefore the send order of each peer.
struct OutboxKey {
  std::string peer;
  OutboxPriority priority = OutboxPriority::kOther;
  uint64_t sequence = 0;
};
std::string EncodeOutboxKey(const OutboxKey& key);
// nullopt unless `key` has the shape above.
std::optional<OutboxKey> DecodeOutboxKey(absl::string_view key);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_KEY_CODEC_H_
