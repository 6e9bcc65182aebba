// Small files written so that they survive a crash or power loss: the
// published checkpoint (audit/published_checkpoint.h) and the files of a
// backup (control/backup.h). POSIX calls only; errors name the file and
// errno's text. Thread-compatible (no shared state).
#ifndef IBSM_BROKER_STORAGE_DURABLE_FILE_H_
#define IBSM_BROKER_STORAGE_DURABLE_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ibsm::broker {

// FAILED_PRECONDITION "cannot <what> <path>: <strerror(errno)>".
absl::Status ErrnoError(absl::string_view what, const std::string& path);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR); false on
// an error, with errno set.
bool WriteAll(int fd, absl::string_view bytes);

// fsync of the directory `dir`, so that entries created or renamed in it
// are durable.
absl::Status SyncDirectory(const std::string& dir);

// Creates `path` (it must not exist; mode 0600), writes `bytes` and fsyncs
// the file (not its directory).
absl::Status WriteNewFile(const std::string& path, absl::string_view bytes);

// Replaces `path` with `bytes` atomically and durably: a temporary file
// beside it, fsynced, renamed over it, and the directory fsynced.
absl::Status ReplaceFileDurably(const std::string& path,
                                absl::string_view bytes);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_DURABLE_FILE_H_
