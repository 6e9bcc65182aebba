// Per-identity limits through a real node with raw gRPC stubs
// (docs/security.md, "Limits"): each limit refuses RESOURCE_EXHAUSTED
// naming itself and the identity, is audited at most once a minute, and
// one identity at its limits does not refuse another's calls.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "node/node.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::unique_ptr<broker::Node> StartWith(const TempDir& dir,
                                        const internal::v1::Limits& limits) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_limits()->MergeFrom(limits);
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

std::vector<v1::AuditRecord> LimitRecords(int port, const std::string& limit) {
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_CALL_REFUSED);
  std::vector<v1::AuditRecord> found;
  for (v1::AuditRecord& r :
       RawAuditQuery(Channel(port, Tls("auditor-UNODC_audit")), query)) {
    if (r.reason().find(limit) != std::string::npos) found.push_back(r);
  }
  return found;
}

TEST_CASE(
    "a publisher over its rate is refused RESOURCE_EXHAUSTED naming the "
    "limit, audited once however often it tries, and another agency still "
    "publishes",
    "[limits]") {
  TempDir dir;
  internal::v1::Limits limits;
  limits.set_identity_publish_rate(1);
  limits.set_identity_publish_burst(5);
  auto node = StartWith(dir, limits);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  int accepted = 0;
  grpc::Status last;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 40; ++i) {
    grpc::Status s = RawPublish(police, {MakeAlert(absl::StrCat("r-", i))});
    if (s.ok()) {
      ++accepted;
    } else {
      last = s;
    }
  }
  // The bucket holds 5 and refills 1 a second: never more than that
  // accepted, however slow the machine (a bound, not a time limit).
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  CHECK(accepted <= 5 + static_cast<int>(seconds) + 1);
  CHECK(accepted >= 5);
  REQUIRE(accepted < 40);
  CHECK(last.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK_THAT(last.error_message(),
             Catch::Contains("identity CIV/police") &&
                 Catch::Contains("limits.identity_publish_rate (1 alerts/s"));
  // Another identity has its own budget.
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  v1::Alert theirs = MakeAlert("customs-1");
  CHECK(RawPublish(customs, {theirs}).error_code() !=
        grpc::StatusCode::RESOURCE_EXHAUSTED);
  // One record for the flood (the next would come after a minute).
  CHECK(LimitRecords(node->port(), "identity_publish_rate").size() == 1);
}

TEST_CASE(
    "on a publish stream, a batch over the rate is answered "
    "RESOURCE_EXHAUSTED alert by alert and the stream stays open",
    "[limits]") {
  TempDir dir;
  internal::v1::Limits limits;
  limits.set_identity_publish_rate(1);
  limits.set_identity_publish_burst(6);
  auto node = StartWith(dir, limits);
  auto stub =
      v1::Publisher::NewStub(Channel(node->port(), Tls("agency-CIV_police")));
  grpc::ClientContext context;
  SetTestDeadline(context);
  auto stream = stub->PublishStream(&context);
  std::map<std::string, v1::PublishResult> results;
  auto send = [&](std::vector<std::string> ids) {
    v1::PublishRequest request;
    for (const std::string& id : ids) *request.add_alerts() = MakeAlert(id);
    REQUIRE(stream->Write(request));
    size_t answered = 0;
    v1::PublishResponse response;
    while (answered < ids.size() && stream->Read(&response)) {
      for (const v1::PublishResult& r : response.results()) {
        results[r.alert_id()] = r;
        ++answered;
      }
    }
    REQUIRE(answered == ids.size());
  };
  // The burst, then more than a few seconds' refill.
  send(
      {"within-1", "within-2", "within-3", "within-4", "within-5", "within-6"});
  send({"over-1", "over-2", "over-3", "over-4", "over-5"});
  for (const char* id : {"within-1", "within-2", "within-3", "within-4",
                         "within-5", "within-6"}) {
    CHECK(results[id].code() == 0);
  }
  for (const char* id : {"over-1", "over-2", "over-3", "over-4", "over-5"}) {
    INFO(id << ": " << results[id].message());
    CHECK(results[id].code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK_THAT(results[id].message(),
               Catch::Contains("limits.identity_publish_rate"));
  }
  // The same stream publishes again once the bucket has refilled.
  bool stored_later = false;
  for (int i = 0; i < 100 && !stored_later; ++i) {
    const std::string id = absl::StrCat("later-", i);
    send({id});
    stored_later = results[id].code() == 0;
    if (!stored_later) absl::SleepFor(absl::Milliseconds(200));
  }
  CHECK(stored_later);
  stream->WritesDone();
  CHECK(stream->Finish().ok());
}

TEST_CASE(
    "an identity's streams and subscriptions are bounded; closing one makes "
    "room, and other identities are not affected",
    "[limits]") {
  TempDir dir;
  internal::v1::Limits limits;
  limits.set_identity_max_streams(3);
  limits.set_identity_max_subscriptions(2);
  auto node = StartWith(dir, limits);
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  auto first =
      std::make_unique<RawSubscription>(customs, OpenRequest({"border.>"}));
  REQUIRE(first->WaitOpened());
  RawSubscription second(customs, OpenRequest({"border.>"}));
  REQUIRE(second.WaitOpened());
  {
    RawSubscription third(customs, OpenRequest({"border.>"}));
    grpc::Status s = third.AwaitEnd();
    INFO(s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK_THAT(s.error_message(),
               Catch::Contains("limits.identity_max_subscriptions"));
  }
  // Another agency subscribes.
  RawSubscription police(Channel(node->port(), Tls("agency-CIV_police")),
                         OpenRequest({"border.>"}));
  CHECK(police.WaitOpened());
  // A closed subscription gives its place back.
  first.reset();
  bool reopened = false;
  for (int i = 0; i < 100 && !reopened; ++i) {
    RawSubscription again(customs, OpenRequest({"border.>"}));
    reopened = again.WaitOpened();
  }
  CHECK(reopened);
  CHECK(LimitRecords(node->port(), "identity_max_subscriptions").size() == 1);
}

TEST_CASE("a limit in the config outside its range is refused at start",
          "[limits]") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.mutable_limits()->set_max_request_memory_mib(8);
  auto node = broker::Node::Start(config);
  REQUIRE_FALSE(node.ok());
  CHECK_THAT(std::string(node.status().message()),
             Catch::Contains("limits.max_request_memory_mib is 8 MiB"));
}

}  // namespace
}  // namespace ibsm::testing
