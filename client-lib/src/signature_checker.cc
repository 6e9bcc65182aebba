#include "ibsm/signature_checker.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/certificates.h"
#include "ibsm/status_macros.h"

namespace ibsm {

SignatureChecker::SignatureChecker(std::shared_ptr<X509_STORE> trust,
                                   crypto::ChainOptions options)
    : trust_(std::move(trust)), options_(options) {}

absl::StatusOr<SignatureChecker> SignatureChecker::FromFiles(
    const std::string& ca_file, const std::string& crl_dir) {
  IBSM_ASSIGN_OR_RETURN(std::string roots_pem, ReadFileToString(ca_file));
  std::vector<crypto::X509Ptr> roots = crypto::ParseCertificates(roots_pem);
  if (roots.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ca_file, ": no PEM certificate could be read"));
  }
  crypto::ChainOptions options;
  std::vector<crypto::X509CrlPtr> crls;
  if (!crl_dir.empty()) {
    // Unreadable files are skipped: their CA then has no CRL, so its
    // certificates are refused with a message naming it.
    IBSM_ASSIGN_OR_RETURN(CrlDirContents contents, ReadCrlDir(crl_dir));
    crls = std::move(contents.crls);
    options.crl_check_all = true;
  }
  crypto::X509StorePtr store = crypto::MakeTrustStore(roots, crls);
  return SignatureChecker(
      std::shared_ptr<X509_STORE>(store.release(), crypto::X509StoreDeleter()),
      options);
}

absl::StatusOr<AlertSigner> SignatureChecker::Verify(
    const v1::Alert& alert) const {
  return VerifyAlertSignature(alert, *trust_, options_);
}

}  // namespace ibsm
