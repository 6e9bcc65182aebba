// A RocksDB Env that simulates a power failure: pass env() as
// StoreOptions::env (or NodeOptions::store_env), let the store work, then
//
//   env.CutPower();     // the instant the power goes
//   ... destroy the Store / Node (nothing it does now reaches the disk) ...
//   REQUIRE(env.RestorePower().ok());   // the disk as the machine finds it
//   ... open the store again on the same directory ...
//
// What the disk keeps, file by file, is what a journaling file system with
// a volatile write cache guarantees: the bytes up to the last Sync or Fsync
// of that file, and the file itself only if it existed before the env saw
// it or its directory was synced (FSDirectory::Fsync) after it was created.
// Everything else written since the env was made is lost at RestorePower:
// each file is cut back to its synced length, and a file whose directory
// entry was never synced is removed. RangeSync (sync_file_range) does not
// count as a sync, since it does not make data durable.
//
// After CutPower, every write, sync, create, rename and delete is accepted
// and dropped: the process that still runs cannot tell, as a process on a
// machine that just lost power never learns it either. A test must
// therefore count only the acknowledgements it received before CutPower.
// Reads keep working on what is on disk.
//
// Simplifications, chosen because RocksDB does not rely on the difference:
// a rename is durable at once (RocksDB syncs the directory right after it
// renames CURRENT or a table file), and a deletion before the cut is not
// undone (a resurrected obsolete file would only be deleted again).
//
// RocksDB ships the full model as FaultInjectionTestFS, but in its test
// utilities, which Debian's librocksdb does not include.
//
// Thread-safe: RocksDB's threads and the test's thread may use it at once.
// The env must outlive every store opened with it.
#ifndef IBSM_TESTS_SUPPORT_POWER_LOSS_ENV_H_
#define IBSM_TESTS_SUPPORT_POWER_LOSS_ENV_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"

namespace rocksdb {
class Env;
}

namespace ibsm::testing {

class PowerLossEnv {
 public:
  PowerLossEnv();
  ~PowerLossEnv();
  PowerLossEnv(const PowerLossEnv&) = delete;
  PowerLossEnv& operator=(const PowerLossEnv&) = delete;

  rocksdb::Env* env() const { return env_.get(); }

  // From now on nothing written reaches the disk.
  void CutPower();
  // Call once no store uses the env any more: drops every unsynced byte and
  // every file whose directory entry was not synced, then starts tracking
  // afresh with the power back on. INTERNAL naming the file when the disk
  // cannot be changed.
  absl::Status RestorePower();

  // Files and bytes the last RestorePower dropped (for the test's log).
  struct Dropped {
    int files_removed = 0;
    int files_truncated = 0;
    uint64_t bytes = 0;
  };
  Dropped last_dropped() const;

  struct State;  // shared with the file system and its files

 private:
  std::shared_ptr<State> state_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_POWER_LOSS_ENV_H_
