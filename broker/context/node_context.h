// What the gRPC services of a node share: non-owning pointers to the node's
// components (owned by Node, which outlives every service and call) and the
// swappable authorizer. Safe for concurrent use.
#ifndef IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_
#define IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "context/identity_limits.h"
#include "context/node_counters.h"
#include "ibsm/authorizer.h"
#include "ibsm/clock.h"
#include "ibsm/internal/v1/config.pb.h"

namespace ibsm::v1 {
class Alert;
class Links;
}  // namespace ibsm::v1

namespace ibsm::broker {

// Checks originator signatures (docs/signature-format.md) against the
// node's trust roots and CRLs. Implemented by the services' PeerVerifier,
// which holds those; the publish path and federation ingress ask it through
// the NodeContext. Implementations are safe for concurrent use.
class AlertVerifier {
 public:
  virtual ~AlertVerifier() = default;
  // OK when `alert` carries a valid signature, by its originator, with a
  // chain to the IBSM root that passes the CRLs and is bound to the
  // originator's node CA; PERMISSION_DENIED with the reason otherwise
  // (also for an unsigned alert).
  virtual absl::Status VerifyAlert(const v1::Alert& alert) const = 0;
};

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
  // Every caller's share of the node (limits.identity_*).
  IdentityLimits* identity_limits() const { return &identity_limits_; }
  WorkerPool* workers() const { return workers_; }
  // The node's event counters (metrics). Never null: the node's own once
  // SetCounters was called, else this context's.
  NodeCounters* counters() const { return counters_; }
  // Set once by Node before the server starts; must outlive the context.
  void SetCounters(NodeCounters* counters) { counters_ = counters; }
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

  // Originator signatures; set once by Node before the server starts and
  // valid for the node's life. While unset, signed alerts are refused.
  void SetAlertVerifier(const AlertVerifier* verifier) {
    alert_verifier_ = verifier;
  }
  const AlertVerifier* alert_verifier() const { return alert_verifier_; }

  // The federation links' state for the Node service's GetLinks; set once
  // by Node before the server starts (unset: no links).
  void SetLinksSource(std::function<v1::Links()> source) {
    links_source_ = std::move(source);
  }
  const std::function<v1::Links()>& links_source() const {
    return links_source_;
  }

  // True when the config lists federation peers: alerts must then be
  // signed (docs/signature-format.md, "Unsigned alerts").
  bool federated() const { return !peer_ids_.empty(); }
  // The configured peers' node ids, in config order.
  const std::vector<std::string>& peer_ids() const { return peer_ids_; }

  // Each reactor calls CallEnded() as the very last step of its OnDone
  // (after deleting itself), and Node::Shutdown calls AfterCallsEnded() once
  // the server has stopped, before the node's parts are destroyed. gRPC
  // already orders every OnDone before its Shutdown returns, but through its
  // own atomics, which ThreadSanitizer cannot see in Debian's uninstrumented
  // libgrpc; the lock makes that order visible (docs/security.md,
  // "Sanitizers"). One uncontended lock per call.
  void CallEnded() const { absl::MutexLock lock(&calls_ended_mu_); }
  void AfterCallsEnded() const { absl::MutexLock lock(&calls_ended_mu_); }

 private:
  mutable absl::Mutex calls_ended_mu_;
  PeerVerifier* peer_verifier_ = nullptr;
  LiveCalls* live_calls_ = nullptr;
  const AlertVerifier* alert_verifier_ = nullptr;
  std::function<v1::Links()> links_source_;

  const internal::v1::NodeConfig config_;
  std::vector<std::string> peer_ids_;
  Store* const store_;
  LogCache* const cache_;
  Committer* const committer_;
  SubscriptionHub* const hub_;
  WorkerPool* const workers_;
  Clock* const clock_;
  const absl::Time started_at_ = absl::Now();
  mutable IdentityLimits identity_limits_;
  mutable NodeCounters own_counters_;
  NodeCounters* counters_ = &own_counters_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Authorizer> authorizer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTEXT_NODE_CONTEXT_H_
