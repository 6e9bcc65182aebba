// The ibsm CLI: its command table and the dispatcher that parses a command
// line, prints help and runs one command. Each command is a row in
// Commands(); a new command group (e.g. `ibsm policy check`, `ibsm audit
// query`) is added as rows with a two-word path and its own flags.
// Not thread-safe (one command per process).
#ifndef IBSM_CLIENT_LIB_CLI_COMMANDS_H_
#define IBSM_CLIENT_LIB_CLI_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "flags.h"

namespace ibsm::cli {

// Exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;     // the node refused, or a call failed
inline constexpr int kExitUsage = 2;      // bad command line
inline constexpr int kExitInterrupted = 130;

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

struct Command {
  std::vector<std::string> path;  // {"publish"}, {"node", "info"}
  std::string args;               // synopsis after the path, for help
  std::string summary;            // one line, for `ibsm --help`
  std::string description;        // more text for `ibsm <cmd> --help`
  std::vector<FlagSpec> flags;    // besides CommonFlags()
  std::function<int(const ParsedFlags&, Io&)> run;
};

// --target, --ca, --cert, --key (with IBSM_* environment fallbacks),
// --server-name, --timeout, --json, --help.
const std::vector<FlagSpec>& CommonFlags();
const std::vector<Command>& Commands();

// Runs the CLI on `args` (argv without the program name) and returns the
// process exit code. `getenv` supplies the environment.
int RunCli(const std::vector<std::string>& args, Io& io,
           const std::function<const char*(const char*)>& getenv);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_COMMANDS_H_
