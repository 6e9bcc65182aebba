// The newest committed alerts, kept in memory so that live subscribers are
// served without reading RocksDB and each alert is parsed once for all of
// them. Bounded by bytes: each record is charged what it costs in memory
// (LogCache::Charge), not its serialized size, which is less than half
// of it for a 1 KiB alert. Older records are read from the Store instead.
// Safe for concurrent use.
#ifndef IBSM_BROKER_STORAGE_LOG_CACHE_H_
#define IBSM_BROKER_STORAGE_LOG_CACHE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "ibsm/internal/v1/storage.pb.h"

namespace ibsm::broker {

// One committed alert. Immutable once shared.
struct LogRecord {
  uint64_t sequence = 0;
  internal::v1::StoredAlert stored;
  size_t bytes = 0;  // serialized size (bounds delivery responses)
  // What the record costs in memory, the bytes the cache's budget is
  // counted in: set to LogCache::Charge(*this) once `stored` is complete,
  // before the record is appended.
  size_t charge = 0;
};

class LogCache {
 public:
  // `next_sequence` is the sequence the first appended record will have.
  LogCache(size_t max_bytes, uint64_t next_sequence);

  // What `record` costs in memory while cached, roughly and on the high
  // side: the parsed StoredAlert with everything it owns on the heap
  // (protobuf's SpaceUsedLong: strings' capacity, maps' nodes, submessages)
  // and the record's own object in its make_shared block, plus a quarter
  // for the allocator's size classes (jemalloc rounds a 1,025-byte payload
  // string up to 1,280), plus its slot in the cache. For the 1 KiB alert
  // of ibsm-bench (1,144 bytes serialized) it is 2,391 bytes, where glibc
  // counts 2,157 bytes of heap (tests/broker/log_cache_test.cc). Costs a
  // walk over the message's fields: call it where the record is built, not
  // under a lock.
  static size_t Charge(const LogRecord& record);

  // Appends records whose sequences continue the cache without gaps; each
  // must have its `charge` set.
  void Append(const std::vector<std::shared_ptr<const LogRecord>>& records);

  // Bytes charged to the budget by the records held now.
  size_t charged_bytes() const;

  // Appends to `out` up to `max` records with sequence >= `from`, in order.
  // Returns false, appending nothing, when `from` is older than the oldest
  // cached record (the caller reads the Store).
  bool Read(uint64_t from, size_t max,
            std::vector<std::shared_ptr<const LogRecord>>* out) const;

 private:
  const size_t max_bytes_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const LogRecord>> records_ ABSL_GUARDED_BY(mu_);
  uint64_t first_sequence_ ABSL_GUARDED_BY(mu_);  // of records_.front()
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_LOG_CACHE_H_
