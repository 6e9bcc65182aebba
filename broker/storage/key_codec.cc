#include "storage/key_codec.h"

#include "absl/strings/str_cat.h"

namespace ibsm::broker {

std::string EncodeSequence(uint64_t sequence) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(sequence & 0xff);
    sequence >>= 8;
  }
  return key;
}

std::optional<uint64_t> DecodeSequence(absl::string_view key) {
  if (key.size() != 8) return std::nullopt;
  uint64_t value = 0;
  for (char c : key) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

std::string DedupKey(absl::string_view originator, absl::string_view alert_id) {
  return absl::StrCat(originator, absl::string_view("\0", 1), alert_id);
}

std::string DedupValue(uint64_t sequence, absl::string_view content_sha256) {
  return absl::StrCat(EncodeSequence(sequence), content_sha256);
}

std::optional<DedupEntry> DecodeDedupValue(absl::string_view value) {
  constexpr size_t kHashBytes = 32;
  if (value.size() != 8 && value.size() != 8 + kHashBytes) return std::nullopt;
  DedupEntry entry;
  entry.sequence = *DecodeSequence(value.substr(0, 8));
  entry.content_sha256 = std::string(value.substr(8));
  return entry;
}

std::string CursorKey(absl::string_view agency, absl::string_view name) {
  return absl::StrCat(agency, absl::string_view("\0", 1), name);
}

std::string AuditKey(uint64_t index) { return EncodeSequence(index); }

std::string MerkleKey(int level, uint64_t index) {
  return absl::StrCat(std::string(1, static_cast<char>(level)),
                      EncodeSequence(index));
}

std::string CheckpointKey(uint64_t tree_size) {
  return absl::StrCat("checkpoint/", EncodeSequence(tree_size));
}

std::string AlertAuditLinkKey(uint64_t sequence) {
  return absl::StrCat(kAlertAuditLinkPrefix, EncodeSequence(sequence));
}

std::string EncodeOutboxKey(const OutboxKey& key) {
  return absl::StrCat(key.peer, absl::string_view("\0", 1),
                      std::string(1, static_cast<char>(key.priority)),
                      EncodeSequence(key.sequence));
}

std::optional<OutboxKey> DecodeOutboxKey(absl::string_view key) {
  constexpr size_t kTail = 1 + 1 + 8;  // separator, priority, sequence
  if (key.size() <= kTail) return std::nullopt;
  const size_t peer_size = key.size() - kTail;
  if (key[peer_size] != '\0') return std::nullopt;
  const auto priority = static_cast<uint8_t>(key[peer_size + 1]);
  if (priority >= kOutboxPriorities) return std::nullopt;
  OutboxKey decoded;
  decoded.peer = std::string(key.substr(0, peer_size));
  if (decoded.peer.find('\0') != std::string::npos) return std::nullopt;
  decoded.priority = static_cast<OutboxPriority>(priority);
  decoded.sequence = *DecodeSequence(key.substr(peer_size + 2));
  return decoded;
}

}  // namespace ibsm::broker
