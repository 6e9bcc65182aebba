// The pure part of `ibsm audit journey` (client-lib/cli/journey.h) and of
// `ibsm node links` (FormatLinks): hand-built audit records of every kind --
// federation sends, receives and link events included, which no single
// node test produces yet -- rendered without a broker.
#include "journey.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "alert_format.h"
#include "ibsm/v1/broker.pb.h"

namespace ibsm::cli {
namespace {

const AlertRef kAlert{"CIV/police", "civ-7"};

v1::AuditRecord Record(uint64_t index, int64_t unix_seconds,
                       v1::AuditAction action, bool allowed) {
  v1::AuditRecord r;
  r.set_index(index);
  r.mutable_time()->set_seconds(unix_seconds);
  r.set_action(action);
  r.set_allowed(allowed);
  r.set_alert_id(kAlert.id);
  r.set_originator(kAlert.originator);
  return r;
}

JourneyRecord Shown(v1::AuditRecord r, ProofState proof = ProofState::kProven) {
  JourneyRecord out;
  out.record = std::move(r);
  out.proof = proof;
  return out;
}

NodeJourney VerifiedNode(const std::string& node, const std::string& target,
                         uint64_t size) {
  NodeJourney n;
  n.node = node;
  n.target = target;
  n.has_checkpoint = true;
  n.checkpoint_verified = true;
  n.checkpoint_size = size;
  return n;
}

TEST_CASE("ParseAlertRef: ORIGINATOR/ID split at the last slash") {
  absl::StatusOr<AlertRef> ok = ParseAlertRef("CIV/police/civ-1");
  REQUIRE(ok.ok());
  CHECK(ok->originator == "CIV/police");
  CHECK(ok->id == "civ-1");
  CHECK(ok->text() == "CIV/police/civ-1");
  for (const char* bad : {"", "civ-1", "CIV/civ-1", "/civ-1", "CIV/police/",
                          "CIV//x", "civ/police/x", "CIV/police/bad id"}) {
    INFO(bad);
    absl::StatusOr<AlertRef> r = ParseAlertRef(bad);
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK_THAT(std::string(r.status().message()), Catch::StartsWith("--alert"));
  }
}

TEST_CASE("RecordConcernsAlert: its fields, or one alert of a delivery") {
  v1::AuditRecord own = Record(1, 100, v1::AUDIT_PUBLISH, true);
  CHECK(RecordConcernsAlert(own, kAlert));
  v1::AuditRecord other = own;
  other.set_originator("MLI/police");  // same id, another agency
  CHECK_FALSE(RecordConcernsAlert(other, kAlert));
  v1::AuditRecord batch;
  batch.set_action(v1::AUDIT_DELIVER);
  v1::AuditedAlert* a = batch.add_alerts();
  a->set_alert_id("x");
  a->set_originator("CIV/police");
  a = batch.add_alerts();
  a->set_alert_id(kAlert.id);
  a->set_originator(kAlert.originator);
  CHECK(RecordConcernsAlert(batch, kAlert));
}

TEST_CASE("every record kind of a federated journey is rendered") {
  v1::AuditRecord publish = Record(1, 100, v1::AUDIT_PUBLISH, true);
  publish.set_actor("CIV/police");
  publish.set_rule("border-incident");
  publish.set_policy_version("v42");
  publish.set_sequence(9);
  publish.set_detail("queued for: INTERPOL, MLI");
  CHECK(DescribeRecord(publish, "CIV").text ==
        "published by CIV/police (rule border-incident, policy v42), "
        "sequence 9; queued for: INTERPOL, MLI");
  CHECK(DescribeRecord(publish, "CIV").kind == "published");

  v1::AuditRecord refused = Record(2, 100, v1::AUDIT_PUBLISH, false);
  refused.set_actor("CIV/police");
  refused.set_reason("the backlog for peer MLI is full");
  CHECK(DescribeRecord(refused, "CIV").text ==
        "refused at publish (CIV/police): the backlog for peer MLI is full");

  v1::AuditRecord sent = Record(3, 101, v1::AUDIT_FEDERATION_SEND, true);
  sent.set_recipient("INTERPOL");
  CHECK(DescribeRecord(sent, "CIV").text == "sent to INTERPOL (acked)");

  v1::AuditRecord refused_by = Record(4, 101, v1::AUDIT_FEDERATION_SEND, false);
  refused_by.set_recipient("MLI");
  refused_by.set_reason("policy: MLI is not cleared for SECRET");
  CHECK(DescribeRecord(refused_by, "CIV").text ==
        "refused by MLI: policy: MLI is not cleared for SECRET");
  CHECK(DescribeRecord(refused_by, "CIV").kind == "refused_by_peer");

  v1::AuditRecord expired = Record(5, 101, v1::AUDIT_FEDERATION_SEND, false);
  expired.set_recipient("MLI");
  expired.set_reason("expired before it could be sent");
  CHECK(DescribeRecord(expired, "CIV").text ==
        "not sent to MLI: expired before it could be sent");

  v1::AuditRecord received = Record(6, 102, v1::AUDIT_FEDERATION_RECEIVE, true);
  received.set_actor("CIV");
  received.set_detail("hops CIV>INTERPOL; relayed to: NER");
  CHECK(DescribeRecord(received, "INTERPOL").text ==
        "received from CIV (hops CIV>INTERPOL); relayed to: NER");
  v1::AuditRecord held_already = received;
  held_already.set_reason(
      "duplicate of an alert already stored; nothing written");
  held_already.set_detail("hops CIV>INTERPOL");
  JourneyEvent duplicate = DescribeRecord(held_already, "MLI");
  CHECK(duplicate.kind == "received_duplicate");
  CHECK(duplicate.text ==
        "received from CIV (hops CIV>INTERPOL); held already, stored once");

  v1::AuditRecord refused_from =
      Record(7, 102, v1::AUDIT_FEDERATION_RECEIVE, false);
  refused_from.set_actor("INTERPOL");
  refused_from.set_reason("bad signature");
  CHECK(DescribeRecord(refused_from, "NER").text ==
        "refused from INTERPOL: bad signature");

  v1::AuditRecord delivered = Record(8, 103, v1::AUDIT_DELIVER, true);
  delivered.set_recipient("NER/police");
  CHECK(DescribeRecord(delivered, "NER").text == "delivered to NER/police");

  v1::AuditRecord up = Record(9, 99, v1::AUDIT_FEDERATION_LINK_UP, true);
  up.set_recipient("MLI");
  up.set_detail("protocol 1, dialled");
  CHECK(DescribeRecord(up, "CIV").text ==
        "link to MLI up (protocol 1, dialled)");
  v1::AuditRecord down = Record(10, 99, v1::AUDIT_FEDERATION_LINK_DOWN, false);
  down.set_recipient("MLI");
  down.set_reason("no frame for 60s");
  CHECK(DescribeRecord(down, "CIV").text ==
        "link to MLI down: no frame for 60s");

  v1::AuditRecord removed = Record(11, 200, v1::AUDIT_RETENTION_REMOVE, true);
  removed.set_reason("retention 30d");
  CHECK(DescribeRecord(removed, "CIV").text ==
        "removed by retention: retention 30d");
  v1::AuditRecord broken = Record(12, 200, v1::AUDIT_INTEGRITY_FAILURE, false);
  broken.set_reason("payload hash differs");
  CHECK(DescribeRecord(broken, "CIV").text ==
        "INTEGRITY FAILURE: payload hash differs");

  // The peers whose link events belong to the journey.
  CHECK(JourneyPeers({publish, sent, received}) ==
        std::vector<std::string>{"INTERPOL", "MLI", "NER"});
  CHECK(IsLinkEventFor(up, {"MLI"}));
  CHECK_FALSE(IsLinkEventFor(up, {"NER"}));
  CHECK_FALSE(IsLinkEventFor(sent, {"INTERPOL"}));
}

TEST_CASE("the timeline merges nodes by time; verdicts per node") {
  NodeJourney civ = VerifiedNode("CIV", "127.0.0.1:1", 50);
  v1::AuditRecord publish = Record(1, 100, v1::AUDIT_PUBLISH, true);
  publish.set_actor("CIV/police");
  publish.set_detail("queued for: INTERPOL");
  v1::AuditRecord sent = Record(7, 103, v1::AUDIT_FEDERATION_SEND, true);
  sent.set_recipient("INTERPOL");
  civ.records.push_back(Shown(sent));
  civ.records.push_back(Shown(publish));
  v1::AuditRecord late = Record(60, 104, v1::AUDIT_DELIVER, true);
  late.set_recipient("CIV/customs");
  civ.records.push_back(Shown(late, ProofState::kNotYetInCheckpoint));

  NodeJourney hub = VerifiedNode("INTERPOL", "127.0.0.1:2", 9);
  v1::AuditRecord received = Record(4, 102, v1::AUDIT_FEDERATION_RECEIVE, true);
  received.set_actor("CIV");
  received.set_detail("hops CIV");
  hub.records.push_back(Shown(received));

  std::vector<NodeJourney> nodes = {civ, hub};
  std::vector<JourneyEvent> events = Timeline(nodes);
  REQUIRE(events.size() == 4);
  CHECK(events[0].kind == "published");
  CHECK(events[1].kind == "received");
  CHECK(events[1].node == "INTERPOL");
  CHECK(events[2].kind == "sent");
  CHECK(events[3].kind == "delivered");

  CHECK(NodeVerdict(civ) ==
        "CIV (127.0.0.1:1): checkpoint 50 records, signature verified, 2 "
        "records proven, 1 record not yet in a checkpoint");
  CHECK_FALSE(NodeFailed(civ));

  const std::string text = FormatJourney(kAlert, nodes);
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  REQUIRE(lines.size() >= 9);
  CHECK(lines[0] == "journey of alert CIV/police/civ-7");
  CHECK_THAT(lines[1], Catch::StartsWith("TIME") && Catch::EndsWith("EVENT"));
  CHECK_THAT(lines[2], Catch::StartsWith("1970-01-01T00:01:40.000Z  CIV ") &&
                           Catch::Contains("proven") &&
                           Catch::EndsWith("queued for: INTERPOL"));
  CHECK_THAT(lines[3], Catch::Contains("INTERPOL") &&
                           Catch::EndsWith("received from CIV (hops CIV)"));
  CHECK_THAT(lines[5], Catch::Contains("not yet in a checkpoint"));
  CHECK_THAT(text, Catch::Contains("\nINTERPOL (127.0.0.1:2): checkpoint 9 "
                                   "records, signature verified, 1 record "
                                   "proven\n"));

  const std::string json = JourneyJson(kAlert, nodes);
  CHECK_THAT(json, Catch::StartsWith("{\"alert\":\"CIV/police/civ-7\"") &&
                       Catch::Contains("\"kind\":\"received\"") &&
                       Catch::Contains("\"proof\":\"not_yet_in_checkpoint\"") &&
                       Catch::Contains("\"records_proven\":2") &&
                       Catch::EndsWith("]}"));
}

TEST_CASE("a failed proof, a bad checkpoint or an unreachable node fails") {
  NodeJourney bad_proof = VerifiedNode("CIV", "h:1", 10);
  JourneyRecord r =
      Shown(Record(3, 1, v1::AUDIT_PUBLISH, true), ProofState::kFailed);
  r.problem = "the audit path does not lead to the root";
  bad_proof.records.push_back(r);
  CHECK(NodeFailed(bad_proof));
  CHECK(NodeVerdict(bad_proof) ==
        "CIV (h:1): FAILED: record 3 is not proven: the audit path does not "
        "lead to the root");

  NodeJourney bad_checkpoint = VerifiedNode("MLI", "h:2", 10);
  bad_checkpoint.checkpoint_verified = false;
  bad_checkpoint.checkpoint_problem = "no --node-cert of node MLI was given";
  CHECK(NodeFailed(bad_checkpoint));
  CHECK_THAT(NodeVerdict(bad_checkpoint),
             Catch::StartsWith("MLI (h:2): FAILED: checkpoint of 10 records "
                               "does not verify: no --node-cert of node MLI"));

  NodeJourney unreachable;
  unreachable.target = "h:3";
  unreachable.error = "connection failed: UNAVAILABLE: no route";
  CHECK(NodeFailed(unreachable));
  CHECK(NodeVerdict(unreachable) ==
        "h:3: FAILED: connection failed: UNAVAILABLE: no route");

  NodeJourney none;  // no checkpoint signed yet: nothing proven, no failure
  none.node = "NER";
  none.target = "h:4";
  none.records.push_back(Shown(Record(0, 1, v1::AUDIT_PUBLISH, true),
                               ProofState::kNotYetInCheckpoint));
  CHECK_FALSE(NodeFailed(none));
  CHECK(NodeVerdict(none) ==
        "NER (h:4): no signed checkpoint yet, nothing proven, 1 record not "
        "yet in a checkpoint");
}

TEST_CASE("FormatLinks: one row per link, or none") {
  v1::Links links;
  links.set_node_id("CIV");
  CHECK(FormatLinks(links, absl::FromUnixSeconds(1000)) ==
        "node CIV has no federation links\n");

  v1::LinkInfo* up = links.add_links();
  up->set_peer("INTERPOL");
  up->set_address("10.0.0.2:7501");
  up->set_state(v1::LinkInfo::UP);
  up->set_backlog_critical(1);
  up->set_backlog_high(2);
  up->set_backlog_other(3);
  up->set_backlog_bytes(3 * 1024);
  up->set_max_backlog_alerts(100000);
  up->set_max_backlog_bytes(1024ull * 1024 * 1024);
  up->set_in_flight(4);
  up->set_alerts_sent(10);
  up->set_alerts_received(11);
  up->set_alerts_refused(1);
  up->set_bytes_sent(2048);
  up->set_bytes_received(512);
  up->mutable_last_contact()->set_seconds(997);
  v1::LinkInfo* down = links.add_links();
  down->set_peer("MLI");
  down->set_state(v1::LinkInfo::DOWN);
  down->set_last_error(std::string(100, 'x'));

  const std::string table = FormatLinks(links, absl::FromUnixSeconds(1000));
  std::vector<std::string> lines =
      absl::StrSplit(table, '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Catch::StartsWith("PEER") &&
                           Catch::Contains("BACKLOG") &&
                           Catch::EndsWith("LAST ERROR"));
  CHECK_THAT(lines[1],
             Catch::StartsWith("INTERPOL") && Catch::Contains("up") &&
                 Catch::Contains("10.0.0.2:7501") &&
                 Catch::Contains("1/2/3 3.0KiB of max 100000 alerts/1.0GiB") &&
                 Catch::Contains("2.0KiB/512B") && Catch::Contains("3s ago"));
  CHECK_THAT(lines[2], Catch::StartsWith("MLI") && Catch::Contains("down") &&
                           Catch::Contains("(dials in)") &&
                           Catch::Contains("never") &&
                           Catch::EndsWith(std::string(57, 'x') + "..."));
}

}  // namespace
}  // namespace ibsm::cli
