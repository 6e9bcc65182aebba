// The newest audit checkpoint a node has signed, kept in a file outside its
// data directory (NodeConfig.published_checkpoint_file). Auditors may hold
// any checkpoint the node signed; a data directory restored from a backup
// (or otherwise rolled back) holds a shorter trail, and a node that kept
// appending to it would sign a second, different history at sizes it had
// already signed. The file is written before each checkpoint is stored, so
// it is never behind what auditors could have fetched, and checked at start
// (CheckTrailAgainstPublished). docs/operations.md, "Backup and restore".
//
// Free functions; thread-compatible (the Committer writes, Node::Start
// reads before the Committer runs).
#ifndef IBSM_BROKER_AUDIT_PUBLISHED_CHECKPOINT_H_
#define IBSM_BROKER_AUDIT_PUBLISHED_CHECKPOINT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ibsm/internal/v1/storage.pb.h"

namespace ibsm::broker {

class Store;

// The file's content; nullopt when it does not exist. A file that cannot
// be read or parsed, or that belongs to another node, is an error
// (FAILED_PRECONDITION naming the file): a check that cannot run fails.
absl::StatusOr<std::optional<internal::v1::PublishedCheckpoint>>
ReadPublishedCheckpoint(const std::string& path, const std::string& node_id);

// Replaces the file atomically (write a temporary file, fsync, rename,
// fsync the directory), mode 0600.
absl::Status WritePublishedCheckpoint(
    const std::string& path, const internal::v1::PublishedCheckpoint& value);

// How the data directory's trail relates to the published checkpoint.
struct TrailCheck {
  bool rolled_back = false;  // shorter than it, or not extending it
  std::string why;           // for rolled_back: what differs, one sentence
};

// Compares `store`'s trail of `trail_size` records with `published`: the
// trail must be at least as long and its Merkle root at the published size
// must be the published root. A read error is returned as such.
absl::StatusOr<TrailCheck> CheckTrailAgainstPublished(
    const Store& store, uint64_t trail_size,
    const internal::v1::PublishedCheckpoint& published);

// What the start did about a rolled-back trail the operator accepted.
struct AcceptedRollback {
  internal::v1::PublishedCheckpoint abandoned;
  std::string why;      // TrailCheck::why
  std::string kept_as;  // where the abandoned file now is
};

// The start-up check (Node::Start, before the Committer runs) of the trail
// of `trail_size` records in `store` against the file at `path`:
// - no file: nothing to compare;
// - the trail extends it: fine;
// - rolled back, and `accept_rollback_size` is not the published tree size
//   (0: not given): FAILED_PRECONDITION saying what differs and how to
//   accept it (--accept-rollback N);
// - rolled back and accepted: the file is renamed to
//   `path`.abandoned-<size> (kept for the auditors) and the rollback
//   returned, for the audit trail.
// Then, when the store's latest checkpoint is newer than the file (or the
// file is gone), the file is rewritten from it, so it is never behind.
absl::StatusOr<std::optional<AcceptedRollback>> CheckPublishedCheckpointAtStart(
    const Store& store, uint64_t trail_size, const std::string& path,
    const std::string& node_id, uint64_t accept_rollback_size);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_AUDIT_PUBLISHED_CHECKPOINT_H_
