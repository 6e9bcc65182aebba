// Mutual-TLS credentials for IBSM nodes and clients, built from PEM files.
// Every function is thread-safe. Files are checked up front with OpenSSL so a
// missing, unreadable or mismatched key is reported as one clear error instead
// of a failed handshake later.
#ifndef IBSM_TLS_H_
#define IBSM_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
namespace experimental {
class CertificateVerifier;
}
}  // namespace grpc

namespace ibsm {

struct TlsFiles {
  std::string cert_file;  // PEM certificate, optionally followed by its chain
  std::string key_file;   // PEM private key of that certificate
  std::string ca_file;    // PEM root CA(s) that issue the peers
  std::string crl_dir;    // optional OpenSSL hashed CRL directory (servers)
};

// The whole file, or NOT_FOUND / PERMISSION_DENIED naming the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Checks that the files exist, parse, that the key matches the certificate,
// and that the certificate has not expired. FAILED_PRECONDITION or
// NOT_FOUND / PERMISSION_DENIED with the file name otherwise.
absl::Status CheckTlsFiles(const TlsFiles& files);

// The URI SAN of the first certificate in `cert_file` (e.g.
// "spiffe://ibsm/CIV/police"), or NOT_FOUND when it has none.
absl::StatusOr<std::string> CertificateUri(const std::string& cert_file);

// Client credentials presenting `cert_file` and trusting `ca_file`. Besides
// the chain and the host name, every handshake checks the node's identity:
// the server certificate must carry spiffe://ibsm/<expected_node>, issued by
// the intermediate CA of that node (see BoundSpiffeId). An empty
// `expected_node` accepts any node identity spiffe://ibsm/<NODE> bound to
// its issuer, but never an agency's or auditor's certificate.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files,
                       const std::string& expected_node = "");

// Server credentials that require and verify a client certificate on every
// connection and re-read the files every `reload_seconds`. After gRPC's own
// chain check every handshake also runs `verifier` (the broker's whole-chain
// CRL check); `files.crl_dir` is left to that verifier, because gRPC 1.51
// checks CRLs for the leaf only. `verifier` must not be null.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier);

// The URI SAN of the leaf of `pem_chain` (leaf first, then the certificates
// that came with it), bound to its issuer: the certificate in `pem_chain`
// whose subject is the leaf's issuer and whose key verifies the leaf's
// signature must carry exactly one URI SAN "spiffe://ibsm/<NODE>", and the
// leaf's single URI SAN must be "spiffe://ibsm/<NODE>" or
// "spiffe://ibsm/<NODE>/<name>". So an intermediate CA can only issue
// identities of its own node. The chain itself (up to the root, validity,
// revocation) is NOT checked here: call this on a chain that was verified.
// UNAUTHENTICATED when no identity can be read, PERMISSION_DENIED naming the
// leaf's id and its issuer when the issuer may not give that identity.
absl::StatusOr<std::string> BoundSpiffeId(absl::string_view pem_chain);

}  // namespace ibsm

#endif  // IBSM_TLS_H_
