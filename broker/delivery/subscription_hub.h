// Live subscriptions of a node and the wake-up that feeds them. A
// Subscription is one subscriber stream's delivery state: its topic filter,
// position in the log, credit, and durable cursor. The hub knows every open
// subscription, wakes them when the Committer adds alerts, enforces one
// connection per durable name (a newer one supersedes the older), and ends
// them all at shutdown. Filling a subscription's next batch (which may read
// RocksDB) runs on the WorkerPool, never inside a gRPC reaction.
//
// Safe for concurrent use.
#ifndef IBSM_BROKER_DELIVERY_SUBSCRIPTION_HUB_H_
#define IBSM_BROKER_DELIVERY_SUBSCRIPTION_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace ibsm::broker {

class Subscription;

class SubscriptionHub {
 public:
  explicit SubscriptionHub(size_t max_subscriptions);

  // Adds `sub`; the hub shares ownership until Unregister. RESOURCE_EXHAUSTED
  // when the node holds its maximum. A durable subscription replaces (and
  // ends, ABORTED) an open one of the same key; the hub holds a reference to
  // the older one while it ends it, so it cannot be freed meanwhile.
  absl::Status Register(const std::shared_ptr<Subscription>& sub);
  // Removes `sub` if registered (no-op otherwise).
  void Unregister(Subscription* sub);

  // Called by the Committer after alerts up to `last_sequence` are durable.
  void OnCommitted(uint64_t last_sequence);

  // Ends every subscription with UNAVAILABLE and refuses new ones.
  void Shutdown();

  size_t size() const;
  // The cursor keys of the durable subscriptions registered now.
  std::vector<std::string> DurableKeys() const;

 private:
  const size_t max_subscriptions_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<Subscription*, std::shared_ptr<Subscription>> all_
      ABSL_GUARDED_BY(mu_);
  // Durable key -> its current subscription, always also a key of all_,
  // which owns it.
  absl::flat_hash_map<std::string, Subscription*> durable_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_DELIVERY_SUBSCRIPTION_HUB_H_
