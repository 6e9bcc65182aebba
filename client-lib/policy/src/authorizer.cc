#include "ibsm/authorizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ibsm/alert_rules.h"

namespace ibsm {

Decision Decision::Allow(std::string rule, std::string reason,
                         std::string version) {
  return Decision{true, std::move(rule), std::move(reason), std::move(version)};
}

Decision Decision::Deny(std::string rule, std::string reason,
                        std::string version) {
  return Decision{false, std::move(rule), std::move(reason),
                  std::move(version)};
}

AllowAuthenticated::AllowAuthenticated(std::string node_id)
    : node_id_(std::move(node_id)) {}

const std::vector<std::string>& AllowAuthenticated::classification_levels()
    const {
  return DefaultClassificationLevels();
}

Decision AllowAuthenticated::LocalAgency(const Identity& who) const {
  if (!who.is_agency()) {
    return Decision::Deny("agencies-only",
                          absl::StrCat("'", who.id(),
                                       "' is a node certificate; only agency "
                                       "certificates may publish or subscribe"),
                          version_);
  }
  if (who.node != node_id_) {
    return Decision::Deny(
        "own-node-only",
        absl::StrCat("agency '", who.id(), "' belongs to node ", who.node,
                     "; agencies connect only to their own node (this is ",
                     node_id_, ")"),
        version_);
  }
  return Decision::Allow("default", "authenticated agency of this node",
                         version_);
}

Decision AllowAuthenticated::MayPublish(const Identity& publisher,
                                        const v1::Alert&) const {
  return LocalAgency(publisher);
}

Decision AllowAuthenticated::MaySubscribe(const Identity& subscriber,
                                          const std::string&) const {
  return LocalAgency(subscriber);
}

Decision AllowAuthenticated::MayReceive(const Identity& recipient,
                                        const v1::Alert&) const {
  return LocalAgency(recipient);
}

Decision AllowAuthenticated::MayAudit(const Identity& auditor) const {
  return Decision::Deny(
      "no-policy",
      absl::StrCat("'", auditor.id(),
                   "' may not read the audit trail: this node runs without a "
                   "sharing policy, so no agency has the AUDITOR role"),
      version_);
}

Decision AllowAuthenticated::MaySeeAuditMetadata(const Identity& auditor,
                                                 absl::string_view) const {
  return MayAudit(auditor);
}

Decision AllowAuthenticated::MayGetNodeInfo(const Identity& caller) const {
  return Decision::Allow("no-policy",
                         absl::StrCat("'", caller.id(),
                                      "' is authenticated; this node runs "
                                      "without a sharing policy"),
                         version_);
}

Decision AllowAuthenticated::MaySeeNodeCounts(const Identity& caller) const {
  return MayGetNodeInfo(caller);
}

Decision AllowAuthenticated::MayForward(const v1::Alert&,
                                        absl::string_view node, bool) const {
  return Decision::Deny(
      "no-policy",
      absl::StrCat("node ", node_id_,
                   " has no policy_file: without a sharing policy it "
                   "exchanges nothing with other nodes (",
                   node, ")"),
      version_);
}

Decision AllowAuthenticated::MayHaveOriginated(const v1::Alert&,
                                               absl::string_view) const {
  return Decision::Deny("no-policy",
                        absl::StrCat("node ", node_id_,
                                     " has no policy_file and accepts no "
                                     "alerts from other nodes"),
                        version_);
}

}  // namespace ibsm
