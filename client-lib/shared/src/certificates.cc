#include "ibsm/certificates.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ibsm/crypto.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

using crypto::BioPtr;
using crypto::X509Ptr;
using PkeyPtr = crypto::EvpPkeyPtr;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<X509Ptr> ParseFirstCert(const std::string& path) {
  IBSM_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path));
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

}  // namespace

absl::StatusOr<std::string> BoundSpiffeId(absl::string_view pem_chain) {
  std::vector<X509Ptr> certs = ParseCerts(pem_chain);
  if (certs.empty()) {
    return absl::UnauthenticatedError(
        "the peer certificate chain cannot be read (or is longer than 64 KiB)");
  }
  return BoundSpiffeId(*certs[0], absl::MakeConstSpan(certs).subspan(1));
}

absl::StatusOr<std::string> BoundSpiffeId(
    X509& leaf_cert, absl::Span<const crypto::X509Ptr> others) {
  X509* leaf = &leaf_cert;
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
  for (size_t i = 0; i < others.size() && issuer == nullptr; ++i) {
    X509* candidate = others[i].get();
    if (candidate == nullptr || candidate == leaf ||
        X509_NAME_cmp(X509_get_subject_name(candidate),
                      X509_get_issuer_name(leaf)) != 0) {
      continue;
    }
    leaf_issuer_key = X509_get0_pubkey(candidate);
    if (leaf_issuer_key != nullptr && X509_verify(leaf, leaf_issuer_key) == 1) {
      issuer = candidate;
    }
  }
  ERR_clear_error();
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
  IBSM_ASSIGN_OR_RETURN(X509Ptr cert, ParseFirstCert(files.cert_file));
  IBSM_ASSIGN_OR_RETURN(X509Ptr ca, ParseFirstCert(files.ca_file));
  IBSM_ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(files.key_file));
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
  IBSM_ASSIGN_OR_RETURN(X509Ptr cert, ParseFirstCert(cert_file));
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

absl::Status CheckCertificateHost(absl::string_view pem_chain,
                                  absl::string_view target) {
  std::string host(target);
  // "host:port", "[v6]:port" or a bare host.
  if (absl::StartsWith(host, "[")) {
    size_t end = host.find(']');
    host = end == std::string::npos ? host : host.substr(1, end - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  std::vector<X509Ptr> certs = ParseCerts(pem_chain);
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

absl::StatusOr<CrlDirContents> ReadCrlDir(const std::string& dir) {
  constexpr size_t kMaxCrlFiles = 10000;
  constexpr uintmax_t kMaxCrlFileBytes = 64 << 20;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
    if (files.size() > kMaxCrlFiles) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, ": more than ", kMaxCrlFiles, " files in the CRL dir"));
    }
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": CRL directory cannot be read: ", ec.message()));
  }
  std::sort(files.begin(), files.end());
  CrlDirContents out;
  // Keyed by the issuer's DER name.
  std::map<std::string, crypto::X509CrlPtr> newest;
  for (const auto& path : files) {
    if (std::filesystem::file_size(path, ec) > kMaxCrlFileBytes) {
      out.skipped.push_back(
          absl::StrCat(path.string(), ": larger than 64 MiB"));
      continue;
    }
    absl::StatusOr<std::string> pem = ReadFileToString(path.string());
    if (!pem.ok()) {
      out.skipped.push_back(std::string(pem.status().message()));
      continue;
    }
    std::vector<crypto::X509CrlPtr> in_file = crypto::ParseCrls(*pem);
    if (in_file.empty()) {
      out.skipped.push_back(absl::StrCat(path.string(), ": holds no PEM CRL"));
    }
    for (crypto::X509CrlPtr& crl : in_file) {
      unsigned char* der = nullptr;
      int len = i2d_X509_NAME(X509_CRL_get_issuer(crl.get()), &der);
      if (len <= 0) continue;
      std::string issuer(reinterpret_cast<char*>(der), len);
      OPENSSL_free(der);
      auto it = newest.find(issuer);
      if (it == newest.end() ||
          ASN1_TIME_compare(X509_CRL_get0_lastUpdate(it->second.get()),
                            X509_CRL_get0_lastUpdate(crl.get())) < 0) {
        newest[issuer] = std::move(crl);
      }
    }
  }
  ERR_clear_error();
  for (auto& [issuer, crl] : newest) out.crls.push_back(std::move(crl));
  return out;
}

std::string CertificateSha256(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return "";
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) {
    ERR_clear_error();
    return "";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool digested = X509_digest(cert, EVP_sha256(), md, &len) == 1;
  X509_free(cert);
  if (!digested) return "";
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace ibsm
