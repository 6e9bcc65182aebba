#include "ibsm/crypto.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ibsm/status_macros.h"

namespace ibsm::crypto {
namespace {

// Fetched once: implicit fetches in EVP_DigestInit_ex cost a lookup per
// call. Deliberately never freed.
const EVP_MD* Sha256Md() {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  IBSM_CHECK(kSha256 != nullptr);
  return kSha256;
}

}  // namespace

std::string SubjectLine(X509* cert) {
  if (cert == nullptr) return "?";
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

std::string TakeOpensslErrors() {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return "no OpenSSL error reported";
  char buf[256];
  ERR_error_string_n(first, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<BioPtr> MemBio(absl::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("PEM input is too large");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  IBSM_CHECK(bio != nullptr);  // allocation failure only
  return bio;
}

std::vector<X509Ptr> ParseCertificates(absl::string_view pem,
                                       size_t max_certs) {
  std::vector<X509Ptr> certs;
  absl::StatusOr<BioPtr> bio = MemBio(pem);
  if (!bio.ok()) return certs;
  while (certs.size() < max_certs) {
    X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // The end of the input is reported as an error ("no start line").
  ERR_clear_error();
  return certs;
}

std::vector<X509CrlPtr> ParseCrls(absl::string_view pem) {
  std::vector<X509CrlPtr> crls;
  absl::StatusOr<BioPtr> bio = MemBio(pem);
  if (!bio.ok()) return crls;
  while (true) {
    X509CrlPtr crl(
        PEM_read_bio_X509_CRL(bio->get(), nullptr, nullptr, nullptr));
    if (crl == nullptr) break;
    crls.push_back(std::move(crl));
  }
  ERR_clear_error();
  return crls;
}

Hash Sha256(absl::string_view bytes) { return Sha256({bytes}); }

Hash Sha256(std::initializer_list<absl::string_view> parts) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  IBSM_CHECK(ctx != nullptr);
  bool ok = EVP_DigestInit_ex(ctx.get(), Sha256Md(), nullptr) == 1;
  for (absl::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  }
  Hash out;
  unsigned int out_len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx.get(), out.data(), &out_len) == 1;
  // Only allocation failure makes SHA-256 fail.
  IBSM_CHECK(ok && out_len == out.size());
  return out;
}

std::optional<Hash> HashFromBytes(absl::string_view bytes) {
  Hash hash;
  if (bytes.size() != hash.size()) return std::nullopt;
  std::memcpy(hash.data(), bytes.data(), hash.size());
  return hash;
}

X509StorePtr MakeTrustStore(absl::Span<const X509Ptr> roots,
                            absl::Span<const X509CrlPtr> crls) {
  X509StorePtr store(X509_STORE_new());
  IBSM_CHECK(store != nullptr);  // allocation failure only
  // Adding takes a reference. A duplicate is not an error worth refusing
  // the store for: the first copy serves.
  for (const X509Ptr& root : roots)
    X509_STORE_add_cert(store.get(), root.get());
  for (const X509CrlPtr& crl : crls) X509_STORE_add_crl(store.get(), crl.get());
  ERR_clear_error();
  return store;
}

absl::StatusOr<std::vector<X509Ptr>> VerifyChain(
    X509& leaf, absl::Span<const X509Ptr> untrusted, X509_STORE& trust,
    const ChainOptions& options, ChainRejection* rejection) {
  X509StackPtr intermediates(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  bool ready = intermediates != nullptr && ctx != nullptr;
  for (size_t i = 0; ready && i < untrusted.size(); ++i) {
    ready = X509_up_ref(untrusted[i].get()) == 1;
    if (ready && sk_X509_push(intermediates.get(), untrusted[i].get()) <= 0) {
      X509_free(untrusted[i].get());
      ready = false;
    }
  }
  ready = ready && X509_STORE_CTX_init(ctx.get(), &trust, &leaf,
                                       intermediates.get()) == 1;
  if (ready && options.purpose != 0) {
    ready = X509_STORE_CTX_set_purpose(ctx.get(), options.purpose) == 1;
  }
  if (!ready) {
    ERR_clear_error();
    // Fail closed: a check that cannot run refuses.
    return absl::InternalError("the certificate chain check could not run");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_auth_level(param, options.auth_level);
  if (options.at_unix.has_value()) {
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(*options.at_unix));
  }
  if (options.crl_check_all) {
    X509_VERIFY_PARAM_set_flags(
        param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    ChainRejection why;
    why.error = X509_STORE_CTX_get_error(ctx.get());
    why.depth = X509_STORE_CTX_get_error_depth(ctx.get());
    why.subject = SubjectLine(X509_STORE_CTX_get_current_cert(ctx.get()));
    why.reason = X509_verify_cert_error_string(why.error);
    ERR_clear_error();
    absl::Status refused = absl::PermissionDeniedError(
        absl::StrCat("certificate '", why.subject, "' (chain depth ", why.depth,
                     ") refused: ", why.reason));
    if (rejection != nullptr) *rejection = std::move(why);
    return refused;
  }
  X509StackPtr chain(X509_STORE_CTX_get1_chain(ctx.get()));
  std::vector<X509Ptr> out;
  while (chain != nullptr && sk_X509_num(chain.get()) > 0) {
    out.emplace_back(sk_X509_shift(chain.get()));
  }
  return out;
}

}  // namespace ibsm::crypto
