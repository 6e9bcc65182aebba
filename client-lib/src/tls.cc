#include "ibsm/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "broker/crypto.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

// The OpenSSL owners are header-only, so using them does not link the
// audit library.
using crypto::BioPtr;
using crypto::X509Ptr;
using PkeyPtr = crypto::EvpPkeyPtr;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<X509Ptr> ParseFirstCert(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path));
  BioPtr bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": no PEM certificate could be read"));
  }
  return cert;
}

constexpr absl::string_view kSpiffe = "spiffe://ibsm/";
// A peer chain longer than this is refused before it is parsed.
constexpr size_t kMaxChainBytes = 64 << 10;
constexpr size_t kMaxChainCerts = 8;

// Every certificate in `pem`, in order; empty when one fails to parse.
std::vector<X509Ptr> ParseCerts(absl::string_view pem) {
  std::vector<X509Ptr> certs;
  if (pem.size() > kMaxChainBytes) return certs;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (certs.size() <= kMaxChainCerts) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  return certs;
}

// The URI SANs of `cert`.
std::vector<std::string> UriNames(X509* cert) {
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      ASN1_STRING_length(s));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

std::string SubjectOf(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

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
    ASSIGN_OR_RETURN(std::string uri, BoundSpiffeId(chain));
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
    return CheckHost(chain, request->target_name());
  }

  static absl::Status CheckHost(const std::string& chain,
                                grpc::string_ref target) {
    std::string host(target.data(), target.size());
    // "host:port", "[v6]:port" or a bare host.
    if (absl::StartsWith(host, "[")) {
      size_t end = host.find(']');
      host = end == std::string::npos ? host : host.substr(1, end - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      host = host.substr(0, host.find(':'));
    }
    std::vector<X509Ptr> certs = ParseCerts(chain);
    if (certs.empty()) {
      return absl::UnauthenticatedError("the server certificate is unreadable");
    }
    if (X509_check_ip_asc(certs[0].get(), host.c_str(), 0) == 1 ||
        X509_check_host(certs[0].get(), host.data(), host.size(), 0, nullptr) ==
            1) {
      return absl::OkStatus();
    }
    return absl::UnauthenticatedError(absl::StrCat(
        "the server certificate is not valid for the host name '", host, "'"));
  }

  const std::string expected_node_;
};

}  // namespace

absl::StatusOr<std::string> BoundSpiffeId(absl::string_view pem_chain) {
  std::vector<X509Ptr> certs = ParseCerts(pem_chain);
  if (certs.empty()) {
    return absl::UnauthenticatedError(
        "the peer certificate chain cannot be read (or is longer than 64 KiB)");
  }
  X509* leaf = certs[0].get();
  std::vector<std::string> leaf_uris = UriNames(leaf);
  if (leaf_uris.size() != 1 || !absl::StartsWith(leaf_uris[0], kSpiffe)) {
    return absl::UnauthenticatedError(
        "the certificate carries no single spiffe://ibsm/... URI subject "
        "alternative name");
  }
  const std::string& uri = leaf_uris[0];
  std::string shown = uri.substr(0, 160);
  EVP_PKEY* leaf_issuer_key = nullptr;
  X509* issuer = nullptr;
  for (size_t i = 1; i < certs.size() && issuer == nullptr; ++i) {
    if (X509_NAME_cmp(X509_get_subject_name(certs[i].get()),
                      X509_get_issuer_name(leaf)) != 0) {
      continue;
    }
    leaf_issuer_key = X509_get0_pubkey(certs[i].get());
    if (leaf_issuer_key != nullptr && X509_verify(leaf, leaf_issuer_key) == 1) {
      issuer = certs[i].get();
    }
  }
  if (issuer == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate '", shown,
        "' did not come with the intermediate CA that issued it, so its "
        "node binding cannot be checked"));
  }
  std::vector<std::string> issuer_uris = UriNames(issuer);
  std::string issuer_shown = SubjectOf(issuer);
  if (issuer_uris.size() != 1 || !absl::StartsWith(issuer_uris[0], kSpiffe) ||
      absl::StrContains(absl::StripPrefix(issuer_uris[0], kSpiffe), '/') ||
      issuer_uris[0].size() == kSpiffe.size()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate '", shown, "' was issued by '", issuer_shown,
        "', which names no node (an IBSM intermediate CA carries the URI "
        "SAN spiffe://ibsm/<NODE>)"));
  }
  const std::string& issuer_uri = issuer_uris[0];
  if (uri != issuer_uri && !absl::StartsWith(uri, issuer_uri + "/")) {
    // The certificate is genuine but its identity is not its issuer's to
    // give: a refusal of rights, unlike the cases above, where no identity
    // can be read at all.
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate '", shown, "' was issued by '", issuer_shown, "' (",
        issuer_uri, "), which may only issue identities of node ",
        absl::StripPrefix(issuer_uri, kSpiffe)));
  }
  return uri;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("a required file path is empty");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string reason = absl::StrCat(path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(reason);
    if (err == EACCES) return absl::PermissionDeniedError(reason);
    return absl::FailedPreconditionError(reason);
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": read error"));
  }
  return out.str();
}

absl::Status CheckTlsFiles(const TlsFiles& files) {
  ASSIGN_OR_RETURN(X509Ptr cert, ParseFirstCert(files.cert_file));
  ASSIGN_OR_RETURN(X509Ptr ca, ParseFirstCert(files.ca_file));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(files.key_file));
  BioPtr bio = MemBio(key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::FailedPreconditionError(absl::StrCat(
        files.key_file, ": no unencrypted PEM private key could be read"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(files.key_file, " does not match the certificate in ",
                     files.cert_file));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(files.cert_file, " has expired"));
  }
  if (!files.crl_dir.empty()) {
    std::ifstream probe(files.crl_dir);
    if (!probe) {
      return absl::NotFoundError(
          absl::StrCat(files.crl_dir, ": CRL directory cannot be read"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertificateUri(const std::string& cert_file) {
  ASSIGN_OR_RETURN(X509Ptr cert, ParseFirstCert(cert_file));
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  std::string uri;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_URI) {
      const ASN1_IA5STRING* s = name->d.uniformResourceIdentifier;
      uri.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                 ASN1_STRING_length(s));
      break;
    }
  }
  GENERAL_NAMES_free(names);
  if (uri.empty()) {
    return absl::NotFoundError(
        absl::StrCat(cert_file, " has no URI subject alternative name"));
  }
  return uri;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, unsigned reload_seconds,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier) {
  RETURN_IF_ERROR(CheckTlsFiles(files));
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

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files,
                       const std::string& expected_node) {
  RETURN_IF_ERROR(CheckTlsFiles(files));
  ASSIGN_OR_RETURN(std::string root, ReadFileToString(files.ca_file));
  grpc::experimental::IdentityKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadFileToString(files.key_file));
  ASSIGN_OR_RETURN(pair.certificate_chain, ReadFileToString(files.cert_file));
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
