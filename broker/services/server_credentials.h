// The broker's server credentials: mutual TLS that requires a client
// certificate on every connection and re-reads the files while running.
// Thread-safe.
#ifndef IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_
#define IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ibsm/certificates.h"

namespace grpc {
class ServerCredentials;
namespace experimental {
class CertificateVerifier;
}  // namespace experimental
}  // namespace grpc

namespace ibsm::broker {

// Whether `suites` (the value of GRPC_SSL_CIPHER_SUITES, which gRPC 1.51
// reads once per process and uses for every TLS 1.2 handshake) names only
// AEAD suites that gRPC offers by default. FAILED_PRECONDITION naming the
// first other suite.
absl::Status CheckCipherSuites(absl::string_view suites);

// Server credentials that require and verify a client certificate on every
// connection and re-read the files every `reload_seconds`. After gRPC's own
// chain check every handshake also runs `verifier` (the broker's whole-chain
// CRL check); `files.crl_dir` is left to that verifier, because gRPC 1.51
// checks CRLs for the leaf only. `verifier` must not be null. Refused when
// GRPC_SSL_CIPHER_SUITES is set to anything but AEAD suites
// (CheckCipherSuites). TLS 1.2 is the minimum: gRPC 1.51's default, which
// its C++ API cannot lower.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_SERVER_CREDENTIALS_H_
