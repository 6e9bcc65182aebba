#include "ibsm/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

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

}  // namespace

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
    const TlsFiles& files, unsigned reload_seconds) {
  RETURN_IF_ERROR(CheckTlsFiles(files));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key_file, files.cert_file, files.ca_file,
          reload_seconds == 0 ? 60 : reload_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!files.crl_dir.empty()) options.set_crl_directory(files.crl_dir);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files) {
  RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::SslCredentialsOptions options;
  ASSIGN_OR_RETURN(options.pem_root_certs, ReadFileToString(files.ca_file));
  ASSIGN_OR_RETURN(options.pem_private_key, ReadFileToString(files.key_file));
  ASSIGN_OR_RETURN(options.pem_cert_chain, ReadFileToString(files.cert_file));
  return grpc::SslCredentials(options);
}

}  // namespace ibsm
