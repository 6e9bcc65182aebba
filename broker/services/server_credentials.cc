#include "services/server_credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "ibsm/status_macros.h"

namespace ibsm::broker {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier) {
  IBSM_RETURN_IF_ERROR(CheckTlsFiles(files));
  if (verifier == nullptr) {
    return absl::InvalidArgumentError("no certificate verifier given");
  }
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key_file, files.cert_file, files.ca_file,
          reload_seconds == 0 ? 60 : reload_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  // CRLs are the verifier's: gRPC 1.51 checks them for the leaf only, caches
  // them until restart and accepts a chain whose CA has no CRL.
  options.set_certificate_verifier(std::move(verifier));
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace ibsm::broker
