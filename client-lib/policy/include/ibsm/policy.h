// The sharing policy engine: a validated, compiled Policy (proto/ibsm/v1/
// policy.proto) and the one decision function that says whether an alert may
// reach a recipient -- a local agency (delivery) or a node (federation egress,
// ingress and hub relay). Pure code with no I/O apart from Load(); decisions
// are values with the rule that matched and a human-readable reason.
//
// A Policy is immutable after Parse() and safe for concurrent use. A reload
// builds a new Policy and swaps the shared pointer (NodeContext), so one
// decision never mixes two policies.
//
// Decision order and precedence are documented in docs/policy.md.
#ifndef IBSM_POLICY_H_
#define IBSM_POLICY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ibsm/authorizer.h"

namespace ibsm::v1 {
class Alert;
}  // namespace ibsm::v1
namespace ibsm::internal::v1 {
class Policy;
enum Role : int;  // policy.proto
}  // namespace ibsm::internal::v1

namespace ibsm {

// What a decision needs to know of an alert (never its payload).
struct AlertFacts {
  std::string topic;
  std::string classification;
  std::vector<std::string> releasable_to;  // node ids or groups
  bool orcon = false;
  std::string tlp;         // "", CLEAR, GREEN, AMBER, AMBER+STRICT, RED
  std::string originator;  // "CIV/police"

  static AlertFacts Of(const v1::Alert& alert);
};

struct Recipient {
  enum class Kind { kAgency, kNode };
  Kind kind = Kind::kAgency;
  std::string id;  // "MLI/customs" for an agency, "MLI" for a node
  // For a node: it would pass the alert on to other nodes (hub relay).
  bool relay = false;
  // For an agency: the node that would deliver to it; empty for its own.
  std::string at;

  static Recipient Agency(std::string id, std::string at = "");
  static Recipient Node(std::string id, bool relay = false);
};

class CompiledPolicy;  // policy.cc

class Policy final : public Authorizer {
 public:
  // Parses and validates `text` (named `source` in errors). INVALID_ARGUMENT
  // "source:line: reason" for syntax errors, unknown fields, unknown nodes,
  // groups or levels, duplicate ids, bad patterns or principals, and rules
  // that can never match.
  //
  // `local_node` is the node the policy is enforced at (a node of the
  // policy, or INVALID_ARGUMENT); the Authorizer entry points decide for
  // callers connected there. Tools that only ask the decision functions
  // below pass none; the entry points of such a policy refuse every call.
  static absl::StatusOr<std::shared_ptr<const Policy>> Parse(
      absl::string_view text, absl::string_view source,
      absl::string_view local_node = {});
  static absl::StatusOr<std::shared_ptr<const Policy>> Load(
      const std::string& path, absl::string_view local_node = {});
  ~Policy() override;

  // Authorizer: what the broker asks.
  const std::string& version() const override;
  const std::vector<std::string>& classification_levels() const override;
  Decision MayPublish(const Identity& publisher,
                      const v1::Alert& alert) const override;
  Decision MaySubscribe(const Identity& subscriber,
                        const std::string& topic_pattern) const override;
  Decision MayReceive(const Identity& recipient,
                      const v1::Alert& alert) const override;
  // Agencies with ROLE_AUDITOR at this node (their own, or remote_access).
  Decision MayAudit(const Identity& auditor) const override;
  Decision MaySeeAuditMetadata(const Identity& auditor,
                               absl::string_view classification) const override;
  // Nodes of the policy, and agencies that may act at this node.
  Decision MayGetNodeInfo(const Identity& caller) const override;
  // Agencies with ROLE_ADMIN or ROLE_AUDITOR at this node.
  Decision MaySeeNodeCounts(const Identity& caller) const override;
  // Decide(AlertFacts::Of(alert), Recipient::Node(node, relay)).
  Decision MayForward(const v1::Alert& alert, absl::string_view node,
                      bool relay) const override;
  // DecidePublish(AlertFacts::Of(alert), alert.originator(), origin_node).
  Decision MayHaveOriginated(const v1::Alert& alert,
                             absl::string_view origin_node) const override;

  // The decision functions themselves. Each agency decision starts with
  // DecideAccess: an agency exercises a role at its own node only, unless a
  // remote_access grant names the node (rule "own-node" or
  // "remote-access"). `at_node` empty means the agency's own node.
  Decision DecideAccess(const std::string& agency, internal::v1::Role role,
                        absl::string_view at_node) const;
  Decision DecidePublish(const AlertFacts& alert, const std::string& publisher,
                         absl::string_view at_node = {}) const;
  Decision Decide(const AlertFacts& alert, const Recipient& recipient) const;

  // How long alerts of `topic` are kept; zero when the matching rule sets no
  // retention (or no rule matches).
  absl::Duration RetentionFor(absl::string_view topic) const override;

  // Warnings that do not make the policy invalid: shadowed rules, agencies
  // with no rights, topics nobody may receive, ...
  std::vector<std::string> Lint() const;

  const internal::v1::Policy& proto() const;
  // The node given to Parse/Load; empty for a tool's policy.
  const std::string& local_node() const;

 private:
  explicit Policy(std::unique_ptr<CompiledPolicy> compiled);
  std::unique_ptr<CompiledPolicy> compiled_;
};

}  // namespace ibsm

#endif  // IBSM_POLICY_H_
