// The federation tests' own link helpers against each other, so that a
// failure in tests/federation/ points at the node, not at the helpers: a
// RawLink greets a FakeLinkServer over mutual TLS with dev PKI node
// certificates, and DerChain reads a chain file.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

TEST_CASE("a RawLink and a FakeLinkServer exchange hellos over mutual TLS") {
  FakeLinkServer server(Tls("node-NER"), "MLI");
  RawLink link(server.port(), Tls("node-CIV"));
  std::optional<internal::v1::LinkHello> hello = link.Handshake("CIV");
  REQUIRE(hello.has_value());
  CHECK(hello->node_id() == "MLI");  // whatever the server claims
  CHECK(hello->min_version() == 1);
  CHECK(hello->max_version() == 1);
  CHECK(server.streams() == 1);
  CHECK(link.Finish().ok());
  CHECK_FALSE(link.goodbye().has_value());
}

TEST_CASE("a RawLink to a server that refuses its certificate ends at once") {
  FakeLinkServer server(Tls("node-NER"), "MLI");
  RawLink link(server.port(), Tls("foreign"));
  CHECK_FALSE(link.Handshake("CIV").has_value());
  CHECK_FALSE(link.Finish().ok());
  CHECK(server.streams() == 0);
}

TEST_CASE("DerChain reads the certificates of a chain file, leaf first") {
  const std::vector<std::string> chain =
      DerChain(PkiDir() + "/node-CIV-chain.pem");
  CHECK(chain.size() == 2);
  for (const std::string& der : chain) {
    CHECK(static_cast<unsigned char>(der[0]) == 0x30);  // a DER SEQUENCE
  }
}

}  // namespace
}  // namespace ibsm::testing
