// Parsing and validation of policy files: every refusal names the line and
// the reason; versions follow the content; Lint finds what is legal but wrong.
// Formatting is off in this file: its raw strings hold policy and config
// text whose line numbers the tests check.
// clang-format off
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/policy.h"
#include "catch2/catch.hpp"
#include "ibsm/internal/v1/policy.pb.h"

namespace ibsm::broker {
namespace {

constexpr char kBase[] = R"pb(classification_levels: ["U", "R", "S"]
nodes { id: "A" groups: "G" clearance: "S" }
nodes { id: "B" clearance: "R" }
agencies { id: "A/police" roles: [ROLE_PUBLISHER, ROLE_SUBSCRIBER] clearance: "S" }
agencies { id: "B/police" roles: ROLE_SUBSCRIBER clearance: "R" }
topic_rules {
  name: "base"
  topics: "base.>"
  publishers: "A/*"
  subscribers: "*/police"
  max_classification: "S"
  share { to: "B" max_classification: "R" }
}
)pb";

// The 1-based line of the line holding the "#!" marker, 0 if none.
int MarkedLine(const std::string& text) {
  size_t at = text.find("#!");
  if (at == std::string::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

struct ErrorCase {
  const char* what;
  std::string text;
  const char* reason;  // substring of the message
};

TEST_CASE("Parse refuses invalid policies with the line and the reason") {
  const std::string base = kBase;
  const std::vector<ErrorCase> cases = {
      {"syntax error", base + "nodes { id: \"C\" clearance: }  #!\n", "Expected"},
      {"unknown field", base + "nodes {\n  id: \"C\"\n  colour: \"red\"  #!\n}\n",
       "no field named \"colour\""},
      {"no levels", "  #!\nnodes { id: \"A\" clearance: \"S\" }\n",
       "no classification_levels"},
      {"duplicate level",
       "classification_levels: \"U\"\nclassification_levels: \"U\"  #!\n",
       "duplicate classification level 'U'"},
      {"duplicate node id", base + "nodes { id: \"A\" clearance: \"S\" }  #!\n",
       "duplicate node id 'A'"},
      {"duplicate agency id",
       base + "agencies {\n  id: \"B/police\"  #!\n  clearance: \"R\"\n}\n",
       "duplicate agency id 'B/police'"},
      {"duplicate rule name",
       base + "topic_rules {\n  name: \"base\"  #!\n  topics: \"x\"\n}\n",
       "duplicate topic rule name 'base'"},
      {"node clearance not a level",
       base + "nodes {\n  id: \"C\"\n  clearance: \"TOP\"  #!\n}\n",
       "clearance of node C 'TOP' is not a classification level (U, R, S)"},
      {"node without clearance", base + "nodes { id: \"C\" }  #!\n",
       "clearance of node C is missing"},
      {"agency clearance not a level",
       base + "agencies {\n  id: \"B/x\"\n  clearance: \"Q\"  #!\n}\n",
       "clearance of agency B/x 'Q' is not a classification level"},
      {"agency id not NODE/name",
       base + "agencies {\n  id: \"police\"  #!\n  clearance: \"U\"\n}\n",
       "agency id 'police' is not NODE/name"},
      {"agency of an unknown node",
       base + "agencies { id: \"Z/police\" clearance: \"U\" }  #!\n",
       "belongs to unknown node 'Z'"},
      {"unknown role",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_UNSPECIFIED  #!\n  clearance: \"U\"\n}\n",
       "unknown role"},
      {"remote_access to an unknown node",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_SUBSCRIBER\n  clearance: \"U\"\n"
              "  remote_access {\n    nodes: \"Z\"  #!\n    roles: ROLE_SUBSCRIBER\n  }\n}\n",
       "agency B/x: remote_access 'Z' is not a node, a group or '*'"},
      {"remote_access of a role the agency lacks",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_SUBSCRIBER\n  clearance: \"U\"\n"
              "  remote_access {\n    nodes: \"A\"\n    roles: ROLE_PUBLISHER  #!\n  }\n}\n",
       "grants ROLE_PUBLISHER, which the agency does not have"},
      {"remote_access without a node",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_SUBSCRIBER\n  clearance: \"U\"\n"
              "  remote_access {  #!\n    roles: ROLE_SUBSCRIBER\n  }\n}\n",
       "remote_access names no node"},
      {"remote_access without a role",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_SUBSCRIBER\n  clearance: \"U\"\n"
              "  remote_access {  #!\n    nodes: \"G\"\n  }\n}\n",
       "remote_access grants no role"},
      {"audit metadata grant without ROLE_AUDITOR",
       base + "agencies {\n  id: \"B/x\"\n  roles: ROLE_SUBSCRIBER\n  clearance: \"U\"\n"
              "  audit_metadata_above_clearance: true  #!\n}\n",
       "audit_metadata_above_clearance needs ROLE_AUDITOR"},
      {"undeclared group in a principal",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"@SAHEL\"  #!\n"
              "  max_classification: \"U\"\n}\n",
       "no node declares group 'SAHEL'"},
      {"share to an unknown node",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*\"\n"
              "  max_classification: \"U\"\n  share {\n    to: \"Z\"  #!\n"
              "    max_classification: \"U\"\n  }\n}\n",
       "share.to 'Z' is not a node or group"},
      {"share to an unknown group written with @",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*\"\n"
              "  max_classification: \"U\"\n  share {\n    to: \"@G\"  #!\n"
              "    max_classification: \"U\"\n  }\n}\n",
       "write groups without '@'"},
      {"bad topic pattern",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"a.>.b\"  #!\n  subscribers: \"*\"\n"
              "  max_classification: \"U\"\n}\n",
       "'>' is only allowed as the last segment"},
      {"bad principal syntax",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  publishers: \"A/police/x\"  #!\n"
              "  max_classification: \"U\"\n}\n",
       "expected NODE/agency, NODE/*, */agency, @GROUP or *"},
      {"principal naming an unknown agency",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"A/nobody\"  #!\n"
              "  max_classification: \"U\"\n}\n",
       "unknown agency 'A/nobody'"},
      {"principal naming an unknown node",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"Z/*\"  #!\n"
              "  max_classification: \"U\"\n}\n",
       "unknown node 'Z'"},
      {"*/name matching no agency",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*/navy\"  #!\n"
              "  max_classification: \"U\"\n}\n",
       "no agency is named 'navy'"},
      {"max_classification not a level",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*\"\n"
              "  max_classification: \"TOP\"  #!\n}\n",
       "max_classification of rule r 'TOP' is not a classification level"},
      {"max_classification missing",
       base + "topic_rules {  #!\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*\"\n}\n",
       "max_classification of rule r is missing"},
      {"share above the rule ceiling",
       base + "topic_rules {\n  name: \"r\"\n  topics: \"x\"\n  subscribers: \"*\"\n"
              "  max_classification: \"R\"\n  share {\n    to: \"B\"\n"
              "    max_classification: \"S\"  #!\n  }\n}\n",
       "share max_classification S is above the rule's max_classification R"},
      {"rule without topics",
       base + "topic_rules {  #!\n  name: \"r\"\n  subscribers: \"*\"\n"
              "  max_classification: \"U\"\n}\n",
       "has no topics and can never match"},
      {"rule granting nothing",
       base + "topic_rules {  #!\n  name: \"r\"\n  topics: \"x\"\n"
              "  max_classification: \"U\"\n}\n",
       "can never take effect"},
      {"group with a node's name", base + "nodes { id: \"C\" groups: \"A\" clearance: \"U\" }  #!\n",
       "group 'A' has the name of a node"},
  };
  for (const ErrorCase& c : cases) {
    auto policy = Policy::Parse(c.text, "p.textproto");
    INFO(c.what << "\n" << c.text);
    REQUIRE_FALSE(policy.ok());
    const std::string message(policy.status().message());
    INFO(message);
    CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument);
    const int line = MarkedLine(c.text);
    REQUIRE(line > 0);
    CHECK(message.rfind(absl::StrCat("p.textproto:", line, ": "), 0) == 0);
    CHECK(message.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("A valid policy parses; its version is a content hash") {
  auto a = Policy::Parse(kBase, "a");
  REQUIRE(a.ok());
  CHECK((*a)->version().size() == 16);
  CHECK((*a)->version().find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK((*a)->classification_levels() == std::vector<std::string>{"U", "R", "S"});
  CHECK((*a)->proto().nodes_size() == 2);
  auto same = Policy::Parse(kBase, "b");
  REQUIRE(same.ok());
  CHECK((*same)->version() == (*a)->version());
  auto changed = Policy::Parse(std::string(kBase) + "# a comment\n", "a");
  REQUIRE(changed.ok());
  CHECK((*changed)->version() != (*a)->version());
  // Decisions carry the version.
  AlertFacts f;
  f.topic = "base.x";
  f.classification = "U";
  f.originator = "A/police";
  CHECK((*changed)->Decide(f, Recipient::Agency("B/police")).policy_version ==
        (*changed)->version());
}

TEST_CASE("Load reads a file and names it in errors") {
  const std::string path = "/tmp/ibsm_policy_parse_test.textproto";
  {
    std::ofstream out(path);
    out << kBase << "nodes { id: \"A\" clearance: \"S\" }\n";
  }
  auto policy = Policy::Load(path);
  REQUIRE_FALSE(policy.ok());
  CHECK(std::string(policy.status().message()).rfind(path + ":14: ", 0) == 0);
  {
    std::ofstream out(path);
    out << kBase;
  }
  CHECK(Policy::Load(path).ok());
  std::remove(path.c_str());
  auto missing = Policy::Load("/nonexistent/policy.textproto");
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Lint finds shadowed rules, agencies without rights, topics nobody receives") {
  const std::string text = std::string(kBase) +
      "agencies { id: \"B/idle\" roles: ROLE_SUBSCRIBER clearance: \"R\" }\n" 
      "agencies { id: \"B/audit\" roles: ROLE_AUDITOR clearance: \"R\" }\n"   
      "topic_rules { name: \"again\" topics: \"base.>\" subscribers: \"A/*\" max_classification: \"U\" }\n"
      "topic_rules { name: \"deaf\" topics: \"deaf.x\" publishers: \"A/police\" subscribers: \"B/audit\" max_classification: \"U\" }\n";
  auto policy = Policy::Parse(text, "l");
  REQUIRE(policy.ok());
  std::vector<std::string> warnings = (*policy)->Lint();
  auto line = [&](const std::string& needle) {
    size_t at = text.find(needle);
    REQUIRE(at != std::string::npos);
    return absl::StrCat("l:", 1 + std::count(text.begin(), text.begin() + at, '\n'), ": ");
  };
  auto has = [&](const std::string& prefix, const std::string& what) {
    for (const std::string& w : warnings) {
      if (w.rfind(prefix, 0) == 0 && w.find(what) != std::string::npos) return true;
    }
    return false;
  };
  std::string all;
  for (const std::string& w : warnings) all += w + "\n";
  INFO(all);
  CHECK(has(line("name: \"again\"") + "warning: ", "rule 'again' is shadowed"));
  CHECK(has(line("B/idle") + "warning: ", "agency B/idle has no rights"));
  CHECK_FALSE(has("l:", "agency B/audit"));  // auditors need no rule
  CHECK(has(line("name: \"deaf\"") + "warning: ",
            "nobody may receive topics of rule 'deaf'"));
  CHECK_FALSE(has("l:", "rule 'base'"));

  auto clean = Policy::Parse(kBase, "c");
  REQUIRE(clean.ok());
  CHECK((*clean)->Lint().empty());
}

}  // namespace
}  // namespace ibsm::broker
// clang-format on
