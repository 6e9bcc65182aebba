// The in-memory index of the `outbox` family: per peer, the alerts waiting
// to be sent there, in send order (priority, then sequence), with their
// stored sizes, and the backlog bounds of each configured peer. It is
// loaded from the Store at start; afterwards only the Committer changes it,
// after each batch that added or removed entries is durable, so it always
// equals what is on disk. Link senders read it to pick what to send next.
//
// Memory is bounded by the peers' bounds (a peer's backlog cannot grow past
// max_alerts), plus whatever a data directory held for peers no longer
// configured (kept and reported, never sent).
//
// Safe for concurrent use. Listeners run on the Committer's thread and must
// not block.
#ifndef IBSM_BROKER_STORAGE_OUTBOX_H_
#define IBSM_BROKER_STORAGE_OUTBOX_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/key_codec.h"

namespace ibsm::broker {

class Store;

struct OutboxBounds {
  uint64_t max_alerts = 0;
  uint64_t max_bytes = 0;
};

// What waits for one peer.
struct OutboxBacklog {
  std::array<uint64_t, kOutboxPriorities> alerts{};  // by OutboxPriority
  uint64_t bytes = 0;
  OutboxBounds bounds;
  uint64_t total() const { return alerts[0] + alerts[1] + alerts[2]; }
};

// One waiting alert.
struct OutboxItem {
  OutboxPriority priority = OutboxPriority::kOther;
  uint64_t sequence = 0;
  uint64_t bytes = 0;
};

class Outbox {
 public:
  // Reads every outbox entry of `store`. `bounds` names the configured
  // peers. DATA_LOSS for a key or value that does not parse.
  static absl::StatusOr<std::unique_ptr<Outbox>> Load(
      const Store& store,
      absl::flat_hash_map<std::string, OutboxBounds> bounds);

  // Entries loaded for peers that are not configured: peer -> count.
  std::vector<std::pair<std::string, uint64_t>> Unconfigured() const;

  // Whether `alerts` more alerts of `bytes` in all fit under `peer`'s
  // bounds. An unconfigured peer fits nothing.
  bool Fits(const std::string& peer, uint64_t alerts, uint64_t bytes) const;
  OutboxBounds BoundsOf(const std::string& peer) const;
  OutboxBacklog Backlog(const std::string& peer) const;

  // Committer thread, after the batch that wrote / deleted them is durable.
  void Added(const std::vector<OutboxKey>& keys,
             const std::vector<uint64_t>& bytes);
  void Removed(const std::vector<OutboxKey>& keys);

  // Up to `max` waiting entries of `peer` in send order, leaving out the
  // sequences in `skip` (sent and unacknowledged, or being removed).
  std::vector<OutboxItem> Next(const std::string& peer,
                               const absl::flat_hash_set<uint64_t>& skip,
                               size_t max) const;
  // Whether `sequence` still waits for `peer`.
  bool Holds(const std::string& peer, OutboxPriority priority,
             uint64_t sequence) const;

  // Called (on the committer thread) after entries were added for `peer`.
  // One listener per peer; replaces an earlier one; an empty function
  // removes it.
  void SetListener(const std::string& peer, std::function<void()> listener);

 private:
  struct PeerQueue {
    OutboxBounds bounds;
    bool configured = false;
    // (priority, sequence) -> stored bytes.
    absl::btree_map<std::pair<uint8_t, uint64_t>, uint64_t> items;
    std::array<uint64_t, kOutboxPriorities> counts{};
    uint64_t bytes = 0;
    std::function<void()> listener;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, PeerQueue> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_OUTBOX_H_
