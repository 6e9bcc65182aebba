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
#ifndef IBSM_BROKER_POLICY_H_
#define IBSM_BROKER_POLICY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/authorizer.h"

namespace ibsm::v1 {
class Alert;
class Policy;
}  // namespace ibsm::v1

namespace ibsm::broker {

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

  static Recipient Agency(std::string id);
  static Recipient Node(std::string id, bool relay = false);
};

class CompiledPolicy;  // policy.cc

class Policy final : public Authorizer {
 public:
  // Parses and validates `text` (named `source` in errors). INVALID_ARGUMENT
  // "source:line: reason" for syntax errors, unknown fields, unknown nodes,
  // groups or levels, duplicate ids, bad patterns or principals, and rules
  // that can never match.
  static absl::StatusOr<std::shared_ptr<const Policy>> Parse(
      absl::string_view text, absl::string_view source);
  static absl::StatusOr<std::shared_ptr<const Policy>> Load(
      const std::string& path);
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
  // Agencies of any node with ROLE_AUDITOR.
  Decision MayAudit(const Identity& auditor) const override;

  // The decision functions themselves.
  Decision DecidePublish(const AlertFacts& alert,
                         const std::string& publisher) const;
  Decision Decide(const AlertFacts& alert, const Recipient& recipient) const;

  // How long alerts of `topic` are kept; zero when the matching rule sets no
  // retention (or no rule matches).
  absl::Duration RetentionFor(absl::string_view topic) const override;

  // Warnings that do not make the policy invalid: shadowed rules, agencies
  // with no rights, topics nobody may receive, ...
  std::vector<std::string> Lint() const;

  const v1::Policy& proto() const;

 private:
  explicit Policy(std::unique_ptr<CompiledPolicy> compiled);
  std::unique_ptr<CompiledPolicy> compiled_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_POLICY_H_
