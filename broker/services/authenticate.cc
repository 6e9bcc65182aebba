#include "services/authenticate.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_context.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "logging/event_log.h"
#include "publish/committer.h"
#include "services/peer_verifier.h"

namespace ibsm::broker {
namespace {

// What a caller can put into one refusal record: the reason names the
// certificate's id and issuer, both cut to this many bytes.
constexpr size_t kMaxReasonBytes = 512;

std::string Property(const grpc::AuthContext& context, const char* name) {
  std::vector<grpc::string_ref> values = context.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values[0].data(), values[0].size());
}

}  // namespace

absl::StatusOr<Identity> AuthenticatePeer(PeerVerifier* verifier,
                                          const grpc::AuthContext* auth) {
  if (verifier == nullptr || auth == nullptr) {
    return absl::UnauthenticatedError(
        "the peer's certificate is not available to check");
  }
  std::string leaf = Property(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  std::string chain = Property(*auth, GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
  if (leaf.empty() && chain.empty()) {
    return absl::UnauthenticatedError("the peer presented no certificate");
  }
  return verifier->Authenticate(leaf, chain);
}

namespace {

// Counted for the metrics and logged (the log bounds repeats).
void CountAndLogRefusal(NodeContext* node, absl::string_view actor,
                        absl::string_view detail, const absl::Status& status) {
  node->counters()->CountCallRefused(status.code());
  LogRefusal("call refused", actor,
             absl::StrCat(detail, ": ", StatusCodeLabel(status.code()), ": ",
                          status.message().substr(0, kMaxReasonBytes)));
}

void RecordRefusedCall(NodeContext* node, absl::string_view actor,
                       absl::string_view detail, const absl::Status& status) {
  std::string reason(status.message().substr(0, kMaxReasonBytes));
  v1::AuditRecord record =
      AuditEvent(v1::AUDIT_CALL_REFUSED, actor, false, reason);
  record.set_detail(std::string(detail));
  node->committer()->Audit(std::move(record));
}

}  // namespace

void AuditRefusedCall(NodeContext* node, absl::string_view actor,
                      absl::string_view detail, const absl::Status& status) {
  CountAndLogRefusal(node, actor, detail, status);
  RecordRefusedCall(node, actor, detail, status);
}

void AuditLimitRefusal(NodeContext* node, absl::string_view actor,
                       absl::string_view detail, const absl::Status& status) {
  CountAndLogRefusal(node, actor, detail, status);
  std::string note;
  if (!node->identity_limits()->ShouldAudit(actor, status, &note)) return;
  RecordRefusedCall(
      node, actor, detail,
      absl::Status(status.code(), absl::StrCat(status.message(), note)));
}

LiveCalls::Registration::~Registration() { calls_->Remove(id_); }

std::unique_ptr<LiveCalls::Registration> LiveCalls::Add(
    grpc::ServerContextBase* context, std::string actor, std::string call,
    std::string leaf_pem, std::string chain_pem) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  calls_[id] = Call{context, std::move(actor), std::move(call),
                    std::move(leaf_pem), std::move(chain_pem)};
  return std::unique_ptr<Registration>(new Registration(this, id));
}

void LiveCalls::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  calls_.erase(id);
}

size_t LiveCalls::size() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

size_t LiveCalls::EndRefused(PeerVerifier* verifier, NodeContext* node) {
  std::vector<v1::AuditRecord> records;
  {
    // Held while cancelling: a registration is removed only under mu_, so
    // every context seen here is still valid. TryCancel runs the reactor's
    // OnCancel/OnDone on gRPC's threads, never inline, so they cannot wait
    // for mu_ held by this thread.
    absl::MutexLock lock(&mu_);
    for (auto& [id, call] : calls_) {
      absl::Status checked =
          verifier->CheckChain(call.leaf_pem, call.chain_pem);
      if (checked.ok()) continue;
      call.context->TryCancel();
      std::string reason = absl::StrCat(
          "live ", call.call,
          " call ended: ", checked.message().substr(0, kMaxReasonBytes));
      LogEvent(absl::StrCat(call.actor, ": ", reason));
      v1::AuditRecord record =
          AuditEvent(v1::AUDIT_CALL_REFUSED, call.actor, false, reason);
      record.set_detail(call.call);
      records.push_back(std::move(record));
    }
  }
  size_t ended = records.size();
  if (ended > 0) node->committer()->Audit(std::move(records));
  return ended;
}

absl::StatusOr<Identity> AuthenticateCall(
    NodeContext* node, grpc::ServerContextBase* context, absl::string_view call,
    std::unique_ptr<LiveCalls::Registration>* live) {
  PeerVerifier* verifier = node->peer_verifier();
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  absl::StatusOr<Identity> who =
      absl::UnauthenticatedError("no certificate verifier is configured");
  std::string leaf;
  std::string chain;
  if (verifier != nullptr && auth != nullptr) {
    leaf = Property(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME);
    chain = Property(*auth, GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
    who = leaf.empty() && chain.empty()
              ? absl::UnauthenticatedError("the peer presented no certificate")
              : verifier->Authenticate(leaf, chain);
  }
  if (!who.ok()) {
    AuditRefusedCall(node, "unauthenticated", call, who.status());
    return who;
  }
  if (live != nullptr && node->live_calls() != nullptr) {
    *live = node->live_calls()->Add(context, who->id(), std::string(call),
                                    std::move(leaf), std::move(chain));
  }
  return who;
}

void ApplyCertificateChange(NodeContext* node) {
  PeerVerifier* verifier = node->peer_verifier();
  if (verifier == nullptr) return;
  absl::Status reloaded = verifier->Reload();
  if (!reloaded.ok()) {
    // The previous roots and CRLs stay in force; nothing gets weaker.
    LogEvent(
        absl::StrCat("certificate files changed but cannot be loaded, "
                     "the previous CA and CRLs stay in force: ",
                     reloaded.message()));
    return;
  }
  if (node->live_calls() == nullptr) return;
  size_t ended = node->live_calls()->EndRefused(verifier, node);
  if (ended > 0) {
    LogEvent(absl::StrCat(ended,
                          " live call(s) ended: their certificate "
                          "chain is no longer accepted"));
  }
}

}  // namespace ibsm::broker
