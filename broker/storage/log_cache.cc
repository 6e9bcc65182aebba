#include "storage/log_cache.h"

#include "ibsm/status_macros.h"

namespace ibsm::broker {

LogCache::LogCache(size_t max_bytes, uint64_t next_sequence)
    : max_bytes_(max_bytes), first_sequence_(next_sequence) {}

void LogCache::Append(
    const std::vector<std::shared_ptr<const LogRecord>>& records) {
  absl::MutexLock lock(&mu_);
  for (const auto& record : records) {
    IBSM_CHECK(record->sequence == first_sequence_ + records_.size());
    records_.push_back(record);
    bytes_ += record->bytes;
  }
  while (bytes_ > max_bytes_ && records_.size() > 1) {
    bytes_ -= records_.front()->bytes;
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
