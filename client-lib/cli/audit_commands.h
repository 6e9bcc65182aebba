// `ibsm audit ...`: the auditor's commands over the tamper-evident audit
// trail (see docs/audit.md). `verify` checks an export file entirely offline
// (no node connection) against the node's certificate; `query`, `export`,
// `proof` and `checkpoint` call the node's Auditor service (AUDITOR role)
// over the connection of the common flags.
// Not thread-safe (one command per process), like the rest of the CLI.
#ifndef IBSM_CLIENT_LIB_CLI_AUDIT_COMMANDS_H_
#define IBSM_CLIENT_LIB_CLI_AUDIT_COMMANDS_H_

#include <vector>

#include "commands.h"

namespace ibsm::cli {

// The rows of the `audit` command group, for Commands().
std::vector<Command> AuditCommands();

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_AUDIT_COMMANDS_H_
