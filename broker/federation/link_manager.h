// The node's federation links (docs/federation.md): one PeerLink per
// configured peer, each with at most one live session on a LinkStream.
// Peers with an address are dialled by a thread of their own, with
// exponential backoff and full jitter; peers without one dial in, and the
// federation service hands their streams to Serve(). A session exchanges
// Hellos (protocol version), then streams the peer's outbox (a window of
// unacknowledged offers, CRITICAL first) while it stores what the peer
// offers (Ingress), acknowledging each offer once it is synced.
//
// The LinkManager owns the PeerLinks and the dialling threads; the
// NodeContext, the Outbox and the dialer must outlive it. All methods are
// safe for concurrent use.
#ifndef IBSM_BROKER_FEDERATION_LINK_MANAGER_H_
#define IBSM_BROKER_FEDERATION_LINK_MANAGER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "federation/link_stream.h"

namespace ibsm::internal::v1 {
class PeerConfig;
}
namespace ibsm::v1 {
class Links;
}

namespace ibsm::broker {

class NodeContext;
class Outbox;
class PeerLink;

// The versions of the link protocol this release speaks.
inline constexpr uint32_t kLinkProtocolMinVersion = 1;
inline constexpr uint32_t kLinkProtocolMaxVersion = 1;

class LinkManager {
 public:
  // Opens a stream to `peer`'s federation port, or says why not.
  using Dialer = std::function<absl::StatusOr<std::unique_ptr<LinkStream>>(
      const internal::v1::PeerConfig& peer)>;

  // Starts dialling the peers that have an address.
  LinkManager(NodeContext* node, Outbox* outbox, Dialer dialer,
              std::string software_version);
  ~LinkManager();  // Shutdown()
  LinkManager(const LinkManager&) = delete;
  LinkManager& operator=(const LinkManager&) = delete;

  // Runs a session with `peer` (authenticated from its node certificate by
  // the caller) on `stream`, on the calling thread, until it ends.
  // PERMISSION_DENIED (after a Goodbye) when `peer` is not a configured
  // peer, or when this node dials that peer itself.
  absl::Status Serve(const std::string& peer, LinkStream* stream);

  // Every configured peer's link, for Node.GetLinks.
  v1::Links Snapshot() const;

  // Ends every session (Goodbye SHUTTING_DOWN) and stops dialling; later
  // Serve() calls are refused at once.
  void Shutdown();

 private:
  void DialLoop(PeerLink* link);

  NodeContext* const node_;
  Outbox* const outbox_;
  const Dialer dialer_;
  const std::string software_version_;
  std::vector<std::unique_ptr<PeerLink>> links_;
  std::vector<std::thread> dialers_;
  std::atomic<bool> stopping_{false};
  absl::Notification stop_;  // wakes the dialling threads' pauses
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_FEDERATION_LINK_MANAGER_H_
