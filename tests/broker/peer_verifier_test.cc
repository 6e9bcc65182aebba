// Tests of broker/services/peer_verifier.h that need no server: the
// verifier's own chain check refuses weak keys and signatures whatever
// OpenSSL's build-time default security level (Debian builds OpenSSL with
// level 2, so gRPC's handshake refuses them there already; another build
// would not).
#include "services/peer_verifier.h"

#include <catch2/catch.hpp>
#include <string>

#include "ibsm/certificates.h"
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

}  // namespace
}  // namespace ibsm::broker
