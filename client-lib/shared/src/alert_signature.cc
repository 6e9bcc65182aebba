#include "ibsm/alert_signature.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ibsm/canonical_alert.h"
#include "ibsm/certificates.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm {
namespace {

using crypto::X509Ptr;

constexpr absl::string_view kFormat = " (docs/signature-format.md)";
// Alert ids are at most 128 characters when valid; a longer one is cut.
constexpr size_t kMaxIdShown = 128;

// Shown in messages: the id as the sender gave it, bounded.
std::string Shown(const v1::Alert& alert) {
  return alert.id().substr(0, kMaxIdShown);
}

absl::Status Refused(const v1::Alert& alert, absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("alert '", Shown(alert), "' ", why));
}

// Exactly one DER certificate, nothing after it; null otherwise.
X509Ptr ParseDer(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  if (cert == nullptr ||
      p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return nullptr;
  }
  return cert;
}

std::string ToDer(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), len);
  OPENSSL_free(der);
  return out;
}

// DER SubjectPublicKeyInfo of `cert`'s key, as SigningKey::spki_der.
std::string SpkiDer(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), len);
  OPENSSL_free(der);
  return out;
}

int64_t NotAfterUnix(X509* cert) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

// `chain_der`: a span or a repeated field of DER certificates.
template <typename Chain>
absl::Status CheckChainBounds(const Chain& chain_der) {
  if (chain_der.empty()) {
    return absl::InvalidArgumentError("the signing chain is empty");
  }
  if (static_cast<size_t>(chain_der.size()) > kMaxSigningChainCerts) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the signing chain has ", chain_der.size(), " certificates; at most ",
        kMaxSigningChainCerts, " are accepted"));
  }
  for (size_t i = 0; i < static_cast<size_t>(chain_der.size()); ++i) {
    if (chain_der[i].size() > kMaxSigningCertBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate ", i, " of the signing chain has ", chain_der[i].size(),
          " bytes; at most ", kMaxSigningCertBytes, " are accepted"));
    }
  }
  return absl::OkStatus();
}

// Tags of signature (21) and signing_chain (22), both length-delimited.
constexpr char kSignatureTag[2] = {static_cast<char>(0xaa), 0x01};
constexpr char kChainTag[2] = {static_cast<char>(0xb2), 0x01};

size_t VarintBytes(size_t n) {
  size_t bytes = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++bytes;
  }
  return bytes;
}

// The bytes that signature and signing_chain take in the serialization.
size_t SignatureFieldsBytes(const v1::Alert& alert) {
  size_t bytes = 0;
  if (!alert.signature().empty()) {
    bytes +=
        2 + VarintBytes(alert.signature().size()) + alert.signature().size();
  }
  for (const std::string& der : alert.signing_chain()) {
    bytes += 2 + VarintBytes(der.size()) + der.size();
  }
  return bytes;
}

}  // namespace

std::string AlertSigningBytes(const v1::Alert& alert) {
  // Without unknown fields, the deterministic serialization ends with
  // signature (21) and then signing_chain (22), the highest field numbers:
  // the signing bytes are that serialization cut before field 21, which
  // spares a copy of the alert (payload included) per signature and per
  // verification. With unknown fields (written after 22) or if the cut does
  // not land on the expected tag, the copy decides.
  if (alert.GetReflection()->GetUnknownFields(alert).empty()) {
    std::string bytes = absl::StrCat(kAlertSignatureContext, "\n");
    const size_t start = bytes.size();
    AppendDeterministicAlertBytes(alert, &bytes);
    const size_t left_out = SignatureFieldsBytes(alert);
    if (left_out == 0) return bytes;
    if (left_out < bytes.size() - start) {
      const size_t cut = bytes.size() - left_out;
      const char* tag = alert.signature().empty() ? kChainTag : kSignatureTag;
      if (bytes[cut] == tag[0] && bytes[cut + 1] == tag[1]) {
        bytes.resize(cut);
        return bytes;
      }
    }
  }
  v1::Alert covered = alert;
  covered.clear_signature();
  covered.clear_signing_chain();
  return absl::StrCat(kAlertSignatureContext, "\n",
                      DeterministicAlertBytes(covered));
}

std::string SigningChainSha256(const v1::Alert& alert) {
  std::vector<std::string> lengths;
  lengths.reserve(alert.signing_chain_size());
  for (const std::string& der : alert.signing_chain()) {
    const uint32_t n = static_cast<uint32_t>(der.size());
    lengths.push_back({static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)});
  }
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  IBSM_CHECK(ctx != nullptr);
  bool ok = EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  for (int i = 0; i < alert.signing_chain_size(); ++i) {
    const std::string& der = alert.signing_chain(i);
    ok = ok && EVP_DigestUpdate(ctx.get(), lengths[i].data(), 4) == 1 &&
         EVP_DigestUpdate(ctx.get(), der.data(), der.size()) == 1;
  }
  crypto::Hash out;
  unsigned int out_len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx.get(), out.data(), &out_len) == 1;
  IBSM_CHECK(ok && out_len == out.size());  // allocation failure only
  return std::string(crypto::HashView(out));
}

absl::StatusOr<std::vector<std::string>> SigningChainFromPem(
    absl::string_view pem) {
  std::vector<X509Ptr> certs =
      crypto::ParseCertificates(pem, 2 * kMaxSigningChainCerts + 1);
  std::vector<std::string> chain;
  for (const X509Ptr& cert : certs) {
    // A root that came with the file: self-issued and self-signed.
    if (X509_check_issued(cert.get(), cert.get()) == X509_V_OK) continue;
    chain.push_back(ToDer(cert.get()));
    if (chain.back().empty()) {
      return absl::InvalidArgumentError(
          "a certificate of the chain cannot be encoded as DER");
    }
  }
  ERR_clear_error();
  if (chain.empty()) {
    return absl::InvalidArgumentError(
        "no certificate (other than a root) could be read for signing");
  }
  IBSM_RETURN_IF_ERROR(CheckChainBounds(chain));
  return chain;
}

absl::Status SignAlert(const SigningKey& key,
                       absl::Span<const std::string> chain_der,
                       v1::Alert* alert) {
  if (alert->originator().empty() || !alert->has_created_at()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "alert '", Shown(*alert),
        "' needs its originator and created_at "
        "before it is signed: the signature covers them, and nobody may fill "
        "them in afterwards"));
  }
  // Whether chain_der[0] is the key's certificate is not checked here:
  // parsing a certificate costs more than signing (OpenSSL 3 decodes its
  // key), and this runs for every alert. The caller checks it once
  // (CheckSigningKeyMatches); a verifier refuses a mismatch in any case.
  IBSM_RETURN_IF_ERROR(CheckChainBounds(chain_der));
  // In place rather than on a copy of the alert (payload included); the
  // previous signature and chain come back if signing fails.
  std::string previous_signature;
  previous_signature.swap(*alert->mutable_signature());
  google::protobuf::RepeatedPtrField<std::string> previous_chain;
  previous_chain.Swap(alert->mutable_signing_chain());
  for (const std::string& der : chain_der) alert->add_signing_chain(der);
  absl::StatusOr<std::string> signature = key.Sign(AlertSigningBytes(*alert));
  if (!signature.ok()) {
    alert->mutable_signing_chain()->Swap(&previous_chain);
    alert->mutable_signature()->swap(previous_signature);
    return signature.status();
  }
  alert->set_signature(*std::move(signature));
  return absl::OkStatus();
}

absl::Status CheckSigningKeyMatches(const SigningKey& key,
                                    const std::string& leaf_der) {
  X509Ptr leaf = ParseDer(leaf_der);
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        "the first certificate of the signing chain is not one DER "
        "certificate");
  }
  if (SpkiDer(leaf.get()) != key.spki_der()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the signing key is not the key of certificate '",
        crypto::SubjectLine(leaf.get()), "', the first of the signing chain"));
  }
  return absl::OkStatus();
}

absl::Status CheckSignatureBounds(const v1::Alert& alert) {
  if (alert.signature().empty() && alert.signing_chain().empty()) {
    return Refused(alert, absl::StrCat("is not signed", kFormat));
  }
  if (alert.signature().empty()) {
    return Refused(alert, "carries a signing chain but no signature");
  }
  if (alert.signing_chain().empty()) {
    return Refused(alert,
                   "carries a signature but no signing chain (the signer's "
                   "certificate and its intermediate CA)");
  }
  if (alert.signature().size() > kMaxSignatureBytes) {
    return Refused(
        alert,
        absl::StrCat("has a signature of ", alert.signature().size(),
                     " bytes; at most ", kMaxSignatureBytes, " are accepted"));
  }
  if (absl::Status bounds = CheckChainBounds(alert.signing_chain());
      !bounds.ok()) {
    return Refused(alert, absl::StrCat("is refused: ", bounds.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifiedSigningChain> VerifySigningChain(
    const v1::Alert& alert, X509_STORE& trust,
    const crypto::ChainOptions& options) {
  std::vector<X509Ptr> certs;
  for (int i = 0; i < alert.signing_chain_size(); ++i) {
    X509Ptr cert = ParseDer(alert.signing_chain(i));
    if (cert == nullptr) {
      return Refused(alert,
                     absl::StrCat("has a signing chain whose certificate ", i,
                                  " is not one DER certificate"));
    }
    certs.push_back(std::move(cert));
  }
  crypto::ChainRejection rejected;
  absl::StatusOr<std::vector<X509Ptr>> verified =
      crypto::VerifyChain(*certs[0], absl::MakeConstSpan(certs).subspan(1),
                          trust, options, &rejected);
  if (!verified.ok()) {
    if (!absl::IsPermissionDenied(verified.status())) {
      // Fail closed: a check that cannot run refuses.
      return Refused(alert, absl::StrCat("cannot be checked: ",
                                         verified.status().message()));
    }
    if (rejected.missing_crl()) {
      return Refused(
          alert,
          absl::StrCat("is refused: there is no current CRL for the CA that "
                       "issued certificate '",
                       rejected.subject, "' (chain depth ", rejected.depth,
                       ") of its signing chain; with CRLs, every CA of the "
                       "chain needs one"));
    }
    return Refused(alert, absl::StrCat("has a signing chain that is refused: ",
                                       verified.status().message()));
  }
  X509* leaf = certs[0].get();
  if ((X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    return Refused(
        alert,
        absl::StrCat("is signed with certificate '", crypto::SubjectLine(leaf),
                     "', whose key usage does not allow digital "
                     "signatures"));
  }
  absl::StatusOr<std::string> uri =
      BoundSpiffeId(*leaf, absl::MakeConstSpan(*verified).subspan(1));
  if (!uri.ok()) {
    return Refused(alert, absl::StrCat("has a signer that cannot be trusted: ",
                                       uri.status().message()));
  }
  absl::StatusOr<Identity> identity = ParseSpiffeId(*uri);
  if (!identity.ok()) {
    return Refused(alert, absl::StrCat("has a signer that cannot be trusted: ",
                                       identity.status().message()));
  }
  absl::StatusOr<VerifyingKey> key = VerifyingKey::FromCertificate(*leaf);
  if (!key.ok()) {
    return Refused(alert, absl::StrCat("is signed with a key that cannot "
                                       "verify alert signatures: ",
                                       key.status().message()));
  }
  AlertSigner signer;
  signer.originator = identity->id();
  signer.chain_sha256 = SigningChainSha256(alert);
  signer.not_after_unix = NotAfterUnix(leaf);
  for (const X509Ptr& cert : *verified) {
    signer.not_after_unix =
        std::min(signer.not_after_unix, NotAfterUnix(cert.get()));
  }
  return VerifiedSigningChain{std::move(signer), *std::move(key)};
}

absl::StatusOr<AlertSigner> CheckSignedBy(const v1::Alert& alert,
                                          const VerifiedSigningChain& chain) {
  if (alert.originator() != chain.signer.originator) {
    return Refused(alert,
                   absl::StrCat("claims originator ",
                                alert.originator().empty()
                                    ? std::string("(none)")
                                    : alert.originator().substr(0, 100),
                                " but is signed by ", chain.signer.originator));
  }
  if (!chain.key.Verify(AlertSigningBytes(alert), alert.signature()).ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the signature of alert '", Shown(alert),
        "' does not verify: the alert was changed after it was signed, or "
        "signed with another key"));
  }
  return chain.signer;
}

absl::StatusOr<AlertSigner> VerifyAlertSignature(
    const v1::Alert& alert, X509_STORE& trust,
    const crypto::ChainOptions& options) {
  IBSM_RETURN_IF_ERROR(CheckSignatureBounds(alert));
  IBSM_ASSIGN_OR_RETURN(VerifiedSigningChain chain,
                        VerifySigningChain(alert, trust, options));
  return CheckSignedBy(alert, chain);
}

}  // namespace ibsm
