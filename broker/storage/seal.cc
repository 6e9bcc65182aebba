#include "storage/seal.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ibsm::broker::seal {
namespace {

using CipherCtx =
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::Status CheckSizes(absl::string_view key, absl::string_view nonce) {
  if (key.size() != kKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an AES-256-GCM key is ", kKeyBytes, " bytes, not ", key.size()));
  }
  if (nonce.size() != kNonceBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an AES-256-GCM nonce is ", kNonceBytes, " bytes, not ", nonce.size()));
  }
  return absl::OkStatus();
}

void AppendField(std::string* out, absl::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out->append(field.data(), field.size());
}

}  // namespace

std::string KeyId(absl::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(Bytes(key), key.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), kKeyIdBytes);
}

std::string KeyIdHex(absl::string_view key_id) {
  return absl::BytesToHexString(key_id);
}

std::string AssociatedData(uint32_t format, absl::string_view key_id,
                           uint64_t sequence, absl::string_view originator,
                           absl::string_view alert_id) {
  std::string ad = "ibsm.stored-alert.v1";
  ad.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    ad.push_back(static_cast<char>((format >> shift) & 0xff));
  }
  AppendField(&ad, key_id);
  for (int shift = 56; shift >= 0; shift -= 8) {
    ad.push_back(static_cast<char>((sequence >> shift) & 0xff));
  }
  AppendField(&ad, originator);
  AppendField(&ad, alert_id);
  return ad;
}

absl::StatusOr<std::string> Seal(absl::string_view key, absl::string_view nonce,
                                 absl::string_view associated_data,
                                 absl::string_view plaintext) {
  if (absl::Status s = CheckSizes(key, nonce); !s.ok()) return s;
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(plaintext.size() + kTagBytes, '\0');
  unsigned char* dst = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  int total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key),
                         Bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), dst, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed in OpenSSL");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), dst + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kTagBytes),
                          dst + plaintext.size()) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed in OpenSSL");
  }
  return out;
}

absl::StatusOr<std::string> Open(absl::string_view key, absl::string_view nonce,
                                 absl::string_view associated_data,
                                 absl::string_view sealed) {
  if (absl::Status s = CheckSizes(key, nonce); !s.ok()) return s;
  if (sealed.size() < kTagBytes) {
    return absl::DataLossError(
        absl::StrCat("the sealed value (", sealed.size(),
                     " bytes) is shorter than its authentication tag"));
  }
  const size_t n = sealed.size() - kTagBytes;
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(n, '\0');
  unsigned char* dst = reinterpret_cast<unsigned char*>(out.data());
  // OpenSSL only reads the expected tag; its API takes it non-const.
  std::string tag(sealed.substr(n));
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key),
                         Bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), dst, &len, Bytes(sealed),
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kTagBytes), tag.data()) != 1) {
    return absl::InternalError("AES-256-GCM decryption failed in OpenSSL");
  }
  // GCM writes nothing at Final; it only compares the tag.
  if (EVP_DecryptFinal_ex(ctx.get(), dst + len, &len) != 1) {
    return absl::DataLossError(
        "the sealed value does not authenticate (wrong key, nonce, associated "
        "data, or altered bytes)");
  }
  return out;
}

}  // namespace ibsm::broker::seal
