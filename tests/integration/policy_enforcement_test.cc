// The sharing policy enforced by a real node: per-alert filtering, publish
// refusals, reload without restart, a broken file refused, retention.
#include <google/protobuf/util/time_util.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "broker/node.h"
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
  retention { seconds: 1 }
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

  explicit PolicyNode(const std::string& policy = kPolicy) {
    std::ofstream(policy_path) << policy;
    v1::NodeConfig config = NodeConfigFor(dir.File("data"));
    config.set_policy_file(policy_path);
    config.set_policy_check_seconds(3600);  // tests reload explicitly
    config.set_retention_interval_seconds(3600);
    auto started = broker::Node::Start(config);
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
  // Sequences reveal nothing either: the customs cursor moves past the
  // withheld alerts without them being sent.
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
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
  }
  CHECK(info.policy_version() == narrowed_version);
  REQUIRE(RawPublish(police, {MakeAlert("still", "border.incident")}).ok());
  CHECK(Receive(n, "CIV_customs", "border.>").empty());
}

TEST_CASE(
    "retention removes alerts past their topic's retention or their own "
    "expiry, and they are not delivered after it") {
  PolicyNode n;
  auto police = n.As("CIV_police");
  v1::Alert drill = MakeAlert("drill-1", "exercise.drill", "UNCLASSIFIED");
  v1::Alert expiring = MakeAlert("expiring", "border.incident", "RESTRICTED");
  *expiring.mutable_expires_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime() +
      google::protobuf::util::TimeUtil::MillisecondsToDuration(1500);
  v1::Alert kept = MakeAlert("kept", "border.incident", "RESTRICTED");
  REQUIRE(RawPublish(police, {drill, expiring, kept}).ok());
  CHECK(Receive(n, "CIV_police", ">") ==
        std::vector<std::string>{"drill-1", "expiring", "kept"});

  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  // Not delivered once expired, even before a retention pass removes them.
  CHECK(Receive(n, "CIV_police", ">") == std::vector<std::string>{"kept"});
  auto removed = n.node->RunRetention(absl::Now());
  REQUIRE(removed.ok());
  CHECK(*removed == 2);
  REQUIRE(RawPublish(police, {MakeAlert("later", "border.incident")}).ok());
  CHECK(Receive(n, "CIV_police", ">") ==
        std::vector<std::string>{"kept", "later"});
  auto again = n.node->RunRetention(absl::Now());
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE("a changed policy file is picked up without a signal") {
  TempDir dir;
  std::string path = dir.File("policy.textproto");
  std::ofstream(path) << kPolicy;
  v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(path);
  config.set_policy_check_seconds(1);
  auto node = broker::Node::Start(config);
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  auto version = [&] {
    v1::NodeInfo info;
    grpc::ClientContext ctx;
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
    return info.policy_version();
  };
  const std::string before = version();
  std::ofstream(path, std::ios::app) << "\n# reviewed by the operator\n";
  std::string after = before;
  for (int i = 0; i < 100 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = version();
  }
  CHECK(after != before);
}

}  // namespace
}  // namespace ibsm::testing
