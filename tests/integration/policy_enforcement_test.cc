// The sharing policy enforced by a real node: per-alert filtering, publish
// refusals, reload without restart, a broken file refused, retention.
#include <google/protobuf/util/time_util.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "ibsm/clock.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "node/node.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using Open = v1::SubscribeRequest::Open;

constexpr char kPolicy[] = R"(
name: "enforcement-test"
classification_levels: ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]
nodes { id: "CIV" kind: NODE_KIND_NATIONAL groups: ["ECOWAS"] clearance: "SECRET" }
nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: ["SAHEL"] clearance: "SECRET" }
agencies { id: "CIV/police" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "CIV/customs" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "RESTRICTED" }
agencies { id: "CIV/gendarmerie" roles: [ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "MLI/customs" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "RESTRICTED" }
topic_rules {
  name: "border"
  topics: ["border.>"]
  publishers: ["CIV/*"]
  subscribers: ["CIV/*"]
  max_classification: "SECRET"
}
topic_rules {
  name: "trafficking"
  topics: ["trafficking.*"]
  publishers: ["CIV/police"]
  subscribers: ["CIV/gendarmerie"]
  max_classification: "CONFIDENTIAL"
}
topic_rules {
  name: "exercise"
  topics: ["exercise.>"]
  publishers: ["*"]
  subscribers: ["*"]
  max_classification: "UNCLASSIFIED"
  retention { seconds: 4 }
}
topic_rules {
  name: "test-marker"
  topics: ["test.marker"]
  publishers: ["*"]
  subscribers: ["*"]
  max_classification: "UNCLASSIFIED"
}
)";

struct PolicyNode {
  TempDir dir;
  std::string policy_path = dir.File("policy.textproto");
  std::unique_ptr<broker::Node> node;

  // `clock` (if set) is the node's time and must outlive it.
  explicit PolicyNode(const std::string& policy = kPolicy,
                      Clock* clock = RealClock()) {
    std::ofstream(policy_path) << policy;
    internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
    config.set_policy_file(policy_path);
    config.set_policy_check_seconds(3600);  // tests reload explicitly
    config.set_retention_interval_seconds(3600);
    broker::NodeOptions options;
    options.clock = clock;
    auto started = broker::Node::Start(config, options);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    node = *std::move(started);
  }
  std::shared_ptr<grpc::Channel> As(const std::string& agency) {
    return Channel(node->port(), Tls("agency-" + agency));
  }
  void Rewrite(const std::string& policy) {
    std::ofstream(policy_path) << policy;
  }
};

// Everything `agency` receives on `pattern` from the start of the log.
// Deliveries come in log order, so once a marker alert published last has
// arrived, every earlier alert has been either delivered or withheld.
std::vector<std::string> Receive(PolicyNode& n, const std::string& agency,
                                 const std::string& pattern) {
  static int markers = 0;
  const std::string marker = absl::StrCat("marker-", ++markers);
  REQUIRE(RawPublish(n.As("CIV_police"),
                     {MakeAlert(marker, "test.marker", "UNCLASSIFIED")})
              .ok());
  RawSubscription sub(n.As(agency), OpenRequest({pattern, "test.marker"}));
  std::vector<std::string> got;
  for (size_t i = 0;; ++i) {
    const auto& ds = sub.ReadDeliveries(i + 1);
    REQUIRE(ds.size() > i);
    const v1::Alert& a = ds[i].alert();
    if (a.id() == marker) break;
    if (a.topic() != "test.marker") got.push_back(a.id());
  }
  return got;
}

TEST_CASE(
    "an uncleared subscriber gets the UNCLASSIFIED alert of a topic but "
    "not the SECRET one") {
  PolicyNode n;
  REQUIRE(RawPublish(n.As("CIV_police"),
                     {MakeAlert("open-1", "border.incident", "UNCLASSIFIED"),
                      MakeAlert("secret-1", "border.incident", "SECRET")})
              .ok());
  CHECK(Receive(n, "CIV_customs", "border.>") ==
        std::vector<std::string>{"open-1"});
  CHECK(Receive(n, "CIV_gendarmerie", "border.>") ==
        std::vector<std::string>{"open-1", "secret-1"});
}

TEST_CASE("live subscribers are filtered per alert, not per topic") {
  PolicyNode n;
  RawSubscription customs(n.As("CIV_customs"),
                          OpenRequest({">"}, "", Open::START_NEW));
  REQUIRE(customs.WaitOpened());
  auto police = n.As("CIV_police");
  REQUIRE(
      RawPublish(police, {MakeAlert("l1", "border.incident", "SECRET")}).ok());
  REQUIRE(
      RawPublish(police, {MakeAlert("l2", "trafficking.drugs", "RESTRICTED")})
          .ok());
  REQUIRE(RawPublish(police, {MakeAlert("l3", "border.closure", "RESTRICTED")})
              .ok());
  const auto& got = customs.ReadDeliveries(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].alert().id() == "l3");
  // The withheld alerts are not sent, but the delivered sequence is the
  // node's global one: its gap tells customs that two alerts were withheld
  // (accepted metadata leakage, docs/policy.md).
  CHECK(got[0].sequence() == 3);
}

TEST_CASE("publishing without the right is refused with the policy's reason") {
  PolicyNode n;
  SECTION("not a publisher on the topic") {
    grpc::Status s =
        RawPublish(n.As("CIV_customs"), {MakeAlert("t1", "trafficking.drugs")});
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(s.error_message(), Catch::Contains("trafficking"));
  }
  SECTION("above the topic's ceiling") {
    grpc::Status s = RawPublish(
        n.As("CIV_police"), {MakeAlert("t2", "trafficking.drugs", "SECRET")});
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(s.error_message(), Catch::Contains("CONFIDENTIAL"));
  }
  SECTION("no rule covers the topic: deny by default") {
    grpc::Status s =
        RawPublish(n.As("CIV_police"), {MakeAlert("t3", "migration.flows")});
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("a classification the policy does not define") {
    grpc::Status s = RawPublish(
        n.As("CIV_police"), {MakeAlert("t4", "border.incident", "TOP-SECRET")});
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_CASE(
    "a reload that narrows sharing takes effect for the next alert; a "
    "broken file leaves the old policy in force") {
  PolicyNode n;
  auto police = n.As("CIV_police");
  REQUIRE(RawPublish(police, {MakeAlert("before", "border.incident")}).ok());

  v1::NodeInfo info;
  {
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
  }
  const std::string first_version = info.policy_version();

  // Narrow: border alerts now only for CIV/police and CIV/gendarmerie.
  n.Rewrite(absl::StrReplaceAll(
      kPolicy, {{"  subscribers: [\"CIV/*\"]",
                 "  subscribers: [\"CIV/police\", \"CIV/gendarmerie\"]"}}));
  REQUIRE(n.node->ReloadPolicy().ok());
  REQUIRE(RawPublish(police, {MakeAlert("after", "border.incident")}).ok());
  {
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
  }
  CHECK(info.policy_version() != first_version);
  // Decisions are made at delivery with the policy in force: customs no
  // longer receives border alerts at all.
  CHECK(Receive(n, "CIV_customs", "border.>").empty());
  CHECK(Receive(n, "CIV_gendarmerie", "border.>") ==
        std::vector<std::string>{"before", "after"});

  // A broken file: refused with file:line, the narrowed policy stays.
  const std::string narrowed_version = info.policy_version();
  n.Rewrite(std::string(kPolicy) +
            "\ntopic_rules { name: \"x\" topics: [\"Bad..Pattern\"] }\n");
  absl::Status refused = n.node->ReloadPolicy();
  CHECK_FALSE(refused.ok());
  CHECK_THAT(std::string(refused.message()),
             Catch::Contains(n.policy_path + ":"));
  {
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
  }
  CHECK(info.policy_version() == narrowed_version);
  REQUIRE(RawPublish(police, {MakeAlert("still", "border.incident")}).ok());
  CHECK(Receive(n, "CIV_customs", "border.>").empty());
}

TEST_CASE(
    "retention removes alerts past their topic's retention or their own "
    "expiry, and they are not delivered after it") {
  // The node's time stands still until the test moves it, so the first
  // delivery comes before either alert lapses however slow the machine is.
  FakeClock clock;
  PolicyNode n(kPolicy, &clock);
  auto police = n.As("CIV_police");
  v1::Alert drill = MakeAlert("drill-1", "exercise.drill", "UNCLASSIFIED");
  v1::Alert expiring = MakeAlert("expiring", "border.incident", "RESTRICTED");
  *expiring.mutable_expires_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(clock.Now() + absl::Seconds(4)));
  v1::Alert kept = MakeAlert("kept", "border.incident", "RESTRICTED");
  REQUIRE(RawPublish(police, {drill, expiring, kept}).ok());
  CHECK(Receive(n, "CIV_police", ">") ==
        std::vector<std::string>{"drill-1", "expiring", "kept"});

  // Past both the expiry and the drill's 4 s retention (counted from its
  // real receipt time), short of the node's hourly retention pass, which
  // would race with the pass below.
  clock.Advance(absl::Minutes(10));
  // Not delivered once expired, even before a retention pass removes them.
  CHECK(Receive(n, "CIV_police", ">") == std::vector<std::string>{"kept"});
  auto removed = n.node->RunRetention(clock.Now());
  REQUIRE(removed.ok());
  CHECK(*removed == 2);
  REQUIRE(RawPublish(police, {MakeAlert("later", "border.incident")}).ok());
  CHECK(Receive(n, "CIV_police", ">") ==
        std::vector<std::string>{"kept", "later"});
  auto again = n.node->RunRetention(clock.Now());
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE("a changed policy file is picked up without a signal") {
  TempDir dir;
  std::string path = dir.File("policy.textproto");
  std::ofstream(path) << kPolicy;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(path);
  config.set_policy_check_seconds(1);
  auto node = broker::Node::Start(config);
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  auto version = [&] {
    v1::NodeInfo info;
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
    return info.policy_version();
  };
  const std::string before = version();
  std::ofstream(path, std::ios::app) << "\n# reviewed by the operator\n";
  REQUIRE(Eventually([&] { return version() != before; }));
}

// ---- Where an agency acts (issue 7, item 2) --------------------------------

std::string ShippedPolicy() {
  std::ifstream in(SourceDir() + "/policies/ibsm-west-africa.textproto");
  std::stringstream text;
  text << in.rdbuf();
  REQUIRE(!text.str().empty());
  return text.str();
}

TEST_CASE(
    "under the shipped policy an agency of another node may neither publish "
    "nor subscribe here, although '*/customs' names it") {
  PolicyNode n(ShippedPolicy());
  // CIV/police's alert is shared with MLI, so MLI/customs would get it
  // through its own node -- but not by connecting to CIV directly.
  REQUIRE(RawPublish(n.As("CIV_police"),
                     {MakeAlert("attack-1", "terrorism.attack", "RESTRICTED")})
              .ok());
  grpc::Status published =
      RawPublish(n.As("MLI_customs"),
                 {MakeAlert("mli-1", "terrorism.attack", "RESTRICTED")});
  CHECK(published.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(published.error_message(), Catch::Contains("own node MLI"));

  RawSubscription sub(n.As("MLI_customs"), OpenRequest({"terrorism.>"}));
  CHECK_FALSE(sub.WaitOpened());
  grpc::Status ended = sub.AwaitEnd();
  CHECK(ended.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(ended.error_message(), Catch::Contains("own node MLI"));
  CHECK(sub.ReadDeliveries(1).empty());
}

// CIV and MLI, UNODC with its auditor: a test policy in which only grants
// differ between the cases.
constexpr char kScopePolicy[] = R"(
name: "scope-test"
classification_levels: ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]
nodes { id: "CIV" kind: NODE_KIND_NATIONAL groups: ["ECOWAS"] clearance: "SECRET" }
nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: ["SAHEL"] clearance: "SECRET" }
nodes { id: "UNODC" kind: NODE_KIND_INTERNATIONAL groups: ["INTL"] clearance: "CONFIDENTIAL" }
agencies { id: "CIV/police" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "SECRET" }
agencies { id: "CIV/customs" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "RESTRICTED" }
agencies { id: "MLI/customs" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "RESTRICTED"
  #MLI-GRANT
}
agencies { id: "UNODC/audit" roles: [ROLE_AUDITOR] clearance: "RESTRICTED"
  #AUDIT-GRANT
}
topic_rules {
  name: "border"
  topics: ["border.>"]
  publishers: ["*/customs", "CIV/police"]
  subscribers: ["*/customs", "CIV/police"]
  max_classification: "SECRET"
  share { to: "SAHEL" max_classification: "RESTRICTED" }
}
topic_rules {
  name: "test-marker"
  topics: ["test.marker"]
  publishers: ["*"]
  subscribers: ["*"]
  max_classification: "UNCLASSIFIED"
  share { to: "SAHEL" max_classification: "UNCLASSIFIED" }
}
)";

std::string ScopePolicy(const std::string& mli_grant,
                        const std::string& audit_grant) {
  return absl::StrReplaceAll(
      kScopePolicy, {{"#MLI-GRANT", mli_grant}, {"#AUDIT-GRANT", audit_grant}});
}

TEST_CASE(
    "an explicit remote_access grant lets an agency of another node act "
    "here, and it receives only what its own node may receive") {
  PolicyNode n(
      ScopePolicy("remote_access { nodes: \"CIV\" roles: [ROLE_PUBLISHER, "
                  "ROLE_SUBSCRIBER] }",
                  ""));
  auto police = n.As("CIV_police");
  REQUIRE(RawPublish(police,
                     {MakeAlert("shared-1", "border.incident", "RESTRICTED"),
                      MakeAlert("local-1", "border.incident", "CONFIDENTIAL")})
              .ok());
  CHECK(RawPublish(n.As("MLI_customs"),
                   {MakeAlert("mli-1", "border.incident", "RESTRICTED")})
            .ok());
  // CONFIDENTIAL is above the share with MLI: withheld, as at MLI.
  CHECK(Receive(n, "MLI_customs", "border.>") ==
        std::vector<std::string>{"shared-1", "mli-1"});
}

grpc::Status GetInfo(const std::shared_ptr<grpc::Channel>& channel,
                     v1::NodeInfo* info) {
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  return v1::Node::NewStub(channel)->GetInfo(&ctx, {}, info);
}

TEST_CASE(
    "NodeInfo answers only identities the policy knows and that may act "
    "here, and hides the node's counts from agencies") {
  PolicyNode n(ScopePolicy("", ""));
  auto police = n.As("CIV_police");
  REQUIRE(RawPublish(police, {MakeAlert("b-1", "border.incident")}).ok());
  RawSubscription open(police, OpenRequest({"border.>"}));
  REQUIRE(open.WaitOpened());

  v1::NodeInfo info;
  SECTION("an agency of this node: no counts") {
    REQUIRE(GetInfo(police, &info).ok());
    CHECK(info.node_id() == "CIV");
    CHECK(info.caller() == "CIV/police");
    CHECK(info.last_sequence() == 0);
    CHECK(info.active_subscriptions() == 0);
    CHECK_FALSE(info.policy_version().empty());
  }
  SECTION("a valid certificate whose identity the policy does not know") {
    grpc::Status s =
        GetInfo(Channel(n.node->port(), Tls("agency-INTERPOL_nccu")), &info);
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(s.error_message(), Catch::Contains("INTERPOL/nccu"));
  }
  SECTION("an agency of another node without a grant") {
    grpc::Status s = GetInfo(n.As("MLI_customs"), &info);
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("a node of the policy: no counts") {
    REQUIRE(GetInfo(Channel(n.node->port(), Tls("node-MLI")), &info).ok());
    CHECK(info.last_sequence() == 0);
    CHECK(info.active_subscriptions() == 0);
  }
}

std::vector<v1::AuditRecord> AuditQuery(
    const std::shared_ptr<grpc::Channel>& channel, const v1::AuditQuery& query,
    grpc::Status* status, std::vector<uint64_t>* redacted = nullptr) {
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  auto reader = v1::Auditor::NewStub(channel)->Query(&ctx, query);
  std::vector<v1::AuditRecord> out;
  v1::AuditQueryResponse response;
  while (reader->Read(&response)) {
    for (const auto& r : response.records()) out.push_back(r);
    if (redacted != nullptr) {
      redacted->insert(redacted->end(), response.redacted_indices().begin(),
                       response.redacted_indices().end());
    }
  }
  *status = reader->Finish();
  return out;
}

TEST_CASE("an auditor of another node is refused here unless granted") {
  v1::AuditQuery query;
  grpc::Status status;
  {
    PolicyNode n(ScopePolicy("", ""));
    AuditQuery(Channel(n.node->port(), Tls("auditor-UNODC_audit")), query,
               &status);
    CHECK(status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(status.error_message(), Catch::Contains("own node UNODC"));
  }
  PolicyNode n(
      ScopePolicy("", "remote_access { nodes: \"CIV\" roles: ROLE_AUDITOR }"));
  auto auditor = Channel(n.node->port(), Tls("auditor-UNODC_audit"));
  // The node's start record is written with the first batch after start.
  std::vector<v1::AuditRecord> records;
  // Stops early on a failed query; checked below.
  (void)Eventually([&] {
    records = AuditQuery(auditor, query, &status);
    return !records.empty() || !status.ok();
  });
  REQUIRE(status.ok());
  CHECK_FALSE(records.empty());

  // A NodeInfo refusal is in the trail too.
  v1::NodeInfo info;
  CHECK(GetInfo(Channel(n.node->port(), Tls("agency-INTERPOL_nccu")), &info)
            .error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::AuditQuery refusals;
  refusals.set_action(v1::AUDIT_CALL_REFUSED);
  refusals.set_actor("INTERPOL/nccu");
  int nudges = 0;
  grpc::Status nudged;
  // Stops early on a failed publish; checked below.
  (void)Eventually([&] {
    // Queued records are written with the next commit.
    nudged = RawPublish(n.As("CIV_police"),
                        {MakeAlert(absl::StrCat("nudge-", ++nudges),
                                   "test.marker", "UNCLASSIFIED")});
    if (!nudged.ok()) return true;
    records = AuditQuery(auditor, refusals, &status);
    return !records.empty();
  });
  INFO(nudged.error_message());
  REQUIRE(nudged.ok());
  REQUIRE(records.size() == 1);
  CHECK(records[0].detail() == "Node.GetInfo");
  CHECK_FALSE(records[0].allowed());
}

TEST_CASE(
    "an auditor sees records about alerts above its clearance redacted, not "
    "omitted, unless the policy grants it their metadata") {
  const std::string grant =
      "remote_access { nodes: \"CIV\" roles: ROLE_AUDITOR }";
  const bool metadata = GENERATE(false, true);
  PolicyNode n(ScopePolicy(
      "", metadata ? grant + " audit_metadata_above_clearance: true" : grant));
  auto police = n.As("CIV_police");
  REQUIRE(
      RawPublish(police, {MakeAlert("low-1", "border.incident", "RESTRICTED"),
                          MakeAlert("high-1", "border.secret-route", "SECRET")})
          .ok());
  auto auditor = Channel(n.node->port(), Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_PUBLISH);
  grpc::Status status;
  std::vector<uint64_t> redacted;
  std::vector<v1::AuditRecord> records =
      AuditQuery(auditor, query, &status, &redacted);
  REQUIRE(status.ok());
  REQUIRE(records.size() == 2);  // counts stay honest
  CHECK(records[0].alert_id() == "low-1");
  CHECK(records[0].topic() == "border.incident");
  CHECK(records[1].classification() == "SECRET");
  CHECK(records[1].sequence() == 2);
  if (metadata) {
    CHECK(records[1].alert_id() == "high-1");
    CHECK(records[1].topic() == "border.secret-route");
    CHECK(redacted.empty());
  } else {
    CHECK(records[1].alert_id().empty());
    CHECK(records[1].topic().empty());
    CHECK(records[1].originator().empty());
    CHECK(records[1].actor() == "CIV/police");  // who acted stays visible
    CHECK(records[1].rule().empty());
    CHECK(records[1].payload_sha256().empty());
    CHECK(redacted == std::vector<uint64_t>{records[1].index()});
  }
  // Filters see only what the auditor may see: asking for the hidden topic
  // or id does not confirm that it exists.
  v1::AuditQuery by_topic;
  by_topic.set_topic("border.secret-route");
  CHECK(AuditQuery(auditor, by_topic, &status).size() == (metadata ? 1u : 0u));
  v1::AuditQuery by_id;
  by_id.set_alert_id("high-1");
  CHECK(AuditQuery(auditor, by_id, &status).size() == (metadata ? 1u : 0u));

  // Proofs and exports carry records as hashed: they are refused when they
  // would show a redacted record.
  if (!metadata) {
    v1::InclusionProofRequest req;
    req.set_index(records[1].index());
    v1::InclusionProof proof;
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    grpc::Status s =
        v1::Auditor::NewStub(auditor)->GetInclusionProof(&ctx, req, &proof);
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(proof.record().empty());
  }
  // An export is whole or refused: wait for a signed checkpoint that covers
  // the SECRET alert's record.
  auto stub = v1::Auditor::NewStub(auditor);
  v1::SignedCheckpoint checkpoint;
  int nudges = 0;
  grpc::Status nudged;
  // Stops early on a failed publish; checked below.
  (void)Eventually([&] {
    nudged = RawPublish(police, {MakeAlert(absl::StrCat("tick-", ++nudges),
                                           "test.marker", "UNCLASSIFIED")});
    if (!nudged.ok()) return true;
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    (void)stub->GetCheckpoint(&ctx, {}, &checkpoint);  // none yet: retry
    return checkpoint.tree_size() > records[1].index();
  });
  INFO(nudged.error_message());
  REQUIRE(nudged.ok());
  REQUIRE(checkpoint.tree_size() > records[1].index());
  v1::ExportRequest request;
  request.set_to_size(checkpoint.tree_size());
  v1::AuditExport exported;
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  grpc::Status s = stub->Export(&ctx, request, &exported);
  if (metadata) {
    CHECK(s.ok());
    CHECK(exported.records_size() == static_cast<int>(checkpoint.tree_size()));
  } else {
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(s.error_message(),
               Catch::Contains("concerns an alert above your clearance"));
    CHECK(exported.records_size() == 0);
  }
}

}  // namespace
}  // namespace ibsm::testing
