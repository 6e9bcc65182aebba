#include "ibsm/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

constexpr absl::string_view kSpiffe = "spiffe://ibsm/";

// Checks the server's identity on every client handshake, after gRPC
// verified the chain to the root: the node's SPIFFE id bound to its issuer,
// then the host name (gRPC's own host check is replaced by this verifier).
class NodeIdentityVerifier final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit NodeIdentityVerifier(std::string expected_node)
      : expected_node_(std::move(expected_node)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    absl::Status s = Check(request);
    *sync_status = s.ok() ? grpc::Status::OK
                          : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                         std::string(s.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  absl::Status Check(
      grpc::experimental::TlsCustomVerificationCheckRequest* request) const {
    grpc::string_ref leaf = request->peer_cert();
    grpc::string_ref rest = request->peer_cert_full_chain();
    std::string chain =
        absl::StrCat(absl::string_view(leaf.data(), leaf.size()), "\n",
                     absl::string_view(rest.data(), rest.size()));
    IBSM_ASSIGN_OR_RETURN(std::string uri, BoundSpiffeId(chain));
    absl::string_view node = absl::StripPrefix(uri, kSpiffe);
    if (absl::StrContains(node, '/')) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the server presented '", uri, "', which is not a node identity"));
    }
    if (!expected_node_.empty() && node != expected_node_) {
      return absl::UnauthenticatedError(
          absl::StrCat("the server is '", uri, "', not the expected node ",
                       kSpiffe, expected_node_));
    }
    grpc::string_ref target = request->target_name();
    return CheckCertificateHost(
        chain, absl::string_view(target.data(), target.size()));
  }

  const std::string expected_node_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files,
                       const std::string& expected_node) {
  IBSM_RETURN_IF_ERROR(CheckTlsFiles(files));
  IBSM_ASSIGN_OR_RETURN(std::string root, ReadFileToString(files.ca_file));
  grpc::experimental::IdentityKeyCertPair pair;
  IBSM_ASSIGN_OR_RETURN(pair.private_key, ReadFileToString(files.key_file));
  IBSM_ASSIGN_OR_RETURN(pair.certificate_chain,
                        ReadFileToString(files.cert_file));
  auto provider =
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          root, std::vector<grpc::experimental::IdentityKeyCertPair>{pair});
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          NodeIdentityVerifier>(expected_node));
  // The verifier checks the host name of the connection; calls carry no
  // other host.
  options.set_check_call_host(false);
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) {
    return absl::InternalError("gRPC refused the TLS channel options");
  }
  return creds;
}

}  // namespace ibsm
