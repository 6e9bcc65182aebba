// The broker's server credentials: mutual TLS that requires a client
// certificate on every connection and re-reads the files while running.
// Thread-safe.
#ifndef IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_
#define IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ibsm/certificates.h"

namespace grpc {
class ServerCredentials;
namespace experimental {
class CertificateVerifier;
}  // namespace experimental
}  // namespace grpc

namespace ibsm::broker {

// Server credentials that require and verify a client certificate on every
// connection and re-read the files every `reload_seconds`. After gRPC's own
// chain check every handshake also runs `verifier` (the broker's whole-chain
// CRL check); `files.crl_dir` is left to that verifier, because gRPC 1.51
// checks CRLs for the leaf only. `verifier` must not be null.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_
