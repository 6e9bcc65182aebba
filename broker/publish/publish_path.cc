#include "publish/publish_path.h"

#include <google/protobuf/repeated_ptr_field.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "context/node_context.h"
#include "ibsm/alert_rules.h"
#include "ibsm/canonical_alert.h"
#include "ibsm/crypto.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "publish/route.h"
#include "storage/log_cache.h"
#include "storage/store.h"

namespace ibsm::broker {

using google::protobuf::util::TimeUtil;

namespace {

// The audit trail records the payload's hash, never the payload.
std::string PayloadSha256(const std::string& payload) {
  return std::string(crypto::HashView(crypto::Sha256(payload)));
}

// Only the originator of an alert can update or retract it, and an update
// or retraction takes the route of the alert it references: same topic,
// classification and handling, so every policy decision is the same
// (docs/federation.md, "Updates and retractions").
absl::Status CheckReferences(const NodeContext& node, const v1::Alert& alert) {
  for (const v1::AlertReference& ref : alert.references()) {
    if (ref.kind() != v1::AlertReference::KIND_UPDATE &&
        ref.kind() != v1::AlertReference::KIND_RETRACTION) {
      continue;
    }
    const char* what = ref.kind() == v1::AlertReference::KIND_UPDATE
                           ? "an update"
                           : "a retraction";
    if (ref.originator() != alert.originator()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "alert '", alert.id(), "' is ", what, " of alert '", ref.originator(),
          "/", ref.alert_id(), "', but only its originator ", ref.originator(),
          " may update or retract it"));
    }
    absl::StatusOr<std::optional<uint64_t>> sequence =
        node.store()->FindDuplicate(ref.originator(), ref.alert_id());
    if (!sequence.ok()) return sequence.status();
    if (!sequence->has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "alert '", alert.id(), "' is ", what, " of alert '", ref.alert_id(),
          "', which this node does not hold (never "
          "published here, or removed by retention)"));
    }
    absl::StatusOr<std::optional<internal::v1::StoredAlert>> original =
        node.store()->GetAlert(**sequence);
    if (!original.ok()) return original.status();
    if (!original->has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("alert '", alert.id(), "' is ", what, " of alert '",
                       ref.alert_id(), "', which is no longer in the log"));
    }
    const v1::Alert& o = (*original)->alert();
    const bool same_route =
        o.topic() == alert.topic() &&
        o.classification() == alert.classification() &&
        std::equal(o.releasable_to().begin(), o.releasable_to().end(),
                   alert.releasable_to().begin(),
                   alert.releasable_to().end()) &&
        o.orcon() == alert.orcon() && o.tlp() == alert.tlp();
    if (!same_route) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alert '", alert.id(), "' is ", what, " of alert '", ref.alert_id(),
          "' and must keep its topic (", o.topic(), "), classification (",
          o.classification(),
          "), releasable_to, orcon and tlp, so that it reaches everyone "
          "who received the original"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOriginatorSignature(const NodeContext& node,
                                      const v1::Alert& alert) {
  const bool is_signed =
      !alert.signature().empty() || !alert.signing_chain().empty();
  if (!is_signed) {
    if (node.federated()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "alert '", alert.id().substr(0, 128), "' is not signed: node ",
          node.config().node_id(),
          " is federated: alerts must be signed by their originator "
          "(docs/signature-format.md)"));
    }
    // A single node: an unsigned alert can never cross a link (routing
    // gives it no peers).
    return absl::OkStatus();
  }
  // The broker never changes a signed alert, so it cannot fill these in.
  if (alert.originator().empty() || !alert.has_created_at()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signed alert '", alert.id().substr(0, 128),
        "' must carry its originator and created_at itself: the signature "
        "covers them and the node does not change a signed alert "
        "(docs/signature-format.md)"));
  }
  const AlertVerifier* verifier = node.alert_verifier();
  if (verifier == nullptr) {
    // Fail closed: a check that cannot run refuses.
    return absl::UnavailableError(
        "this node cannot verify alert signatures yet: retry later");
  }
  return verifier->VerifyAlert(alert);
}

std::string AlertContentSha256(const v1::Alert& alert) {
  return PayloadSha256(CanonicalAlertBytes(alert));
}

std::string AlertContentSha256InPlace(v1::Alert* alert) {
  std::unique_ptr<google::protobuf::Timestamp> created(
      alert->release_created_at());
  std::string signature;
  signature.swap(*alert->mutable_signature());
  google::protobuf::RepeatedPtrField<std::string> chain;
  chain.Swap(alert->mutable_signing_chain());
  std::string hash = AlertContentSha256(*alert);
  alert->mutable_signing_chain()->Swap(&chain);
  alert->mutable_signature()->swap(signature);
  alert->set_allocated_created_at(created.release());
  return hash;
}

absl::StatusOr<std::unique_ptr<PublishGroup>> PreparePublish(
    const NodeContext& node, const Identity& caller,
    google::protobuf::RepeatedPtrField<v1::Alert>* alerts) {
  const internal::v1::Limits& limits = node.config().limits();
  if (alerts->empty()) {
    return absl::InvalidArgumentError("the publish request has no alerts");
  }
  if (static_cast<uint32_t>(alerts->size()) > limits.max_batch_alerts()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the publish request has ", alerts->size(),
        " alerts; this node accepts at most ", limits.max_batch_alerts(),
        " per request: split the batch"));
  }
  std::shared_ptr<const Authorizer> authorizer = node.authorizer();
  AlertLimits rules;
  rules.max_alert_bytes = limits.max_alert_bytes();
  rules.classification_levels = &authorizer->classification_levels();
  const std::string originator = caller.id();
  const google::protobuf::Timestamp now = TimeUtil::GetCurrentTime();

  auto group = std::make_unique<PublishGroup>();
  group->entries.resize(alerts->size());
  for (int i = 0; i < alerts->size(); ++i) {
    PublishEntry& entry = group->entries[i];
    entry.actor = originator;
    entry.record = std::make_shared<LogRecord>();
    internal::v1::StoredAlert& stored = entry.record->stored;
    stored.mutable_alert()->Swap(alerts->Mutable(i));
    v1::Alert& alert = *stored.mutable_alert();
    if (!alert.originator().empty() && alert.originator() != originator) {
      entry.status = absl::PermissionDeniedError(absl::StrCat(
          "alert '", alert.id(), "' claims originator '", alert.originator(),
          "' but the client certificate identifies '", originator, "'"));
      continue;
    }
    entry.status = CheckOriginatorSignature(node, alert);
    if (!entry.status.ok()) continue;
    alert.set_originator(originator);
    entry.payload_sha256 = PayloadSha256(alert.payload());
    entry.status = ValidateAlert(alert, rules);
    if (!entry.status.ok()) continue;
    Decision decision = authorizer->MayPublish(caller, alert);
    entry.decision_rule = decision.rule;
    entry.policy_version = decision.policy_version;
    if (!decision.allowed) {
      entry.status = absl::PermissionDeniedError(absl::StrCat(
          "publish of alert '", alert.id(), "' refused: ", decision.reason,
          " (rule ", decision.rule, ", policy ", decision.policy_version, ")"));
      continue;
    }
    entry.content_sha256 = AlertContentSha256InPlace(&alert);
    // A signed alert has its created_at (CheckOriginatorSignature): nothing
    // the signature covers is changed here.
    if (!alert.has_created_at()) *alert.mutable_created_at() = now;
    if (alert.has_expires_at() && alert.expires_at() <= alert.created_at()) {
      entry.status = absl::InvalidArgumentError(absl::StrCat(
          "alert '", alert.id(), "': expires_at must be after created_at"));
      continue;
    }
    entry.status = CheckReferences(node, alert);
    if (!entry.status.ok()) continue;
    entry.outbox_peers = RoutePeers(*authorizer, alert, {},
                                    node.config().node_id(), node.peer_ids());
    *stored.mutable_received_at() = now;
    stored.set_received_from(node.config().node_id());
    entry.value = stored.SerializeAsString();
    entry.record->bytes = entry.value.size();
    entry.record->charge = LogCache::Charge(*entry.record);
  }
  return group;
}

void AppendResults(const PublishGroup& group, v1::PublishResponse* response) {
  for (const PublishEntry& entry : group.entries) {
    v1::PublishResult* result = response->add_results();
    result->set_alert_id(entry.record->stored.alert().id());
    result->set_code(static_cast<int>(entry.status.code()));
    if (!entry.status.ok()) {
      result->set_message(std::string(entry.status.message()));
    }
    result->set_sequence(entry.sequence);
    result->set_duplicate(entry.duplicate);
    if (entry.status.ok() && !entry.duplicate) {
      for (const std::string& peer : entry.outbox_peers) {
        result->add_forwarded_to(peer);
      }
    }
  }
}

absl::Status FirstError(const PublishGroup& group) {
  for (const PublishEntry& entry : group.entries) {
    if (!entry.status.ok()) return entry.status;
  }
  return absl::OkStatus();
}

}  // namespace ibsm::broker
