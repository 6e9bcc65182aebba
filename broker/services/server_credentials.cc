#include "services/server_credentials.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ibsm/status_macros.h"

namespace ibsm::broker {
namespace {

// gRPC 1.51's own default list: TLS 1.3's suites and the ECDHE AES-GCM ones
// of TLS 1.2, all AEAD.
constexpr absl::string_view kAeadSuites[] = {
    "TLS_AES_128_GCM_SHA256",        "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",  "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384"};

}  // namespace

absl::Status CheckCipherSuites(absl::string_view suites) {
  if (suites.empty()) {
    return absl::FailedPreconditionError(
        "GRPC_SSL_CIPHER_SUITES is set but empty; unset it (the broker "
        "offers only AEAD suites)");
  }
  for (absl::string_view suite : absl::StrSplit(suites, ':')) {
    if (std::find(std::begin(kAeadSuites), std::end(kAeadSuites), suite) ==
        std::end(kAeadSuites)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GRPC_SSL_CIPHER_SUITES names '", suite,
          "', which is not one of the AEAD suites the broker allows (",
          absl::StrJoin(kAeadSuites, ":"), "); unset it or keep to those"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier) {
  IBSM_RETURN_IF_ERROR(CheckTlsFiles(files));
  // gRPC reads this variable once, for every credential of the process: a
  // weakened list inherited from the environment would apply to every port.
  if (const char* suites = std::getenv("GRPC_SSL_CIPHER_SUITES")) {
    IBSM_RETURN_IF_ERROR(CheckCipherSuites(suites));
  }
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
