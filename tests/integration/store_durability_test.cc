// What the store promises, seen from outside a real node over mutual TLS:
// sequences are never reused after retention emptied the end of the log,
// reusing an alert id with other content is refused, and what callers write
// into the audit trail is bounded so that auditors can still read it.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "ibsm/client.h"
#include "ibsm/subscriber.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using google::protobuf::util::TimeUtil;
using Open = v1::SubscribeRequest::Open;

std::unique_ptr<broker::Node> StartNode(
    const internal::v1::NodeConfig& config) {
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

// An alert that retention removes once an hour has passed.
v1::Alert Expiring(const std::string& id) {
  v1::Alert alert = MakeAlert(id);
  *alert.mutable_expires_at() =
      TimeUtil::GetCurrentTime() + TimeUtil::SecondsToDuration(3600);
  return alert;
}

void Publish(const std::shared_ptr<grpc::Channel>& channel,
             const v1::Alert& alert, uint64_t* sequence = nullptr) {
  v1::PublishResponse response;
  grpc::Status status = RawPublish(channel, {alert}, &response);
  INFO(alert.id() << ": " << status.error_message());
  REQUIRE(status.ok());
  REQUIRE(response.results_size() == 1);
  if (sequence != nullptr) *sequence = response.results(0).sequence();
}

// A node keeps one port across restarts so clients reconnect to it.
struct RestartableNode {
  explicit RestartableNode(internal::v1::NodeConfig c) : config(std::move(c)) {
    config.set_listen_address("127.0.0.1:0");
    node = StartNode(config);
    config.set_listen_address(absl::StrCat("127.0.0.1:", node->port()));
  }
  void Restart() {
    node->Shutdown(absl::Seconds(1));
    node.reset();
    node = StartNode(config);
  }
  int port() const { return node->port(); }
  internal::v1::NodeConfig config;
  std::unique_ptr<broker::Node> node;
};

TEST_CASE(
    "sequences are not reused after retention removed the newest alerts "
    "and the node restarted, so a durable raw subscriber gets the new ones",
    "[hwm]") {
  TempDir dir;
  RestartableNode node(NodeConfigFor(dir.File("data")));
  {
    auto police = Channel(node.port(), Tls("agency-CIV_police"));
    Publish(police, MakeAlert("keep-1"));
    Publish(police, Expiring("gone-2"));
    Publish(police, Expiring("gone-3"));
    auto customs = Channel(node.port(), Tls("agency-CIV_customs"));
    RawSubscription sub(customs, OpenRequest({">"}, "desk"));
    REQUIRE(sub.ReadDeliveries(3).size() == 3);
    REQUIRE(sub.SendFlow(3, 0));
    REQUIRE(sub.Close().ok());
  }
  // Retention empties the end of the log; the node restarts.
  auto removed = node.node->RunRetention(absl::Now() + absl::Hours(2));
  REQUIRE(removed.ok());
  REQUIRE(*removed == 2);
  node.Restart();

  auto police = Channel(node.port(), Tls("agency-CIV_police"));
  uint64_t sequence = 0;
  Publish(police, MakeAlert("new-4"), &sequence);
  CHECK(sequence == 4);
  auto customs = Channel(node.port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({">"}, "desk"));
  const auto& got = sub.ReadDeliveries(1);
  REQUIRE(sub.opened());
  CHECK(sub.opened_info().cursor() == 3);
  CHECK(sub.opened_info().last_sequence() == 4);
  REQUIRE(got.size() == 1);
  CHECK(got[0].alert().id() == "new-4");
  CHECK(got[0].sequence() == 4);
}

TEST_CASE(
    "sequences are not reused after retention and restart, so the client "
    "library, which drops sequences it has seen, gets the new alert",
    "[hwm]") {
  TempDir dir;
  RestartableNode node(NodeConfigFor(dir.File("data")));
  auto client = ConnectOrFail(absl::StrCat("127.0.0.1:", node.port()),
                              "agency-CIV_customs");
  SubscribeOptions sub_options;
  sub_options.topics = {">"};
  sub_options.durable_name = "lib-desk";
  sub_options.start = SubscribeOptions::Start::kEarliest;
  auto subscriber = client->NewSubscriber(sub_options);
  REQUIRE(subscriber.ok());
  auto next = [&]() {
    auto delivery = (*subscriber)->Next(absl::Seconds(20));
    INFO(delivery.status().ToString());
    REQUIRE(delivery.ok());
    REQUIRE(delivery->has_value());
    (*subscriber)->Ack((*delivery)->sequence());
    return **std::move(delivery);
  };
  {
    auto police = Channel(node.port(), Tls("agency-CIV_police"));
    Publish(police, MakeAlert("keep-1"));
    Publish(police, Expiring("gone-2"));
    Publish(police, Expiring("gone-3"));
  }
  CHECK(next().alert().id() == "keep-1");
  CHECK(next().alert().id() == "gone-2");
  CHECK(next().alert().id() == "gone-3");

  auto removed = node.node->RunRetention(absl::Now() + absl::Hours(2));
  REQUIRE(removed.ok());
  REQUIRE(*removed == 2);
  node.Restart();
  auto police = Channel(node.port(), Tls("agency-CIV_police"));
  Publish(police, MakeAlert("new-4"));
  v1::Delivery delivery = next();
  CHECK(delivery.alert().id() == "new-4");
  CHECK(delivery.sequence() == 4);
}

TEST_CASE(
    "a publish that reuses an alert id with other content is refused "
    "ALREADY_EXISTS and audited; a true retry gets the original sequence",
    "[dedup]") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  auto node = StartNode(config);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  v1::Alert original = MakeAlert("civ-dup-1");
  uint64_t sequence = 0;
  Publish(police, original, &sequence);
  REQUIRE(sequence == 1);

  v1::PublishResponse retry;
  REQUIRE(RawPublish(police, {original}, &retry).ok());
  REQUIRE(retry.results_size() == 1);
  CHECK(retry.results(0).duplicate());
  CHECK(retry.results(0).sequence() == 1);

  v1::Alert changed = original;
  changed.set_payload("A different report under the same id.");
  v1::PublishResponse response;
  grpc::Status refused = RawPublish(police, {changed}, &response);
  CHECK(refused.error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK_THAT(refused.error_message(), Catch::Contains("differ"));

  // Also when both arrive in one request.
  v1::Alert fresh = MakeAlert("civ-dup-2");
  v1::Alert fresh_changed = fresh;
  fresh_changed.set_severity(v1::SEVERITY_LOW);
  grpc::Status in_batch = RawPublish(police, {fresh, fresh_changed});
  CHECK(in_batch.error_code() == grpc::StatusCode::ALREADY_EXISTS);

  // The refusal is in the trail.
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_alert_id("civ-dup-1");
  query.set_decision(v1::AuditQuery::DECISION_DENIED);
  bool found = false;
  grpc::Status status;
  // Stops early on a failed query; checked below.
  (void)Eventually([&] {
    for (const v1::AuditRecord& r : RawAuditQuery(auditor, query, &status)) {
      if (r.action() == v1::AUDIT_PUBLISH && !r.allowed() &&
          r.reason().find("differ") != std::string::npos) {
        found = true;
      }
    }
    return found || !status.ok();
  });
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(found);
}

TEST_CASE(
    "a 60 MiB subscribe and publish become audit records of a few KiB "
    "that queries read",
    "[audit][bounds]") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  auto node = StartNode(config);
  const std::string huge(60 << 20, 'x');

  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({huge}));
  CHECK(sub.AwaitEnd().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  grpc::Status refused = RawPublish(police, {MakeAlert(huge)});
  CHECK_FALSE(refused.ok());

  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_decision(v1::AuditQuery::DECISION_DENIED);
  bool saw_subscribe = false;
  bool saw_publish = false;
  grpc::Status status;
  // Stops early on a failed query; checked below.
  (void)Eventually([&] {
    for (const v1::AuditRecord& r : RawAuditQuery(auditor, query, &status)) {
      CHECK(r.ByteSizeLong() < (64u << 10));
      if (r.action() == v1::AUDIT_SUBSCRIBE_OPEN) {
        saw_subscribe = true;
        CHECK(r.detail().find("truncated") != std::string::npos);
        CHECK(r.detail().find(std::to_string(huge.size())) !=
              std::string::npos);
      }
      if (r.action() == v1::AUDIT_PUBLISH) {
        saw_publish = true;
        CHECK(r.alert_id().find("truncated") != std::string::npos);
      }
    }
    return (saw_subscribe && saw_publish) || !status.ok();
  });
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(saw_subscribe);
  CHECK(saw_publish);
}

}  // namespace
}  // namespace ibsm::testing
