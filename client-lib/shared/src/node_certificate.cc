#include "ibsm/node_certificate.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ibsm/crypto.h"

namespace ibsm {
namespace {

constexpr absl::string_view kSpiffePrefix = "spiffe://ibsm/";

using crypto::X509Ptr;

std::string Name(const X509_NAME* name) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
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
  std::vector<X509Ptr> chain = crypto::ParseCertificates(chain_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError("no PEM certificate in the node's file");
  }
  std::vector<X509Ptr> roots = crypto::ParseCertificates(roots_pem);
  if (roots.empty()) {
    return absl::InvalidArgumentError("no PEM certificate in the root CA file");
  }
  std::vector<crypto::X509CrlPtr> crls;
  for (const std::string& pem : crl_pems) {
    for (crypto::X509CrlPtr& crl : crypto::ParseCrls(pem)) {
      crls.push_back(std::move(crl));
    }
  }
  if (!crl_pems.empty() && crls.empty()) {
    return absl::InvalidArgumentError("the CRL files hold no PEM CRL");
  }
  crypto::X509StorePtr store = crypto::MakeTrustStore(roots, crls);
  crypto::ChainOptions options;
  options.at_unix = at_unix;
  options.crl_check_all = !crls.empty();
  crypto::ChainRejection rejected;
  absl::StatusOr<std::vector<X509Ptr>> verified =
      crypto::VerifyChain(*chain[0], absl::MakeConstSpan(chain).subspan(1),
                          *store, options, &rejected);
  if (absl::IsInternal(verified.status())) {
    return absl::InternalError("cannot set up certificate verification");
  }
  if (!verified.ok()) {
    const std::string when =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(at_unix),
                         absl::UTCTimeZone());
    return Untrusted(absl::StrCat(
        rejected.reason, " (certificate at depth ", rejected.depth,
        " of the chain, as of ", when,
        options.crl_check_all ? ", CRLs checked for the whole chain)" : ")"));
  }
  X509* leaf = (*verified)[0].get();

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
  if (verified->size() < 3) {
    return Untrusted(absl::StrCat(
        "node ", node,
        "'s certificate is issued directly by the root, not by the node's "
        "intermediate CA"));
  }
  X509* issuer = (*verified)[1].get();
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
  out.revocation_checked = options.crl_check_all;
  return out;
}

}  // namespace ibsm
