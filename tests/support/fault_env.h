// A RocksDB Env whose file system can be told to fail reads of table (.sst)
// files, or writes or syncs of the write-ahead log, for tests of what the
// broker does when a read or a write fails. Pass env() as StoreOptions::env.
// The FaultEnv must outlive every Store opened with it. Arming and disarming
// are thread-safe (one atomic flag each).
//
// It is built on a rocksdb::FileSystem wrapper. To also "drop unsynced data"
// (a power loss), RocksDB's FaultInjectionTestFS would fit better, but it is
// in RocksDB's test utilities, which Debian's librocksdb does not ship.
#ifndef IBSM_TESTS_SUPPORT_FAULT_ENV_H_
#define IBSM_TESTS_SUPPORT_FAULT_ENV_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace rocksdb {
class Env;
}

namespace ibsm::testing {

class FaultEnv {
 public:
  // On the real file system; or on `base`'s (say, a PowerLossEnv's, to
  // also drop unsynced data later), which must outlive the FaultEnv.
  FaultEnv();
  explicit FaultEnv(rocksdb::Env* base);
  ~FaultEnv();
  FaultEnv(const FaultEnv&) = delete;
  FaultEnv& operator=(const FaultEnv&) = delete;

  rocksdb::Env* env() const { return env_.get(); }

  // While set, every read of an .sst file fails with an I/O error. Data in
  // memtables is not affected: flush and reopen the store first so that the
  // records a test wants unreadable are on disk only (a fresh block cache).
  void FailTableReads(bool fail) { fail_reads_->store(fail); }

  // While set, every append to a write-ahead log (.log) file fails with an
  // I/O error: a commit fails before anything of it is applied, as on a
  // failing disk. RocksDB then refuses writes until Store::Commit resumes it.
  void FailLogWrites(bool fail) { fail_writes_->store(fail); }

  // The same, but each append fails as on a full disk (RocksDB's NoSpace,
  // what ENOSPC becomes), which RocksDB can recover from by resuming; a
  // plain I/O error on the log is fatal to the open DB until it reopens.
  void FailLogWritesForSpace(bool fail) {
    writes_no_space_->store(fail);
    fail_writes_->store(fail);
  }

  // Log appends failed by FailLogWrites or FailLogWritesForSpace so far:
  // a test waits for a write to have failed by this count.
  uint64_t failed_log_appends() const { return failed_appends_->load(); }

  // While set, every sync of a write-ahead log file fails with an I/O
  // error (what fsync's EIO becomes); appends still succeed.
  void FailLogSyncs(bool fail) { fail_syncs_->store(fail); }

  // While set, every sync of a write-ahead log file waits until it is
  // cleared: what has been appended is in the page cache only, for as
  // long as a test wants.
  void HoldLogSyncs(bool hold) { hold_syncs_->store(hold); }

 private:
  std::shared_ptr<std::atomic<bool>> fail_reads_;
  std::shared_ptr<std::atomic<bool>> fail_writes_;
  std::shared_ptr<std::atomic<bool>> fail_syncs_;
  std::shared_ptr<std::atomic<bool>> hold_syncs_;
  std::shared_ptr<std::atomic<bool>> writes_no_space_;
  std::shared_ptr<std::atomic<uint64_t>> failed_appends_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_FAULT_ENV_H_
