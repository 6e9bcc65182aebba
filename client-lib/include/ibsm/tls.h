// Mutual-TLS channel credentials for IBSM clients, built from PEM files (see
// ibsm/certificates.h for the files and identities). Thread-safe.
#ifndef IBSM_TLS_H_
#define IBSM_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ibsm/certificates.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace ibsm {

// Client credentials presenting `cert_file` and trusting `ca_file`. Besides
// the chain and the host name, every handshake checks the node's identity:
// the server certificate must carry spiffe://ibsm/<expected_node>, issued by
// the intermediate CA of that node (see BoundSpiffeId). An empty
// `expected_node` accepts any node identity spiffe://ibsm/<NODE> bound to
// its issuer, but never an agency's or auditor's certificate.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files,
                       const std::string& expected_node = "");

}  // namespace ibsm

#endif  // IBSM_TLS_H_
