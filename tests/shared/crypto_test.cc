// Tests of broker/crypto.h: SHA-256, the Hash conversion, PEM parsing and
// the one X.509 chain verification, on the development PKI that
// certs/make-dev-pki.sh makes (real certificates and CRLs: an expired leaf,
// a revoked intermediate, a foreign root).
#include "ibsm/crypto.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ibsm/tls.h"
#include "tests/support/test_support.h"

namespace ibsm::crypto {
namespace {

using testing::PkiDir;

std::string Hex(const Hash& hash) {
  return absl::BytesToHexString(HashView(hash));
}

std::string PkiFile(const std::string& name) {
  absl::StatusOr<std::string> pem =
      ReadFileToString(absl::StrCat(PkiDir(), "/", name));
  REQUIRE(pem.ok());
  return *pem;
}

std::vector<X509Ptr> Certs(const std::string& name) {
  std::vector<X509Ptr> certs = ParseCertificates(PkiFile(name));
  REQUIRE(!certs.empty());
  return certs;
}

// The root's and CIV's CRLs (the revoked intermediate's own CRL too, so
// that its leaf fails for the revocation, not for a missing CRL).
std::vector<X509CrlPtr> Crls() {
  std::vector<X509CrlPtr> crls;
  for (const char* name :
       {"crl/ca.crl.pem", "crl/CIV-ca.crl.pem", "crl/revoked-ca.crl.pem"}) {
    for (X509CrlPtr& crl : ParseCrls(PkiFile(name))) {
      crls.push_back(std::move(crl));
    }
  }
  REQUIRE(crls.size() == 3);
  return crls;
}

struct Verified {
  absl::StatusOr<std::vector<X509Ptr>> chain;
  ChainRejection rejection;
};

// Verifies the first certificate of `chain_file` with the rest as
// intermediates against `root_file` (and the CRLs, with crl_check_all).
Verified Verify(const std::string& chain_file, const std::string& root_file,
                const ChainOptions& options) {
  std::vector<X509Ptr> chain = Certs(chain_file);
  X509StorePtr store = MakeTrustStore(
      Certs(root_file),
      options.crl_check_all ? Crls() : std::vector<X509CrlPtr>());
  Verified out;
  out.chain = VerifyChain(*chain[0], absl::MakeConstSpan(chain).subspan(1),
                          *store, options, &out.rejection);
  return out;
}

ChainOptions WithCrls() {
  ChainOptions options;
  options.crl_check_all = true;
  return options;
}

TEST_CASE("Sha256 matches the FIPS 180-2 vectors, in one part or many") {
  CHECK(Hex(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Hex(Sha256(absl::string_view())) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256({"a", "", "bc"}) == Sha256("abc"));
}

TEST_CASE("HashFromBytes takes exactly 32 bytes") {
  const Hash abc = Sha256("abc");
  std::optional<Hash> back = HashFromBytes(HashView(abc));
  REQUIRE(back.has_value());
  CHECK(*back == abc);
  CHECK_FALSE(HashFromBytes("").has_value());
  CHECK_FALSE(HashFromBytes(std::string(31, 'x')).has_value());
  CHECK_FALSE(HashFromBytes(std::string(33, 'x')).has_value());
}

TEST_CASE("ParseCertificates reads every certificate up to the bound") {
  const std::string chain = PkiFile("node-CIV-chain.pem");
  CHECK(ParseCertificates(chain).size() == 2);
  CHECK(ParseCertificates(chain, 1).size() == 1);
  CHECK(ParseCertificates("not PEM at all").empty());
  CHECK(ParseCrls(chain).empty());  // certificates are not CRLs
  CHECK(ERR_peek_error() == 0);     // and no stale error is left behind
}

TEST_CASE("VerifyChain accepts a node chain with CRLs for the whole chain") {
  Verified v = Verify("node-CIV-chain.pem", "ca.pem", WithCrls());
  REQUIRE(v.chain.ok());
  REQUIRE(v.chain->size() == 3);  // leaf, CIV's intermediate, root
  CHECK(SubjectLine((*v.chain)[0].get()) == "/O=IBSM/OU=CIV/CN=CIV");
  CHECK(absl::StrContains(SubjectLine((*v.chain)[2].get()), "Root CA"));
}

TEST_CASE("VerifyChain refuses an expired leaf, and checks as of at_unix") {
  Verified v = Verify("expired-chain.pem", "ca.pem", WithCrls());
  CHECK(absl::IsPermissionDenied(v.chain.status()));
  CHECK(v.rejection.error == X509_V_ERR_CERT_HAS_EXPIRED);
  CHECK(v.rejection.depth == 0);
  CHECK(absl::StrContains(v.chain.status().message(),
                          "(chain depth 0) refused: certificate has expired"));

  // A leaf valid today (for a year) has expired as of two years from now.
  ChainOptions later;
  later.at_unix = absl::ToUnixSeconds(absl::Now() + absl::Hours(2 * 366 * 24));
  Verified node = Verify("node-CIV-chain.pem", "ca.pem", later);
  CHECK(node.rejection.error == X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_CASE("VerifyChain refuses a leaf under a revoked intermediate") {
  Verified v = Verify("under-revoked-ca-chain.pem", "ca.pem", WithCrls());
  CHECK(absl::IsPermissionDenied(v.chain.status()));
  CHECK(v.rejection.error == X509_V_ERR_CERT_REVOKED);
  CHECK(v.rejection.depth == 1);  // the intermediate, not the leaf
  CHECK(absl::StrContains(v.rejection.subject, "Revoked Intermediate"));
  // Without the CRL check the chain itself is fine: revocation decided it.
  CHECK(Verify("under-revoked-ca-chain.pem", "ca.pem", ChainOptions())
            .chain.ok());
}

TEST_CASE("VerifyChain refuses a chain to another root") {
  // foreign-chain.pem carries its own (untrusted) root.
  Verified v = Verify("foreign-chain.pem", "ca.pem", ChainOptions());
  CHECK(absl::IsPermissionDenied(v.chain.status()));
  CHECK(v.rejection.error == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
  CHECK(
      Verify("foreign-chain.pem", "foreign-ca.pem", ChainOptions()).chain.ok());
}

TEST_CASE("VerifyChain refuses a leaf without its intermediate") {
  Verified v = Verify("node-CIV.pem", "ca.pem", ChainOptions());
  CHECK(absl::IsPermissionDenied(v.chain.status()));
  CHECK(v.rejection.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK(v.rejection.depth == 0);
}

TEST_CASE("VerifyChain fails closed when a CA of the chain has no CRL") {
  std::vector<X509Ptr> chain = Certs("node-CIV-chain.pem");
  X509StorePtr store = MakeTrustStore(Certs("ca.pem"), {});
  ChainRejection rejection;
  absl::StatusOr<std::vector<X509Ptr>> verified =
      VerifyChain(*chain[0], absl::MakeConstSpan(chain).subspan(1), *store,
                  WithCrls(), &rejection);
  CHECK(absl::IsPermissionDenied(verified.status()));
  CHECK(rejection.missing_crl());
}

TEST_CASE("VerifyChain checks the purpose it is given") {
  ChainOptions client = WithCrls();
  client.purpose = X509_PURPOSE_SSL_CLIENT;
  CHECK(Verify("agency-CIV_police-chain.pem", "ca.pem", client).chain.ok());
}

}  // namespace
}  // namespace ibsm::crypto
