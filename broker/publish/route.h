// Federation routing: the one function that says which peers of this node
// get an outbox entry for an alert, for local publishes and for alerts that
// came over a link alike (docs/federation.md, "Routing"). Pure: it asks the
// policy in force and reads nothing else; thread-safe.
#ifndef IBSM_BROKER_PUBLISH_ROUTE_H_
#define IBSM_BROKER_PUBLISH_ROUTE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ibsm {
class Authorizer;
}
namespace ibsm::v1 {
class Alert;
}

namespace ibsm::broker {

// The peers (of `peers`, the node's configured ones, in that order) that
// get `alert` from node `self`. `hops` is empty for an alert published at
// `self`; for one that came over a link, the nodes it passed through
// (origin first). A peer gets it when:
// - the alert is signed (unsigned alerts never cross a link);
// - the peer is not `self` and not in `hops`;
// - for an alert that came over a link, `self` may relay it
//   (MayForward(alert, self, relay=true): a hub, not ORCON / TLP:RED /
//   TLP:AMBER+STRICT);
// - the policy lets the peer hold it (MayForward(alert, peer, false)).
std::vector<std::string> RoutePeers(const Authorizer& authorizer,
                                    const v1::Alert& alert,
                                    absl::Span<const std::string> hops,
                                    absl::string_view self,
                                    absl::Span<const std::string> peers);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_PUBLISH_ROUTE_H_
