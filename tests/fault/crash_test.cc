// SIGKILL during a burst of concurrent publishes loses nothing acknowledged.
#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

TEST_CASE(
    "SIGKILL mid-burst: every acknowledged alert survives exactly once, "
    "in order") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  // ASYNC leaves the write-ahead log to the OS page cache: that survives a
  // killed process too (not a power loss, which this test cannot make).
  const internal::v1::Durability durability =
      GENERATE(internal::v1::DURABILITY_SYNC, internal::v1::DURABILITY_ASYNC);
  INFO(internal::v1::Durability_Name(durability));
  config.set_durability(durability);
  // With the IBSM policy, so that an auditor can read the trail afterwards.
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  std::mutex mu;
  std::map<std::string, uint64_t> acknowledged;  // alert id -> sequence
  {
    BrokerProcess broker(config);
    constexpr int kPublishers = 4;
    std::vector<std::thread> publishers;
    for (int p = 0; p < kPublishers; ++p) {
      publishers.emplace_back([&, p] {
        auto channel = Channel(broker.port(), Tls("agency-CIV_police"));
        auto stub = v1::Publisher::NewStub(channel);
        grpc::ClientContext context;
        // A backstop only: the broker is killed long before.
        SetTestDeadline(context, kEventuallyDeadline * 2);
        auto stream = stub->PublishStream(&context);
        std::thread reader([&] {
          v1::PublishResponse response;
          while (stream->Read(&response)) {
            std::lock_guard<std::mutex> lock(mu);
            for (const auto& r : response.results()) {
              if (r.code() == 0) acknowledged[r.alert_id()] = r.sequence();
            }
          }
        });
        for (int b = 0; b < 100000; ++b) {
          v1::PublishRequest request;
          for (int i = 0; i < 20; ++i) {
            *request.add_alerts() =
                MakeAlert(absl::StrCat("k", p, "-", b, "-", i));
          }
          if (!stream->Write(request)) break;
        }
        reader.join();
        (void)stream->Finish();  // UNAVAILABLE: the broker was killed
      });
    }
    // Kill once a good number of publishes were acknowledged, while the
    // publishers are still writing. (Killed also if that never happens, so
    // that the publishers end; the count is checked below.) Counted from
    // the acknowledgements, not every answer: publishers this fast also
    // meet the per-identity limits, whose refusals are answers too.
    CHECK(Eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return acknowledged.size() >= 3000;
    }));
    broker.Kill(SIGKILL);
    CHECK(broker.Wait() == 128 + SIGKILL);
    for (auto& t : publishers) t.join();
  }
  REQUIRE(acknowledged.size() >= 3000);

  BrokerProcess broker(config);
  auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
  RawSubscription sub(
      customs,
      OpenRequest({">"}, "", v1::SubscribeRequest::Open::START_EARLIEST, 4096));
  const uint64_t last = [&] {
    REQUIRE(sub.WaitOpened());
    return sub.opened_info().last_sequence();
  }();
  REQUIRE(last >= acknowledged.size());
  // Grant credit as we go until everything up to `last` arrived.
  std::vector<v1::Delivery> got;
  while (got.size() < last) {
    size_t before = got.size();
    got = sub.ReadDeliveries(std::min<uint64_t>(last, before + 4096));
    REQUIRE(got.size() > before);
    REQUIRE(sub.SendFlow(got.back().sequence(), got.size() - before));
  }
  std::map<std::string, uint64_t> stored;
  for (size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].sequence() == i + 1);  // gap-free and in order
    auto [it, fresh] = stored.emplace(got[i].alert().id(), got[i].sequence());
    REQUIRE(fresh);  // exactly once
  }
  for (const auto& [id, seq] : acknowledged) {
    auto it = stored.find(id);
    INFO(id);
    REQUIRE(it != stored.end());
    CHECK(it->second == seq);
  }

  // Same write, same fate: every stored alert has exactly one accepted
  // publish record with its sequence, and no record names an alert that
  // is not stored.
  auto auditor = Channel(broker.port(), Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_PUBLISH);
  query.set_decision(v1::AuditQuery::DECISION_ALLOWED);
  query.set_limit(100000);
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  auto reader = v1::Auditor::NewStub(auditor)->Query(&ctx, query);
  std::map<std::string, uint64_t> recorded;
  v1::AuditQueryResponse page;
  while (reader->Read(&page)) {
    for (const auto& r : page.records()) {
      auto [it, fresh] = recorded.emplace(r.alert_id(), r.sequence());
      CHECK(fresh);
    }
  }
  REQUIRE(reader->Finish().ok());
  CHECK(recorded == stored);
}

}  // namespace
}  // namespace ibsm::testing
