// X.509 files and identities, pure OpenSSL (no gRPC): reading and checking
// the PEM files of a node or client, and reading the SPIFFE identity that a
// verified chain proves. Shared by the client library, the CLI and the broker.
// Every function is thread-safe. Files are checked up front so a missing,
// unreadable or mismatched key is reported as one clear error instead of a
// failed handshake later.
#ifndef IBSM_CERTIFICATES_H_
#define IBSM_CERTIFICATES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ibsm/crypto.h"

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
// The same check over parsed certificates: `leaf` and the certificates that
// came with it (`others`, in any order; a verified chain's rest does).
absl::StatusOr<std::string> BoundSpiffeId(
    X509& leaf, absl::Span<const crypto::X509Ptr> others);

// The CRLs of an OpenSSL hashed CRL directory (or any directory of PEM CRL
// files): the newest CRL of each issuer, since the hashed copies
// (<hash>.r0) repeat the <name>.crl.pem files and a replaced CRL may sit
// beside the old one for a moment. FAILED_PRECONDITION naming the directory
// when it cannot be listed or holds more than 10000 files. A file that
// cannot be read, is larger than 64 MiB or holds no PEM CRL is skipped and
// named in `skipped`: its CA then has no CRL, and with crl_check_all its
// certificates are refused (fail closed).
struct CrlDirContents {
  std::vector<crypto::X509CrlPtr> crls;
  std::vector<std::string> skipped;  // "<file>: <why>", for the caller's log
};
absl::StatusOr<CrlDirContents> ReadCrlDir(const std::string& dir);

// OK when the leaf of `pem_chain` is valid for the host of `target`
// ("host:port", "[v6]:port" or a bare host; DNS name or IP address),
// UNAUTHENTICATED naming the host otherwise.
absl::Status CheckCertificateHost(absl::string_view pem_chain,
                                  absl::string_view target);

// Lower-case hex SHA-256 of the DER of the first certificate in `pem` (the
// fingerprint `openssl x509 -fingerprint -sha256` prints, without colons),
// or empty when `pem` holds no certificate. Names a certificate in audit
// records and logs.
std::string CertificateSha256(absl::string_view pem);

}  // namespace ibsm

#endif  // IBSM_CERTIFICATES_H_
