#include "context/node_context.h"

#include <utility>

namespace ibsm::broker {

NodeContext::NodeContext(const internal::v1::NodeConfig& config, Store* store,
                         LogCache* cache, Committer* committer,
                         SubscriptionHub* hub, WorkerPool* workers,
                         std::shared_ptr<const Authorizer> authorizer,
                         Clock* clock)
    : config_(config),
      store_(store),
      cache_(cache),
      committer_(committer),
      hub_(hub),
      workers_(workers),
      clock_(clock),
      identity_limits_(IdentityLimits::FromConfig(config.limits()), clock),
      authorizer_(std::move(authorizer)) {
  for (const internal::v1::PeerConfig& peer : config_.federation().peers()) {
    peer_ids_.push_back(peer.node_id());
  }
}

std::shared_ptr<const Authorizer> NodeContext::authorizer() const {
  absl::MutexLock lock(&mu_);
  return authorizer_;
}

void NodeContext::SetAuthorizer(std::shared_ptr<const Authorizer> authorizer) {
  absl::MutexLock lock(&mu_);
  authorizer_ = std::move(authorizer);
}

void NodeContext::SetPeerSecurity(PeerVerifier* verifier,
                                  LiveCalls* live_calls) {
  peer_verifier_ = verifier;
  live_calls_ = live_calls;
}

}  // namespace ibsm::broker
