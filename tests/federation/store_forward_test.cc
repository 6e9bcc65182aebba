// Store and forward between real nodes: a backlog built while a peer is down
// arrives once and in priority order; links cut mid-stream (kill -9 of the
// receiver, a TcpProxy resetting, stalling and black-holing the connection)
// lose and duplicate nothing at the application; the backlog bound refuses
// a publish openly; GetLinks shows a live link.
#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

// `ids` without those that do not start with `prefix`, order kept.
std::vector<std::string> WithPrefix(const std::vector<std::string>& ids,
                                    const std::string& prefix) {
  std::vector<std::string> kept;
  for (const std::string& id : ids) {
    if (absl::StartsWith(id, prefix)) kept.push_back(id);
  }
  return kept;
}

// Every acknowledged alert is at `desk` exactly once, nothing else of the
// publisher's is, and `node` stored each once.
void CheckExactlyOnce(Federation& fed, const std::string& node,
                      const Collector& desk,
                      const BackgroundPublisher& publisher,
                      const std::string& prefix) {
  INFO("publish failures: " << publisher.failures().size());
  CHECK(publisher.failures().empty());
  const std::vector<std::string> acknowledged = publisher.acknowledged();
  REQUIRE(desk.WaitFor(acknowledged));
  REQUIRE(fed.WaitDrained());
  const std::set<std::string> expected(acknowledged.begin(),
                                       acknowledged.end());
  const std::vector<std::string> handed = WithPrefix(desk.ids(), prefix);
  CHECK(std::set<std::string>(handed.begin(), handed.end()) == expected);
  for (const auto& [id, n] : CountIds(handed)) {
    INFO("handed over: " << id);
    CHECK(n == 1);
  }
  const std::vector<std::string> stored =
      WithPrefix(fed.StoredAlertIds(node), prefix);
  CHECK(std::set<std::string>(stored.begin(), stored.end()) == expected);
  for (const auto& [id, n] : CountIds(stored)) {
    INFO("stored at " << node << ": " << id);
    CHECK(n == 1);
  }
}

TEST_CASE(
    "a node stopped for a while receives the whole backlog once on restart: "
    "CRITICAL first, then HIGH, then the rest, by sequence within each",
    "[federation]") {
  Federation fed;
  fed.AddLink("MLI", "CIV");
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  Collector desk(fed.address("MLI"), "agency-MLI_police", {"border.>"},
                 "backlog-desk");
  auto civ = fed.Connect("CIV");
  auto publisher = civ->NewPublisher();
  REQUIRE(publisher->Publish(MakeAlert("warm-up")).ok());
  REQUIRE(desk.WaitFor({"warm-up"}));
  // MLI's ack of the warm-up may still be on its way when MLI stops (the
  // entry would then wait, and be sent again, as at-least-once allows):
  // the backlog below counts only the alerts published while it is down.
  REQUIRE(fed.WaitDrained());

  CHECK(fed.Stop("MLI", SIGTERM) == 0);
  // Published in this order, one severity after another mixed up.
  const std::vector<std::pair<std::string, v1::Severity>> backlog = {
      {"b-1", v1::SEVERITY_LOW},      {"b-2", v1::SEVERITY_HIGH},
      {"b-3", v1::SEVERITY_CRITICAL}, {"b-4", v1::SEVERITY_MEDIUM},
      {"b-5", v1::SEVERITY_HIGH},     {"b-6", v1::SEVERITY_LOW},
      {"b-7", v1::SEVERITY_CRITICAL}, {"b-8", v1::SEVERITY_MEDIUM},
  };
  for (const auto& [id, severity] : backlog) {
    v1::Alert alert = MakeAlert(id);
    alert.set_severity(severity);
    auto receipt = publisher->Publish(alert);
    INFO(id << ": " << receipt.status().ToString());
    REQUIRE(receipt.ok());
  }
  // The backlog waits at CIV, by priority.
  std::optional<v1::LinkInfo> waiting;
  REQUIRE(Eventually([&] {
    waiting = fed.Link("CIV", "MLI");
    return waiting.has_value() && waiting->state() != v1::LinkInfo::UP;
  }));
  CHECK(waiting->backlog_critical() == 2);
  CHECK(waiting->backlog_high() == 2);
  CHECK(waiting->backlog_other() == 4);
  CHECK(waiting->backlog_bytes() > 0);

  fed.Restart("MLI");
  REQUIRE(fed.WaitLinkUp("MLI", "CIV"));
  const std::vector<std::string> want = {"b-3", "b-7", "b-2", "b-5",
                                         "b-1", "b-4", "b-6", "b-8"};
  REQUIRE(fed.WaitDrained());
  // The order of storage at MLI: its log sequences.
  CHECK(WithPrefix(fed.StoredAlertIds("MLI"), "b-") == want);
  // The durable desk was handed them once each, in that order.
  INFO("the desk's subscriber reconnected "
       << desk.reconnects()
       << " times; its error: " << desk.error().ToString());
  REQUIRE(desk.WaitFor(want));
  CHECK(WithPrefix(desk.ids(), "b-") == want);
  for (const std::string& id : want) {
    INFO(id);
    CHECK(fed.Audit("MLI", id, v1::AUDIT_FEDERATION_RECEIVE,
                    v1::AuditQuery::DECISION_ALLOWED)
              .size() == 1);
  }
  const std::optional<v1::LinkInfo> drained = fed.Link("CIV", "MLI");
  REQUIRE(drained.has_value());
  CHECK(drained->backlog_critical() + drained->backlog_high() +
            drained->backlog_other() ==
        0);
}

TEST_CASE(
    "a link cut by kill -9 of the receiving node mid-stream: every "
    "acknowledged alert reaches the remote durable subscriber exactly once",
    "[federation]") {
  Federation fed;
  fed.AddLink("CIV", "MLI");
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  Collector desk(fed.address("MLI"), "agency-MLI_police", {"border.>"},
                 "kill-desk");
  BackgroundPublisher publisher(fed.Connect("CIV"), "k");
  REQUIRE(desk.WaitForCount(5));

  CHECK(fed.Stop("MLI", SIGKILL) == 128 + SIGKILL);
  REQUIRE(publisher.WaitForMore(10));  // queued at CIV while MLI is gone
  fed.Restart("MLI");
  REQUIRE(fed.WaitLinkUp("CIV", "MLI"));
  REQUIRE(publisher.WaitForMore(10));
  INFO("the desk's subscriber reconnected "
       << desk.reconnects()
       << " times; its error: " << desk.error().ToString());
  publisher.Stop();
  CheckExactlyOnce(fed, "MLI", desk, publisher, "k-");
}

TEST_CASE(
    "a link cut by a TcpProxy mid-stream (reset, stall then pass, black "
    "hole): every acknowledged alert reaches the remote durable subscriber "
    "exactly once",
    "[federation]") {
  Federation fed;
  fed.AddLink("CIV", "MLI", /*proxied=*/true);
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  TcpProxy& proxy = fed.proxy("CIV", "MLI");
  Collector desk(fed.address("MLI"), "agency-MLI_police", {"border.>"},
                 "proxy-desk");
  BackgroundPublisher publisher(fed.Connect("CIV"), "p");
  REQUIRE(desk.WaitForCount(5));

  // Reset: every connection aborted with RST; CIV redials.
  const uint64_t resets = proxy.resets();
  proxy.ResetAll();
  CHECK(proxy.resets() > resets);
  REQUIRE(desk.WaitForCount(desk.size() + 10));

  // Stall, then pass: the connection stays open, nothing moves meanwhile.
  proxy.Stall();
  REQUIRE(publisher.WaitForMore(10));
  proxy.Pass();
  REQUIRE(desk.WaitForCount(desk.size() + 10));

  // Black hole: bytes vanish both ways without an end of stream, until CIV
  // gives up on the link (nothing received for 4 heartbeats).
  const uint64_t dropped = proxy.bytes_dropped();
  proxy.Drop();
  REQUIRE(Eventually([&] { return proxy.bytes_dropped() > dropped; }));
  REQUIRE(Eventually([&] {
    std::optional<v1::LinkInfo> link = fed.Link("CIV", "MLI");
    return link.has_value() && link->state() != v1::LinkInfo::UP;
  }));
  proxy.Pass();
  REQUIRE(fed.WaitLinkUp("CIV", "MLI"));
  REQUIRE(desk.WaitForCount(desk.size() + 10));

  publisher.Stop();
  CheckExactlyOnce(fed, "MLI", desk, publisher, "p-");
}

TEST_CASE(
    "at the backlog bound a publish that would be queued for the full peer "
    "is refused RESOURCE_EXHAUSTED, not stored and audited; once the peer "
    "drained it, publishing works again",
    "[federation]") {
  Federation fed;
  fed.AddLink("MLI", "CIV");  // MLI dials in; it is down until started
  fed.peer_config("CIV", "MLI").set_max_backlog_alerts(3);
  fed.Start("CIV");
  auto civ = fed.Connect("CIV");
  auto publisher = civ->NewPublisher();
  for (int i = 1; i <= 3; ++i) {
    auto receipt = publisher->Publish(MakeAlert(absl::StrCat("q-", i)));
    INFO(receipt.status().ToString());
    REQUIRE(receipt.ok());
  }
  std::optional<v1::LinkInfo> full = fed.Link("CIV", "MLI");
  REQUIRE(full.has_value());
  CHECK(full->backlog_high() == 3);
  CHECK(full->max_backlog_alerts() == 3);

  auto refused = publisher->Publish(MakeAlert("q-4"));
  REQUIRE_FALSE(refused.ok());
  INFO(refused.status().ToString());
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(refused.status().message(), "MLI"));
  // Not stored, not even at CIV, and audited as a refused publish.
  CHECK(fed.StoredAlertIds("CIV") ==
        std::vector<std::string>{"q-1", "q-2", "q-3"});
  auto audited = fed.Audit("CIV", "q-4", v1::AUDIT_PUBLISH,
                           v1::AuditQuery::DECISION_DENIED);
  REQUIRE(audited.size() == 1);
  CHECK(absl::StrContains(audited[0].reason(), "MLI"));
  // An alert that is not queued for MLI is not held up by MLI's bound.
  CHECK(publisher->Publish(MakeAlert("l-1", "local.note")).ok());

  fed.Start("MLI");
  REQUIRE(fed.WaitLinkUp("CIV", "MLI"));
  REQUIRE(fed.WaitDrained());
  CHECK(fed.StoredAlertIds("MLI") ==
        std::vector<std::string>{"q-1", "q-2", "q-3"});
  auto again = publisher->Publish(MakeAlert("q-4"));
  INFO(again.status().ToString());
  REQUIRE(again.ok());
  CHECK_FALSE(again->duplicate);
  REQUIRE(fed.WaitDrained());
  CHECK(fed.StoredAlertIds("MLI") ==
        std::vector<std::string>{"q-1", "q-2", "q-3", "q-4"});
}

TEST_CASE(
    "GetLinks shows a live link: UP, backlog, bytes, last contact, the "
    "peer's software; agencies without the admin or auditor role are refused",
    "[federation]") {
  Federation fed;
  fed.AddLink("CIV", "MLI");
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  auto civ = fed.Connect("CIV");
  REQUIRE(civ->NewPublisher()->Publish(MakeAlert("g-1")).ok());
  REQUIRE(fed.WaitDrained());

  const v1::Links civ_links = fed.Links("CIV");
  CHECK(civ_links.node_id() == "CIV");
  REQUIRE(civ_links.links_size() == 1);
  const v1::LinkInfo& out = civ_links.links(0);
  CHECK(out.peer() == "MLI");
  CHECK(out.address() ==
        absl::StrCat("127.0.0.1:", fed.federation_port("MLI")));
  CHECK(out.state() == v1::LinkInfo::UP);
  CHECK(out.protocol_version() == 1);
  CHECK(out.up_since().seconds() > 0);
  CHECK(out.last_contact().seconds() > 0);
  CHECK(out.bytes_sent() > 0);
  CHECK(out.bytes_received() > 0);
  CHECK(out.alerts_sent() == 1);
  CHECK(out.alerts_refused() == 0);
  CHECK(out.backlog_critical() + out.backlog_high() + out.backlog_other() == 0);
  CHECK(out.backlog_bytes() == 0);
  CHECK(out.in_flight() == 0);
  CHECK(out.max_backlog_alerts() > 0);
  CHECK(out.max_backlog_bytes() > 0);
  CHECK_FALSE(out.peer_software().empty());
  CHECK_FALSE(out.peer_policy_version().empty());
  CHECK(out.last_error().empty());

  const std::optional<v1::LinkInfo> in = fed.Link("MLI", "CIV");
  REQUIRE(in.has_value());
  CHECK(in->state() == v1::LinkInfo::UP);
  CHECK(in->address().empty());  // CIV dials in
  CHECK(in->alerts_received() == 1);
  CHECK(in->bytes_received() > 0);

  // Heartbeats keep the contact fresh on an idle link.
  REQUIRE(Eventually([&] {
    std::optional<v1::LinkInfo> later = fed.Link("CIV", "MLI");
    return later.has_value() &&
           later->last_contact().seconds() > out.last_contact().seconds();
  }));

  auto up = fed.Audit("CIV", "", v1::AUDIT_FEDERATION_LINK_UP,
                      v1::AuditQuery::DECISION_ALLOWED);
  REQUIRE_FALSE(up.empty());
  CHECK(up[0].recipient() == "MLI");

  auto stub =
      v1::Node::NewStub(Channel(fed.port("CIV"), Tls("agency-CIV_police")));
  grpc::ClientContext context;
  SetTestDeadline(context);
  v1::Links links;
  grpc::Status refused = stub->GetLinks(&context, v1::LinksRequest(), &links);
  CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace ibsm::testing
