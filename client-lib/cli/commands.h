// The ibsm CLI: its command table and the dispatcher that parses a command
// line, prints help and runs one command. Each command is a row in
// Commands(); a new command group (e.g. `ibsm policy check`, `ibsm audit
// query`) is added as rows with a two-word path and its own flags.
// Not thread-safe (one command per process).
#ifndef IBSM_CLIENT_LIB_CLI_COMMANDS_H_
#define IBSM_CLIENT_LIB_CLI_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "flags.h"

namespace ibsm {
class Client;
}  // namespace ibsm

namespace ibsm::cli {

// Exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the node refused, or a call failed
inline constexpr int kExitUsage = 2;   // bad command line
// `ibsm publish --spool`, `ibsm spool flush`: alerts wait in the spool
// because the node did not answer in time; they are sent later.
inline constexpr int kExitSpooled = 3;
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
  // When set: the name of a repeated flag in `flags` that also takes the
  // command's positional arguments, if that flag was given
  // (`ibsm audit proof --consistency A B`). Otherwise an argument is an error.
  std::string positional_flag = "";
};

// --target, --ca, --cert, --key (with IBSM_* environment fallbacks),
// --server-name, --timeout, --json, --help.
const std::vector<FlagSpec>& CommonFlags();
const std::vector<Command>& Commands();

// For commands that call the node: the connection from the common flags
// (--target, --ca, --cert, --key, --server-name, --timeout), or the exit code
// after printing why there is none (kExitUsage for bad flags or TLS files,
// kExitFailed when the node cannot be reached). With `sign_alerts` the
// client signs the alerts it publishes (ClientOptions::sign_alerts), and a
// key that cannot sign is a usage error; only `ibsm publish` asks for it.
// With `lazily` it does not wait for the node (ClientOptions::connect_timeout
// zero), so it fails only for bad flags or files: the spool commands work
// while the node is unreachable.
std::variant<std::unique_ptr<Client>, int> Connect(const ParsedFlags& flags,
                                                   const Command& cmd, Io& io,
                                                   bool sign_alerts = false,
                                                   bool lazily = false);

// Prints "ibsm: <message>" and "Run 'ibsm <cmd> --help' for usage." and
// returns kExitUsage.
int UsageError(Io& io, const Command& cmd, absl::string_view message);

// Prints "ibsm: <what> refused|failed: CODE: message" for a call the node
// answered with `status` ("failed" for UNAVAILABLE, DEADLINE_EXCEEDED,
// CANCELLED, INTERNAL, UNKNOWN, UNIMPLEMENTED) and returns kExitFailed.
int CallError(Io& io, absl::string_view what, const absl::Status& status);

// Runs the CLI on `args` (argv without the program name) and returns the
// process exit code. `getenv` supplies the environment.
int RunCli(const std::vector<std::string>& args, Io& io,
           const std::function<const char*(const char*)>& getenv);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_COMMANDS_H_
