// `ibsm policy check | explain | matrix`: offline tools over a policy file
// (no node connection): validation with lint warnings, one explained
// decision, and who-receives-what tables. See docs/policy.md.
// Not thread-safe (one command per process), like the rest of the CLI.
#ifndef IBSM_CLIENT_LIB_CLI_POLICY_COMMANDS_H_
#define IBSM_CLIENT_LIB_CLI_POLICY_COMMANDS_H_

#include <vector>

#include "commands.h"

namespace ibsm::cli {

// The rows of the `policy` command group, for Commands().
std::vector<Command> PolicyCommands();

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_POLICY_COMMANDS_H_
