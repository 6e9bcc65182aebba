// Signed checkpoints of the audit trail's Merkle tree, in the C2SP formats
// https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note. Pure
// code, no I/O. Every function is thread-safe; SigningKey and VerifyingKey
// are safe for concurrent use (OpenSSL 3 allows concurrent signing and
// verifying with one EVP_PKEY).
//
// A signed checkpoint is:
//
//   ibsm/CIV                                     origin (= key name)
//   1234                                         tree size, decimal
//   3q2+7w...=                                   base64 root hash (32 bytes)
//   time 1718000000                              extension line: unix seconds
//                                                blank line
//   — ibsm/CIV <base64(key id || signature)>     one line per signature
//
// The signature covers the four body lines including the final newline.
// Our signature type (the byte that keys the key ID) is the private-use byte
// 0xff followed, as signed-note recommends, by the identifier
// "ibsm-x509-sha256": the public key is a DER SubjectPublicKeyInfo from the
// node's X.509 certificate, and the signature is EVP_DigestSign with SHA-256
// (ECDSA: a DER ECDSA-Sig-Value; RSA: PKCS #1 v1.5). So
//
//   key ID = SHA-256(key name || 0x0A || 0xff || "ibsm-x509-sha256" ||
//                    DER SPKI)[:4], big-endian.
//
// Parsing is strict: only this exact body (origin of printable ASCII without
// spaces or '+', size without leading zeros, canonical base64 of 32 bytes,
// exactly one "time <seconds>" extension line) is accepted. Signature lines
// from other keys (witness cosignatures, a rotated key) are ignored as
// signed-note requires, but must be well-formed.
//
// Errors: a malformed note is INVALID_ARGUMENT; a note that is well-formed but
// not validly signed by the expected key is DATA_LOSS (tampered or foreign).
#ifndef IBSM_CHECKPOINT_H_
#define IBSM_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ibsm/crypto.h"
#include "ibsm/merkle.h"

namespace ibsm {

struct Checkpoint {
  std::string origin;  // "ibsm/CIV": also the signing key's name
  uint64_t tree_size = 0;
  Hash root{};            // RootHash(storage, tree_size)
  int64_t time_unix = 0;  // when it was signed, seconds since the epoch; >= 0

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// The note text that is signed: four lines, each ending in a newline. Does
// not validate; SignCheckpoint does.
std::string CheckpointBody(const Checkpoint& checkpoint);

// The node's private key (EC, e.g. P-256, or RSA of at least 2048 bits).
// Movable, not copyable. Safe for concurrent use.
class SigningKey {
 public:
  // Reads an unencrypted PEM private key (PKCS #8 or traditional). An
  // encrypted key is an error, never a passphrase prompt.
  static absl::StatusOr<SigningKey> FromPem(absl::string_view pem);

  SigningKey(SigningKey&&) noexcept = default;
  SigningKey& operator=(SigningKey&&) noexcept = default;

  // SHA-256 signature of `message` (see the file comment for the scheme).
  absl::StatusOr<std::string> Sign(absl::string_view message) const;
  // The signed-note key ID of this key under `key_name`.
  uint32_t KeyId(absl::string_view key_name) const;
  // DER SubjectPublicKeyInfo of the public half, to match a certificate.
  const std::string& spki_der() const { return spki_der_; }

 private:
  SigningKey(crypto::EvpPkeyPtr key, std::string spki_der);

  crypto::EvpPkeyPtr key_;
  std::string spki_der_;  // DER SubjectPublicKeyInfo of the public half
};

// A public key that checkpoints are verified against. Movable, not copyable.
// Safe for concurrent use.
class VerifyingKey {
 public:
  // The public key of the first certificate in `pem`. Only the key is used:
  // the chain, expiry and usage of the certificate are the caller's business
  // (the caller decides which certificate it trusts).
  static absl::StatusOr<VerifyingKey> FromCertificatePem(absl::string_view pem);
  // The public key of `cert` (the certificate is not kept), on the same terms.
  static absl::StatusOr<VerifyingKey> FromCertificate(X509& cert);
  // A "-----BEGIN PUBLIC KEY-----" PEM (DER SubjectPublicKeyInfo).
  static absl::StatusOr<VerifyingKey> FromPublicKeyPem(absl::string_view pem);

  VerifyingKey(VerifyingKey&&) noexcept = default;
  VerifyingKey& operator=(VerifyingKey&&) noexcept = default;

  // OK iff `signature` is this key's signature of `message`; DATA_LOSS if not.
  absl::Status Verify(absl::string_view message,
                      absl::string_view signature) const;
  // The signed-note key ID of this key under `key_name`.
  uint32_t KeyId(absl::string_view key_name) const;
  // DER SubjectPublicKeyInfo of the key.
  const std::string& spki_der() const { return spki_der_; }

 private:
  VerifyingKey(crypto::EvpPkeyPtr key, std::string spki_der);

  crypto::EvpPkeyPtr key_;
  std::string spki_der_;
};

// The complete signed note: CheckpointBody, a blank line, and one signature
// line by `key` under the key name checkpoint.origin. INVALID_ARGUMENT if the
// origin is not a valid key name or time_unix is negative.
absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& checkpoint,
                                           const SigningKey& key);

// The key a node signs its checkpoints with, replaceable while the node runs
// (the node's key and certificate are renewed on disk; see
// broker/control/signing_key_watcher.h). Safe for concurrent use: a checkpoint
// is signed entirely with the old key or entirely with the new one.
class CheckpointSigner {
 public:
  explicit CheckpointSigner(SigningKey key);
  CheckpointSigner(const CheckpointSigner&) = delete;
  CheckpointSigner& operator=(const CheckpointSigner&) = delete;

  // Checkpoints signed after this returns use `key`.
  void Replace(SigningKey key);
  // SignCheckpoint with the current key.
  absl::StatusOr<std::string> Sign(const Checkpoint& checkpoint) const;
  // DER SubjectPublicKeyInfo of the current key.
  std::string spki_der() const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const SigningKey> key_ ABSL_GUARDED_BY(mu_);
};

// Parses `signed_note` strictly and checks that it carries a valid signature
// by `key` under the key name `origin`, and that its origin line is `origin`.
// The expected origin is a parameter because signed-note identifies a key by
// name and key ID together: an auditor knows which log it is auditing, and a
// checkpoint of another log signed by the same key must not pass for it.
// Any signature line by this key that fails to verify rejects the note.
absl::StatusOr<Checkpoint> VerifyCheckpoint(absl::string_view signed_note,
                                            absl::string_view origin,
                                            const VerifyingKey& key);

// The tree size (second line) and root (third line, base64) of a checkpoint
// note, read without checking its signature or the rest of its syntax: for
// commands that show or request what a note names before (or without)
// verifying it. nullopt when the line is missing or malformed (a size with
// leading zeros or beyond uint64_t, a root that is not 32 bytes).
std::optional<uint64_t> PeekTreeSize(absl::string_view note);
std::optional<Hash> PeekRoot(absl::string_view note);

}  // namespace ibsm

#endif  // IBSM_CHECKPOINT_H_
