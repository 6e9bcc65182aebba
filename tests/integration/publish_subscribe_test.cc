// Publish -> subscribe over real mutual TLS to an in-process node with a real
// RocksDB in a temp dir.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "node/node.h"
#include "tests/support/eventually.h"
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
      SetTestDeadline(context, kEventuallyDeadline);
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

// Waits until the node's hub holds no subscription, or `timeout` passed;
// returns how many it holds then.
size_t AwaitNoSubscriptions(const broker::Node& node,
                            absl::Duration timeout = kEventuallyDeadline) {
  (void)Eventually([&] { return node.open_subscriptions() == 0; }, timeout);
  return node.open_subscriptions();
}

TEST_CASE(
    "1000 rapid open / half-close / cancel cycles leave no subscription "
    "registered") {
  TempDir dir;
  auto node = StartNode(dir);
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  auto stub = v1::Subscriber::NewStub(customs);
  for (int i = 0; i < 1000; ++i) {
    grpc::ClientContext context;
    SetTestDeadline(context);
    auto stream = stub->Subscribe(&context);
    v1::SubscribeRequest request;
    // Durable and ephemeral subscriptions take different paths to open.
    *request.mutable_open() =
        OpenRequest({">"}, i % 3 == 0 ? absl::StrCat("cycle-", i % 7) : "",
                    Open::START_NEW);
    stream->Write(request);
    if (i % 2 == 0) {
      stream->WritesDone();
      v1::SubscribeResponse response;
      while (stream->Read(&response)) {
      }
    } else {
      context.TryCancel();
    }
    // OK, CANCELLED or ABORTED (taken over): only the slot matters here.
    (void)stream->Finish();
  }
  CHECK(AwaitNoSubscriptions(*node) == 0);
  // The node still serves subscriptions.
  RawSubscription sub(customs, OpenRequest({">"}, "cycle-0", Open::START_NEW));
  REQUIRE(sub.WaitOpened());
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  REQUIRE(RawPublish(police, {MakeAlert("after-cycles")}).ok());
  REQUIRE(sub.ReadDeliveries(1).size() == 1);
}

TEST_CASE("concurrent takeovers of one durable name leave one live stream") {
  TempDir dir;
  auto node = StartNode(dir);
  constexpr int kThreads = 6;
  constexpr int kRounds = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
      for (int r = 0; r < kRounds; ++r) {
        RawSubscription sub(customs,
                            OpenRequest({">"}, "contested", Open::START_NEW),
                            absl::Seconds(30));
        // Opened, or already taken over by another thread (ABORTED).
        (void)sub.WaitOpened();
        if ((t + r) % 2 == 0) (void)sub.Close();
        // Otherwise the destructor cancels the stream.
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(AwaitNoSubscriptions(*node) == 0);
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  RawSubscription last(customs,
                       OpenRequest({">"}, "contested", Open::START_NEW));
  REQUIRE(last.WaitOpened());
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  REQUIRE(RawPublish(police, {MakeAlert("after-takeovers")}).ok());
  const auto& got = last.ReadDeliveries(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].alert().id() == "after-takeovers");
}

TEST_CASE("credit sent right after open is applied, never refused") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  REQUIRE(
      RawPublish(police, {MakeAlert("k1"), MakeAlert("k2"), MakeAlert("k3")})
          .ok());
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  for (int i = 0; i < 40; ++i) {
    INFO("round " << i);
    // Credit 1 with the open, 2 more at once, without waiting for opened.
    RawSubscription sub(customs,
                        OpenRequest({">"}, "", Open::START_EARLIEST, 1));
    REQUIRE(sub.SendFlow(0, 2));
    REQUIRE(sub.ReadDeliveries(3).size() == 3);
    REQUIRE(sub.Close().ok());
  }
}

TEST_CASE(
    "a durable subscription has a position from its creation: START_NEW, "
    "closed before any delivery, gets what was published while away") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  REQUIRE(RawPublish(police, {MakeAlert("before-creation")}).ok());
  {
    RawSubscription sub(customs, OpenRequest({">"}, "away", Open::START_NEW));
    REQUIRE(sub.WaitOpened());
    CHECK(sub.opened_info().cursor() == 1);
    REQUIRE(sub.Close().ok());
  }
  REQUIRE(RawPublish(police, {MakeAlert("while-away")}).ok());
  // The start option applies only when the durable name is created: this
  // EARLIEST does not rewind the subscription.
  RawSubscription again(customs,
                        OpenRequest({">"}, "away", Open::START_EARLIEST),
                        absl::Seconds(10));
  const auto& got = again.ReadDeliveries(1);
  REQUIRE(again.opened());
  CHECK(again.opened_info().cursor() == 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].sequence() == 2);
  CHECK(got[0].alert().id() == "while-away");
}

TEST_CASE(
    "a durable subscription redelivers on reopen what was delivered but not "
    "acknowledged, and what was published after it") {
  TempDir dir;
  auto node = StartNode(dir);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  {
    RawSubscription sub(customs,
                        OpenRequest({">"}, "unacked", Open::START_NEW));
    REQUIRE(sub.WaitOpened());
    REQUIRE(RawPublish(police, {MakeAlert("delivered-not-acked")}).ok());
    REQUIRE(sub.ReadDeliveries(1).size() == 1);
    // Gone without acknowledging it.
  }
  REQUIRE(RawPublish(police, {MakeAlert("published-after")}).ok());
  RawSubscription again(customs, OpenRequest({">"}, "unacked", Open::START_NEW),
                        absl::Seconds(10));
  const auto& got = again.ReadDeliveries(2);
  REQUIRE(again.opened());
  CHECK(again.opened_info().cursor() == 0);
  REQUIRE(got.size() == 2);
  CHECK(got[0].alert().id() == "delivered-not-acked");
  CHECK(got[1].alert().id() == "published-after");
}

}  // namespace
}  // namespace ibsm::testing
