// The TLS settings of both ports, seen from outside: what `openssl
// s_client` can and cannot negotiate, plaintext, and how long a connection
// that never finishes its handshake is kept (docs/security.md, "TLS
// settings").
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "node/node.h"
#include "tests/support/federation.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

// Node CIV with its client port and a federation port (peer MLI), closing
// connections that have not finished their handshake after one second.
std::unique_ptr<broker::Node> StartNode(const TempDir& dir) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(FederationPolicyPath());
  config.mutable_tls()->set_handshake_timeout_seconds(1);
  config.mutable_federation()->set_listen_address("127.0.0.1:0");
  config.mutable_federation()->add_peers()->set_node_id("MLI");
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  REQUIRE((*node)->federation_port() > 0);
  return *std::move(node);
}

// `openssl s_client` against 127.0.0.1:port with `entity`'s certificate
// (none when empty) and `options`. `ok` when the server accepted the
// connection: it sent its HTTP/2 SETTINGS frame, which gRPC writes only
// once the handshake, the client certificate's check included, has passed
// (with TLS 1.3 a refused client certificate shows only after the client's
// side of the handshake has finished).
struct Handshake {
  bool ok;
  std::string output;
};
Handshake SClient(int port, const std::string& entity,
                  const std::vector<std::string>& options) {
  std::vector<std::string> args = {"openssl",
                                   "s_client",
                                   "-connect",
                                   absl::StrCat("127.0.0.1:", port),
                                   "-CAfile",
                                   PkiDir() + "/ca.pem",
                                   "-verify_return_error",
                                   "-alpn",
                                   "h2"};
  if (!entity.empty()) {
    TlsFiles tls = Tls(entity);
    args.insert(args.end(), {"-cert", tls.cert_file, "-key", tls.key_file,
                             "-cert_chain", tls.cert_file});
  }
  args.insert(args.end(), options.begin(), options.end());
  // The HTTP/2 client preface, then end of input after 2 s, which ends
  // s_client (a refused handshake ends it earlier).
  std::string command = absl::StrCat(
      "(printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'; sleep 2) | ",
      absl::StrJoin(args, " "), " 2>&1");
  RunResult r = RunBinary("/bin/sh", {"-c", command}, absl::Seconds(20));
  // A SETTINGS frame header: type 4, no flags, stream 0.
  const std::string settings("\x04\x00\x00\x00\x00\x00", 6);
  return {r.output.find(settings) != std::string::npos, r.output};
}

// Connects a plain TCP socket to 127.0.0.1:port and sends `bytes`; returns
// the socket.
int Connect(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  if (!bytes.empty()) {
    REQUIRE(write(fd, bytes.data(), bytes.size()) ==
            static_cast<ssize_t>(bytes.size()));
  }
  return fd;
}

// Whether the server closes `fd` (EOF or reset) within `bound`.
bool ClosedWithin(int fd, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int left =
        static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    int n = poll(&p, 1, std::max(left, 1));
    if (n <= 0) continue;
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof(buf));
    if (got <= 0) return true;  // EOF, or reset
  }
  return false;
}

TEST_CASE(
    "both ports negotiate only TLS 1.2 or 1.3 with AEAD suites and a valid "
    "client certificate") {
  TempDir dir;
  auto node = StartNode(dir);
  struct Port {
    const char* name;
    int port;
    const char* entity;  // a valid client of that port
  };
  for (Port port :
       {Port{"client port", node->port(), "agency-CIV_police"},
        Port{"federation port", node->federation_port(), "node-MLI"}}) {
    INFO(port.name);
    // Accepted, so that the refusals below can be told apart from a
    // server that accepts nothing.
    Handshake tls12 =
        SClient(port.port, port.entity,
                {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
    INFO(tls12.output);
    CHECK(tls12.ok);
    Handshake tls13 = SClient(port.port, port.entity, {"-tls1_3"});
    INFO(tls13.output);
    CHECK(tls13.ok);
    // The client side offers the weak protocols and suites for real
    // (OpenSSL 3 refuses them at its default security level).
    for (std::vector<std::string> weak : std::vector<std::vector<std::string>>{
             {"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
             {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
             {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"},
             {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}}) {
      Handshake h = SClient(port.port, port.entity, weak);
      INFO(absl::StrJoin(weak, " ") << "\n" << h.output);
      CHECK_FALSE(h.ok);
    }
    for (const char* version : {"-tls1_2", "-tls1_3"}) {
      Handshake h = SClient(port.port, "", {version});
      INFO("no client certificate " << version << "\n" << h.output);
      CHECK_FALSE(h.ok);
    }
  }
}

TEST_CASE("plaintext gets no call on either port") {
  TempDir dir;
  auto node = StartNode(dir);
  for (int port : {node->port(), node->federation_port()}) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::Node::NewStub(channel);
    grpc::ClientContext context;
    SetTestDeadline(context, absl::Seconds(10));
    v1::NodeInfo info;
    grpc::Status s = stub->GetInfo(&context, v1::NodeInfoRequest(), &info);
    INFO(port << ": " << s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE(
    "a connection that does not finish its handshake is closed after "
    "tls.handshake_timeout_seconds on both ports") {
  TempDir dir;
  auto node = StartNode(dir);
  // The first bytes of a TLS record carrying a ClientHello of 512 bytes,
  // of which only the start arrives.
  const std::string half_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                               11);
  for (int port : {node->port(), node->federation_port()}) {
    // gRPC's default keeps such a connection 120 s; the bound is far above
    // the configured second so that a slow machine does not fail the test.
    int silent = Connect(port, "");
    int half = Connect(port, half_hello);
    CHECK(ClosedWithin(silent, absl::Seconds(30)));
    CHECK(ClosedWithin(half, absl::Seconds(30)));
    close(silent);
    close(half);
  }
}

}  // namespace
}  // namespace ibsm::testing
