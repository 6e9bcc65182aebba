// Keys and signatures: the one set of OpenSSL owners, PEM parsing, SHA-256,
// the Hash type and X.509 chain verification that the broker, the CLI and
// offline verification share. Pure code over bytes (no file or network I/O),
// built on OpenSSL and Abseil only; every function is thread-safe.
//
// Ownership: each *Ptr below owns one OpenSSL object and frees it with the
// matching OpenSSL function. The deleters are inline, so code below the
// audit library (the client library's TLS helpers) can use the owners
// without linking it.
//
// Typical use, checking a peer's chain against roots and their CRLs:
//
//   std::vector<X509Ptr> chain = ParseCertificates(chain_pem, 9);
//   X509StorePtr trust = MakeTrustStore(ParseCertificates(roots_pem),
//                                       ParseCrls(crl_pem));
//   ChainOptions options;
//   options.crl_check_all = true;  // every CA of the chain needs a CRL
//   absl::StatusOr<std::vector<X509Ptr>> verified = VerifyChain(
//       *chain[0], absl::MakeConstSpan(chain).subspan(1), *trust, options);
//
// Error policy: untrusted input never crashes. Only allocation failure
// inside OpenSSL (SHA-256 cannot fail otherwise) is fatal.
#ifndef IBSM_CRYPTO_H_
#define IBSM_CRYPTO_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ibsm::crypto {

// ---- Owners ----------------------------------------------------------------

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct X509CrlDeleter {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct X509StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct X509StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
// A STACK_OF(X509) that owns a reference to each certificate in it.
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using X509CrlPtr = std::unique_ptr<X509_CRL, X509CrlDeleter>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreDeleter>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, X509StoreCtxDeleter>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

// ---- Errors and PEM --------------------------------------------------------

// Empties this thread's OpenSSL error queue (so stale errors cannot confuse
// later TLS calls on the thread) and returns its first entry as text, or
// "no OpenSSL error reported".
std::string TakeOpensslErrors();

// A read-only memory BIO over `data`, which must outlive it.
// INVALID_ARGUMENT "PEM input is too large" beyond INT_MAX bytes.
absl::StatusOr<BioPtr> MemBio(absl::string_view data);

// The certificates of `pem` in order, at most `max_certs`; other text and
// PEM blocks are skipped, and reading stops at the first certificate that
// does not parse. Empty when there is none or `pem` is too large for
// MemBio. Leaves this thread's OpenSSL error queue empty.
std::vector<X509Ptr> ParseCertificates(
    absl::string_view pem,
    size_t max_certs = std::numeric_limits<size_t>::max());

// The CRLs of `pem` in order, like ParseCertificates.
std::vector<X509CrlPtr> ParseCrls(absl::string_view pem);

// The subject of `cert` as OpenSSL's one-line text ("/O=IBSM/CN=..."), cut
// at 255 bytes; "?" for null.
std::string SubjectLine(X509* cert);

// ---- Hashes ----------------------------------------------------------------

// A SHA-256 digest: Merkle tree nodes, leaf hashes, checkpoint roots.
using Hash = std::array<uint8_t, 32>;

// SHA-256 of `bytes`.
Hash Sha256(absl::string_view bytes);
// SHA-256 of the concatenation of `parts`, without copying them together.
Hash Sha256(std::initializer_list<absl::string_view> parts);

// The bytes of `hash`, valid as long as `hash` is.
inline absl::string_view HashView(const Hash& hash) {
  return absl::string_view(reinterpret_cast<const char*>(hash.data()),
                           hash.size());
}

// A Hash from untrusted bytes (a proto field, a decoded note line); nullopt
// unless there are exactly 32 of them.
std::optional<Hash> HashFromBytes(absl::string_view bytes);

// ---- Chain verification ----------------------------------------------------

// A store of trust anchors and CRLs for VerifyChain. The store takes its own
// references, so the arguments may be freed afterwards. Once built it is
// only read, and OpenSSL locks it internally: one store may serve many
// concurrent verifications.
X509StorePtr MakeTrustStore(absl::Span<const X509Ptr> roots,
                            absl::Span<const X509CrlPtr> crls);

struct ChainOptions {
  // Verify as of this time (seconds since the epoch); unset: now.
  std::optional<int64_t> at_unix;
  // Every certificate of the chain, the root included, must have a current
  // CRL of its issuer in the store and not be listed in it (fail closed: a
  // CA without a CRL refuses its certificates).
  bool crl_check_all = false;
  // An X509_PURPOSE_* the leaf must fit (X509_PURPOSE_SSL_CLIENT, ...);
  // 0: any.
  int purpose = 0;
  // OpenSSL's security level that every key and signature of the chain
  // must meet (the trusted root's own self-signature excepted): 2 is 112
  // bits, so no RSA key under 2048 bits and no SHA-1 signature. Set here,
  // not left to the OpenSSL build's default level.
  int auth_level = 2;
};

// Why VerifyChain refused a chain: OpenSSL's verification result.
struct ChainRejection {
  int error = 0;        // X509_V_ERR_*
  int depth = 0;        // of the certificate at fault (0: the leaf)
  std::string subject;  // its subject, one line ("?" when unknown)
  std::string reason;   // X509_verify_cert_error_string(error)

  bool missing_crl() const { return error == X509_V_ERR_UNABLE_TO_GET_CRL; }
};

// Verifies `leaf` with `untrusted` as intermediates against the roots and
// CRLs of `trust`. Returns the verified chain, leaf first, root last.
// Refused: PERMISSION_DENIED "certificate '<subject>' (chain depth <d>)
// refused: <reason>", with the details in *rejection when not null (callers
// that word the refusal their own way use those). A check that cannot run
// is INTERNAL "the certificate chain check could not run" (fail closed).
absl::StatusOr<std::vector<X509Ptr>> VerifyChain(
    X509& leaf, absl::Span<const X509Ptr> untrusted, X509_STORE& trust,
    const ChainOptions& options, ChainRejection* rejection = nullptr);

}  // namespace ibsm::crypto

#endif  // IBSM_CRYPTO_H_
