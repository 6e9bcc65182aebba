// Mutual-TLS credentials for IBSM nodes and clients, built from PEM files.
// Every function is thread-safe. Files are checked up front with OpenSSL so a
// missing, unreadable or mismatched key is reported as one clear error instead
// of a failed handshake later.
#ifndef IBSM_TLS_H_
#define IBSM_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
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

// Server credentials that require and verify a client certificate on every
// connection, re-read the files every `reload_seconds`, and check CRLs in
// `crl_dir` when set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds);

// Client credentials presenting `cert_file` and trusting `ca_file`.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files);

}  // namespace ibsm

#endif  // IBSM_TLS_H_
