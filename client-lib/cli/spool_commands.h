// The offline spool from the command line (docs/cli.md): `ibsm publish
// --spool DIR` (the publish command hands over to PublishThroughSpool),
// `ibsm spool status` (read-only, no node needed) and `ibsm spool flush`
// (sends what waits and reports counts). Not thread-safe (one command per
// process), like the rest of the CLI.
#ifndef IBSM_CLIENT_LIB_CLI_SPOOL_COMMANDS_H_
#define IBSM_CLIENT_LIB_CLI_SPOOL_COMMANDS_H_

#include <vector>

#include "commands.h"

namespace ibsm::v1 {
class Alert;
}  // namespace ibsm::v1

namespace ibsm::cli {

// The rows of the `spool` command group, for Commands().
std::vector<Command> SpoolCommands();

// `ibsm publish --spool DIR` for the alert built (and checked) from the
// flags: spools it, waits up to the retry time for the node's answer, and
// returns the exit code (kExitSpooled while it waits in the spool).
int PublishThroughSpool(const Command& cmd, const ParsedFlags& flags, Io& io,
                        v1::Alert alert);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_SPOOL_COMMANDS_H_
