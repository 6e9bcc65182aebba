// The certificate matrix (docs/security.md, "Certificate matrix"): every
// certificate case of certs/make-dev-pki.sh against the client port and the
// federation port, and the client library's view of a server, on the wire
// with raw gRPC stubs. One row per case.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/internal/v1/federation.grpc.pb.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "node/node.h"
#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using grpc::StatusCode;

// Where a case is refused.
enum class At { kNowhere, kHandshake, kCall };

struct Row {
  const char* name;
  const char* entity;  // a PKI file base; "leaf-only:X" presents X.pem alone
  At at;
  StatusCode code;  // the status of the call
  // The refusal in the trail for a refusal at the call: a certificate
  // refused by AuthenticateCall is AUDIT_CALL_REFUSED, a policy refusal is
  // the call's own record (denied).
  v1::AuditAction audited = v1::AUDIT_CALL_REFUSED;
};

TlsFiles Files(const std::string& entity) {
  if (absl::StartsWith(entity, "leaf-only:")) {
    std::string base = PkiDir() + "/" + entity.substr(10);
    return {base + ".pem", base + ".key", PkiDir() + "/ca.pem", ""};
  }
  return Tls(entity);
}

// CIV, with the shipped policy, a federation port and MLI as its peer.
std::unique_ptr<broker::Node> StartNode(const TempDir& dir) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_federation()->set_listen_address("127.0.0.1:0");
  config.mutable_federation()->add_peers()->set_node_id("MLI");
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

// Whether the trail of the node on `port` holds a refusal `action` whose
// reason starts like `message` (and, for AUDIT_CALL_REFUSED, whose detail is
// `detail`, the call).
bool Audited(int port, v1::AuditAction action, const std::string& detail,
             const std::string& message) {
  auto auditor = Channel(port, Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_action(action);
  return Eventually([&] {
    for (const v1::AuditRecord& r : RawAuditQuery(auditor, query)) {
      if ((action != v1::AUDIT_CALL_REFUSED || r.detail() == detail) &&
          !r.allowed() && !r.reason().empty() &&
          absl::StartsWith(message, r.reason().substr(0, 64))) {
        return true;
      }
    }
    return false;
  });
}

void CheckRow(const Row& row, const grpc::Status& s) {
  INFO(row.name << " (" << row.entity << "): " << s.error_code() << " "
                << s.error_message());
  CHECK(s.error_code() == row.code);
}

TEST_CASE(
    "client port: every certificate case is refused where the matrix "
    "says, with its status, and audited at the call",
    "[matrix]") {
  // The valid case and the node-as-agency case first: they show that the
  // other refusals are the certificate's.
  const Row row = GENERATE(
      Row{"valid", "agency-CIV_police", At::kNowhere, StatusCode::OK},
      Row{"expired", "expired", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"not yet valid", "not-yet-valid", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"foreign CA", "foreign", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"intermediate missing", "leaf-only:agency-CIV_police", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"revoked leaf", "revoked", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"revoked intermediate", "under-revoked-ca", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"wrong EKU (serverAuth only)", "wrong-eku", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"RSA-1024 key", "rsa1024", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"SHA-1 signature", "sha1", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"no URI SAN", "no-uri", At::kCall, StatusCode::UNAUTHENTICATED},
      Row{"CN spells a spiffe id, no SAN", "cn-spiffe", At::kCall,
          StatusCode::UNAUTHENTICATED},
      Row{"two URI SANs", "two-uris", At::kCall, StatusCode::UNAUTHENTICATED},
      Row{"agency the policy does not know", "unknown-agency", At::kCall,
          StatusCode::PERMISSION_DENIED, v1::AUDIT_SUBSCRIBE_OPEN},
      Row{"node certificate as an agency", "node-MLI", At::kCall,
          StatusCode::PERMISSION_DENIED, v1::AUDIT_SUBSCRIBE_OPEN},
      Row{"issued under another node's intermediate", "sibling-CIV_police",
          At::kCall, StatusCode::PERMISSION_DENIED});
  TempDir dir;
  auto node = StartNode(dir);
  // A subscription: every identity of the policy may open one for its
  // topics, and a federated node refuses unsigned publishes before it
  // would look at the policy.
  RawSubscription subscription(Channel(node->port(), Files(row.entity)),
                               OpenRequest({"border.>"}));
  grpc::Status s =
      subscription.WaitOpened() ? grpc::Status::OK : subscription.AwaitEnd();
  CheckRow(row, s);
  if (row.at == At::kCall) {
    INFO(row.name);
    CHECK(Audited(node->port(), row.audited, "subscribe", s.error_message()));
  }
}

// Opens a Link stream to the federation port presenting `files` and returns
// how it ends; a link that is served is still open after 3 s
// (DEADLINE_EXCEEDED).
grpc::Status Dial(int port, const TlsFiles& files) {
  auto stub = internal::v1::FederationLink::NewStub(Channel(port, files));
  grpc::ClientContext context;
  SetTestDeadline(context, absl::Seconds(3));
  auto stream = stub->Link(&context);
  internal::v1::LinkFrame frame;
  while (stream->Read(&frame)) {
  }
  return stream->Finish();
}

TEST_CASE(
    "federation port: the acceptor refuses a dialler with each bad "
    "certificate",
    "[matrix]") {
  const Row row = GENERATE(
      Row{"valid (the configured peer)", "node-MLI", At::kNowhere,
          StatusCode::DEADLINE_EXCEEDED},
      Row{"expired", "expired", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"not yet valid", "not-yet-valid", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"foreign CA", "foreign", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"intermediate missing", "leaf-only:node-MLI", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"revoked leaf", "revoked", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"revoked intermediate", "under-revoked-ca", At::kHandshake,
          StatusCode::UNAVAILABLE},
      Row{"node certificate without clientAuth", "node-noclient",
          At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"RSA-1024 key", "rsa1024", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"SHA-1 signature", "sha1", At::kHandshake, StatusCode::UNAVAILABLE},
      Row{"no URI SAN", "no-uri", At::kCall, StatusCode::UNAUTHENTICATED},
      Row{"CN spells a spiffe id, no SAN", "cn-spiffe", At::kCall,
          StatusCode::UNAUTHENTICATED},
      Row{"two URI SANs", "two-uris", At::kCall, StatusCode::UNAUTHENTICATED},
      Row{"a node that is not a configured peer", "node-NER", At::kCall,
          StatusCode::PERMISSION_DENIED},
      Row{"agency certificate as a node", "agency-MLI_customs", At::kCall,
          StatusCode::PERMISSION_DENIED},
      Row{"issued under another node's intermediate", "sibling-CIV_police",
          At::kCall, StatusCode::PERMISSION_DENIED});
  TempDir dir;
  auto node = StartNode(dir);
  grpc::Status s = Dial(node->federation_port(), Files(row.entity));
  CheckRow(row, s);
  if (row.at == At::kCall) {
    INFO(row.name);
    CHECK(Audited(node->port(), row.audited, "federation link",
                  s.error_message()));
  }
}

// A bare gRPC server presenting `server` (no service: a call that passes the
// handshake is UNIMPLEMENTED), dialled through the client library's TLS
// credentials as agency CIV/police expecting `server_node` ("" for any).
grpc::Status ClientView(const TlsFiles& server,
                        const std::string& server_node) {
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*ReadFileToString(server.key_file),
                                        *ReadFileToString(server.cert_file)});
  int port = 0;
  v1::Auditor::Service unimplemented;  // a server needs one service
  grpc::ServerBuilder builder;
  builder.RegisterService(&unimplemented);
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options),
                           &port);
  std::unique_ptr<grpc::Server> bare = builder.BuildAndStart();
  REQUIRE(bare != nullptr);
  auto credentials =
      MakeChannelCredentials(Tls("agency-CIV_police"), server_node);
  REQUIRE(credentials.ok());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  grpc::Status s = RawNodeInfo(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), *credentials, args));
  bare->Shutdown();
  return s;
}

TEST_CASE(
    "client library: a server certificate is refused at the handshake "
    "unless it is a valid node certificate of the expected node",
    "[matrix]") {
  struct ServerRow {
    const char* name;
    const char* entity;
    const char* server_node;
    StatusCode code;
  };
  const ServerRow row = GENERATE(
      ServerRow{"valid, expected node", "node-CIV", "CIV",
                StatusCode::UNIMPLEMENTED},
      ServerRow{"valid, any node", "node-CIV", "", StatusCode::UNIMPLEMENTED},
      ServerRow{"another node than server_node", "node-MLI", "CIV",
                StatusCode::UNAVAILABLE},
      ServerRow{"expired node certificate", "node-expired", "CIV",
                StatusCode::UNAVAILABLE},
      ServerRow{"node certificate without serverAuth", "node-noserver", "CIV",
                StatusCode::UNAVAILABLE},
      ServerRow{"foreign CA", "foreign", "", StatusCode::UNAVAILABLE},
      ServerRow{"intermediate missing", "leaf-only:node-CIV", "CIV",
                StatusCode::UNAVAILABLE},
      ServerRow{"agency certificate as a node", "agency-CIV_police", "",
                StatusCode::UNAVAILABLE},
      ServerRow{"issued under another node's intermediate",
                "sibling-CIV_police", "", StatusCode::UNAVAILABLE});
  grpc::Status s = ClientView(Files(row.entity), row.server_node);
  INFO(row.name << " (" << row.entity << "): " << s.error_code() << " "
                << s.error_message());
  CHECK(s.error_code() == row.code);
}

}  // namespace
}  // namespace ibsm::testing
