// The node's RocksDB database: one DB, one column family per kind of record
// (docs/storage.md). The Store owns the DB and its handles. It is safe for
// concurrent use: reads may run on any thread; writes are storage::Batches
// (write_batch.h) applied by Commit(), and only the Committer commits while
// the node runs (which is what keeps sequences gap-free).
//
// A full disk is an expected state, not a crash: Commit() answers it with
// RESOURCE_EXHAUSTED and, once space returns, brings RocksDB out of its
// background-error state by itself (docs/running-a-node.md, "Full disk").
#ifndef IBSM_BROKER_STORAGE_STORE_H_
#define IBSM_BROKER_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "storage/key_codec.h"
#include "storage/write_batch.h"

namespace rocksdb {
class Cache;
class DB;
class ColumnFamilyHandle;
class Env;
class Logger;
class Status;
class WriteBufferManager;
}  // namespace rocksdb

namespace ibsm::broker {

enum class Family {
  kLog = 0,     // sequence -> StoredAlert
  kDedup = 1,   // originator \0 alert id -> sequence, content hash
  kCursor = 2,  // agency \0 durable name -> last acknowledged sequence
  kMeta = 3,    // name -> value (node, last sequence, alert-audit links,
                // checkpoints)
  kAudit = 4,   // audit index -> AuditRecord
  kMerkle = 5,  // level, index -> node of the audit Merkle tree
  kOutbox = 6,  // peer \0 priority sequence -> OutboxEntry
};
inline constexpr int kFamilyCount = 7;

// How far Commit() goes before it returns.
enum class Durability {
  kSynced,    // after an fsync: the batch survives a power loss
  kBuffered,  // written to the OS: survives a crash of the process only
};

class KeyRing;

struct StoreOptions {
  std::string path;
  std::string node_id;  // recorded on first open; a mismatch later is refused
  // The RocksDB environment; null means the default one. Not owned; must
  // outlive the Store. Tests inject file-system faults through it (an Env
  // built on a rocksdb::FileSystem, see tests/support/fault_env.h).
  rocksdb::Env* env = nullptr;
  // RocksDB's memory, bounded across all column families
  // (limits.rocksdb_block_cache_mib and limits.rocksdb_memtable_mib):
  // one LRU block cache that also holds index and filter blocks, and one
  // write-buffer budget for every family's memtables.
  uint64_t block_cache_bytes = uint64_t{32} << 20;
  uint64_t memtable_bytes = uint64_t{64} << 20;
  // Keys for encryption at rest (key_ring.h); null stores alerts in
  // plaintext. Records sealed before stay readable only with their key.
  std::shared_ptr<const KeyRing> keys = nullptr;
};

// What the store's RocksDB holds in memory, in bytes (RocksDB's own
// accounting; see docs/performance.md for how it adds up to the RSS).
struct StoreMemory {
  uint64_t memtables = 0;           // rocksdb.cur-size-all-mem-tables
  uint64_t block_cache = 0;         // rocksdb.block-cache-usage
  uint64_t block_cache_pinned = 0;  // rocksdb.block-cache-pinned-usage
  uint64_t table_readers = 0;       // rocksdb.estimate-table-readers-mem
};

// RocksDB's sizes and write stalls, for the node's metrics. Summed over
// the column families; a property RocksDB does not report stays 0.
struct StoreStats {
  uint64_t sst_bytes = 0;                 // rocksdb.total-sst-files-size
  uint64_t live_data_bytes = 0;           // rocksdb.estimate-live-data-size
  uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
  uint64_t pending_compaction_bytes = 0;  // estimate-pending-compaction-bytes
  bool write_stopped = false;             // rocksdb.is-write-stopped
  uint64_t delayed_write_rate = 0;        // rocksdb.actual-delayed-write-rate
  // Writes stopped / slowed down since open (cfstats io_stalls.total_*).
  uint64_t stall_stops = 0;
  uint64_t stall_slowdowns = 0;
};

// Free bytes below which the node treats its data directory as full: it does
// not start, and it does not try to resume writing. RocksDB needs room for
// a new write-ahead log, a manifest and the flush of its memtables.
inline constexpr uint64_t kMinFreeDiskBytes = uint64_t{1} << 20;

class Store {
 public:
  // Opens or creates the database. FAILED_PRECONDITION with the path and the
  // RocksDB reason when the directory cannot be used (unwritable, locked by
  // another process, belongs to another node). RESOURCE_EXHAUSTED "node N:
  // disk full at DIR, ..." when its file system has less than
  // kMinFreeDiskBytes free or RocksDB runs out of space while opening.
  // The directory is created with mode 0700; an existing one that group or
  // others may access is tightened to 0700 (silently: a start that fails
  // later must stay one line on stderr). DATA_LOSS
  // when the stored high-water mark cannot be parsed.
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // An empty batch of writes to this store; it must not outlive the Store.
  storage::Batch NewBatch() const { return storage::Batch(this); }

  // Applies `batch` atomically, as far as `durability` says, and consumes
  // it. When the file system is full, nothing of `batch` is applied and the
  // answer is RESOURCE_EXHAUSTED "node N: disk full at DIR, X free ...";
  // any other failure is INTERNAL, and nothing of `batch` is applied either.
  // After a failed write RocksDB refuses all writes (its background-error
  // state); the next Commit() first calls DB::Resume() once at least
  // kMinFreeDiskBytes are free, so after a full disk writing resumes
  // without a restart. (An error RocksDB holds fatal, such as an I/O error
  // appending to its write-ahead log, lasts until the store is reopened.)
  absl::Status Commit(storage::Batch&& batch, Durability durability);

  // Makes every batch Commit() wrote so far (kBuffered ones included)
  // survive a power loss: one fsync of the write-ahead log. Safe to call
  // while another thread commits; a Commit() waits for the sync to end
  // (below: a sync must never start after a write that failed).
  // INTERNAL with RocksDB's reason when the fsync fails: whether those
  // batches are on disk is then unknown.
  //
  // After a failed write (a full disk), RocksDB's log writer has seen the
  // failure and will not sync what it holds (RocksDB built with its
  // assertions, as Debian builds it, aborts the process instead). So the
  // store is resumed instead: its memtables, which hold the batches written
  // before the failure, are flushed into synced table files and a new log
  // is opened, which makes those batches durable. That needs room:
  // RESOURCE_EXHAUSTED (the disk-full message of Commit) while there is
  // none; the batches are still unsynced and may become durable by a later
  // call, or be lost by a power failure before it. INTERNAL when the store
  // cannot resume for another reason.
  absl::Status SyncLog();

  // Writes a consistent copy of the whole database, as it is now, into
  // `dir` (which must not exist; its parent must), with RocksDB's
  // Checkpoint: memtables flushed, table files hard-linked when `dir` is on
  // the same file system (so it costs little space until compactions
  // replace them), the rest copied. Safe while other threads commit.
  // FAILED_PRECONDITION naming `dir` and RocksDB's reason on failure.
  absl::Status WriteCheckpoint(const std::string& dir) const;

  // Bytes free for the node (statvfs f_bavail) in the data directory.
  absl::StatusOr<uint64_t> FreeBytes() const;

  // Highest sequence ever assigned, 0 for a new store: the larger of the
  // stored high-water mark (kLastSequenceKey) and the last log key (stores
  // written before the mark existed have only the latter). Read at open.
  uint64_t recovered_last_sequence() const { return recovered_last_sequence_; }

  // The idempotency entry of (originator, alert id), nullopt when absent.
  absl::StatusOr<std::optional<DedupEntry>> FindDedupEntry(
      absl::string_view originator, absl::string_view alert_id) const;
  // The same, its sequence only.
  absl::StatusOr<std::optional<uint64_t>> FindDuplicate(
      absl::string_view originator, absl::string_view alert_id) const;
  absl::StatusOr<std::optional<uint64_t>> GetCursor(
      absl::string_view agency, absl::string_view name) const;
  // The same, by the key CursorKey() makes.
  absl::StatusOr<std::optional<uint64_t>> GetCursorByKey(
      absl::string_view cursor_key) const;

  // Calls `fn(sequence, value)` for log records with sequence >= `from`, in
  // order, until `fn` returns false or `max_records` were visited.
  absl::Status ScanLog(
      uint64_t from, size_t max_records,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const;

  // The stored alert at `sequence` of the log, nullopt when there is none;
  // DATA_LOSS naming the sequence when its bytes do not parse or do not
  // open (DecodeAlert).
  absl::StatusOr<std::optional<internal::v1::StoredAlert>> GetAlert(
      uint64_t sequence) const;
  // The stored alert in log value `value` (as ScanLog passes it) at
  // `sequence`, opened with this store's keys: every read of an alert from
  // the log goes through here or GetAlert. DATA_LOSS naming the sequence
  // (and the key id, for a key the store does not hold) otherwise.
  absl::StatusOr<internal::v1::StoredAlert> DecodeAlert(
      uint64_t sequence, absl::string_view value) const;

  // The keys alerts are sealed with; null when encryption is off.
  const KeyRing* keys() const { return keys_.get(); }

  // The value under `key` in `family`, nullopt when absent.
  absl::StatusOr<std::optional<std::string>> Get(Family family,
                                                 absl::string_view key) const;
  // Calls `fn(key, value)` for records of `family` with key >= `from_key`, in
  // key order, until `fn` returns false or `max_records` were visited.
  absl::Status Scan(
      Family family, absl::string_view from_key, size_t max_records,
      const std::function<bool(absl::string_view, absl::string_view)>& fn)
      const;
  // The last key of `family`, nullopt when it is empty.
  absl::StatusOr<std::optional<std::string>> LastKey(Family family) const;

  // What RocksDB holds in memory now. Cheap; safe on any thread.
  StoreMemory MemoryUsage() const;
  // RocksDB's sizes and stall counters now. Cheap; safe on any thread.
  StoreStats Stats() const;

  // Flushes memtables; used at clean shutdown so restart replays less WAL.
  absl::Status Flush();

 private:
  friend class storage::Batch;  // puts its writes into the families

  Store() = default;

  rocksdb::ColumnFamilyHandle* handle(Family family) const {
    return handles_[static_cast<int>(family)];
  }

  // RESOURCE_EXHAUSTED naming the node, directory and free space.
  absl::Status DiskFull(absl::StatusOr<uint64_t> free) const;
  // The Status for a failed RocksDB write: DiskFull() when the disk is full.
  absl::Status WriteFailed(const rocksdb::Status& s) const;
  // Leaves RocksDB's background-error state once there is room again.
  absl::Status ResumeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  std::string path_;
  std::string node_id_;
  std::shared_ptr<const KeyRing> keys_;
  // RocksDB's info log, routed to the event log (store.cc says why).
  std::shared_ptr<rocksdb::Logger> info_log_;
  // Shared by every family; declared before db_, so they outlive it.
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; by Family
  uint64_t recovered_last_sequence_ = 0;

  // Held by SyncLog for the whole sync and by Commit for its write, so
  // that a sync never starts while a write that might fail is under way
  // (SyncLog checks for a failed one first). Taken before write_mu_, which
  // SyncLog holds only to check.
  absl::Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);
  absl::Mutex write_mu_;
  // A write failed; RocksDB may be refusing writes until DB::Resume().
  bool write_failed_ ABSL_GUARDED_BY(write_mu_) = false;
  // RocksDB's count of background errors when last looked at.
  uint64_t seen_background_errors_ ABSL_GUARDED_BY(write_mu_) = 0;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_STORE_H_
