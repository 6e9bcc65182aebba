// Publish -> subscribe over real mutual TLS to an in-process node with a real
// RocksDB in a temp dir.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "broker/node.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using Open = v1::SubscribeRequest::Open;

std::unique_ptr<broker::Node> StartNode(const TempDir& dir,
                                        const std::string& name = "data") {
  auto node = broker::Node::Start(NodeConfigFor(dir.File(name)));
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

TEST_CASE("a published alert reaches a subscriber with its sequence") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));

  RawSubscription sub(customs, OpenRequest({"border.>"}, "", Open::START_NEW));
  // Opened arrives before any delivery: the subscription is live.
  REQUIRE(sub.WaitOpened());
  REQUIRE(sub.ReadDeliveries(0).empty());

  v1::PublishResponse response;
  v1::Alert alert = MakeAlert("civ-2026-0001", "border.incident");
  (*alert.mutable_attributes())["post"] = "Pogo";
  grpc::Status published = RawPublish(police, {alert}, &response);
  INFO(published.error_message());
  REQUIRE(published.ok());
  REQUIRE(response.results_size() == 1);
  CHECK(response.results(0).code() == 0);
  CHECK(response.results(0).sequence() == 1);
  CHECK_FALSE(response.results(0).duplicate());

  const auto& got = sub.ReadDeliveries(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].sequence() == 1);
  CHECK(got[0].alert().id() == "civ-2026-0001");
  CHECK(got[0].alert().originator() == "CIV/police");
  CHECK(got[0].alert().attributes().at("post") == "Pogo");
  CHECK(got[0].alert().payload() == alert.payload());
  CHECK(got[0].has_received_at());
}

TEST_CASE("wildcard subscriptions receive exactly the matching topics") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));

  std::vector<v1::Alert> alerts = {
      MakeAlert("a1", "trafficking.drugs"),
      MakeAlert("a2", "trafficking.arms"),
      MakeAlert("a3", "trafficking.persons.minors"),
      MakeAlert("a4", "terrorism.suspect-movement"),
      MakeAlert("a5", "terrorism.attack.ied"),
      MakeAlert("a6", "border.incident"),
  };
  REQUIRE(RawPublish(police, alerts).ok());

  auto ids = [](const std::vector<v1::Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.alert().id());
    return out;
  };
  struct Case {
    std::vector<std::string> patterns;
    std::vector<std::string> expected;
  };
  std::vector<Case> cases = {
      {{"trafficking.*"}, {"a1", "a2"}},
      {{"trafficking.>"}, {"a1", "a2", "a3"}},
      {{"terrorism.>", "border.incident"}, {"a4", "a5", "a6"}},
      {{"*.drugs", "*.*.ied"}, {"a1", "a5"}},
      {{">"}, {"a1", "a2", "a3", "a4", "a5", "a6"}},
  };
  for (const Case& c : cases) {
    RawSubscription sub(customs, OpenRequest(c.patterns));
    INFO(c.patterns[0]);
    (void)sub.ReadDeliveries(c.expected.size());
    // Close and drain, so that an extra delivery would show up too.
    (void)sub.Close();
    CHECK(ids(sub.ReadDeliveries(0)) == c.expected);
  }
}

TEST_CASE("idempotent publish: the same originator and id is stored once") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));

  v1::PublishResponse first, second, third;
  REQUIRE(RawPublish(police, {MakeAlert("dup-1")}, &first).ok());
  REQUIRE(RawPublish(police, {MakeAlert("other")}).ok());
  REQUIRE(RawPublish(police, {MakeAlert("dup-1")}, &second).ok());
  CHECK(second.results(0).sequence() == first.results(0).sequence());
  CHECK(second.results(0).duplicate());
  // Twice in one request: stored once, both answered with the same sequence.
  REQUIRE(RawPublish(police, {MakeAlert("dup-2"), MakeAlert("dup-2")}, &third)
              .ok());
  CHECK(third.results(0).sequence() == third.results(1).sequence());
  CHECK(third.results(1).duplicate());
  // The same id from another agency is another alert.
  v1::PublishResponse from_customs;
  REQUIRE(RawPublish(customs, {MakeAlert("dup-1")}, &from_customs).ok());
  CHECK_FALSE(from_customs.results(0).duplicate());

  RawSubscription sub(customs, OpenRequest({">"}));
  const auto& got = sub.ReadDeliveries(4);
  REQUIRE(got.size() == 4);
  (void)sub.Close();
  CHECK(sub.ReadDeliveries(0).size() == 4);
}

TEST_CASE("a durable subscription resumes after its cursor across restarts") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  for (int i = 1; i <= 10; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("r", i))}).ok());
  }
  {
    auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
    RawSubscription sub(customs, OpenRequest({">"}, "customs-main"));
    const auto& got = sub.ReadDeliveries(10);
    REQUIRE(got.size() == 10);
    // The application processed 6 of them.
    REQUIRE(sub.SendFlow(6, 0));
    REQUIRE(sub.Close().ok());
  }
  // The node restarts; more alerts arrive while the subscriber is away.
  node->Shutdown(absl::Seconds(1));
  node.reset();
  node = StartNode(dir);
  police = Channel(node->port(), Tls("agency-CIV_police"));
  for (int i = 11; i <= 15; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("r", i))}).ok());
  }
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs,
                      OpenRequest({">"}, "customs-main", Open::START_NEW));
  const auto& got = sub.ReadDeliveries(9);
  REQUIRE(sub.opened());
  CHECK(sub.opened_info().cursor() == 6);
  REQUIRE(got.size() == 9);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].sequence() == 7 + i);
    CHECK(got[i].alert().id() == absl::StrCat("r", 7 + i));
  }
}

TEST_CASE("a subscriber never gets more than its credit") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  std::vector<v1::Alert> alerts;
  for (int i = 0; i < 50; ++i)
    alerts.push_back(MakeAlert(absl::StrCat("c", i)));
  REQUIRE(RawPublish(police, alerts).ok());

  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({">"}, "", Open::START_EARLIEST, 5));
  REQUIRE(sub.ReadDeliveries(5).size() == 5);
  // No more credit: nothing else may arrive. Grant 10 more and expect
  // exactly 15 in all, then the stream is quiet again.
  REQUIRE(sub.SendFlow(5, 10));
  REQUIRE(sub.ReadDeliveries(15).size() == 15);
  (void)sub.Close();
  const auto& all = sub.ReadDeliveries(0);
  CHECK(all.size() == 15);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].sequence() == i + 1);
}

TEST_CASE("a newer connection takes over a durable subscription") {
  TempDir dir;
  auto node = StartNode(dir);
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription first(customs, OpenRequest({">"}, "shared"));
  REQUIRE(first.WaitOpened());
  auto customs2 = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription second(customs2, OpenRequest({">"}, "shared"));
  grpc::Status ended = first.AwaitEnd();
  CHECK(ended.error_code() == grpc::StatusCode::ABORTED);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  REQUIRE(RawPublish(police, {MakeAlert("after-takeover")}).ok());
  REQUIRE(second.ReadDeliveries(1).size() == 1);
}

TEST_CASE("concurrent stream publishers: every alert answered, stored once") {
  TempDir dir;
  auto node = StartNode(dir);
  constexpr int kPublishers = 4;
  constexpr int kBatches = 20;
  constexpr int kPerBatch = 25;
  std::vector<std::thread> threads;
  std::vector<std::set<uint64_t>> sequences(kPublishers);
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      auto channel = Channel(node->port(), Tls("agency-CIV_police"));
      auto stub = v1::Publisher::NewStub(channel);
      grpc::ClientContext context;
      auto stream = stub->PublishStream(&context);
      for (int b = 0; b < kBatches; ++b) {
        v1::PublishRequest request;
        for (int i = 0; i < kPerBatch; ++i) {
          *request.add_alerts() =
              MakeAlert(absl::StrCat("p", p, "-", b, "-", i));
        }
        stream->Write(request);
      }
      stream->WritesDone();
      v1::PublishResponse response;
      while (stream->Read(&response)) {
        for (const auto& r : response.results()) {
          if (r.code() == 0) sequences[p].insert(r.sequence());
        }
      }
      CHECK(stream->Finish().ok());
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& s : sequences) {
    CHECK(s.size() == kBatches * kPerBatch);
    all.insert(s.begin(), s.end());
  }
  const uint64_t total = kPublishers * kBatches * kPerBatch;
  REQUIRE(all.size() == total);
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == total);
}

}  // namespace
}  // namespace ibsm::testing
