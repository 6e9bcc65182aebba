// Online backup and restore of a node's data directory (docs/operations.md,
// "Backup and restore").
//
// The running node holds RocksDB's lock, so only it can copy its store:
// StagedBackup writes a RocksDB checkpoint of the live Store into a staging
// directory next to the data directory (table files hard-linked), opens
// that copy to read what it holds (highest sequence, audit trail size and
// latest signed checkpoint, whose Merkle root it checks), and hands it out
// in chunks; Node.Backup streams them to `ibsm-broker backup`, whose
// BackupWriter stores them and writes the manifest last. RestoreBackup
// checks a backup directory and copies it into an empty data directory.
//
// StagedBackup and BackupWriter are thread-compatible (one thread each);
// the free functions are thread-safe.
#ifndef IBSM_BROKER_CONTROL_BACKUP_H_
#define IBSM_BROKER_CONTROL_BACKUP_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "storage/store.h"

namespace ibsm::broker {

// Written last into a backup directory; a directory without it is an
// incomplete backup.
inline constexpr char kBackupManifestFile[] = "backup-manifest.textproto";
// The copy's latest signed checkpoint as a note, for `ibsm audit verify
// --kept-checkpoint` after a restore.
inline constexpr char kBackupCheckpointNoteFile[] = "audit-checkpoint.note";
inline constexpr uint32_t kBackupFormat = 1;
inline constexpr size_t kBackupChunkBytes = size_t{1} << 20;
// Bounds what a receiving BackupWriter accepts from the stream.
inline constexpr size_t kMaxBackupFiles = 100000;
inline constexpr size_t kMaxBackupFileNameBytes = 255;

// The staging directory of `data_dir`'s online backups: a sibling of it
// (same file system, so RocksDB hard-links the table files).
std::string BackupStagingDir(const std::string& data_dir);

// A consistent copy of a running node's store, in the staging directory,
// removed again when the StagedBackup is destroyed.
class StagedBackup {
 public:
  // Checkpoints `store` into `copy_options.path` (removed first if a failed
  // backup left it), opens the copy with `copy_options` (the node's id and
  // keys, small caches) and reads its state into the manifest; DATA_LOSS
  // when the copy's Merkle root at its latest checkpoint is not the signed
  // one. `store` may be committed to meanwhile.
  static absl::StatusOr<std::unique_ptr<StagedBackup>> Create(
      const Store& store, const StoreOptions& copy_options,
      const std::string& broker_version);
  ~StagedBackup();
  StagedBackup(const StagedBackup&) = delete;
  StagedBackup& operator=(const StagedBackup&) = delete;

  // The next chunk of the copy (files in name order, at most
  // kBackupChunkBytes of data each; an empty file is one empty chunk), or
  // nullopt after the last; the manifest's sha256 of a file is set once its
  // last chunk was read.
  absl::StatusOr<std::optional<v1::BackupChunk>> NextChunk();
  // Complete once NextChunk returned nullopt.
  const v1::BackupManifest& manifest() const { return manifest_; }
  uint64_t total_bytes() const;

 private:
  struct Reader;
  StagedBackup(std::string dir, v1::BackupManifest manifest);
  const std::string dir_;
  v1::BackupManifest manifest_;
  size_t next_file_ = 0;
  std::unique_ptr<Reader> reader_;  // the file being read
};

// Receives a backup stream into `dir`, which must not exist or be empty
// (its parent must exist). Chunks are checked as they come: plain file
// names, files in order, contiguous offsets, at most kMaxBackupFiles.
// Finish() checks every file against the manifest (size, SHA-256), then
// writes the checkpoint note and the manifest, each fsynced.
class BackupWriter {
 public:
  static absl::StatusOr<std::unique_ptr<BackupWriter>> Open(
      const std::string& dir);
  ~BackupWriter();
  absl::Status Add(const v1::BackupChunk& chunk);
  absl::Status Finish(const v1::BackupManifest& manifest,
                      const std::string& expected_node_id);
  uint64_t bytes() const { return bytes_; }

 private:
  explicit BackupWriter(std::string dir) : dir_(std::move(dir)) {}
  absl::Status CloseFile();
  const std::string dir_;
  std::vector<std::string> names_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  uint64_t bytes_ = 0;
};

// The manifest of the backup in `dir`; FAILED_PRECONDITION naming the
// directory when it has none (incomplete) or it cannot be parsed.
absl::StatusOr<v1::BackupManifest> ReadBackupManifest(const std::string& dir);

// What a restore found and did, for the operator (DescribeRestore).
struct RestoreReport {
  v1::BackupManifest backup;
  // The newest checkpoint the node had signed (published_checkpoint.h),
  // when its file exists.
  std::optional<internal::v1::PublishedCheckpoint> published;
};

// Checks the backup in `backup_dir` (manifest of `target.node_id`'s node,
// every file's size and SHA-256), copies it into `target.path`, which must
// not exist or be empty (a data directory is never overwritten), opens it
// with `target`'s keys and checks its audit size, highest sequence and the
// Merkle root of its checkpoint against the manifest. The published
// checkpoint file is read, never changed: the node's start compares it.
absl::StatusOr<RestoreReport> RestoreBackup(
    const std::string& backup_dir, const StoreOptions& target,
    const std::string& published_checkpoint_file);

// What the operator must know after a restore: what the data directory now
// holds, which acknowledged alerts are gone from this node and where copies
// may survive, and whether (and how) the start will ask to accept the
// rollback.
std::string DescribeRestore(const RestoreReport& report,
                            const std::string& config_path);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_BACKUP_H_
