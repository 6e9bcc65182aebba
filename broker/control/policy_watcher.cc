#include "control/policy_watcher.h"

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "ibsm/policy.h"
#include "logging/event_log.h"
#include "publish/committer.h"

namespace ibsm::broker {

PolicyWatcher::PolicyWatcher(std::string path, absl::Duration interval,
                             NodeContext* node, Clock* clock)
    : path_(std::move(path)),
      node_(node),
      // The outcome is logged inside Reload; nothing more to do with it.
      task_(interval, clock, [this] { (void)Reload(); }) {}

absl::Status PolicyWatcher::Reload() {
  absl::MutexLock lock(&reload_mu_);
  absl::StatusOr<std::shared_ptr<const Policy>> loaded =
      Policy::Load(path_, node_->config().node_id());
  std::shared_ptr<const Authorizer> current = node_->authorizer();
  if (!loaded.ok()) {
    // Log a refusal once per distinct problem, not at every check.
    std::string problem(loaded.status().message());
    reload_failing_ = true;
    if (problem != last_refusal_) {
      last_refusal_ = problem;
      ++reload_failures_;
      v1::AuditRecord record =
          AuditEvent(v1::AUDIT_POLICY_RELOAD, "operator", false, problem);
      record.set_policy_version(current->version());
      node_->committer()->Audit(std::move(record));
      LogEvent(absl::StrCat("policy reload refused: ", problem, "; policy ",
                            current->version(), " stays in force"));
    }
    return loaded.status();
  }
  last_refusal_.clear();
  reload_failing_ = false;
  if ((*loaded)->version() == current->version()) return absl::OkStatus();
  LogEvent(absl::StrCat("policy ", (*loaded)->version(), " from ", path_,
                        " in force (was ", current->version(), ")"));
  v1::AuditRecord record =
      AuditEvent(v1::AUDIT_POLICY_RELOAD, "operator", true,
                 absl::StrCat("replaces policy ", current->version()));
  record.set_policy_version((*loaded)->version());
  node_->committer()->Audit(std::move(record));
  node_->SetAuthorizer(*std::move(loaded));
  return absl::OkStatus();
}

}  // namespace ibsm::broker
