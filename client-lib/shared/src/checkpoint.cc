#include "ibsm/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

// See the file comment of checkpoint.h.
constexpr absl::string_view kSignatureType =
    "\xff"
    "ibsm-x509-sha256";
constexpr absl::string_view kSignaturePrefix =
    "\xe2\x80\x94 ";  // em dash, space
constexpr absl::string_view kTimePrefix = "time ";
constexpr size_t kMaxNoteBytes =
    1 << 20;  // room for 16+ post-quantum cosignatures
constexpr size_t kMaxSignatures = 100;
constexpr int kMinRsaBits = 2048;

using crypto::BioPtr;
using crypto::MemBio;
using crypto::TakeOpensslErrors;
using MdCtxPtr = crypto::EvpMdCtxPtr;
using PkeyPtr = crypto::EvpPkeyPtr;
using X509Ptr = crypto::X509Ptr;

// A PEM passphrase callback that refuses, so that an encrypted key fails
// instead of prompting on the terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

// Checks the key is of a type we sign with and returns its DER SPKI.
absl::StatusOr<std::string> CheckKeyAndEncodeSpki(EVP_PKEY* key) {
  const int type = EVP_PKEY_get_base_id(key);
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
      return absl::InvalidArgumentError(
          absl::StrCat("RSA key of ", EVP_PKEY_get_bits(key),
                       " bits is too short; need at least ", kMinRsaBits));
    }
  } else if (type != EVP_PKEY_EC) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported key type ", OBJ_nid2sn(type),
        "; checkpoints and alerts are signed with EC or RSA keys"));
  }
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot encode the public key: ", TakeOpensslErrors()));
  }
  std::string spki(reinterpret_cast<const char*>(der), len);
  OPENSSL_free(der);
  return spki;
}

uint32_t ComputeKeyId(absl::string_view key_name, absl::string_view spki) {
  const crypto::Hash digest =
      crypto::Sha256({key_name, "\n", kSignatureType, spki});
  return (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) |
         (uint32_t{digest[2]} << 8) | uint32_t{digest[3]};
}

// A valid key name, and so a valid origin, for us: non-empty printable ASCII
// without spaces or '+'. Stricter than signed-note (which allows non-ASCII),
// which is fine for names we choose ("ibsm/CIV").
bool IsValidOrigin(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == '+') return false;
  }
  return true;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      extra = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// Standard base64 (RFC 4648 §4) in its one canonical spelling: padded, no
// whitespace, zero unused bits. absl's decoder is lenient, so re-encode and
// compare.
bool DecodeCanonicalBase64(absl::string_view in, std::string* out) {
  return absl::Base64Unescape(in, out) && absl::Base64Escape(*out) == in;
}

// ASCII decimal without sign, spaces or leading zeros, at most `max`.
bool ParseDecimal(absl::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed signed checkpoint: ", what));
}

struct SignatureLine {
  absl::string_view name;
  uint32_t key_id;
  std::string signature;
};

// "— <name> <base64(key id || signature)>" without the newline.
absl::StatusOr<SignatureLine> ParseSignatureLine(absl::string_view line) {
  if (line.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
    return Malformed(
        "a line after the blank line is not a signature line "
        "(\"\xe2\x80\x94 <key name> <signature>\")");
  }
  line.remove_prefix(kSignaturePrefix.size());
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos || space == 0) {
    return Malformed("signature line without a key name and a signature");
  }
  SignatureLine sig;
  sig.name = line.substr(0, space);
  if (sig.name.find('+') != absl::string_view::npos) {
    return Malformed("key name of a signature line contains '+'");
  }
  std::string raw;
  if (!DecodeCanonicalBase64(line.substr(space + 1), &raw)) {
    return Malformed(absl::StrCat("signature of key '", sig.name,
                                  "' is not canonical base64"));
  }
  if (raw.size() < 5) {
    return Malformed(absl::StrCat("signature of key '", sig.name,
                                  "' is shorter than a key ID plus a byte"));
  }
  sig.key_id = (uint32_t{static_cast<uint8_t>(raw[0])} << 24) |
               (uint32_t{static_cast<uint8_t>(raw[1])} << 16) |
               (uint32_t{static_cast<uint8_t>(raw[2])} << 8) |
               uint32_t{static_cast<uint8_t>(raw[3])};
  sig.signature = raw.substr(4);
  return sig;
}

// The four lines of CheckpointBody, `text` including its final newline.
absl::StatusOr<Checkpoint> ParseBody(absl::string_view text,
                                     absl::string_view origin) {
  // text ends in '\n' (the caller split after it), so the last piece is "".
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();
  if (lines.size() < 4) {
    return Malformed(absl::StrCat("the note text has ", lines.size(),
                                  " lines; a checkpoint has 4"));
  }
  if (lines.size() > 4) {
    return Malformed(
        absl::StrCat("unexpected extension line after the time line: '",
                     absl::CHexEscape(lines[4].substr(0, 40)), "'"));
  }
  Checkpoint checkpoint;
  if (lines[0] != origin) {
    return Malformed(absl::StrCat("origin line is '",
                                  absl::CHexEscape(lines[0].substr(0, 80)),
                                  "', expected '", origin, "'"));
  }
  checkpoint.origin = std::string(origin);
  if (!ParseDecimal(lines[1], std::numeric_limits<uint64_t>::max(),
                    &checkpoint.tree_size)) {
    return Malformed(absl::StrCat(
        "tree size line '", absl::CHexEscape(lines[1].substr(0, 40)),
        "' is not a decimal number without leading zeros"));
  }
  std::string root;
  if (!DecodeCanonicalBase64(lines[2], &root)) {
    return Malformed("root hash line is not canonical base64");
  }
  std::optional<Hash> root_hash = crypto::HashFromBytes(root);
  if (!root_hash.has_value()) {
    return Malformed(
        absl::StrCat("root hash has ", root.size(), " bytes, expected 32"));
  }
  checkpoint.root = *root_hash;
  uint64_t time = 0;
  if (lines[3].substr(0, kTimePrefix.size()) != kTimePrefix ||
      !ParseDecimal(lines[3].substr(kTimePrefix.size()),
                    std::numeric_limits<int64_t>::max(), &time)) {
    return Malformed(absl::StrCat("fourth line '",
                                  absl::CHexEscape(lines[3].substr(0, 40)),
                                  "' is not 'time <unix seconds>'"));
  }
  checkpoint.time_unix = static_cast<int64_t>(time);
  return checkpoint;
}

}  // namespace

std::string CheckpointBody(const Checkpoint& checkpoint) {
  const absl::string_view root(
      reinterpret_cast<const char*>(checkpoint.root.data()),
      checkpoint.root.size());
  return absl::StrCat(checkpoint.origin, "\n", checkpoint.tree_size, "\n",
                      absl::Base64Escape(root), "\n", kTimePrefix,
                      checkpoint.time_unix, "\n");
}

// ---- SigningKey ----

SigningKey::SigningKey(PkeyPtr key, std::string spki_der)
    : key_(std::move(key)), spki_der_(std::move(spki_der)) {}

absl::StatusOr<SigningKey> SigningKey::FromPem(absl::string_view pem) {
  IBSM_ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem));
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no unencrypted PEM private key could be read: ", TakeOpensslErrors()));
  }
  IBSM_ASSIGN_OR_RETURN(std::string spki, CheckKeyAndEncodeSpki(key.get()));
  return SigningKey(std::move(key), std::move(spki));
}

absl::StatusOr<std::string> SigningKey::Sign(absl::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  IBSM_CHECK(ctx != nullptr);
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                         key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError(
        absl::StrCat("cannot sign: ", TakeOpensslErrors()));
  }
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError(
        absl::StrCat("cannot sign: ", TakeOpensslErrors()));
  }
  signature.resize(len);  // ECDSA signatures are often shorter than the max
  return signature;
}

uint32_t SigningKey::KeyId(absl::string_view key_name) const {
  return ComputeKeyId(key_name, spki_der_);
}

// ---- VerifyingKey ----

VerifyingKey::VerifyingKey(PkeyPtr key, std::string spki_der)
    : key_(std::move(key)), spki_der_(std::move(spki_der)) {}

absl::StatusOr<VerifyingKey> VerifyingKey::FromCertificatePem(
    absl::string_view pem) {
  IBSM_ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no PEM certificate could be read: ", TakeOpensslErrors()));
  }
  return FromCertificate(*cert);
}

absl::StatusOr<VerifyingKey> VerifyingKey::FromCertificate(X509& cert) {
  PkeyPtr key(X509_get_pubkey(&cert));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate's public key cannot be decoded: ",
                     TakeOpensslErrors()));
  }
  IBSM_ASSIGN_OR_RETURN(std::string spki, CheckKeyAndEncodeSpki(key.get()));
  return VerifyingKey(std::move(key), std::move(spki));
}

absl::StatusOr<VerifyingKey> VerifyingKey::FromPublicKeyPem(
    absl::string_view pem) {
  IBSM_ASSIGN_OR_RETURN(BioPtr bio, MemBio(pem));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no PEM public key could be read: ", TakeOpensslErrors()));
  }
  IBSM_ASSIGN_OR_RETURN(std::string spki, CheckKeyAndEncodeSpki(key.get()));
  return VerifyingKey(std::move(key), std::move(spki));
}

absl::Status VerifyingKey::Verify(absl::string_view message,
                                  absl::string_view signature) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  IBSM_CHECK(ctx != nullptr);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                           key_.get()) != 1) {
    return absl::InternalError(
        absl::StrCat("cannot start verifying: ", TakeOpensslErrors()));
  }
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
      message.size());
  // 0 is a bad signature, < 0 a signature that does not even parse: both
  // mean the note was not signed by this key as it stands.
  ERR_clear_error();
  if (rc != 1) return absl::DataLossError("signature does not verify");
  return absl::OkStatus();
}

uint32_t VerifyingKey::KeyId(absl::string_view key_name) const {
  return ComputeKeyId(key_name, spki_der_);
}

// ---- Signing and verifying notes ----

absl::StatusOr<std::string> SignCheckpoint(const Checkpoint& checkpoint,
                                           const SigningKey& key) {
  if (!IsValidOrigin(checkpoint.origin)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint origin '", absl::CHexEscape(checkpoint.origin),
        "' is not non-empty printable ASCII without spaces or '+'"));
  }
  if (checkpoint.time_unix < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint time ", checkpoint.time_unix, " is before 1970"));
  }
  const std::string body = CheckpointBody(checkpoint);
  IBSM_ASSIGN_OR_RETURN(std::string signature, key.Sign(body));
  const uint32_t id = key.KeyId(checkpoint.origin);
  std::string raw = {static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                     static_cast<char>(id >> 8), static_cast<char>(id)};
  raw += signature;
  return absl::StrCat(body, "\n", kSignaturePrefix, checkpoint.origin, " ",
                      absl::Base64Escape(raw), "\n");
}

absl::StatusOr<Checkpoint> VerifyCheckpoint(absl::string_view signed_note,
                                            absl::string_view origin,
                                            const VerifyingKey& key) {
  if (!IsValidOrigin(origin)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected origin '", absl::CHexEscape(origin),
        "' is not non-empty printable ASCII without spaces or '+'"));
  }
  if (signed_note.size() > kMaxNoteBytes) {
    return Malformed(absl::StrCat("note of ", signed_note.size(),
                                  " bytes exceeds the limit of ",
                                  kMaxNoteBytes));
  }
  if (!IsValidUtf8(signed_note)) return Malformed("note is not valid UTF-8");
  for (char c : signed_note) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') {
      return Malformed(absl::StrCat(
          "note contains control character 0x",
          absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2)));
    }
  }
  // The text ends at the last blank line; what follows is signature lines.
  const size_t blank = signed_note.rfind("\n\n");
  if (blank == absl::string_view::npos) {
    return Malformed("no blank line between the text and the signatures");
  }
  const absl::string_view text = signed_note.substr(0, blank + 1);
  absl::string_view signatures = signed_note.substr(blank + 2);
  if (signatures.empty()) return Malformed("no signature lines");
  if (signatures.back() != '\n') {
    return Malformed(
        "the last signature line does not end in a newline "
        "(truncated, or trailing garbage)");
  }
  signatures.remove_suffix(1);

  const uint32_t key_id = key.KeyId(origin);
  size_t count = 0;
  bool verified = false;
  for (absl::string_view line : absl::StrSplit(signatures, '\n')) {
    if (++count > kMaxSignatures) {
      return Malformed(
          absl::StrCat("more than ", kMaxSignatures, " signature lines"));
    }
    IBSM_ASSIGN_OR_RETURN(SignatureLine sig, ParseSignatureLine(line));
    if (sig.name != origin || sig.key_id != key_id) continue;  // another key
    absl::Status status = key.Verify(text, sig.signature);
    if (!status.ok()) {
      return absl::DataLossError(
          absl::StrCat("signature by key '", origin,
                       "' does not verify: the checkpoint "
                       "was modified or signed by another key"));
    }
    verified = true;
  }
  if (!verified) {
    return absl::DataLossError(
        absl::StrCat("no signature by key '", origin, "' (key ID ",
                     absl::Hex(key_id, absl::kZeroPad8),
                     "): the checkpoint was not signed by the expected key"));
  }
  return ParseBody(text, origin);
}

std::optional<uint64_t> PeekTreeSize(absl::string_view note) {
  std::vector<absl::string_view> lines = absl::StrSplit(note, '\n');
  uint64_t size = 0;
  if (lines.size() < 3 ||
      !ParseDecimal(lines[1], std::numeric_limits<uint64_t>::max(), &size)) {
    return std::nullopt;
  }
  return size;
}

std::optional<Hash> PeekRoot(absl::string_view note) {
  std::vector<absl::string_view> lines = absl::StrSplit(note, '\n');
  if (lines.size() < 3) return std::nullopt;
  std::string raw;
  if (!absl::Base64Unescape(lines[2], &raw)) return std::nullopt;
  return crypto::HashFromBytes(raw);
}

CheckpointSigner::CheckpointSigner(SigningKey key)
    : key_(std::make_shared<const SigningKey>(std::move(key))) {}

void CheckpointSigner::Replace(SigningKey key) {
  auto fresh = std::make_shared<const SigningKey>(std::move(key));
  absl::MutexLock lock(&mu_);
  key_ = std::move(fresh);
}

absl::StatusOr<std::string> CheckpointSigner::Sign(
    const Checkpoint& checkpoint) const {
  std::shared_ptr<const SigningKey> key;
  {
    absl::MutexLock lock(&mu_);
    key = key_;
  }
  // Signing outside the lock: a replacement does not wait for it.
  return SignCheckpoint(checkpoint, *key);
}

std::string CheckpointSigner::spki_der() const {
  absl::MutexLock lock(&mu_);
  return key_->spki_der();
}

}  // namespace ibsm
