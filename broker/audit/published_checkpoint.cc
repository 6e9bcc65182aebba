#include "audit/published_checkpoint.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "ibsm/certificates.h"
#include "ibsm/crypto.h"
#include "ibsm/merkle.h"
#include "ibsm/status_macros.h"
#include "storage/durable_file.h"
#include "storage/store.h"

namespace ibsm::broker {
absl::StatusOr<std::optional<internal::v1::PublishedCheckpoint>>
ReadPublishedCheckpoint(const std::string& path, const std::string& node_id) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot check the published checkpoint file ", path,
                       ": ", ec.message()));
    }
    return std::nullopt;
  }
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the published checkpoint file ", path, ": ",
                     text.status().message()));
  }
  internal::v1::PublishedCheckpoint value;
  if (!google::protobuf::TextFormat::ParseFromString(*text, &value)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the published checkpoint file ", path,
        " cannot be parsed; it records the newest checkpoint this node "
        "signed: restore it from a copy, or remove it to start without the "
        "roll-back check (docs/operations.md)"));
  }
  if (value.node_id() != node_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("the published checkpoint file ", path,
                     " belongs to node ", value.node_id(), ", not ", node_id));
  }
  return value;
}

absl::Status WritePublishedCheckpoint(
    const std::string& path, const internal::v1::PublishedCheckpoint& value) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.PrintToString(value, &text);
  text = absl::StrCat(
      "# The newest audit checkpoint this node signed (written by "
      "ibsm-broker; docs/operations.md, \"Backup and restore\").\n",
      text);
  return ReplaceFileDurably(path, text);
}

absl::StatusOr<TrailCheck> CheckTrailAgainstPublished(
    const Store& store, uint64_t trail_size,
    const internal::v1::PublishedCheckpoint& published) {
  const uint64_t size = published.checkpoint().tree_size();
  TrailCheck check;
  if (trail_size < size) {
    check.rolled_back = true;
    check.why = absl::StrCat("the audit trail holds ", trail_size,
                             " records, but this node already signed a "
                             "checkpoint of ",
                             size, " records");
    return check;
  }
  IBSM_ASSIGN_OR_RETURN(Hash root, RootHash(StoredMerkleTree(&store), size));
  if (crypto::HashView(root) != published.checkpoint().root_hash()) {
    check.rolled_back = true;
    check.why = absl::StrCat(
        "the audit trail's first ", size,
        " records do not hash to the checkpoint of that size this node "
        "already signed (root ",
        absl::BytesToHexString(published.checkpoint().root_hash()),
        ", the data directory's ",
        absl::BytesToHexString(crypto::HashView(root)),
        "): it holds another history");
  }
  return check;
}

absl::StatusOr<std::optional<AcceptedRollback>> CheckPublishedCheckpointAtStart(
    const Store& store, uint64_t trail_size, const std::string& path,
    const std::string& node_id, uint64_t accept_rollback_size) {
  std::optional<AcceptedRollback> accepted;
  IBSM_ASSIGN_OR_RETURN(
      std::optional<internal::v1::PublishedCheckpoint> published,
      ReadPublishedCheckpoint(path, node_id));
  if (published) {
    IBSM_ASSIGN_OR_RETURN(TrailCheck check, CheckTrailAgainstPublished(
                                                store, trail_size, *published));
    const uint64_t size = published->checkpoint().tree_size();
    if (check.rolled_back && accept_rollback_size != size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the data directory was rolled back (restored from a backup?): ",
          check.why, " (recorded in ", path,
          "). Auditors may hold that checkpoint, and this node would sign a "
          "different history at the same sizes. If this is the restore you "
          "meant, tell the auditors and start once with --accept-rollback ",
          size,
          accept_rollback_size != 0
              ? absl::StrCat(" (not ", accept_rollback_size, ")")
              : std::string(),
          "; docs/operations.md, \"Backup and restore\""));
    }
    if (check.rolled_back) {
      accepted.emplace();
      accepted->abandoned = *published;
      accepted->why = check.why;
      accepted->kept_as = absl::StrCat(path, ".abandoned-", size);
      if (::rename(path.c_str(), accepted->kept_as.c_str()) != 0) {
        return ErrnoError("rename", path);
      }
      published.reset();
    }
  }
  // The file is never behind the store (a file lost, or written by a
  // broker from before it existed): the store's latest checkpoint.
  absl::StatusOr<v1::SignedCheckpoint> latest = LatestCheckpoint(store);
  if (!latest.ok()) {
    if (absl::IsNotFound(latest.status())) return accepted;
    return latest.status();
  }
  if (published && published->checkpoint().tree_size() >= latest->tree_size()) {
    return accepted;
  }
  internal::v1::PublishedCheckpoint current;
  current.set_node_id(node_id);
  *current.mutable_checkpoint() = *std::move(latest);
  current.set_last_sequence(store.recovered_last_sequence());
  IBSM_RETURN_IF_ERROR(WritePublishedCheckpoint(path, current));
  return accepted;
}

}  // namespace ibsm::broker
