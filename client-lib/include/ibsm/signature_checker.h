// Checks the originator signature of alerts a subscriber receives
// (docs/signature-format.md): that each was signed by its originator, with a
// certificate chain to the IBSM root that is not revoked and is bound to the
// originator's node CA, and was not changed since. The node checks this too;
// a subscriber that checks again does not have to trust the nodes an alert
// crossed.
//
//   IBSM_ASSIGN_OR_RETURN(ibsm::SignatureChecker checker,
//                         ibsm::SignatureChecker::FromFiles("ca.pem", "crl/"));
//   absl::StatusOr<ibsm::AlertSigner> signer =
//   checker.Verify(delivery.alert()); if (!signer.ok()) { /* do not trust the
//   alert: signer.status() says why */ }
//
// A SignatureChecker is immutable once made and safe for concurrent use by
// multiple threads; copies share the trust store. Roots and CRLs are read
// once: make a new checker to pick up replaced CRLs.
#ifndef IBSM_SIGNATURE_CHECKER_H_
#define IBSM_SIGNATURE_CHECKER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ibsm/alert_signature.h"
#include "ibsm/crypto.h"

namespace ibsm {

namespace v1 {
class Alert;
}  // namespace v1

class SignatureChecker {
 public:
  // Trusts the roots of `ca_file` (PEM). With a `crl_dir` (an OpenSSL hashed
  // CRL directory, or any directory of PEM CRLs), every certificate of a
  // signing chain must have a current CRL of its issuer there and not be
  // listed in it (a CA without a CRL refuses: fail closed); an empty
  // `crl_dir` does not check revocation. NOT_FOUND / FAILED_PRECONDITION
  // naming the file or directory when they cannot be read.
  static absl::StatusOr<SignatureChecker> FromFiles(const std::string& ca_file,
                                                    const std::string& crl_dir);

  // The signer of `alert` (VerifyAlertSignature, as of now), or
  // PERMISSION_DENIED naming the alert and saying what is wrong.
  absl::StatusOr<AlertSigner> Verify(const v1::Alert& alert) const;

  // Whether revocation is checked (a crl_dir was given).
  bool checks_revocation() const { return options_.crl_check_all; }

 private:
  SignatureChecker(std::shared_ptr<X509_STORE> trust,
                   crypto::ChainOptions options);

  std::shared_ptr<X509_STORE> trust_;  // read only once made
  crypto::ChainOptions options_;
};

}  // namespace ibsm

#endif  // IBSM_SIGNATURE_CHECKER_H_
