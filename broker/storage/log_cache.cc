#include "storage/log_cache.h"

#include "ibsm/status_macros.h"

namespace ibsm::broker {
namespace {

// The shared_ptr control block that make_shared puts before the record:
// its vtable pointer and two reference counts.
constexpr size_t kControlBlockBytes = 2 * sizeof(void*);

}  // namespace

size_t LogCache::Charge(const LogRecord& record) {
  const size_t heap = record.stored.SpaceUsedLong() -
                      sizeof(internal::v1::StoredAlert) + sizeof(LogRecord) +
                      kControlBlockBytes;
  return heap + heap / 4 + sizeof(std::shared_ptr<const LogRecord>);
}

LogCache::LogCache(size_t max_bytes, uint64_t next_sequence)
    : max_bytes_(max_bytes), first_sequence_(next_sequence) {}

void LogCache::Append(
    const std::vector<std::shared_ptr<const LogRecord>>& records) {
  absl::MutexLock lock(&mu_);
  for (const auto& record : records) {
    IBSM_CHECK(record->sequence == first_sequence_ + records_.size());
    // A record without its charge would never leave the budget.
    IBSM_CHECK(record->charge > 0);
    records_.push_back(record);
    bytes_ += record->charge;
  }
  while (bytes_ > max_bytes_ && records_.size() > 1) {
    bytes_ -= records_.front()->charge;
    records_.pop_front();
    ++first_sequence_;
  }
}

size_t LogCache::charged_bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

bool LogCache::Read(uint64_t from, size_t max,
                    std::vector<std::shared_ptr<const LogRecord>>* out) const {
  absl::MutexLock lock(&mu_);
  if (from < first_sequence_) return false;
  size_t index = from - first_sequence_;
  for (size_t i = index; i < records_.size() && max > 0; ++i, --max) {
    out->push_back(records_[i]);
  }
  return true;
}

}  // namespace ibsm::broker
