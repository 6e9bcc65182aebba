// Identity comes from the verified client certificate and nothing else.
#include "ibsm/tls.h"

#include <catch2/catch.hpp>

#include "broker/node.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::unique_ptr<broker::Node> StartNode(const TempDir& dir) {
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

grpc::Status NodeInfo(const std::shared_ptr<grpc::Channel>& channel,
                      v1::NodeInfo* info) {
  auto stub = v1::Node::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  return stub->GetInfo(&context, v1::NodeInfoRequest(), info);
}

TEST_CASE("node info reports the caller identity read from its certificate") {
  TempDir dir;
  auto node = StartNode(dir);
  v1::NodeInfo info;
  REQUIRE(
      NodeInfo(Channel(node->port(), Tls("agency-CIV_police")), &info).ok());
  CHECK(info.node_id() == "CIV");
  CHECK(info.caller() == "CIV/police");
  CHECK(info.durability() == "DURABILITY_SYNC");
  CHECK(info.serving());
}

TEST_CASE("handshakes without a valid client certificate are refused") {
  TempDir dir;
  auto node = StartNode(dir);
  auto refused = [&](std::shared_ptr<grpc::Channel> channel) {
    v1::NodeInfo info;
    grpc::Status s = NodeInfo(channel, &info);
    INFO(s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
    // And nothing can be published through it.
    CHECK_FALSE(RawPublish(channel, {MakeAlert("never")}).ok());
  };
  SECTION("no client certificate") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = *ReadFileToString(PkiDir() + "/ca.pem");
    refused(grpc::CreateChannel(absl::StrCat("127.0.0.1:", node->port()),
                                grpc::SslCredentials(options)));
  }
  SECTION("a certificate from a foreign CA claiming CIV/police") {
    refused(Channel(node->port(), Tls("foreign")));
  }
  SECTION("an expired certificate") {
    refused(Channel(node->port(), Tls("expired")));
  }
  SECTION("a revoked certificate") {
    refused(Channel(node->port(), Tls("revoked")));
  }
  // The node still serves good clients afterwards, and recorded nothing.
  v1::NodeInfo info;
  REQUIRE(
      NodeInfo(Channel(node->port(), Tls("agency-CIV_police")), &info).ok());
  CHECK(info.last_sequence() == 0);
}

TEST_CASE("a publish that claims another originator is refused") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  v1::Alert spoofed = MakeAlert("spoof-1");
  spoofed.set_originator("CIV/customs");
  grpc::Status s = RawPublish(police, {spoofed});
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(s.error_message(), Catch::Contains("CIV/police"));
  // Claiming its own identity explicitly is fine.
  v1::Alert honest = MakeAlert("honest-1");
  honest.set_originator("CIV/police");
  CHECK(RawPublish(police, {honest}).ok());
  v1::NodeInfo info;
  REQUIRE(NodeInfo(police, &info).ok());
  CHECK(info.last_sequence() == 1);
}

TEST_CASE("node certificates and other nodes' agencies may not publish here") {
  TempDir dir;
  auto node = StartNode(dir);
  SECTION("a node certificate") {
    grpc::Status s =
        RawPublish(Channel(node->port(), Tls("node-MLI")), {MakeAlert("n1")});
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("an agency of another node") {
    grpc::Status s = RawPublish(
        Channel(node->port(), Tls("agency-MLI_customs")), {MakeAlert("n2")});
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(s.error_message(), Catch::Contains("own node"));
  }
}

}  // namespace
}  // namespace ibsm::testing
