// The one place that decides who may publish, subscribe and receive. The
// routing code asks an Authorizer and never decides on its own, so the sharing
// policy engine replaces AllowAuthenticated without touching routing.
//
// Implementations are immutable after construction and safe for concurrent
// use; a policy reload swaps the whole Authorizer (see Node).
#ifndef IBSM_AUTHORIZER_H_
#define IBSM_AUTHORIZER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ibsm/spiffe_id.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm {

// A decision is a value with its reasons, so the audit trail can record why.
struct Decision {
  bool allowed = false;
  std::string rule;    // the rule that matched, e.g. "default"
  std::string reason;  // human-readable, shown to refused callers
  std::string policy_version;

  static Decision Allow(std::string rule, std::string reason,
                        std::string version);
  static Decision Deny(std::string rule, std::string reason,
                       std::string version);
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;

  // Content hash or name of the policy in force.
  virtual const std::string& version() const = 0;
  // Classification levels, lowest first.
  virtual const std::vector<std::string>& classification_levels() const = 0;

  virtual Decision MayPublish(const Identity& publisher,
                              const v1::Alert& alert) const = 0;
  virtual Decision MaySubscribe(const Identity& subscriber,
                                const std::string& topic_pattern) const = 0;
  // Delivery of one stored alert to one local agency.
  virtual Decision MayReceive(const Identity& recipient,
                              const v1::Alert& alert) const = 0;
  // Access to the audit trail (the AUDITOR role) at this node.
  virtual Decision MayAudit(const Identity& auditor) const = 0;
  // Whether an auditor allowed by MayAudit sees the metadata of a record
  // about an alert of `classification`; refused: the record is redacted.
  virtual Decision MaySeeAuditMetadata(
      const Identity& auditor, absl::string_view classification) const = 0;
  // Whether the Node service answers `caller` at all.
  virtual Decision MayGetNodeInfo(const Identity& caller) const = 0;
  // Whether its answer includes the node's counts (last sequence, active
  // subscriptions), which tell how busy the node is.
  virtual Decision MaySeeNodeCounts(const Identity& caller) const = 0;
  // How long alerts of `topic` stay in the log; zero: until their own
  // expiry, if any.
  virtual absl::Duration RetentionFor(absl::string_view topic) const {
    return absl::ZeroDuration();
  }

  // Federation (docs/federation.md). Whether node `node` may hold the
  // alert: egress to a peer, and ingress at this node (`node` = this
  // node). With `relay`, whether `node` may also pass it on to further
  // nodes (a hub; never for ORCON, TLP:RED or TLP:AMBER+STRICT).
  virtual Decision MayForward(const v1::Alert& alert, absl::string_view node,
                              bool relay) const = 0;
  // Ingress: whether the policy lets the alert's originator publish it at
  // `origin_node`, the node it was published at.
  virtual Decision MayHaveOriginated(const v1::Alert& alert,
                                     absl::string_view origin_node) const = 0;
};

// The development-mode authorizer of a node without a policy_file (Node
// logs a warning when it uses it): every authenticated agency of this node
// may publish and receive everything; node certificates may do neither. A
// configured sharing policy is a Policy (broker/policy.h) instead.
class AllowAuthenticated final : public Authorizer {
 public:
  explicit AllowAuthenticated(std::string node_id);

  const std::string& version() const override { return version_; }
  const std::vector<std::string>& classification_levels() const override;
  Decision MayPublish(const Identity& publisher,
                      const v1::Alert& alert) const override;
  Decision MaySubscribe(const Identity& subscriber,
                        const std::string& topic_pattern) const override;
  Decision MayReceive(const Identity& recipient,
                      const v1::Alert& alert) const override;
  // Refused: without a policy no agency has the AUDITOR role.
  Decision MayAudit(const Identity& auditor) const override;
  Decision MaySeeAuditMetadata(const Identity& auditor,
                               absl::string_view classification) const override;
  // Development only: every authenticated caller, with counts.
  Decision MayGetNodeInfo(const Identity& caller) const override;
  Decision MaySeeNodeCounts(const Identity& caller) const override;
  // Refused: without a policy a node does not federate.
  Decision MayForward(const v1::Alert& alert, absl::string_view node,
                      bool relay) const override;
  Decision MayHaveOriginated(const v1::Alert& alert,
                             absl::string_view origin_node) const override;

 private:
  Decision LocalAgency(const Identity& who) const;

  std::string node_id_;
  std::string version_ = "allow-authenticated";
};

}  // namespace ibsm

#endif  // IBSM_AUTHORIZER_H_
