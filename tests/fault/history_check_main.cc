// ibsm-history-check: checks the histories of a fault-harness run (or any
// JSON-lines history of the same schema) with the one HistoryChecker.
//
//   ibsm-history-check --policy tests/fault/fault-policy.textproto RUN/*.jsonl
//
// Prints the figures and every violation; --json prints the figures as one
// JSON object instead. Exit 0: no violation; 1: violations; 2: bad usage or
// a history that cannot be read (the message names the file and line).
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "ibsm/policy.h"
#include "tests/fault/history.h"
#include "tests/fault/history_checker.h"

namespace {

constexpr char kUsage[] =
    "usage: ibsm-history-check --policy POLICY_FILE [--json] FILE...\n"
    "  Checks fault-harness histories (JSON lines, docs/reliability.md).\n"
    "  Exit 0: no violation, 1: violations, 2: bad usage or input.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string policy_file;
  bool json = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--policy" && i + 1 < argc) {
      policy_file = argv[++i];
    } else if (arg.rfind("--policy=", 0) == 0) {
      policy_file = arg.substr(std::strlen("--policy="));
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "ibsm-history-check: unknown option '" << arg << "'\n"
                << kUsage;
      return 2;
    } else {
      files.push_back(arg);
    }
  }
  if (policy_file.empty() || files.empty()) {
    std::cerr << "ibsm-history-check: --policy and at least one history "
                 "file are required\n"
              << kUsage;
    return 2;
  }
  auto policy = ibsm::Policy::Load(policy_file);
  if (!policy.ok()) {
    std::cerr << "ibsm-history-check: " << policy.status().message() << "\n";
    return 2;
  }
  ibsm::testing::HistoryChecker checker(*policy);
  for (const std::string& file : files) {
    auto events = ibsm::testing::ReadHistoryFile(file);
    if (!events.ok()) {
      std::cerr << "ibsm-history-check: " << events.status().message() << "\n";
      return 2;
    }
    size_t line = 0;
    for (const auto& e : *events) {
      ++line;
      if (auto s = checker.Add(e); !s.ok()) {
        std::cerr << "ibsm-history-check: " << file << ": event " << line
                  << ": " << s.message() << "\n";
        return 2;
      }
    }
  }
  ibsm::testing::CheckReport report = checker.Check();
  if (json) {
    std::cout << ibsm::testing::ReportJson(report) << "\n";
  } else {
    std::cout << ibsm::testing::FormatReport(report);
  }
  return report.violations.empty() ? 0 : 1;
}
