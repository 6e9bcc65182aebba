// The node's keys for encryption at rest (docs/security.md, "Encryption at
// rest"), and the one place where a stored alert is sealed for the log and
// opened from it: SealStoredAlert and OpenStoredAlert. storage::Batch::
// PutAlert and Store::DecodeAlert call them; nothing else does.
//
// A KeyRing holds the current key (new records) and older keys (reading
// only), by key id (seal::KeyId). It is immutable once made, except for
// its nonce counter, and safe for concurrent use. The Store shares it.
#ifndef IBSM_BROKER_STORAGE_KEY_RING_H_
#define IBSM_BROKER_STORAGE_KEY_RING_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ibsm::internal::v1 {
class StoredAlert;
}  // namespace ibsm::internal::v1

namespace ibsm::broker {

class KeyRing {
 public:
  // From key bytes: `current` seals, `older` are kept for reading (a key
  // given twice is kept once). INVALID_ARGUMENT for a key that is not
  // seal::kKeyBytes long.
  static absl::StatusOr<std::shared_ptr<const KeyRing>> FromKeys(
      std::string current, std::vector<std::string> older);

  // Reads the key files (EncryptionConfig): FAILED_PRECONDITION with one
  // line naming the file when it is missing, cannot be read, is readable or
  // writable by group or others, or does not hold exactly 32 bytes.
  static absl::StatusOr<std::shared_ptr<const KeyRing>> Load(
      const std::string& current_file,
      const std::vector<std::string>& older_files);

  // The id (seal::kKeyIdBytes) of the key new records are sealed under.
  const std::string& current_key_id() const { return current_id_; }
  // The key with `key_id`, nullptr when this ring does not hold it.
  const std::string* Find(absl::string_view key_id) const;

  // A nonce never handed out before by this ring: a 96-bit counter that
  // starts at a random value (RAND_bytes) and counts up. key_ring.cc says
  // why that is safe.
  std::string NextNonce() const;

 private:
  KeyRing() = default;

  std::string current_id_;
  absl::flat_hash_map<std::string, std::string> keys_;  // by key id
  uint32_t nonce_high_ = 0;
  mutable std::atomic<uint64_t> nonce_low_{0};
};

// Writes a new key file: 32 bytes from RAND_bytes, mode 0600, refusing to
// overwrite an existing file (ALREADY_EXISTS). Returns the key's id.
absl::StatusOr<std::string> WriteNewKeyFile(const std::string& path);

// The log value for `stored` at `sequence`: with `keys`, its payload and
// attributes sealed under the current key (seal.h) and cleared in the
// clear part; without (encryption off), `stored` as it is.
absl::StatusOr<std::string> SealStoredAlert(
    const KeyRing* keys, uint64_t sequence,
    const internal::v1::StoredAlert& stored);

// The stored alert from log value `value` at `sequence`, opened when it is
// sealed: byte for byte what SealStoredAlert was given. A plaintext record
// (written before encryption, or with it off) is returned as it is.
// DATA_LOSS naming the sequence when the value does not parse, when it is
// sealed under a key id `keys` does not hold (naming the key id), or when
// it does not authenticate (altered, or moved from another record).
absl::StatusOr<internal::v1::StoredAlert> OpenStoredAlert(
    const KeyRing* keys, uint64_t sequence, absl::string_view value);

// Whether log value `value` is sealed under `keys`' current key (the
// re-encryption command rewrites the others). False when it does not parse.
bool SealedUnderCurrentKey(const KeyRing& keys, absl::string_view value);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_KEY_RING_H_
