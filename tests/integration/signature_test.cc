// Originator signatures at a real node on loopback (docs/signature-format.md):
// a federated node refuses unsigned and forged or altered alerts, audited
// with the reason; an alert the client library signed is stored untouched,
// delivered with its signature and chain, and verifies at the subscriber; a
// node without peers still accepts unsigned alerts. The wire is driven with
// raw gRPC stubs, as another implementation would.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/alert_signature.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/signature_checker.h"
#include "ibsm/subscriber.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "node/node.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

// A node under the IBSM policy; `federated` lists the peer MLI (which
// dials in, so no link is opened by this node).
internal::v1::NodeConfig SignatureConfig(const TempDir& dir, bool federated) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  if (federated) config.mutable_federation()->add_peers()->set_node_id("MLI");
  return config;
}

std::unique_ptr<broker::Node> Start(const internal::v1::NodeConfig& config) {
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

// `alert` with originator and created_at set, signed by PKI `entity`.
v1::Alert SignedBy(const std::string& entity, v1::Alert alert,
                   const std::string& originator = "CIV/police") {
  TlsFiles files = Tls(entity);
  absl::StatusOr<std::string> key_pem = ReadFileToString(files.key_file);
  REQUIRE(key_pem.ok());
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(*key_pem);
  REQUIRE(key.ok());
  absl::StatusOr<std::string> chain_pem = ReadFileToString(files.cert_file);
  REQUIRE(chain_pem.ok());
  absl::StatusOr<std::vector<std::string>> chain =
      SigningChainFromPem(*chain_pem);
  REQUIRE(chain.ok());
  alert.set_originator(originator);
  alert.mutable_created_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  absl::Status signed_alert = SignAlert(*key, *chain, &alert);
  REQUIRE(signed_alert.ok());
  return alert;
}

// The refused PUBLISH record of `alert_id`, waited for (refusals are
// recorded with the next batch).
v1::AuditRecord RefusedPublishRecord(const std::shared_ptr<grpc::Channel>& ch,
                                     const std::string& alert_id) {
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_PUBLISH);
  query.set_alert_id(alert_id);
  query.set_decision(v1::AuditQuery::DECISION_DENIED);
  std::vector<v1::AuditRecord> found;
  CHECK(Eventually([&] {
    found = RawAuditQuery(ch, query);
    return !found.empty();
  }));
  REQUIRE(found.size() == 1);
  CHECK_FALSE(found[0].allowed());
  CHECK(found[0].actor() == "CIV/police");
  return found[0];
}

TEST_CASE(
    "A federated node refuses an unsigned publish FAILED_PRECONDITION and "
    "audits why") {
  TempDir dir;
  auto node = Start(SignatureConfig(dir, true));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));

  grpc::Status status = RawPublish(police, {MakeAlert("unsigned-1")});
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(status.error_message(),
             Catch::Contains("node CIV is federated: alerts must be signed by "
                             "their originator (docs/signature-format.md)"));
  CHECK_THAT(RefusedPublishRecord(auditor, "unsigned-1").reason(),
             Catch::Contains("is federated"));
}

TEST_CASE(
    "A federated node refuses forged and altered signed alerts "
    "PERMISSION_DENIED and audits why") {
  TempDir dir;
  auto node = Start(SignatureConfig(dir, true));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));

  SECTION("changed after signing") {
    v1::Alert altered = SignedBy("agency-CIV_police", MakeAlert("altered-1"));
    altered.set_payload("another payload");
    grpc::Status status = RawPublish(police, {altered});
    CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(status.error_message(),
               Catch::Contains("the signature of alert 'altered-1' does not "
                               "verify: the alert was changed after it was "
                               "signed"));
    CHECK_THAT(RefusedPublishRecord(auditor, "altered-1").reason(),
               Catch::Contains("does not verify"));
  }
  SECTION("signed by another agency than the originator") {
    // Police sends it (the originator check passes), customs signed it.
    v1::Alert forged = SignedBy("agency-CIV_customs", MakeAlert("forged-1"));
    grpc::Status status = RawPublish(police, {forged});
    CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(status.error_message(),
               Catch::Contains("alert 'forged-1' claims originator CIV/police "
                               "but is signed by CIV/customs"));
    CHECK_THAT(RefusedPublishRecord(auditor, "forged-1").reason(),
               Catch::Contains("signed by CIV/customs"));
  }
  SECTION("signed under another node's intermediate CA") {
    v1::Alert forged = SignedBy("sibling-CIV_police", MakeAlert("sibling-1"));
    grpc::Status status = RawPublish(police, {forged});
    CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(RefusedPublishRecord(auditor, "sibling-1").reason(),
               Catch::Contains("may only issue identities of node MLI"));
  }
  SECTION("signed by a revoked certificate") {
    v1::Alert revoked =
        SignedBy("revoked", MakeAlert("revoked-1"), "CIV/police");
    grpc::Status status = RawPublish(police, {revoked});
    CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(RefusedPublishRecord(auditor, "revoked-1").reason(),
               Catch::Contains("certificate revoked"));
  }
  SECTION("signed without created_at for the node to fill in") {
    v1::Alert alert = SignedBy("agency-CIV_police", MakeAlert("no-time-1"));
    alert.clear_created_at();
    grpc::Status status = RawPublish(police, {alert});
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(RefusedPublishRecord(auditor, "no-time-1").reason(),
               Catch::Contains("must carry its originator and created_at"));
  }
  // Nothing was stored.
  v1::NodeInfo info;
  REQUIRE(RawNodeInfo(auditor, &info).ok());
  CHECK(info.last_sequence() == 0);
}

TEST_CASE(
    "An alert signed by the client library is stored untouched and verifies "
    "at the subscriber") {
  TempDir dir;
  auto node = Start(SignatureConfig(dir, true));
  const std::string target = absl::StrCat("127.0.0.1:", node->port());
  std::unique_ptr<Client> police = ConnectOrFail(target, "agency-CIV_police");
  std::unique_ptr<Publisher> publisher = police->NewPublisher();
  for (const char* id : {"lib-1", "lib-2"}) {
    absl::StatusOr<PublishReceipt> receipt = publisher->Publish(MakeAlert(id));
    INFO(receipt.status().ToString());
    REQUIRE(receipt.ok());
  }

  // Raw subscriber: the bytes as the node sends them.
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({"border.>"}));
  const std::vector<v1::Delivery>& deliveries = sub.ReadDeliveries(2);
  REQUIRE(deliveries.size() == 2);
  absl::StatusOr<SignatureChecker> checker =
      SignatureChecker::FromFiles(PkiDir() + "/ca.pem", PkiDir() + "/crl");
  REQUIRE(checker.ok());
  CHECK(checker->checks_revocation());
  for (const v1::Delivery& d : deliveries) {
    INFO(d.alert().id());
    CHECK(d.alert().originator() == "CIV/police");
    CHECK(d.alert().has_created_at());
    CHECK_FALSE(d.alert().signature().empty());
    CHECK(d.alert().signing_chain_size() == 2);
    absl::StatusOr<AlertSigner> signer = checker->Verify(d.alert());
    INFO(signer.status().ToString());
    REQUIRE(signer.ok());
    CHECK(signer->originator == "CIV/police");
  }
  REQUIRE(sub.Close().ok());

  // And through the client library's Subscriber.
  std::unique_ptr<Client> customs_client =
      ConnectOrFail(target, "agency-CIV_customs");
  SubscribeOptions options;
  options.topics = {"border.>"};
  options.start = SubscribeOptions::Start::kEarliest;
  absl::StatusOr<std::unique_ptr<Subscriber>> subscriber =
      customs_client->NewSubscriber(options);
  REQUIRE(subscriber.ok());
  std::optional<v1::Delivery> first;
  CHECK(Eventually([&] {
    absl::StatusOr<std::optional<v1::Delivery>> next =
        (*subscriber)->Next(absl::Milliseconds(200));
    if (next.ok() && next->has_value()) first = **next;
    return first.has_value();
  }));
  REQUIRE(first.has_value());
  CHECK(checker->Verify(first->alert()).ok());
  (*subscriber)->Stop();

  // A publish retried with the same id is a duplicate, though signed anew.
  absl::StatusOr<PublishReceipt> again = publisher->Publish(MakeAlert("lib-1"));
  REQUIRE(again.ok());
  CHECK(again->duplicate);
}

TEST_CASE("ibsm publish signs, --unsigned is refused, subscribe --verify") {
  TempDir dir;
  auto node = Start(SignatureConfig(dir, true));
  RunResult published = RunBinary(
      CliBinary(),
      CliArgs(node->port(), "agency-CIV_police",
              {"publish", "--id", "cli-signed-1", "--topic", "border.incident",
               "--classification", "RESTRICTED", "--severity", "HIGH",
               "--payload", "Vehicle crossed without stopping"}));
  INFO(published.output);
  CHECK(published.exit_code == 0);
  RunResult unsigned_publish = RunBinary(
      CliBinary(), CliArgs(node->port(), "agency-CIV_police",
                           {"publish", "--unsigned", "--id", "cli-unsigned-1",
                            "--topic", "border.incident", "--classification",
                            "RESTRICTED", "--severity", "HIGH"}));
  INFO(unsigned_publish.output);
  CHECK(unsigned_publish.exit_code == 1);
  CHECK_THAT(unsigned_publish.output,
             Catch::Contains("FAILED_PRECONDITION: alert 'cli-unsigned-1' is "
                             "not signed: node CIV is federated"));
  RunResult verified = RunBinary(
      CliBinary(),
      CliArgs(node->port(), "agency-CIV_customs",
              {"subscribe", "--topic", "border.>", "--from", "earliest",
               "--count", "1", "--verify", "--crl-dir", PkiDir() + "/crl"}));
  INFO(verified.output);
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.output,
             Catch::Contains("signature: verified, signed by CIV/police"));
}

TEST_CASE(
    "A node without peers accepts unsigned alerts and still checks signed "
    "ones") {
  TempDir dir;
  auto node = Start(SignatureConfig(dir, false));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  CHECK(RawPublish(police, {MakeAlert("single-unsigned-1")}).ok());
  CHECK(RawPublish(police, {SignedBy("agency-CIV_police",
                                     MakeAlert("single-signed-1"))})
            .ok());
  v1::Alert altered =
      SignedBy("agency-CIV_police", MakeAlert("single-altered-1"));
  altered.set_topic("border.crossing");
  CHECK(RawPublish(police, {altered}).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(RefusedPublishRecord(auditor, "single-altered-1").reason(),
             Catch::Contains("does not verify"));
  // The CLI's --unsigned works here, for development.
  RunResult unsigned_publish = RunBinary(
      CliBinary(), CliArgs(node->port(), "agency-CIV_police",
                           {"publish", "--unsigned", "--id", "cli-unsigned-2",
                            "--topic", "border.incident", "--classification",
                            "RESTRICTED", "--severity", "LOW"}));
  INFO(unsigned_publish.output);
  CHECK(unsigned_publish.exit_code == 0);
}

}  // namespace
}  // namespace ibsm::testing
