// A bounded set of recently seen keys with least-recently-used eviction,
// used by the Subscriber to drop redelivered alerts by (originator, id).
// Not thread-safe: the owner serialises access.
#ifndef IBSM_CLIENT_LIB_SRC_DEDUP_SET_H_
#define IBSM_CLIENT_LIB_SRC_DEDUP_SET_H_

#include <cstddef>
#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace ibsm::internal {

class DedupSet {
 public:
  // Remembers at most `capacity` keys (at least 1).
  explicit DedupSet(size_t capacity);

  // Inserts `key`; false when it was already present (a duplicate), in which
  // case it becomes the most recently used key. Evicts the least recently
  // used key when full.
  bool Insert(std::string key);
  bool Contains(absl::string_view key) const;
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

  // The key used for an alert: originator and id, which cannot collide
  // because ids never contain the separator.
  static std::string AlertKey(absl::string_view originator,
                              absl::string_view alert_id);

 private:
  size_t capacity_;
  std::list<std::string> order_;  // most recent first
  // Keys are views of the strings in order_ (list nodes never move): one
  // allocation per new key instead of four.
  absl::flat_hash_map<absl::string_view, std::list<std::string>::iterator>
      index_;
};

}  // namespace ibsm::internal

#endif  // IBSM_CLIENT_LIB_SRC_DEDUP_SET_H_
