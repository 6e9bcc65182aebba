// The offline spool of a Publisher (PublisherOptions::spool_dir): a RocksDB
// database in one directory that holds, in the order they were accepted,
// the signed alerts the node has not acknowledged yet, and a record of the
// alerts the node refused definitively. Private to the client library; the
// key layout is in docs/client-library.md ("Spool format").
//
// The Spool owns its RocksDB handle; the Publisher owns the Spool. A Spool is
// safe for concurrent use by multiple threads. One process at a time opens a
// directory (RocksDB's LOCK file), and within a process one Spool.
#ifndef IBSM_CLIENT_LIB_SRC_SPOOL_H_
#define IBSM_CLIENT_LIB_SRC_SPOOL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"

namespace rocksdb {
class DB;
class Env;
}  // namespace rocksdb

namespace ibsm::internal {

struct SpoolBounds {
  uint64_t max_alerts = 0;
  uint64_t max_bytes = 0;
};

// An alert waiting in the spool, as Open found it.
struct SpooledEntry {
  uint64_t seq = 0;  // its place in the spool: acceptance order
  v1::Alert alert;
};

// The node's definitive answer for a spooled alert.
struct SpoolSettlement {
  uint64_t seq = 0;
  absl::Status refusal;  // OK: stored (acknowledged); else refused
};

class Spool {
 public:
  // Opens the spool in `dir`, creating the directory (not its parents) and
  // the database when missing; `bounds` apply to later Appends and are
  // stored for ReadSpoolState. FAILED_PRECONDITION when another process or
  // Spool has the directory, or it exists and holds something else;
  // DATA_LOSS when a record cannot be parsed. `env` (null: RocksDB's
  // default) must outlive the Spool; tests pass one that simulates a power
  // loss (tests/support/power_loss_env.h).
  static absl::StatusOr<std::unique_ptr<Spool>> Open(
      const std::string& dir, SpoolBounds bounds, rocksdb::Env* env = nullptr);
  // The state of the spool in `dir` from a read-only open, which takes no
  // lock (ReadSpoolState in ibsm/publisher.h).
  static absl::StatusOr<SpoolState> ReadState(const std::string& dir,
                                              absl::Time now);

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool();

  const std::string& dir() const { return dir_; }

  // The alerts that were waiting when the spool was opened, oldest first.
  // Moves them out: a second call returns nothing.
  std::vector<SpooledEntry> TakeRecovered();

  // Writes `alert` and syncs it; returns its seq. RESOURCE_EXHAUSTED when
  // it would pass spool_max_alerts or spool_max_bytes (naming the bound and
  // the directory) or the disk is full; nothing is dropped.
  absl::StatusOr<uint64_t> Append(const v1::Alert& alert, absl::Time now);

  // In one write: removes the acknowledged entries and turns the refused
  // ones into refusal records (keeping the newest kMaxSpoolRefusals).
  // Unknown seqs are ignored. Not synced: a lost removal only resends an
  // alert the node already stored (answered as a duplicate), a lost
  // refusal record only sends the alert to be refused again.
  absl::Status Settle(absl::Span<const SpoolSettlement> settled,
                      absl::Time now);

  // Counts, bounds, the oldest waiting alert and the refusal records.
  SpoolState State(absl::Time now) const;

 private:
  struct Waiting {
    uint64_t bytes = 0;
    absl::Time spooled_at;
  };
  struct Refused {
    uint64_t seq = 0;
    SpoolRefusal refusal;
  };

  Spool(std::string dir, SpoolBounds bounds, std::unique_ptr<rocksdb::DB> db);
  // Reads every record into the maps below (and `recovered_`).
  absl::Status Load();

  const std::string dir_;
  const SpoolBounds bounds_;
  const std::unique_ptr<rocksdb::DB> db_;

  mutable absl::Mutex mu_;
  // Waiting alerts by seq, including those being written by Append.
  std::map<uint64_t, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  uint64_t waiting_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Refused> refused_ ABSL_GUARDED_BY(mu_);  // oldest first
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<SpooledEntry> recovered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::internal

#endif  // IBSM_CLIENT_LIB_SRC_SPOOL_H_
