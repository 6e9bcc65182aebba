// The newest committed alerts, kept in memory so that live subscribers are
// served without reading RocksDB and each alert is parsed once for all of
// them. Bounded by bytes; older records are read from the Store instead.
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
  size_t bytes = 0;  // serialized size, for the cache budget
};

class LogCache {
 public:
  // `next_sequence` is the sequence the first appended record will have.
  LogCache(size_t max_bytes, uint64_t next_sequence);

  // Appends records whose sequences continue the cache without gaps.
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
