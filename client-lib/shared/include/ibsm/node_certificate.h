// Which node certificate an offline verifier may trust: the chain to the
// IBSM root, validity at the time of the signature being checked,
// revocation of every certificate of the chain (when CRLs are given), and
// the binding of the node's identity to its issuing CA. Used by
// `ibsm audit verify` and `ibsm audit proof`. Pure code over PEM text, no
// file I/O; thread-safe.
//
// The binding convention (certs/README.md): a node certificate carries
// exactly one URI SAN spiffe://ibsm/<NODE> (no agency part), and the
// intermediate CA that issued it carries the URI SAN spiffe://ibsm/<NODE> of
// the same node. A node certificate issued by another node's intermediate,
// or directly by the root, is not trusted.
#ifndef IBSM_NODE_CERTIFICATE_H_
#define IBSM_NODE_CERTIFICATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ibsm/checkpoint.h"

namespace ibsm {

struct TrustedNodeCertificate {
  std::string node;     // <NODE> of spiffe://ibsm/<NODE>
  std::string subject;  // one-line distinguished names
  std::string issuer;
  std::string sha256_fingerprint;  // hex SHA-256 of the leaf's DER
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
  bool revocation_checked = false;  // CRLs were given and all passed
};

// Verifies the first certificate of `chain_pem` (followed by intermediates,
// as in a *-chain.pem file) against the trust anchors in `roots_pem`, as of
// `at_unix` (seconds since the epoch). With `crl_pems` not empty, every
// certificate of the chain must have a current CRL among them and not be
// listed (fail closed: a missing CRL is a failure). Then checks that it is a
// node certificate bound to its issuer (see the file comment).
//
// INVALID_ARGUMENT for input that does not parse; PERMISSION_DENIED with the
// reason for a certificate that is not to be trusted.
absl::StatusOr<TrustedNodeCertificate> TrustNodeCertificate(
    absl::string_view chain_pem, absl::string_view roots_pem,
    const std::vector<std::string>& crl_pems, int64_t at_unix);

}  // namespace ibsm

#endif  // IBSM_NODE_CERTIFICATE_H_
