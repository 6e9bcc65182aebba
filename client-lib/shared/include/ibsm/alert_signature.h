// Originator signatures of alerts (docs/signature-format.md): the bytes an
// agency signs, signing with its key and certificate chain, and the one
// verification that the origin node (at publish), every receiving node (at
// federation ingress) and subscribers (ibsm/signature_checker.h) share.
// Pure code over bytes and OpenSSL objects: no gRPC, no file or network
// I/O. Every function is thread-safe; one X509_STORE may serve concurrent
// verifications (OpenSSL locks it internally).
//
//   // Publisher side (the client library does this for every alert):
//   alert.set_originator("CIV/police");            // covered by the signature
//   *alert.mutable_created_at() = now;             // covered too
//   IBSM_RETURN_IF_ERROR(SignAlert(key, chain_der, &alert));
//
//   // Verifier side:
//   ChainOptions options;
//   options.crl_check_all = true;                  // CRLs are in `trust`
//   IBSM_ASSIGN_OR_RETURN(AlertSigner signer,
//                         VerifyAlertSignature(alert, *trust, options));
//
// Every refusal of VerifyAlertSignature is PERMISSION_DENIED with a message
// that names the alert id and says what is wrong.
#ifndef IBSM_ALERT_SIGNATURE_H_
#define IBSM_ALERT_SIGNATURE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm {

// The context string that starts the signing bytes, followed by one 0x0A.
inline constexpr absl::string_view kAlertSignatureContext =
    "IBSM-ALERT-SIGNATURE-V1";
// Bounds checked before anything is parsed.
inline constexpr size_t kMaxSigningChainCerts = 4;
inline constexpr size_t kMaxSigningCertBytes = 16 << 10;
inline constexpr size_t kMaxSignatureBytes = 1 << 10;

// "IBSM-ALERT-SIGNATURE-V1", 0x0A, then DeterministicAlertBytes
// (ibsm/canonical_alert.h) of a copy of `alert` without `signature` (21) and
// `signing_chain` (22). Every other field is covered, created_at and
// originator included.
std::string AlertSigningBytes(const v1::Alert& alert);

// SHA-256 over the certificates of alert.signing_chain in order, each as a
// 4-byte big-endian length followed by its DER bytes; 32 raw bytes. Links
// and caches refer to a chain by it.
std::string SigningChainSha256(const v1::Alert& alert);

// The DER certificates of `pem` (the signer's certificate first, then its
// intermediate CA(s)), as SignAlert wants them. Self-signed certificates (a
// root that came with the file) are left out: verifiers have the roots.
// INVALID_ARGUMENT when there is no certificate, or the rest exceeds the
// bounds above.
absl::StatusOr<std::vector<std::string>> SigningChainFromPem(
    absl::string_view pem);

// Signs `alert` with `key` (ECDSA or RSA PKCS #1 v1.5, SHA-256): sets
// signing_chain to `chain_der` (the DER certificate of `key` first, then its
// intermediate(s)) and signature to the signature of AlertSigningBytes. Any
// previous signature is replaced. INVALID_ARGUMENT, and `alert` unchanged,
// when the alert has no originator or no created_at (the signature must
// cover both, so nobody may fill them in afterwards), or when the chain is
// empty or over the bounds. That chain_der[0] is the certificate of `key` is
// not checked per alert (it would cost more than the signature): check it
// once with CheckSigningKeyMatches; verifiers refuse a mismatch.
absl::Status SignAlert(const SigningKey& key,
                       absl::Span<const std::string> chain_der,
                       v1::Alert* alert);

// OK when `leaf_der` is one DER certificate whose public key is `key`'s;
// INVALID_ARGUMENT naming the certificate otherwise.
absl::Status CheckSigningKeyMatches(const SigningKey& key,
                                    const std::string& leaf_der);

// Who signed an alert, once VerifyAlertSignature accepted it.
struct AlertSigner {
  std::string originator;    // "CIV/police": equal to alert.originator
  std::string chain_sha256;  // SigningChainSha256 of the alert
  // The earliest notAfter of the verified chain (leaf and CAs), seconds since
  // the epoch: until then the chain verifies, revocation aside.
  int64_t not_after_unix = 0;
};

// Verifies the originator signature of `alert` against the roots and CRLs of
// `trust`, in this order (docs/signature-format.md, "Verification"):
//   1. signed at all, and the bounds (at most kMaxSigningChainCerts
//      certificates of at most kMaxSigningCertBytes, a signature of at most
//      kMaxSignatureBytes);
//   2. every certificate parses as exactly one DER certificate;
//   3. the chain verifies to a root of `trust` (crypto::VerifyChain with
//      `options`: crl_check_all for revocation of every certificate), and
//      the signer's key usage allows digital signatures;
//   4. the identity binding of BoundSpiffeId: the signer's
//      spiffe://ibsm/NODE/agency was issued by NODE's intermediate CA;
//   5. that identity is alert.originator;
//   6. the signature over AlertSigningBytes verifies with the signer's key.
// PERMISSION_DENIED naming the alert id and the reason otherwise.
absl::StatusOr<AlertSigner> VerifyAlertSignature(
    const v1::Alert& alert, X509_STORE& trust,
    const crypto::ChainOptions& options);

// The parts of VerifyAlertSignature, for verifiers that cache a verified
// chain by SigningChainSha256 (the broker's PeerVerifier) so that each
// further alert costs the signature check only. VerifyAlertSignature is
// exactly CheckSignatureBounds, VerifySigningChain, CheckSignedBy.
//
// A chain that passed steps 2 to 4: who it names and the signer's key.
// Movable, not copyable; safe for concurrent use.
struct VerifiedSigningChain {
  AlertSigner signer;  // originator = the identity the chain proves
  VerifyingKey key;    // the signer's public key
};
// Step 1.
absl::Status CheckSignatureBounds(const v1::Alert& alert);
// Steps 2 to 4, over alert.signing_chain (the alert id names the refusals).
// Call CheckSignatureBounds first.
absl::StatusOr<VerifiedSigningChain> VerifySigningChain(
    const v1::Alert& alert, X509_STORE& trust,
    const crypto::ChainOptions& options);
// Steps 5 and 6 with a chain that VerifySigningChain accepted for an alert
// with the same SigningChainSha256. Returns chain.signer.
absl::StatusOr<AlertSigner> CheckSignedBy(const v1::Alert& alert,
                                          const VerifiedSigningChain& chain);

}  // namespace ibsm

#endif  // IBSM_ALERT_SIGNATURE_H_
