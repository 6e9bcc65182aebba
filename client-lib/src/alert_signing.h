// The key, certificate chain and identity a Client signs published alerts
// with (ClientOptions::sign_alerts), read once by Client::Connect and shared
// by its Publishers. Private to the client library. Immutable once loaded;
// safe for concurrent use (SigningKey is).
#ifndef IBSM_CLIENT_LIB_SRC_ALERT_SIGNING_H_
#define IBSM_CLIENT_LIB_SRC_ALERT_SIGNING_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ibsm/checkpoint.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm::internal {

struct AlertSigning {
  SigningKey key;
  std::vector<std::string> chain_der;  // the signer's certificate first
  std::string originator;              // "CIV/police", from the certificate

  // Sets originator when it is empty, then SignAlert (ibsm/alert_signature.h).
  absl::Status Sign(v1::Alert* alert) const;
};

// Reads `key_file` and the chain of `cert_file` and signs a probe alert, so
// that a key that cannot sign fails here. `originator` is the identity of
// the certificate ("CIV/police"). FAILED_PRECONDITION naming the file and
// the reason otherwise.
absl::StatusOr<std::shared_ptr<const AlertSigning>> LoadAlertSigning(
    const std::string& cert_file, const std::string& key_file,
    const std::string& originator);

}  // namespace ibsm::internal

#endif  // IBSM_CLIENT_LIB_SRC_ALERT_SIGNING_H_
