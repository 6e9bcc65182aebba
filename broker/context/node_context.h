// What the gRPC services of a node share: non-owning pointers to the node's
// components (owned by Node, which outlives every service and call) and the
// swappable authorizer. Safe for concurrent use.
#ifndef IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_
#define IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/authorizer.h"
#include "ibsm/clock.h"
#include "ibsm/internal/v1/config.pb.h"

namespace ibsm::broker {

class Committer;
class LiveCalls;
class LogCache;
class PeerVerifier;
class Store;
class SubscriptionHub;
class WorkerPool;

class NodeContext {
 public:
  NodeContext(const internal::v1::NodeConfig& config, Store* store,
              LogCache* cache, Committer* committer, SubscriptionHub* hub,
              WorkerPool* workers, std::shared_ptr<const Authorizer> authorizer,
              Clock* clock = RealClock());

  const internal::v1::NodeConfig& config() const { return config_; }
  Store* store() const { return store_; }
  LogCache* cache() const { return cache_; }
  Committer* committer() const { return committer_; }
  SubscriptionHub* hub() const { return hub_; }
  WorkerPool* workers() const { return workers_; }
  absl::Time started_at() const { return started_at_; }
  // The node's time for expiry and retention (tests inject a FakeClock).
  Clock* clock() const { return clock_; }

  // The policy in force. Callers keep the returned pointer for the whole of
  // one decision so that a concurrent reload cannot mix two policies.
  std::shared_ptr<const Authorizer> authorizer() const;
  void SetAuthorizer(std::shared_ptr<const Authorizer> authorizer);

  // How calls are authenticated (see broker/services/authenticate.h). Set once
  // by Node before the server starts; both must outlive every call. While
  // unset, every call is refused.
  void SetPeerSecurity(PeerVerifier* verifier, LiveCalls* live_calls);
  PeerVerifier* peer_verifier() const { return peer_verifier_; }
  LiveCalls* live_calls() const { return live_calls_; }

 private:
  PeerVerifier* peer_verifier_ = nullptr;
  LiveCalls* live_calls_ = nullptr;

  const internal::v1::NodeConfig config_;
  Store* const store_;
  LogCache* const cache_;
  Committer* const committer_;
  SubscriptionHub* const hub_;
  WorkerPool* const workers_;
  Clock* const clock_;
  const absl::Time started_at_ = absl::Now();

  mutable absl::Mutex mu_;
  std::shared_ptr<const Authorizer> authorizer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_
