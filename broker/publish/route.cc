#include "publish/route.h"

#include <algorithm>

#include "ibsm/authorizer.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm::broker {

std::vector<std::string> RoutePeers(const Authorizer& authorizer,
                                    const v1::Alert& alert,
                                    absl::Span<const std::string> hops,
                                    absl::string_view self,
                                    absl::Span<const std::string> peers) {
  std::vector<std::string> out;
  if (alert.signature().empty() || peers.empty()) return out;
  if (!hops.empty() && !authorizer.MayForward(alert, self, true).allowed) {
    return out;
  }
  for (const std::string& peer : peers) {
    if (peer == self ||
        std::find(hops.begin(), hops.end(), peer) != hops.end()) {
      continue;
    }
    if (authorizer.MayForward(alert, peer, false).allowed) out.push_back(peer);
  }
  return out;
}

}  // namespace ibsm::broker
