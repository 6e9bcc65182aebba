// The history checker on small hand-made histories: a clean one, and for
// each rule one that breaks it and must be reported (so the checker can
// fail). Also the JSON-lines round trip of every field.
#include "tests/fault/history_checker.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "ibsm/policy.h"
#include "tests/fault/history.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::shared_ptr<const Policy> FaultPolicy() {
  auto policy =
      Policy::Load(SourceDir() + "/tests/fault/fault-policy.textproto");
  REQUIRE(policy.ok());
  return *policy;
}

HistoryEvent Topology() {
  HistoryEvent e;
  e.type = "topology";
  e.nodes = {"CIV", "MLI", "NER", "INTERPOL"};
  e.links = {"CIV>INTERPOL", "CIV>MLI", "MLI>INTERPOL", "NER>INTERPOL"};
  return e;
}

HistoryEvent Sub(const std::string& agency, const std::string& clearance) {
  HistoryEvent e;
  e.type = "subscriber";
  e.subscriber = agency + ":fault";
  e.node = agency.substr(0, agency.find('/'));
  e.agency = agency;
  e.clearance = clearance;
  e.durable = "fault";
  e.topics = {"border.>", "trafficking.>", "local.>"};
  return e;
}

// An alert's facts as a publish event of CIV/police#0.
HistoryEvent Alert(const std::string& id, const std::string& topic,
                   const std::string& classification,
                   const std::string& originator = "CIV/police") {
  HistoryEvent e;
  e.type = "publish";
  e.publisher = originator + "#0";
  e.node = originator.substr(0, originator.find('/'));
  e.originator = originator;
  e.id = id;
  e.topic = topic;
  e.classification = classification;
  e.digest = "d-" + id;
  e.attempt = 1;
  return e;
}

HistoryEvent Result(const HistoryEvent& publish, const std::string& outcome,
                    const std::string& code = "") {
  static uint64_t next_sequence = 0;
  HistoryEvent e;
  if (outcome == "ack") e.sequence = ++next_sequence;
  e.type = "publish_result";
  e.publisher = publish.publisher;
  e.originator = publish.originator;
  e.id = publish.id;
  e.attempt = publish.attempt;
  e.outcome = outcome;
  e.code = code;
  return e;
}

HistoryEvent Delivery(const HistoryEvent& alert, const std::string& agency) {
  HistoryEvent e = alert;
  e.type = "delivery";
  e.publisher.clear();
  e.attempt = 0;
  e.subscriber = agency + ":fault";
  e.node = agency.substr(0, agency.find('/'));
  e.agency = agency;
  return e;
}

// A clean history: two border alerts (one SECRET, so neither customs nor
// NER get it), one trafficking alert, one local alert, a retraction; every
// delivery where it is due and nowhere else.
struct Fixture {
  std::vector<HistoryEvent> events;
  HistoryEvent a1 = Alert("a1", "border.incident", "RESTRICTED");
  HistoryEvent a2 = Alert("a2", "border.incident", "SECRET");
  HistoryEvent a3 = Alert("a3", "trafficking.drugs", "CONFIDENTIAL");
  HistoryEvent a4 = Alert("a4", "local.note", "RESTRICTED");
  HistoryEvent r1 = [] {
    HistoryEvent r = Alert("r1", "border.incident", "RESTRICTED");
    r.kind = "RETRACTION";
    r.references = "CIV/police/a1";
    return r;
  }();
  std::vector<std::string> all = {"CIV/police", "CIV/customs",
                                  "MLI/police", "MLI/customs",
                                  "NER/police", "INTERPOL/police"};

  Fixture() {
    events.push_back(Topology());
    events.push_back(Sub("CIV/police", "SECRET"));
    events.push_back(Sub("CIV/customs", "RESTRICTED"));
    events.push_back(Sub("MLI/police", "SECRET"));
    events.push_back(Sub("MLI/customs", "CONFIDENTIAL"));
    events.push_back(Sub("NER/police", "CONFIDENTIAL"));
    events.push_back(Sub("INTERPOL/police", "SECRET"));
    for (const HistoryEvent* a : {&a1, &a2, &a3, &a4, &r1}) {
      events.push_back(*a);
      events.push_back(Result(*a, "ack"));
    }
    // a1 and r1 everywhere; a2 to the SECRET police; a3 to the police but
    // CIV's own customs (not a trafficking subscriber); a4 at CIV only.
    for (const auto& s : all) events.push_back(Delivery(a1, s));
    for (const auto& s : {"CIV/police", "MLI/police", "INTERPOL/police"}) {
      events.push_back(Delivery(a2, s));
    }
    for (const auto& s :
         {"CIV/police", "MLI/police", "NER/police", "INTERPOL/police"}) {
      events.push_back(Delivery(a3, s));
    }
    for (const auto& s : {"CIV/police", "CIV/customs"}) {
      events.push_back(Delivery(a4, s));
    }
    for (const auto& s : all) events.push_back(Delivery(r1, s));
  }

  CheckReport Check() const {
    HistoryChecker checker(FaultPolicy());
    for (const HistoryEvent& e : events) REQUIRE(checker.Add(e).ok());
    return checker.Check();
  }
  // Removes the first delivery of `id` to `agency`.
  void Undeliver(const std::string& id, const std::string& agency) {
    for (auto it = events.begin(); it != events.end(); ++it) {
      if (it->type == "delivery" && it->id == id && it->agency == agency) {
        events.erase(it);
        return;
      }
    }
    FAIL("no delivery of " << id << " to " << agency);
  }
};

bool Reports(const CheckReport& report, const std::string& rule,
             const std::string& alert) {
  for (const Violation& v : report.violations) {
    if (v.rule == rule && v.alert == alert) return true;
  }
  return false;
}

TEST_CASE("history checker: a clean history has no violation") {
  Fixture f;
  CheckReport report = f.Check();
  INFO(FormatReport(report));
  CHECK(report.violations.empty());
  CHECK(report.acknowledged == 5);
  CHECK(report.lost == 0);
  // a1, r1: 6 each; a2: 3; a3: 4; a4: 2.
  CHECK(report.expected_deliveries == 21);
  CHECK(report.checked == 21);
}

TEST_CASE(
    "history checker: an acknowledged alert missing at an entitled "
    "remote subscriber is lost") {
  Fixture f;
  f.Undeliver("a3", "NER/police");  // relayed through the hub
  CheckReport report = f.Check();
  CHECK(Reports(report, "lost", "CIV/police/a3"));
  CHECK(report.lost == 1);
}

TEST_CASE("history checker: a lost alert at a local subscriber is lost") {
  Fixture f;
  f.Undeliver("a4", "CIV/customs");
  CHECK(Reports(f.Check(), "lost", "CIV/police/a4"));
}

TEST_CASE(
    "history checker: a delivery above the subscriber's clearance is "
    "unentitled") {
  Fixture f;
  f.events.push_back(Delivery(f.a2, "MLI/customs"));  // SECRET > CONFIDENTIAL
  CheckReport report = f.Check();
  REQUIRE(Reports(report, "unentitled", "CIV/police/a2"));
  CHECK(report.violations[0].subscriber == "MLI/customs:fault");
}

TEST_CASE(
    "history checker: a delivery at a node the alert may not reach is "
    "unentitled") {
  Fixture f;
  f.events.push_back(Delivery(f.a4, "MLI/police"));  // local.> stays at CIV
  CHECK(Reports(f.Check(), "unentitled", "CIV/police/a4"));
}

TEST_CASE(
    "history checker: an alert releasable to SAHEL only cannot go "
    "through the hub, so NER is not entitled") {
  Fixture f;
  HistoryEvent s = Alert("s1", "border.incident", "RESTRICTED");
  s.releasable_to = {"SAHEL"};
  f.events.push_back(s);
  f.events.push_back(Result(s, "ack"));
  for (const auto& a :
       {"CIV/police", "CIV/customs", "MLI/police", "MLI/customs"}) {
    f.events.push_back(Delivery(s, a));
  }
  CHECK(f.Check().violations.empty());
  f.events.push_back(Delivery(s, "NER/police"));
  CHECK(Reports(f.Check(), "unentitled", "CIV/police/s1"));
}

TEST_CASE(
    "history checker: a publisher's alerts out of order at its own "
    "node break the order rule") {
  Fixture f;
  // Swap a1's and a2's deliveries at CIV/police: a2 was published later.
  std::vector<HistoryEvent>::iterator d1, d2;
  for (auto it = f.events.begin(); it != f.events.end(); ++it) {
    if (it->type == "delivery" && it->agency == "CIV/police") {
      if (it->id == "a1") d1 = it;
      if (it->id == "a2") d2 = it;
    }
  }
  std::iter_swap(d1, d2);
  CHECK(Reports(f.Check(), "order", "CIV/police/a1"));
}

TEST_CASE(
    "history checker: acknowledgements whose sequences do not "
    "increase break the order rule") {
  Fixture f;
  HistoryEvent late = Alert("late", "border.incident", "RESTRICTED");
  f.events.push_back(late);
  HistoryEvent result = Result(late, "ack");
  result.sequence = 1;  // below a1's
  f.events.push_back(result);
  for (const auto& s : f.all) f.events.push_back(Delivery(late, s));
  CheckReport report = f.Check();
  REQUIRE(Reports(report, "order", "CIV/police/late"));
  CHECK(report.violations.size() == 1);
}

TEST_CASE("history checker: the same alert handed twice is a duplicate") {
  Fixture f;
  f.events.push_back(Delivery(f.a1, "MLI/police"));
  CHECK(Reports(f.Check(), "duplicate", "CIV/police/a1"));
}

TEST_CASE(
    "history checker: an alert handed with other content breaks the "
    "content rule") {
  Fixture f;
  HistoryEvent d = Delivery(f.a3, "MLI/police");
  d.digest = "changed";
  f.events.push_back(d);
  CheckReport report = f.Check();
  CHECK(Reports(report, "content", "CIV/police/a3"));
  CHECK(Reports(report, "duplicate", "CIV/police/a3"));
}

TEST_CASE(
    "history checker: a subscriber that got an alert but not its "
    "retraction breaks the retraction rule") {
  Fixture f;
  f.Undeliver("r1", "NER/police");
  CheckReport report = f.Check();
  CHECK(Reports(report, "retraction", "CIV/police/r1"));
  CHECK(Reports(report, "lost", "CIV/police/r1"));
}

TEST_CASE("history checker: timeouts are unknown, neither lost nor refused") {
  Fixture f;
  HistoryEvent t = Alert("t1", "border.incident", "RESTRICTED");
  f.events.push_back(t);
  f.events.push_back(Result(t, "timeout", "DEADLINE_EXCEEDED"));
  HistoryEvent u = Alert("t2", "border.incident", "RESTRICTED");
  f.events.push_back(u);
  f.events.push_back(Result(u, "error", "UNAVAILABLE"));
  f.events.push_back(Delivery(u, "MLI/police"));  // stored after all
  HistoryEvent n = Alert("t3", "border.incident", "RESTRICTED");
  f.events.push_back(n);  // no result: the run ended first
  CheckReport report = f.Check();
  INFO(FormatReport(report));
  CHECK(report.violations.empty());
  CHECK(report.unknown == 3);
  CHECK(report.unknown_delivered == 1);
  CHECK(report.refused == 0);
  CHECK(report.acknowledged == 5);
}

TEST_CASE(
    "history checker: an alert whose every publish was refused must "
    "never be delivered") {
  Fixture f;
  HistoryEvent x = Alert("x1", "border.incident", "RESTRICTED");
  f.events.push_back(x);
  f.events.push_back(Result(x, "error", "RESOURCE_EXHAUSTED"));
  CHECK(f.Check().violations.empty());
  CHECK(f.Check().refused == 1);
  f.events.push_back(Delivery(x, "CIV/police"));
  CHECK(Reports(f.Check(), "refused-delivered", "CIV/police/x1"));
}

TEST_CASE(
    "history checker: a retry acknowledged after a refusal counts as "
    "acknowledged") {
  Fixture f;
  HistoryEvent x = Alert("x2", "border.incident", "SECRET");
  f.events.push_back(x);
  f.events.push_back(Result(x, "error", "RESOURCE_EXHAUSTED"));
  x.attempt = 2;
  f.events.push_back(x);
  f.events.push_back(Result(x, "ack"));
  CheckReport report = f.Check();
  CHECK(report.acknowledged == 6);
  // ... and so must reach the SECRET police at every node but NER.
  CHECK(report.lost == 3);
  CHECK(Reports(report, "lost", "CIV/police/x2"));
}

TEST_CASE("history checker: unknown alerts and subscribers are violations") {
  Fixture f;
  HistoryEvent ghost = Alert("ghost", "border.incident", "RESTRICTED");
  f.events.push_back(Delivery(ghost, "MLI/police"));
  HistoryEvent stray = Delivery(f.a1, "MLI/police");
  stray.subscriber = "MLI/police:other";
  f.events.push_back(stray);
  CheckReport report = f.Check();
  CHECK(Reports(report, "unknown-alert", "CIV/police/ghost"));
  CHECK(Reports(report, "unknown-subscriber", "CIV/police/a1"));
}

TEST_CASE("history checker: an unreadable history is refused, not skipped") {
  HistoryChecker checker(FaultPolicy());
  HistoryEvent e;
  e.type = "no-such-type";
  CHECK_FALSE(checker.Add(e).ok());
  HistoryEvent p;
  p.type = "publish";
  CHECK_FALSE(checker.Add(p).ok());  // no id
  HistoryEvent r = Result(Alert("a", "border.x", "RESTRICTED"), "ack");
  CHECK_FALSE(checker.Add(r).ok());  // result before its publish
  r.outcome = "maybe";
  CHECK_FALSE(checker.Add(r).ok());
  HistoryEvent t;
  t.type = "topology";
  t.links = {"CIV-MLI"};
  CHECK_FALSE(checker.Add(t).ok());
}

TEST_CASE(
    "history lines: every field survives the round trip; bad lines "
    "are refused with a reason") {
  HistoryEvent e = Alert("id-1", "border.incident", "SECRET");
  e.releasable_to = {"SAHEL", "INTERPOL"};
  e.orcon = true;
  e.tlp = "AMBER";
  e.kind = "UPDATE";
  e.references = "CIV/police/id-0";
  e.sequence = 123456789;
  e.duplicate = true;
  e.time_us = 1764800000123456;
  e.forwarded_to = {"MLI"};
  e.message = "quote \" and \n newline";
  std::string line = EncodeHistoryLine(e);
  CHECK(line.find('\n') == std::string::npos);
  auto back = ParseHistoryLine(line);
  REQUIRE(back.ok());
  CHECK(EncodeHistoryLine(*back) == line);
  CHECK(back->sequence == 123456789);
  CHECK(back->time_us == 1764800000123456);
  CHECK(back->message == e.message);
  CHECK(back->releasable_to == e.releasable_to);

  CHECK_FALSE(ParseHistoryLine("not json").ok());
  CHECK_FALSE(ParseHistoryLine("{}").ok());  // no type
  auto unknown = ParseHistoryLine(R"({"type":"publish","colour":"red"})");
  REQUIRE_FALSE(unknown.ok());
  CHECK(std::string(unknown.status().message()).find("colour") !=
        std::string::npos);
  CHECK_FALSE(ParseHistoryLine(R"({"type":"x","sequence":-1})").ok());
  CHECK_FALSE(ParseHistoryLine(R"({"type":"x","orcon":"yes"})").ok());

  TempDir dir;
  {
    HistoryWriter w(dir.File("h.jsonl"));
    REQUIRE(w.Write(e).ok());
    REQUIRE(w.Write(Topology()).ok());
  }
  auto read = ReadHistoryFile(dir.File("h.jsonl"));
  REQUIRE(read.ok());
  REQUIRE(read->size() == 2);
  CHECK((*read)[1].links == Topology().links);
  std::ofstream(dir.File("bad.jsonl")) << line << "\n{\"type\":1}\n";
  auto bad = ReadHistoryFile(dir.File("bad.jsonl"));
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("bad.jsonl:2:") !=
        std::string::npos);
}

}  // namespace
}  // namespace ibsm::testing
