// Sealing of stored alerts (encryption at rest, docs/security.md): AES-256-GCM
// over given key bytes, nonce and associated data. Pure logic, no I/O and no
// randomness: the caller (KeyRing, key_ring.h) draws the nonces. Safe to call
// from any thread.
#ifndef IBSM_BROKER_STORAGE_SEAL_H_
#define IBSM_BROKER_STORAGE_SEAL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ibsm::broker::seal {

// StoredAlert.seal_format of a record sealed as this file describes.
inline constexpr uint32_t kFormatAes256GcmV1 = 1;
inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kKeyIdBytes = 8;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;

// A key's id: the first kKeyIdBytes of SHA-256 over the key. It names the
// key in records and messages without revealing it.
std::string KeyId(absl::string_view key);
// The id as 16 lowercase hex digits, for messages and `ibsm node info`.
std::string KeyIdHex(absl::string_view key_id);

// The associated data of a record: a label, the format, the key id, the
// log sequence and the alert's originator and id, each length-prefixed so
// that no two different tuples give the same bytes. A sealed value moved
// under another sequence, or edited to name another originator or alert,
// fails to open.
std::string AssociatedData(uint32_t format, absl::string_view key_id,
                           uint64_t sequence, absl::string_view originator,
                           absl::string_view alert_id);

// AES-256-GCM: the ciphertext of `plaintext` followed by its 16-byte tag.
// INVALID_ARGUMENT for a key or nonce of the wrong size; INTERNAL if
// OpenSSL fails.
absl::StatusOr<std::string> Seal(absl::string_view key, absl::string_view nonce,
                                 absl::string_view associated_data,
                                 absl::string_view plaintext);

// The inverse of Seal. DATA_LOSS "... does not authenticate" when the
// sealed bytes, the nonce, the associated data or the key differ from those
// it was sealed with, or it is shorter than a tag; INVALID_ARGUMENT for a
// key or nonce of the wrong size.
absl::StatusOr<std::string> Open(absl::string_view key, absl::string_view nonce,
                                 absl::string_view associated_data,
                                 absl::string_view sealed);

}  // namespace ibsm::broker::seal

#endif  // IBSM_BROKER_STORAGE_SEAL_H_
