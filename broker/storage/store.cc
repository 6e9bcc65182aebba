#include "storage/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/status_macros.h"
#include "logging/event_log.h"
#include "storage/key_codec.h"
#include "storage/key_ring.h"

namespace ibsm::broker {
namespace {

constexpr uint32_t kSchemaVersion = 1;
// Table files RocksDB keeps open (its table cache). At 64 MiB a file this
// covers some 30 GiB before files are closed and reopened, and it leaves
// room for connections under the common soft limit of 1024 descriptors.
constexpr int kMaxOpenTableFiles = 512;
// Write-ahead log kept before RocksDB flushes the families that hold the
// oldest of it: about what a start after a crash replays (some 90,000
// alerts of 1 KiB, under a second here).
constexpr uint64_t kMaxTotalWalBytes = uint64_t{128} << 20;

constexpr const char* kFamilyNames[kFamilyCount] = {
    "log", "dedup", "cursor", "meta", "audit", "merkle", "outbox"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " bytes");
  if (bytes < (uint64_t{1} << 20)) return absl::StrCat(bytes >> 10, " KiB");
  return absl::StrCat(bytes >> 20, " MiB");
}

// RocksDB's info log goes to the node's event log (stderr) instead of a LOG
// file in the data directory. That file is what made a full disk fatal:
// RocksDB 7.8's file logger keeps writing through a writer that already
// failed, and Debian's build (assertions on) aborts on that
// (`Assertion 'sync_without_flush_called_' failed`), at run time and again
// at every start on the full disk. Only warnings and errors are kept, so an
// operator sees background errors without RocksDB's routine chatter.
// Lines logged while the store opens are held back and printed only when it
// opened: a failed open is reported in one line by its status.
// Thread-safe: RocksDB logs from its background threads.
class EventLogLogger : public rocksdb::Logger {
 public:
  EventLogLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  // Lines without a level (headers) are informational.
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char text[1024];
    std::vsnprintf(text, sizeof(text), format, ap);
    std::string line = absl::StrCat(
        "rocksdb ",
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? "error" : "warning", ": ",
        text);
    absl::MutexLock lock(&mu_);
    if (holding_) {
      if (held_.size() < kMaxHeld) held_.push_back(std::move(line));
      return;
    }
    LogEvent(line);
  }

  // Prints (with `print_held`) or drops the lines held back during the
  // open; later lines go out at once.
  void Release(bool print_held) {
    absl::MutexLock lock(&mu_);
    if (print_held) {
      for (const std::string& line : held_) LogEvent(line);
    }
    held_.clear();
    holding_ = false;
  }

 private:
  static constexpr size_t kMaxHeld = 100;
  absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::string> held_ ABSL_GUARDED_BY(mu_);
};

// Turns off RocksDB's own recovery from a full disk. It waits for as much
// free space as its compaction buffer (64 MiB here) and, while it waits,
// answers DB::Resume() with Busy, so a node on a smaller or fuller disk
// could never write again without a restart. Store::Write() resumes
// instead, with its own threshold.
class NoAutoRecovery : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "IbsmNoAutoRecovery"; }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                            rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

absl::StatusOr<uint64_t> FreeBytesAt(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot read the free space of ", path, ": ", std::strerror(errno)));
  }
  return uint64_t{fs.f_bavail} * fs.f_frsize;
}

absl::Status DiskFullError(absl::string_view node_id, absl::string_view path,
                           const absl::StatusOr<uint64_t>& free) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "node ", node_id, ": disk full at ", path, ", ",
      free.ok() ? HumanBytes(*free) : std::string("unknown space"),
      " free (the node needs at least ", HumanBytes(kMinFreeDiskBytes), ")"));
}

// Most keys end in a big-endian sequence or index that only grows: log and
// audit entries, Merkle nodes of one level, alert-audit links, one peer's
// outbox. Keys with the same "everything but the last 8 bytes" are written
// in order, so the memtable can insert each one next to the last instead of
// searching its skip list from the top (about 15 % of the broker's CPU in
// a W1 profile went to those searches' key comparisons).
class AllButSequenceTransform : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "ibsm.AllButSequence"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - kSequenceBytes);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() >= kSequenceBytes;
  }

 private:
  static constexpr size_t kSequenceBytes = 8;
};

constexpr uint64_t kMinCacheShard = uint64_t{8} << 20;

// A family's share of the memtable budget, in sixteenths. The idempotency
// index gets the largest: its keys are random, so every flushed memtable
// is merged into all of L1 again, and larger memtables mean fewer such
// compactions. The log, whose keys only grow, has most of the bytes but its
// table files move down the levels without being rewritten. The audit
// family gets one record per publish; the others small keys and values
// (or, for the default family, nothing).
int MemtableShare(int family) {
  switch (static_cast<Family>(family)) {
    case Family::kDedup:
      return 5;
    case Family::kLog:
      return 4;
    case Family::kAudit:
      return 2;
    default:
      return 1;  // cursor, meta, merkle, outbox, and the default one
  }
}
constexpr int kMemtableShares = 5 + 4 + 2 + 5 * 1;  // sums MemtableShare()
// Memtables per family: the one written and one being flushed.
constexpr int kMaxWriteBuffers = 2;

// `family` is a Family or -1 for RocksDB's default family (unused).
rocksdb::ColumnFamilyOptions FamilyOptions(
    int family, const std::shared_ptr<rocksdb::Cache>& block_cache,
    uint64_t memtable_bytes) {
  rocksdb::ColumnFamilyOptions options;
  // Not for dedup and cursor keys, which do not end in a sequence: the
  // memtable would keep one hint per distinct prefix, that is per key.
  if (family >= 0 && family != static_cast<int>(Family::kDedup) &&
      family != static_cast<int>(Family::kCursor)) {
    options.memtable_insert_with_hint_prefix_extractor =
        std::make_shared<AllButSequenceTransform>();
  }
  rocksdb::BlockBasedTableOptions table;
  if (family == static_cast<int>(Family::kDedup) ||
      family == static_cast<int>(Family::kCursor)) {
    // Point lookups on every publish: a bloom filter saves the disk read for
    // the common case of a new alert id. (The block cache this call makes
    // is dropped with its table factory below.)
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.OptimizeForPointLookup(64);
  }
  // One cache for all families, so its capacity bounds what every table
  // reader holds. Index and filter blocks are charged to it too (they grow
  // with the data: otherwise each open table file keeps its own on the
  // heap, outside any bound); those of L0 files stay pinned, as they are
  // read by every lookup.
  table.block_cache = block_cache;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Every family's memtables together stay within the budget even before
  // the WriteBufferManager asks for a flush: write_buffer_size times
  // kMaxWriteBuffers, summed over the families, is memtable_bytes.
  const int share = MemtableShare(family);
  options.write_buffer_size = static_cast<size_t>(
      memtable_bytes * share / kMemtableShares / kMaxWriteBuffers);
  options.max_write_buffer_number = kMaxWriteBuffers;
  return options;
}

// The data directory holds classified alerts: only the broker's user may
// enter it. RocksDB would create it with the process umask (often 0755).
absl::Status PrepareDataDirectory(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot use the data directory ", path, ": ", strerror(errno)));
    }
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create the data directory ", path, ": ", strerror(errno)));
    }
    if (stat(path.c_str(), &st) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot use the data directory ", path, ": ", strerror(errno)));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the data directory ", path, " is not a directory"));
  }
  if ((st.st_mode & 0777) != 0700 && chmod(path.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot restrict the data directory ", path,
                     " to mode 0700: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const StoreOptions& options) {
  // Opening writes a new manifest and write-ahead log: on a full disk that
  // cannot succeed, so say so plainly before RocksDB tries.
  absl::StatusOr<uint64_t> free = FreeBytesAt(options.path);
  if (free.ok() && *free < kMinFreeDiskBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        DiskFullError(options.node_id, options.path, free).message(),
        "; free space there and start again"));
  }
  std::error_code ec;
  const bool existed = std::filesystem::exists(
      std::filesystem::path(options.path) / "CURRENT", ec);
  auto info_log = std::make_shared<EventLogLogger>();
  rocksdb::DBOptions db_options;
  if (options.env != nullptr) db_options.env = options.env;
  db_options.info_log = info_log;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.listeners.push_back(std::make_shared<NoAutoRecovery>());
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Many concurrent writers are funnelled through one Committer thread, so
  // RocksDB's own write grouping is not needed; pipelining helps the WAL.
  db_options.enable_pipelined_write = true;
  // Start-up time must not grow with the log (docs/storage.md, "Opening a
  // big store"). With RocksDB's default (-1) DB::Open opens every table
  // file and reads its index and filter blocks; with a bound it opens
  // them when a read first needs them, and keeps at most this many open
  // (so a log of any size also stays within the process's file limit).
  db_options.max_open_files = kMaxOpenTableFiles;
  // Statistics for compaction decisions would otherwise be read from the
  // properties of up to 20 table files at every open; they are gathered
  // as files are compacted anyway. (Table file sizes are still checked
  // against the manifest at open: that check stays.)
  db_options.skip_stats_update_on_db_open = true;
  // After a crash or power loss, DB::Open replays the write-ahead log.
  // RocksDB keeps a log file as long as any family has unflushed writes in
  // it, and families written rarely (cursors, the outbox) hold back every
  // log since their last flush: by default up to 4 x the sum of all write
  // buffers, which was 5 GiB of log here and 7.6 s of replay after 1M
  // alerts. Past this total, RocksDB flushes the families that hold the
  // oldest log back, so a replay stays short whatever the log's size. It
  // also bounds memory: a family written rarely would otherwise keep its
  // memtable for as long as it keeps the logs.
  db_options.max_total_wal_size =
      std::min<uint64_t>(kMaxTotalWalBytes, 2 * options.memtable_bytes);
  // The replayed writes stay in the memtables (and their log files stay
  // until the memtables are flushed in the background) instead of being
  // written to new table files before the node may serve.
  db_options.avoid_flush_during_recovery = true;
  // Memory bounds (StoreOptions). The write buffers are not charged to the
  // block cache: the two limits stay independent, and a burst of writes
  // cannot evict the index and filter blocks every publish's idempotency
  // lookup reads (docs/storage.md, "Memory").
  // Shards of at least 8 MiB: an LRU shard cannot keep a block larger than
  // itself, and a table file's filter block is about 1.2 MiB per million
  // idempotency keys. With RocksDB's default of 512 KiB shards every
  // lookup read the filter of every large dedup file again (a W6 profile:
  // 30 % of the broker's CPU in filter block reads and their checksums).
  int shard_bits = 0;
  while (shard_bits < 6 &&
         (options.block_cache_bytes >> (shard_bits + 1)) >= kMinCacheShard) {
    ++shard_bits;
  }
  auto block_cache =
      rocksdb::NewLRUCache(options.block_cache_bytes, shard_bits);
  auto write_buffers =
      std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes);
  db_options.write_buffer_manager = write_buffers;
  // RocksDB preallocates each write-ahead log at 1.1 times the largest
  // write buffer. With 64 MiB buffers that allocation failed (and was
  // skipped) on a small disk; with the budget's smaller ones it succeeds
  // and holds the free space that resuming after a full disk needs
  // (tests/fault/full_disk_test.cc). Files grow as they are written instead.
  db_options.allow_fallocate = false;

  IBSM_RETURN_IF_ERROR(PrepareDataDirectory(options.path));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(
      rocksdb::kDefaultColumnFamilyName,
      FamilyOptions(-1, block_cache, options.memtable_bytes));
  for (int i = 0; i < kFamilyCount; ++i) {
    descriptors.emplace_back(
        kFamilyNames[i], FamilyOptions(i, block_cache, options.memtable_bytes));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) {
    if (s.IsNoSpace()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          DiskFullError(options.node_id, options.path,
                        FreeBytesAt(options.path))
              .message(),
          "; free space there and start again (", s.ToString(), ")"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open the data directory ", options.path, ": ", s.ToString()));
  }
  // Creating a database makes RocksDB complain that it was not there.
  info_log->Release(/*print_held=*/existed);
  auto store = std::unique_ptr<Store>(new Store());
  store->path_ = options.path;
  store->node_id_ = options.node_id;
  store->keys_ = options.keys;
  store->info_log_ = std::move(info_log);
  store->block_cache_ = std::move(block_cache);
  store->write_buffers_ = std::move(write_buffers);
  store->db_.reset(raw);
  // handles[0] is the default family, which we keep only to close it.
  store->handles_.assign(handles.begin() + 1, handles.end());
  store->handles_.push_back(handles[0]);

  // Node identity of the data directory: set once, checked ever after.
  std::string value;
  rocksdb::ColumnFamilyHandle* meta = store->handle(Family::kMeta);
  s = raw->Get(rocksdb::ReadOptions(), meta, kNodeMetaKey, &value);
  if (s.IsNotFound()) {
    internal::v1::NodeMeta node_meta;
    node_meta.set_schema_version(kSchemaVersion);
    node_meta.set_node_id(options.node_id);
    // A new store links every alert to its audit record from the start:
    // it has nothing to migrate.
    storage::Batch batch = store->NewBatch();
    batch.PutNodeMeta(node_meta.SerializeAsString());
    batch.PutAlertAuditLinksVersion(kAlertAuditLinksVersion);
    // Written directly, not by Commit(): a store that cannot record its
    // identity does not open, and says so as an open failure.
    rocksdb::WriteOptions w;
    w.sync = true;
    IBSM_RETURN_IF_ERROR(FromRocks(
        raw->Write(w, batch.writes_.get()),
        absl::StrCat("cannot write to the data directory ", options.path)));
  } else if (s.ok()) {
    internal::v1::NodeMeta node_meta;
    if (!node_meta.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat(options.path, ": node metadata is corrupt"));
    }
    if (node_meta.node_id() != options.node_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", options.path, " belongs to node ",
                       node_meta.node_id(), ", not ", options.node_id));
    }
    if (node_meta.schema_version() > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", options.path, " has schema version ",
                       node_meta.schema_version(), "; this broker reads up to ",
                       kSchemaVersion));
    }
  } else {
    return FromRocks(s, absl::StrCat("cannot read ", options.path));
  }

  std::unique_ptr<rocksdb::Iterator> it(
      raw->NewIterator(rocksdb::ReadOptions(), store->handle(Family::kLog)));
  it->SeekToLast();
  if (it->Valid()) {
    std::optional<uint64_t> last =
        DecodeSequence(absl::string_view(it->key().data(), it->key().size()));
    if (!last) {
      return absl::DataLossError(
          absl::StrCat(options.path, ": log key of unexpected size"));
    }
    store->recovered_last_sequence_ = *last;
  }
  IBSM_RETURN_IF_ERROR(FromRocks(it->status(), "reading the log"));
  // Retention may have removed the newest alerts, so the last log key can
  // be lower than the last sequence assigned; the stored mark cannot. A
  // mark that cannot be read refuses the start: guessing could reuse a
  // sequence that durable subscribers have already passed.
  s = raw->Get(rocksdb::ReadOptions(), meta, kLastSequenceKey, &value);
  if (s.ok()) {
    std::optional<uint64_t> mark = DecodeSequence(value);
    if (!mark) {
      return absl::DataLossError(
          absl::StrCat(options.path, ": the stored last sequence is corrupt"));
    }
    store->recovered_last_sequence_ =
        std::max(store->recovered_last_sequence_, *mark);
  } else if (!s.IsNotFound()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read the last sequence in ", options.path, ": ", s.ToString()));
  }
  return store;
}

Store::~Store() {
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Closing handles cannot fail in a way we could act on at destruction.
    (void)db_->DestroyColumnFamilyHandle(h);
  }
  (void)db_->Close();
}

absl::Status Store::SyncLog() {
  absl::MutexLock sync_lock(&sync_mu_);
  {
    absl::MutexLock lock(&write_mu_);
    // Resuming flushes the memtables (the written batches) into synced
    // table files; its failure for room is RESOURCE_EXHAUSTED.
    if (write_failed_) return ResumeLocked();
  }
  return FromRocks(db_->SyncWAL(),
                   absl::StrCat("syncing the write-ahead log in ", path_));
}

absl::Status Store::WriteCheckpoint(const std::string& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: every memtable is flushed first, so the copy is
  // table files plus at most the current write-ahead log (RocksDB keeps
  // the families consistent with each other by copying the live logs).
  if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write a checkpoint of ", path_, " to ", dir, ": ",
                     s.ToString()));
  }
  return absl::OkStatus();
}

absl::Status Store::Commit(storage::Batch&& batch, Durability durability) {
  // Consumed whatever happens: a failed batch is rebuilt by its caller.
  storage::Batch consumed = std::move(batch);
  absl::MutexLock sync_lock(&sync_mu_);
  absl::MutexLock lock(&write_mu_);
  // A background flush or compaction that failed (say, for space) also
  // stops writes; its count tells, so the write can resume first instead
  // of being refused once more after space has returned.
  uint64_t background_errors = 0;
  if (db_->GetIntProperty("rocksdb.background-errors", &background_errors) &&
      background_errors != seen_background_errors_) {
    seen_background_errors_ = background_errors;
    write_failed_ = true;
  }
  if (write_failed_) IBSM_RETURN_IF_ERROR(ResumeLocked());
  rocksdb::WriteOptions options;
  options.sync = durability == Durability::kSynced;
  rocksdb::Status s = db_->Write(options, consumed.writes_.get());
  if (s.ok()) return absl::OkStatus();
  // A failed write-ahead-log write puts RocksDB into its background-error
  // state, in which it refuses every write until DB::Resume(); so does a
  // failed background flush, which the next write reports.
  write_failed_ = true;
  return WriteFailed(s);
}

absl::Status Store::ResumeLocked() {
  absl::StatusOr<uint64_t> free = FreeBytes();
  // Resuming flushes every memtable into a table file and opens a new
  // write-ahead log; with less room than that, trying only churns files.
  uint64_t memtables = 0;
  if (!db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables",
                                     &memtables)) {
    memtables = 0;  // unknown: the flush itself will tell
  }
  if (free.ok() && *free < kMinFreeDiskBytes + memtables) {
    return DiskFull(free);
  }
  rocksdb::Status s = db_->Resume();
  if (!s.ok()) return WriteFailed(s);
  write_failed_ = false;
  LogEvent(absl::StrCat("storage resumed at ", path_, " (",
                        free.ok() ? HumanBytes(*free) : std::string("unknown"),
                        " free)"));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Store::FreeBytes() const { return FreeBytesAt(path_); }

absl::Status Store::DiskFull(absl::StatusOr<uint64_t> free) const {
  return DiskFullError(node_id_, path_, free);
}

absl::Status Store::WriteFailed(const rocksdb::Status& s) const {
  absl::StatusOr<uint64_t> free = FreeBytes();
  // RocksDB reports ENOSPC as NoSpace; a write refused in the error state
  // that followed one carries it too. The free-space check covers errors
  // whose cause RocksDB did not classify.
  if (s.IsNoSpace() || (free.ok() && *free < kMinFreeDiskBytes)) {
    return DiskFull(free);
  }
  return FromRocks(s, "writing to the log");
}

absl::StatusOr<std::optional<DedupEntry>> Store::FindDedupEntry(
    absl::string_view originator, absl::string_view alert_id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kDedup),
                               DedupKey(originator, alert_id), &value);
  if (s.IsNotFound()) return std::optional<DedupEntry>();
  IBSM_RETURN_IF_ERROR(FromRocks(s, "reading the idempotency index"));
  std::optional<DedupEntry> entry = DecodeDedupValue(value);
  if (!entry) return absl::DataLossError("corrupt idempotency index entry");
  return entry;
}

absl::StatusOr<std::optional<uint64_t>> Store::FindDuplicate(
    absl::string_view originator, absl::string_view alert_id) const {
  IBSM_ASSIGN_OR_RETURN(std::optional<DedupEntry> entry,
                        FindDedupEntry(originator, alert_id));
  if (!entry) return std::optional<uint64_t>();
  return std::optional<uint64_t>(entry->sequence);
}

absl::StatusOr<std::optional<uint64_t>> Store::GetCursor(
    absl::string_view agency, absl::string_view name) const {
  return GetCursorByKey(CursorKey(agency, name));
}

absl::StatusOr<std::optional<uint64_t>> Store::GetCursorByKey(
    absl::string_view cursor_key) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handle(Family::kCursor),
               rocksdb::Slice(cursor_key.data(), cursor_key.size()), &value);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  IBSM_RETURN_IF_ERROR(FromRocks(s, "reading a subscription cursor"));
  std::optional<uint64_t> seq = DecodeSequence(value);
  if (!seq) return absl::DataLossError("corrupt subscription cursor");
  return seq;
}

absl::Status Store::ScanLog(
    uint64_t from, size_t max_records,
    const std::function<bool(uint64_t, absl::string_view)>& fn) const {
  absl::Status decode = absl::OkStatus();
  IBSM_RETURN_IF_ERROR(
      Scan(Family::kLog, EncodeSequence(from), max_records,
           [&](absl::string_view key, absl::string_view value) {
             std::optional<uint64_t> seq = DecodeSequence(key);
             if (!seq) {
               decode = absl::DataLossError("log key of unexpected size");
               return false;
             }
             return fn(*seq, value);
           }));
  return decode;
}

absl::StatusOr<std::optional<internal::v1::StoredAlert>> Store::GetAlert(
    uint64_t sequence) const {
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> value,
                        Get(Family::kLog, EncodeSequence(sequence)));
  if (!value) return std::optional<internal::v1::StoredAlert>();
  IBSM_ASSIGN_OR_RETURN(internal::v1::StoredAlert stored,
                        DecodeAlert(sequence, *value));
  return std::optional<internal::v1::StoredAlert>(std::move(stored));
}

absl::StatusOr<internal::v1::StoredAlert> Store::DecodeAlert(
    uint64_t sequence, absl::string_view value) const {
  return OpenStoredAlert(keys_.get(), sequence, value);
}

absl::StatusOr<std::optional<std::string>> Store::Get(
    Family family, absl::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(family),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  IBSM_RETURN_IF_ERROR(FromRocks(s, "reading the store"));
  return std::optional<std::string>(std::move(value));
}

absl::Status Store::Scan(
    Family family, absl::string_view from_key, size_t max_records,
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  rocksdb::ReadOptions options;
  options.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(options, handle(family)));
  size_t visited = 0;
  for (it->Seek(rocksdb::Slice(from_key.data(), from_key.size()));
       it->Valid() && visited < max_records; it->Next(), ++visited) {
    if (!fn(absl::string_view(it->key().data(), it->key().size()),
            absl::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "reading the store");
}

absl::StatusOr<std::optional<std::string>> Store::LastKey(Family family) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handle(family)));
  it->SeekToLast();
  IBSM_RETURN_IF_ERROR(FromRocks(it->status(), "reading the store"));
  if (!it->Valid()) return std::optional<std::string>();
  return std::optional<std::string>(it->key().ToString());
}

StoreMemory Store::MemoryUsage() const {
  auto sum = [&](const std::string& property) {
    uint64_t value = 0;
    // An unknown property leaves 0: the figures are a diagnostic.
    if (!db_->GetAggregatedIntProperty(property, &value)) value = 0;
    return value;
  };
  StoreMemory memory;
  memory.memtables = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  // The cache is shared: summing the property over families would count
  // it once per family.
  memory.block_cache = block_cache_->GetUsage();
  memory.block_cache_pinned = block_cache_->GetPinnedUsage();
  memory.table_readers = sum(rocksdb::DB::Properties::kEstimateTableReadersMem);
  return memory;
}

StoreStats Store::Stats() const {
  auto sum = [&](const std::string& property) {
    uint64_t value = 0;
    // An unknown property leaves 0: the figures are a diagnostic.
    if (!db_->GetAggregatedIntProperty(property, &value)) value = 0;
    return value;
  };
  auto db_wide = [&](const std::string& property) {
    uint64_t value = 0;
    if (!db_->GetIntProperty(property, &value)) value = 0;
    return value;
  };
  StoreStats stats;
  stats.sst_bytes = sum(rocksdb::DB::Properties::kTotalSstFilesSize);
  stats.live_data_bytes = sum(rocksdb::DB::Properties::kEstimateLiveDataSize);
  stats.memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  stats.pending_compaction_bytes =
      sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  stats.write_stopped = db_wide(rocksdb::DB::Properties::kIsWriteStopped) != 0;
  stats.delayed_write_rate =
      db_wide(rocksdb::DB::Properties::kActualDelayedWriteRate);
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    std::map<std::string, std::string> cf_stats;
    if (!db_->GetMapProperty(handle, rocksdb::DB::Properties::kCFStats,
                             &cf_stats)) {
      continue;
    }
    auto add = [&](const char* key, uint64_t* to) {
      auto it = cf_stats.find(key);
      if (it == cf_stats.end()) return;
      // The map holds doubles printed as text.
      *to += static_cast<uint64_t>(std::strtod(it->second.c_str(), nullptr));
    };
    add("io_stalls.total_stop", &stats.stall_stops);
    add("io_stalls.total_slowdown", &stats.stall_slowdowns);
  }
  return stats;
}

absl::Status Store::Flush() {
  rocksdb::FlushOptions options;
  std::vector<rocksdb::ColumnFamilyHandle*> families(handles_.begin(),
                                                     handles_.end());
  return FromRocks(db_->Flush(options, families), "flushing");
}

}  // namespace ibsm::broker
