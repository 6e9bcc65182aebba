#include "ibsm/node_certificate.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace ibsm {
namespace {

constexpr absl::string_view kSpiffePrefix = "spiffe://ibsm/";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlFree {
  void operator()(X509_CRL* x) const { X509_CRL_free(x); }
};
struct StoreFree {
  void operator()(X509_STORE* x) const { X509_STORE_free(x); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* x) const { X509_STORE_CTX_free(x); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * x) const { sk_X509_pop_free(x, X509_free); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::unique_ptr<BIO, BioFree> MemBio(absl::string_view pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::vector<X509Ptr> ReadCertificates(absl::string_view pem) {
  std::vector<X509Ptr> out;
  auto bio = MemBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
  }
  return out;
}

std::string Name(const X509_NAME* name) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::vector<std::string> UriSans(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

int64_t UnixTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

absl::Status Untrusted(absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("the node certificate is not trusted: ", why));
}

}  // namespace

absl::StatusOr<TrustedNodeCertificate> TrustNodeCertificate(
    absl::string_view chain_pem, absl::string_view roots_pem,
    const std::vector<std::string>& crl_pems, int64_t at_unix) {
  std::vector<X509Ptr> chain = ReadCertificates(chain_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError("no PEM certificate in the node's file");
  }
  std::vector<X509Ptr> roots = ReadCertificates(roots_pem);
  if (roots.empty()) {
    return absl::InvalidArgumentError("no PEM certificate in the root CA file");
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& root : roots)
    X509_STORE_add_cert(store.get(), root.get());
  size_t crls = 0;
  for (const std::string& pem : crl_pems) {
    auto bio = MemBio(pem);
    while (X509_CRL* crl =
               PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
      std::unique_ptr<X509_CRL, CrlFree> owned(crl);
      X509_STORE_add_crl(store.get(), crl);
      ++crls;
    }
  }
  if (!crl_pems.empty() && crls == 0) {
    return absl::InvalidArgumentError("the CRL files hold no PEM CRL");
  }
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(untrusted.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(),
                          untrusted.get()) != 1) {
    return absl::InternalError("cannot set up certificate verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(at_unix));
  if (crls > 0) {
    X509_VERIFY_PARAM_set_flags(
        param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  const std::string when =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(at_unix),
                       absl::UTCTimeZone());
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    return Untrusted(absl::StrCat(
        X509_verify_cert_error_string(err), " (certificate at depth ",
        X509_STORE_CTX_get_error_depth(ctx.get()), " of the chain, as of ",
        when, crls > 0 ? ", CRLs checked for the whole chain)" : ")"));
  }
  std::unique_ptr<STACK_OF(X509), StackFree> verified(
      X509_STORE_CTX_get1_chain(ctx.get()));
  X509* leaf = sk_X509_value(verified.get(), 0);

  std::vector<std::string> uris = UriSans(leaf);
  if (uris.size() != 1 || !absl::StartsWith(uris[0], kSpiffePrefix)) {
    return Untrusted(absl::StrCat(
        "it must carry exactly one URI SAN spiffe://ibsm/<NODE>; it has [",
        absl::StrJoin(uris, ", "), "]"));
  }
  const std::string node = uris[0].substr(kSpiffePrefix.size());
  if (node.empty() || absl::StrContains(node, "/")) {
    return Untrusted(absl::StrCat(uris[0],
                                  " is not a node identity (an agency's "
                                  "certificate cannot sign a node's trail)"));
  }
  if (sk_X509_num(verified.get()) < 3) {
    return Untrusted(absl::StrCat(
        "node ", node,
        "'s certificate is issued directly by the root, not by the node's "
        "intermediate CA"));
  }
  X509* issuer = sk_X509_value(verified.get(), 1);
  const std::string bound = absl::StrCat(kSpiffePrefix, node);
  std::vector<std::string> issuer_uris = UriSans(issuer);
  bool is_bound = false;
  for (const std::string& u : issuer_uris) is_bound = is_bound || u == bound;
  if (!is_bound) {
    return Untrusted(absl::StrCat(
        "its issuer ", Name(X509_get_subject_name(issuer)),
        " is not the intermediate CA of node ", node,
        " (a node's CA carries the URI SAN ", bound, "; this one has [",
        absl::StrJoin(issuer_uris, ", "), "])"));
  }

  TrustedNodeCertificate out;
  out.node = node;
  out.subject = Name(X509_get_subject_name(leaf));
  out.issuer = Name(X509_get_subject_name(issuer));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  X509_digest(leaf, EVP_sha256(), md, &md_len);
  out.sha256_fingerprint = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), md_len));
  out.not_before_unix = UnixTime(X509_get0_notBefore(leaf));
  out.not_after_unix = UnixTime(X509_get0_notAfter(leaf));
  out.revocation_checked = crls > 0;
  return out;
}

}  // namespace ibsm
