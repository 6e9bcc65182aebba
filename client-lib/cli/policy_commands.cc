#include "policy_commands.h"

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "alert_format.h"
#include "ibsm/internal/v1/policy.pb.h"
#include "ibsm/policy.h"
#include "ibsm/topic.h"
#include "json_writer.h"
#include "table.h"

namespace ibsm::cli {
namespace {

using ibsm::AlertFacts;
using ibsm::Decision;
using ibsm::Policy;
using ibsm::Recipient;
using Kind = FlagSpec::Kind;

FlagSpec Flag(std::string name, Kind kind, std::string value_name,
              std::string help) {
  return FlagSpec{std::move(name), kind, std::move(value_name), std::move(help),
                  ""};
}

FlagSpec FileFlag() {
  return Flag("file", Kind::kValue, "FILE",
              "the policy file (may also be given as the argument)");
}

int Usage(Io& io, absl::string_view command, absl::string_view message) {
  io.err << "ibsm: " << message << "\nRun 'ibsm policy " << command
         << " --help' for usage.\n";
  return kExitUsage;
}

std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n") == absl::string_view::npos)
    return std::string(s);
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

// Loads --file (or the argument). Prints the error and returns null on
// failure, with the exit code in *code.
std::shared_ptr<const Policy> LoadPolicy(const ParsedFlags& flags,
                                         absl::string_view command, Io& io,
                                         int* code) {
  if (!flags.Has("file")) {
    *code = Usage(io, command, "missing the policy FILE");
    return nullptr;
  }
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      Policy::Load(flags.Get("file"));
  if (!policy.ok()) {
    // Validation errors are "file:line: reason", like a compiler's.
    if (policy.status().code() == absl::StatusCode::kInvalidArgument) {
      io.err << policy.status().message() << "\n";
    } else {
      io.err << "ibsm: " << policy.status().message() << "\n";
    }
    *code = kExitFailed;
    return nullptr;
  }
  return *std::move(policy);
}

// The first agency, in file order, that may publish `alert`; empty if none.
std::string FirstPublisher(const Policy& policy, AlertFacts alert) {
  for (const auto& agency : policy.proto().agencies()) {
    alert.originator = agency.id();
    if (policy.DecidePublish(alert, agency.id()).allowed) return agency.id();
  }
  return "";
}

bool IsPseudoRule(const std::string& rule) {
  return rule == "unknown-agency" || rule == "unknown-node" || rule == "role" ||
         rule == "unknown-classification" || rule == "no-rule" ||
         rule == "origin" || rule == "own-node";
}

// ---- ibsm policy check -----------------------------------------------------

int RunCheck(const ParsedFlags& flags, Io& io) {
  int code = kExitOk;
  std::shared_ptr<const Policy> policy = LoadPolicy(flags, "check", io, &code);
  if (policy == nullptr) return code;
  std::vector<std::string> warnings = policy->Lint();
  const auto& p = policy->proto();
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .Bool("valid", true)
                  .String("file", flags.Get("file"))
                  .String("version", policy->version())
                  .Number("nodes", p.nodes_size())
                  .Number("agencies", p.agencies_size())
                  .Number("rules", p.topic_rules_size())
                  .Raw("warnings", JsonStringArray(warnings))
                  .Close()
           << "\n";
    return kExitOk;
  }
  for (const std::string& w : warnings) io.out << w << "\n";
  io.out << "OK: " << flags.Get("file") << " version " << policy->version()
         << ": " << p.nodes_size() << " nodes, " << p.agencies_size()
         << " agencies, " << p.topic_rules_size() << " rules, "
         << warnings.size() << " warnings\n";
  return kExitOk;
}

// ---- ibsm policy explain ---------------------------------------------------

int RunExplain(const ParsedFlags& flags, Io& io) {
  for (const char* required : {"topic", "classification", "recipient"}) {
    if (!flags.Has(required)) {
      return Usage(io, "explain", absl::StrCat("missing --", required));
    }
  }
  AlertFacts alert;
  alert.topic = flags.Get("topic");
  if (absl::Status s = ValidateTopic(alert.topic); !s.ok()) {
    return Usage(io, "explain", absl::StrCat("--topic: ", s.message()));
  }
  alert.classification = flags.Get("classification");
  for (const std::string& list : flags.GetAll("releasable-to")) {
    for (std::string& entry : SplitList(list)) {
      alert.releasable_to.push_back(std::move(entry));
    }
  }
  alert.orcon = flags.Bool("orcon");
  alert.tlp = flags.Get("tlp");
  const std::string who = flags.Get("recipient");
  const bool agency = who.find('/') != std::string::npos;
  if (flags.Bool("relay") && agency) {
    return Usage(io, "explain", "--relay applies to a node recipient only");
  }
  if (flags.Has("at") && !agency) {
    return Usage(io, "explain", "--at applies to an agency recipient only");
  }
  // Where the recipient agency is connected; its own node by default.
  const std::string at = flags.Get("at");
  int code = kExitOk;
  std::shared_ptr<const Policy> policy =
      LoadPolicy(flags, "explain", io, &code);
  if (policy == nullptr) return code;

  bool assumed = false;
  if (flags.Has("originator")) {
    alert.originator = flags.Get("originator");
  } else {
    alert.originator = FirstPublisher(*policy, alert);
    assumed = true;
    if (alert.originator.empty()) {
      io.err << "ibsm: no agency of " << flags.Get("file") << " may publish a "
             << alert.classification << " alert on " << alert.topic << " ("
             << policy
                    ->DecidePublish(alert,
                                    policy->proto().agencies_size() > 0
                                        ? policy->proto().agencies(0).id()
                                        : "")
                    .reason
             << "); give --originator\n";
      return kExitFailed;
    }
  }
  Decision publish = policy->DecidePublish(alert, alert.originator);
  Decision d =
      policy->Decide(alert, agency ? Recipient::Agency(who, at)
                                   : Recipient::Node(who, flags.Bool("relay")));
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .String("decision", d.allowed ? "ALLOW" : "DENY")
                  .Bool("allowed", d.allowed)
                  .String("rule", d.rule)
                  .String("reason", d.reason)
                  .String("policy_version", d.policy_version)
                  .String("recipient", who)
                  .String("recipient_kind", agency ? "agency" : "node")
                  .String("originator", alert.originator)
                  .Bool("originator_assumed", assumed)
                  .Bool("publish_allowed", publish.allowed)
                  .String("publish_reason", publish.reason)
                  .Close()
           << "\n";
    return kExitOk;
  }
  io.out << (d.allowed ? "ALLOW" : "DENY") << "\n"
         << "rule:       " << d.rule << "\n"
         << "reason:     " << d.reason << "\n"
         << "policy:     " << d.policy_version << " (" << flags.Get("file")
         << ")\n"
         << "originator: " << alert.originator
         << (assumed ? " (assumed: the first agency that may publish it; "
                       "set --originator)"
                     : "")
         << "\n";
  if (!publish.allowed) {
    io.out << "note:       the originator may not publish this alert: "
           << publish.reason << "\n";
  }
  return kExitOk;
}

// ---- ibsm policy matrix ----------------------------------------------------

struct MatrixRow {
  std::string rule, topic, level, originator, nodes, agencies;
};

// A topic matched by `pattern` ("any" for each wildcard).
std::string ConcreteTopic(const std::string& pattern) {
  return absl::StrReplaceAll(pattern, {{"*", "any"}, {">", "any"}});
}

void FillRow(const Policy& policy, AlertFacts alert, MatrixRow* row,
             std::string* deciding_rule) {
  const auto& p = policy.proto();
  row->topic = alert.topic;
  row->level = alert.classification;
  alert.originator = FirstPublisher(policy, alert);
  if (alert.originator.empty()) {
    row->originator = "(nobody may publish)";
    row->nodes = row->agencies = "-";
    return;
  }
  row->originator = alert.originator;
  const std::string origin_node =
      alert.originator.substr(0, alert.originator.find('/'));
  std::vector<std::string> nodes, agencies;
  for (const auto& node : p.nodes()) {
    if (node.id() == origin_node) continue;
    Decision d = policy.Decide(alert, Recipient::Node(node.id()));
    if (!IsPseudoRule(d.rule) && deciding_rule->empty())
      *deciding_rule = d.rule;
    if (d.allowed) nodes.push_back(node.id());
  }
  for (const auto& agency : p.agencies()) {
    Decision d = policy.Decide(alert, Recipient::Agency(agency.id()));
    if (!IsPseudoRule(d.rule) && deciding_rule->empty())
      *deciding_rule = d.rule;
    if (d.allowed) agencies.push_back(agency.id());
  }
  row->nodes = nodes.empty() ? "-" : absl::StrJoin(nodes, " ");
  row->agencies = agencies.empty() ? "-" : absl::StrJoin(agencies, " ");
}

int RunMatrix(const ParsedFlags& flags, Io& io) {
  if (flags.Has("topic")) {
    if (absl::Status s = ValidateTopic(flags.Get("topic")); !s.ok()) {
      return Usage(io, "matrix", absl::StrCat("--topic: ", s.message()));
    }
  }
  int code = kExitOk;
  std::shared_ptr<const Policy> policy = LoadPolicy(flags, "matrix", io, &code);
  if (policy == nullptr) return code;
  const auto& p = policy->proto();
  const std::vector<std::string>& levels = policy->classification_levels();
  if (flags.Has("classification") &&
      std::find(levels.begin(), levels.end(), flags.Get("classification")) ==
          levels.end()) {
    return Usage(
        io, "matrix",
        absl::StrCat("--classification: '", flags.Get("classification"),
                     "' is not a level of the policy (",
                     absl::StrJoin(levels, ", "), ")"));
  }

  // (rule name or "", topic, ceiling index) to tabulate.
  struct Subject {
    std::string rule, topic;
    size_t ceiling;
  };
  auto ceiling_of = [&](const std::string& rule) -> size_t {
    for (const auto& r : p.topic_rules()) {
      if (r.name() != rule) continue;
      auto it = std::find(levels.begin(), levels.end(), r.max_classification());
      return static_cast<size_t>(it - levels.begin());
    }
    return levels.size() - 1;
  };
  std::vector<Subject> subjects;
  if (flags.Has("topic")) {
    subjects.push_back(Subject{"", flags.Get("topic"), levels.size() - 1});
  } else {
    for (const auto& r : p.topic_rules()) {
      subjects.push_back(
          Subject{r.name(), ConcreteTopic(r.topics(0)), ceiling_of(r.name())});
    }
  }

  std::vector<MatrixRow> rows;
  for (const Subject& s : subjects) {
    std::vector<std::string> row_levels;
    if (flags.Has("classification")) {
      row_levels.push_back(flags.Get("classification"));
    } else {
      size_t ceiling = s.ceiling;
      if (s.rule.empty()) {  // --topic: up to the ceiling of its rule
        AlertFacts probe;
        probe.topic = s.topic;
        probe.classification = levels.front();
        std::string rule;
        MatrixRow scratch;
        FillRow(*policy, probe, &scratch, &rule);
        ceiling = rule.empty() ? levels.size() - 1 : ceiling_of(rule);
      }
      for (size_t i = 0; i <= ceiling && i < levels.size(); ++i) {
        row_levels.push_back(levels[i]);
      }
    }
    for (const std::string& level : row_levels) {
      AlertFacts alert;
      alert.topic = s.topic;
      alert.classification = level;
      MatrixRow row;
      std::string deciding;
      FillRow(*policy, alert, &row, &deciding);
      if (deciding.empty()) deciding = s.rule.empty() ? "no-rule" : s.rule;
      row.rule = deciding;
      if (!s.rule.empty() && deciding != s.rule) {
        row.rule = absl::StrCat(s.rule, " (decided by ", deciding, ")");
      }
      rows.push_back(std::move(row));
    }
  }

  if (flags.Bool("json")) {
    for (const MatrixRow& r : rows) {
      io.out << JsonObject()
                    .String("rule", r.rule)
                    .String("topic", r.topic)
                    .String("classification", r.level)
                    .String("originator", r.originator)
                    .String("nodes", r.nodes)
                    .String("agencies", r.agencies)
                    .Close()
             << "\n";
    }
    return kExitOk;
  }
  if (flags.Bool("csv")) {
    io.out << "rule,topic,classification,originator,nodes,agencies\n";
    for (const MatrixRow& r : rows) {
      io.out << CsvField(r.rule) << "," << CsvField(r.topic) << ","
             << CsvField(r.level) << "," << CsvField(r.originator) << ","
             << CsvField(r.nodes) << "," << CsvField(r.agencies) << "\n";
    }
    return kExitOk;
  }
  Table table(
      {"RULE", "TOPIC", "CLASSIFICATION", "ORIGINATOR", "NODES", "AGENCIES"});
  for (const MatrixRow& r : rows) {
    table.AddRow({r.rule, r.topic, r.level, r.originator, r.nodes, r.agencies});
  }
  io.out << table.Format(TerminalWidth());
  io.out << "(version " << policy->version()
         << "; NODES: peer nodes the alert is shared with, besides the "
            "originator's)\n";
  return kExitOk;
}

}  // namespace

std::vector<Command> PolicyCommands() {
  std::vector<Command> commands;
  commands.push_back(Command{
      {"policy", "check"},
      "FILE",
      "Validate a sharing policy file and print lint warnings",
      "Exit 0 when the policy is valid (warnings are printed, then 'OK: ...'),"
      " 1 when it is not\n(the error is printed as FILE:LINE: reason). No node "
      "connection is needed.",
      {FileFlag()},
      RunCheck});
  commands.push_back(Command{
      {"policy", "explain"},
      "FILE --topic TOPIC --classification LEVEL --recipient AGENCY|NODE "
      "[flags]",
      "Explain whether an alert would reach a recipient, and why",
      "Prints ALLOW or DENY, the rule that decided, the reason and the policy "
      "version (exit 0 either way;\n1 only when the decision cannot be "
      "evaluated). A recipient with a '/' is an agency\n(\"MLI/customs\"), "
      "otherwise a node (\"MLI\"). Without --originator, the first agency of "
      "the file\nthat may publish the alert is assumed, and said so.",
      {
          FileFlag(),
          Flag("topic", Kind::kValue, "TOPIC", "topic of the alert"),
          Flag("classification", Kind::kValue, "LEVEL",
               "classification of the alert"),
          Flag("releasable-to", Kind::kRepeated, "A,B",
               "nodes or groups the alert is released to"),
          Flag("orcon", Kind::kBool, "", "originator control"),
          Flag("tlp", Kind::kValue, "LABEL",
               "TLP label (AMBER+STRICT and RED act as originator control)"),
          Flag("originator", Kind::kValue, "AGENCY",
               "publishing agency, e.g. CIV/police"),
          Flag("recipient", Kind::kValue, "AGENCY|NODE",
               "e.g. MLI/customs or MLI"),
          Flag("relay", Kind::kBool, "",
               "the node recipient would relay it to other nodes (hub)"),
          Flag("at", Kind::kValue, "NODE",
               "the node the agency recipient is connected to (default: its "
               "own; elsewhere it needs a remote_access grant)"),
      },
      RunExplain});
  commands.push_back(Command{
      {"policy", "matrix"},
      "FILE [--topic TOPIC] [--classification LEVEL] [--csv]",
      "Tabulate which nodes and agencies receive each topic",
      "One row per topic rule (its first pattern, wildcards as 'any') and "
      "level up to the rule's ceiling,\nor for --topic / --classification "
      "only. The originator is the first agency of the file that may\npublish "
      "the alert.",
      {
          FileFlag(),
          Flag("topic", Kind::kValue, "TOPIC", "only this topic"),
          Flag("classification", Kind::kValue, "LEVEL", "only this level"),
          Flag("csv", Kind::kBool, "",
               "CSV with a header row instead of a table"),
      },
      RunMatrix});
  return commands;
}

}  // namespace ibsm::cli
