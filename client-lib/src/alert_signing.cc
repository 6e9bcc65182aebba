#include "alert_signing.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/alert_signature.h"
#include "ibsm/certificates.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm::internal {

absl::Status AlertSigning::Sign(v1::Alert* alert) const {
  if (alert->originator().empty()) alert->set_originator(originator);
  return SignAlert(key, chain_der, alert);
}

absl::StatusOr<std::shared_ptr<const AlertSigning>> LoadAlertSigning(
    const std::string& cert_file, const std::string& key_file,
    const std::string& originator) {
  auto cannot_sign = [&](const std::string& file, absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot sign alerts (ClientOptions::sign_alerts) with ",
                     file, ": ", why));
  };
  if (originator.empty() || !absl::StrContains(originator, '/')) {
    return cannot_sign(cert_file,
                       "the certificate names no agency "
                       "(spiffe://ibsm/NODE/agency)");
  }
  IBSM_ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(key_file));
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(key_pem);
  if (!key.ok()) return cannot_sign(key_file, key.status().message());
  IBSM_ASSIGN_OR_RETURN(std::string chain_pem, ReadFileToString(cert_file));
  absl::StatusOr<std::vector<std::string>> chain =
      SigningChainFromPem(chain_pem);
  if (!chain.ok()) return cannot_sign(cert_file, chain.status().message());
  if (absl::Status matches = CheckSigningKeyMatches(*key, chain->front());
      !matches.ok()) {
    return cannot_sign(key_file, matches.message());
  }
  auto signing = std::make_shared<AlertSigning>(
      AlertSigning{*std::move(key), *std::move(chain), originator});
  // A probe: a key that cannot sign at all is reported now rather than at
  // the first publish.
  v1::Alert probe;
  probe.set_id("connect-probe");
  probe.mutable_created_at()->set_seconds(1);
  if (absl::Status signed_probe = signing->Sign(&probe); !signed_probe.ok()) {
    return cannot_sign(key_file, signed_probe.message());
  }
  return std::shared_ptr<const AlertSigning>(std::move(signing));
}

}  // namespace ibsm::internal
