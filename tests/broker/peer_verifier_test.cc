// Tests of broker/services/peer_verifier.h and server_credentials.h that
// need no server: the verifier's own chain check refuses weak keys and
// signatures whatever OpenSSL's build-time default security level (Debian
// builds OpenSSL with level 2, so gRPC's handshake refuses them there
// already; another build would not), and the server credentials refuse a
// weakened GRPC_SSL_CIPHER_SUITES.
#include "services/peer_verifier.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "ibsm/certificates.h"
#include "services/server_credentials.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using ::ibsm::testing::PkiDir;

absl::Status Check(PeerVerifier& verifier, const std::string& base) {
  std::string leaf = *ReadFileToString(PkiDir() + "/" + base + ".pem");
  std::string chain = *ReadFileToString(PkiDir() + "/" + base + "-chain.pem");
  return verifier.CheckChain(leaf, chain);
}

TEST_CASE(
    "the peer verifier refuses RSA-1024 keys and SHA-1 signatures, "
    "and leaves without clientAuth",
    "[peer_verifier]") {
  auto verifier = PeerVerifier::Create(PkiDir() + "/ca.pem", PkiDir() + "/crl");
  REQUIRE(verifier.ok());
  CHECK((*verifier)
            ->CheckChain(
                *ReadFileToString(PkiDir() + "/agency-CIV_police.pem"),
                *ReadFileToString(PkiDir() + "/agency-CIV_police-chain.pem"))
            .ok());
  for (const char* weak : {"rsa1024", "sha1", "wrong-eku", "node-noclient"}) {
    absl::Status s = Check(**verifier, weak);
    INFO(weak << ": " << s.ToString());
    CHECK(absl::IsUnauthenticated(s));
  }
  CHECK_THAT(std::string(Check(**verifier, "rsa1024").message()),
             Catch::Contains("too weak"));
  CHECK_THAT(std::string(Check(**verifier, "sha1").message()),
             Catch::Contains("too weak"));
}

TEST_CASE("the broker accepts only AEAD suites in GRPC_SSL_CIPHER_SUITES",
          "[peer_verifier]") {
  CHECK(CheckCipherSuites("ECDHE-ECDSA-AES128-GCM-SHA256").ok());
  CHECK(CheckCipherSuites("TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES256-GCM-SHA384")
            .ok());
  for (const char* weak : {"", "ECDHE-ECDSA-AES128-SHA256",
                           "ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA", "ALL",
                           "DEFAULT@SECLEVEL=0"}) {
    absl::Status s = CheckCipherSuites(weak);
    INFO(weak << ": " << s.ToString());
    CHECK(absl::IsFailedPrecondition(s));
    CHECK_THAT(std::string(s.message()),
               Catch::Contains("GRPC_SSL_CIPHER_SUITES"));
  }
  // And the server credentials are refused with such an environment.
  auto verifier = PeerVerifier::Create(PkiDir() + "/ca.pem", PkiDir() + "/crl");
  REQUIRE(verifier.ok());
  TlsFiles files = ::ibsm::testing::Tls("node-CIV");
  setenv("GRPC_SSL_CIPHER_SUITES", "ECDHE-ECDSA-AES128-SHA", 1);
  auto refused =
      MakeServerCredentials(files, 60, (*verifier)->HandshakeVerifier());
  unsetenv("GRPC_SSL_CIPHER_SUITES");
  CHECK(absl::IsFailedPrecondition(refused.status()));
  CHECK(
      MakeServerCredentials(files, 60, (*verifier)->HandshakeVerifier()).ok());
}

}  // namespace
}  // namespace ibsm::broker
