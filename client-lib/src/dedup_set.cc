#include "dedup_set.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ibsm::internal {

DedupSet::DedupSet(size_t capacity)
    : capacity_(std::max<size_t>(1, capacity)) {}

bool DedupSet::Insert(std::string key) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    return false;
  }
  order_.push_front(std::move(key));
  index_.emplace(order_.front(), order_.begin());
  if (index_.size() > capacity_) {
    index_.erase(order_.back());
    order_.pop_back();
  }
  return true;
}

bool DedupSet::Contains(absl::string_view key) const {
  return index_.contains(key);
}

std::string DedupSet::AlertKey(absl::string_view originator,
                               absl::string_view alert_id) {
  // Alert ids are [A-Za-z0-9._:-]; '\n' cannot occur in them.
  return absl::StrCat(originator, "\n", alert_id);
}

}  // namespace ibsm::internal
