// `ibsm-broker backup` and `ibsm-broker restore` (docs/operations.md,
// "Backup and restore"): the backup asks the running node for an online
// copy over the Node.Backup RPC, presenting the node's own certificate
// from its config, and stores it with a BackupWriter; the restore checks a
// backup and copies it into the node's empty data directory
// (control/backup.h). Each returns the process exit code and prints what
// it did (stdout) or why it failed (stderr, one line). Not thread-safe:
// for main().
#ifndef IBSM_BROKER_NODE_BACKUP_COMMAND_H_
#define IBSM_BROKER_NODE_BACKUP_COMMAND_H_

#include <string>

namespace ibsm::broker {

// `target` empty: the config's listen_address (its port_file when the
// port is 0; a wildcard host becomes 127.0.0.1). Exit 0 done, 1 the node
// refused or could not be reached or the stream broke, 2 bad arguments,
// config or backup directory.
int RunBackupCommand(const std::string& config_path, const std::string& to,
                     const std::string& target);

// Exit 0 restored (the report printed), 2 otherwise.
int RunRestoreCommand(const std::string& config_path, const std::string& from);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_NODE_BACKUP_COMMAND_H_
