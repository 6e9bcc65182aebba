// The client library through a TcpProxy to a real ibsm-broker: connections
// aborted with RST under a publisher and a durable subscriber. Publishes keep
// succeeding once the client reconnects, and the application sees each
// alert exactly once, in order.
#include <catch2/catch.hpp>
#include <future>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/subscriber.h"
#include "ibsm/v1/broker.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

TEST_CASE(
    "client library through a proxy: after every connection is reset, "
    "publishes succeed and a durable subscriber sees each alert once") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  auto proxy = TcpProxy::Start(absl::StrCat("127.0.0.1:", broker.port()));
  INFO(proxy.status().ToString());
  REQUIRE(proxy.ok());

  auto sub_client = ConnectOrFail((*proxy)->address(), "agency-CIV_customs");
  SubscribeOptions options;
  options.topics = {"border.>"};
  options.durable_name = "proxy-desk";
  options.start = SubscribeOptions::Start::kEarliest;
  auto subscriber = sub_client->NewSubscriber(options);
  REQUIRE(subscriber.ok());
  auto pub_client = ConnectOrFail((*proxy)->address(), "agency-CIV_police");
  auto publisher = pub_client->NewPublisher();

  constexpr int kBefore = 20;
  constexpr int kTotal = 60;
  for (int i = 0; i < kBefore; ++i) {
    REQUIRE(publisher->Publish(MakeAlert(absl::StrCat("p-", i))).ok());
  }
  std::vector<std::string> seen;
  TakeAndAck(**subscriber, kBefore / 2, &seen);

  // The rest are published while the connections are reset under them.
  auto published = std::async(std::launch::async, [&] {
    for (int i = kBefore; i < kTotal; ++i) {
      auto receipt = publisher->Publish(MakeAlert(absl::StrCat("p-", i)));
      if (!receipt.ok()) return receipt.status();
    }
    return absl::OkStatus();
  });
  const uint64_t accepted_before = (*proxy)->connections_accepted();
  (*proxy)->ResetAll();
  CHECK((*proxy)->resets() >= 2);  // the publisher's and the subscriber's
  absl::Status publish_status = published.get();
  INFO(publish_status.ToString());
  REQUIRE(publish_status.ok());
  TakeAndAck(**subscriber, kTotal, &seen);
  CHECK((*proxy)->connections_accepted() > accepted_before);  // reconnected
  CHECK((*subscriber)->reconnects() >= 1);

  auto extra = (*subscriber)->Next(absl::Milliseconds(500));
  REQUIRE(extra.ok());
  CHECK_FALSE(extra->has_value());
  std::set<std::string> unique(seen.begin(), seen.end());
  CHECK(unique.size() == kTotal);
  for (int i = 0; i < kTotal; ++i) CHECK(seen[i] == absl::StrCat("p-", i));
}

}  // namespace
}  // namespace ibsm::testing
