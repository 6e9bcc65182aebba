// The Auditor service: queries, checkpoints, proofs and exports of the audit
// trail, for agencies with the AUDITOR role. Reads run on the WorkerPool,
// never inside a reaction; every call is itself recorded in the trail.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "context/node_context.h"
#include "delivery/worker_pool.h"
#include "ibsm/merkle.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "publish/committer.h"
#include "services/authenticate.h"
#include "services/grpc_status.h"
#include "services/raw_message.h"
#include "services/services.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

using google::protobuf::util::TimeUtil;

constexpr uint32_t kDefaultLimit = 1000;
constexpr uint32_t kMaxLimit = 100000;
constexpr size_t kRecordsPerResponse = 500;
constexpr size_t kScanPerFill = 20000;
constexpr uint64_t kMaxExportRecords = 200000;
constexpr uint32_t kDefaultAlertExport = 10000;
constexpr uint32_t kMaxAlertExport = 100000;

std::string HashBytes(const Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

// What one auditor may see of the trail under the policy of its call:
// records about an alert above its clearance lose their metadata unless the
// policy grants it (Authorizer::MaySeeAuditMetadata). Redacted records are
// served, not omitted, so counts and indices stay honest. Used by one call
// at a time; not thread-safe.
class AuditView {
 public:
  AuditView(std::shared_ptr<const Authorizer> authorizer, Identity auditor)
      : authorizer_(std::move(authorizer)), auditor_(std::move(auditor)) {
    // A grant of all metadata does not depend on the level.
    sees_all_ = authorizer_->MaySeeAuditMetadata(auditor_, "").allowed;
  }

  bool sees_all() const { return sees_all_; }

  // Redacts `record` in place when it concerns an alert the auditor may not
  // see the metadata of; returns whether it did.
  bool Apply(v1::AuditRecord* record) {
    if (sees_all_) return false;
    bool hidden =
        !record->classification().empty() && !MaySee(record->classification());
    for (v1::AuditedAlert& alert : *record->mutable_alerts()) {
      if (MaySee(alert.classification())) continue;
      hidden = true;
      alert.clear_alert_id();
      alert.clear_originator();
      alert.clear_topic();
    }
    if (!hidden) return false;
    // Kept: index, time, node, actor, action, allowed, policy_version,
    // classification, sequence -- who acted, when, at which level, decided
    // how; overseeing that is the auditor's job. What it was about goes.
    record->clear_reason();
    record->clear_rule();
    record->clear_alert_id();
    record->clear_originator();
    record->clear_topic();
    record->clear_payload_sha256();
    record->clear_recipient();
    record->clear_detail();
    return true;
  }

  // For calls that return records as hashed: OK, or PERMISSION_DENIED when
  // the stored `bytes` at `index` would be redacted (or cannot be read, so
  // that cannot be decided).
  absl::Status CheckWhole(uint64_t index, absl::string_view bytes) {
    if (sees_all_) return absl::OkStatus();
    v1::AuditRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::PermissionDeniedError(absl::StrCat(
          "audit record ", index,
          " cannot be parsed, so whether it is above your clearance cannot "
          "be decided; it is not served"));
    }
    if (Apply(&record)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "audit record ", index,
          " concerns an alert above your clearance; it is served only "
          "redacted (Query), not as hashed. The policy's "
          "audit_metadata_above_clearance grants whole records"));
    }
    return absl::OkStatus();
  }

 private:
  bool MaySee(const std::string& classification) {
    auto it = cache_.find(classification);
    if (it == cache_.end()) {
      it = cache_
               .emplace(
                   classification,
                   authorizer_->MaySeeAuditMetadata(auditor_, classification)
                       .allowed)
               .first;
    }
    return it->second;
  }

  std::shared_ptr<const Authorizer> authorizer_;
  Identity auditor_;
  bool sees_all_ = false;
  absl::flat_hash_map<std::string, bool> cache_;
};

// Checks the AUDITOR role of `who` and records the call, allowed or
// refused; on success, the caller's view of the trail under the same policy.
absl::StatusOr<std::shared_ptr<AuditView>> Authorize(
    NodeContext* node, Identity who, v1::AuditAction action,
    const std::string& detail) {
  std::shared_ptr<const Authorizer> authorizer = node->authorizer();
  std::string actor = who.id();
  Decision decision = authorizer->MayAudit(who);
  v1::AuditRecord record =
      AuditEvent(decision.allowed ? action : v1::AUDIT_CALL_REFUSED, actor,
                 decision.allowed, decision.reason);
  record.set_rule(decision.rule);
  record.set_policy_version(decision.policy_version);
  record.set_detail(detail);
  node->committer()->Audit(std::move(record));
  if (!decision.allowed) {
    return absl::PermissionDeniedError(
        absl::StrCat("audit trail access refused: ", decision.reason));
  }
  return std::make_shared<AuditView>(std::move(authorizer), std::move(who));
}

// Admits one Auditor call: authenticates the caller, parses its request
// bytes into `*request` (bytes that are not a `Request` are refused with
// INVALID_ARGUMENT, see broker/services/raw_message.h), then authorizes it.
// Each call is recorded in the trail once: as refused (by AuthenticateCall, or
// here with `method` as detail) or by Authorize, with `detail(*request)`.
template <typename Request, typename Detail>
absl::StatusOr<std::shared_ptr<AuditView>> Admit(
    NodeContext* node, grpc::CallbackServerContext* context,
    absl::string_view method, const grpc::ByteBuffer& request_bytes,
    Request* request, v1::AuditAction action, Detail detail) {
  absl::StatusOr<Identity> who = AuthenticateCall(node, context, "audit");
  if (!who.ok()) return who.status();
  if (absl::Status parsed = ParseRequest(request_bytes, request);
      !parsed.ok()) {
    AuditRefusedCall(node, who->id(), method, parsed);
    return parsed;
  }
  return Authorize(node, *std::move(who), action, detail(*request));
}

bool Matches(const v1::AuditQuery& q, const v1::AuditRecord& r) {
  if (q.has_from_time() && r.time() < q.from_time()) return false;
  if (q.has_to_time() && !(r.time() < q.to_time())) return false;
  if (!q.actor().empty() && r.actor() != q.actor()) return false;
  if (!q.node().empty() && r.node() != q.node()) return false;
  // A delivery record may list several alerts: it matches if one does.
  if (!q.topic().empty() && r.topic() != q.topic() &&
      std::none_of(
          r.alerts().begin(), r.alerts().end(),
          [&](const v1::AuditedAlert& a) { return a.topic() == q.topic(); })) {
    return false;
  }
  if (!q.alert_id().empty() && r.alert_id() != q.alert_id() &&
      std::none_of(r.alerts().begin(), r.alerts().end(),
                   [&](const v1::AuditedAlert& a) {
                     return a.alert_id() == q.alert_id();
                   })) {
    return false;
  }
  if (q.action() != v1::AUDIT_ACTION_UNSPECIFIED && r.action() != q.action()) {
    return false;
  }
  if (q.decision() == v1::AuditQuery::DECISION_ALLOWED && !r.allowed()) {
    return false;
  }
  if (q.decision() == v1::AuditQuery::DECISION_DENIED && r.allowed()) {
    return false;
  }
  return true;
}

// Streams matching records in pages; one write in flight, reads on workers.
class QueryReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  QueryReactor(NodeContext* node, grpc::CallbackServerContext* context,
               const grpc::ByteBuffer* request_bytes)
      : node_(node) {
    absl::StatusOr<std::shared_ptr<AuditView>> view =
        Admit(node, context, "Auditor.Query", *request_bytes, &query_,
              v1::AUDIT_AUDITOR_QUERY,
              [](const v1::AuditQuery& q) { return q.ShortDebugString(); });
    if (!view.ok()) {
      Finish(ToGrpcStatus(view.status()));
      return;
    }
    view_ = *std::move(view);
    next_index_ = query_.from_index();
    remaining_ = query_.limit() == 0 ? kDefaultLimit
                                     : std::min(query_.limit(), kMaxLimit);
    ScheduleFill();
  }

  void OnWriteDone(bool ok) override {
    if (!ok || done_) {
      Finish(ok ? grpc::Status::OK : grpc::Status::CANCELLED);
      return;
    }
    ScheduleFill();
  }
  void OnDone() override {
    const NodeContext* node = node_;
    delete this;
    node->CallEnded();
  }

 private:
  void ScheduleFill() {
    node_->workers()->Schedule([this] { Fill(); });
  }

  void Fill() {
    response_.Clear();
    absl::StatusOr<uint64_t> size = AuditSize(*node_->store());
    if (!size.ok()) {
      Finish(ToGrpcStatus(size.status()));
      return;
    }
    size_t examined = 0;
    std::optional<uint64_t> unparseable;
    absl::Status scanned =
        ScanAudit(*node_->store(), next_index_, kScanPerFill,
                  [&](uint64_t index, absl::string_view bytes) {
                    ++examined;
                    v1::AuditRecord record;
                    if (!record.ParseFromArray(
                            bytes.data(), static_cast<int>(bytes.size()))) {
                      unparseable = index;
                      return false;
                    }
                    next_index_ = index + 1;
                    // Filters see the auditor's view, so a query for a
                    // hidden topic or id does not confirm it exists.
                    const bool redacted = view_->Apply(&record);
                    if (Matches(query_, record)) {
                      if (redacted) response_.add_redacted_indices(index);
                      *response_.add_records() = std::move(record);
                      --remaining_;
                    }
                    return remaining_ > 0 &&
                           static_cast<size_t>(response_.records_size()) <
                               kRecordsPerResponse;
                  });
    if (scanned.ok() && unparseable.has_value()) {
      // A record the trail cannot show is evidence lost, never a record
      // that silently matches nothing.
      scanned = absl::DataLossError(absl::StrCat(
          "audit record ", *unparseable,
          " in the node's store does not parse; the trail is damaged from "
          "there (verify an export with 'ibsm audit verify')"));
    }
    if (!scanned.ok()) {
      Finish(ToGrpcStatus(scanned));
      return;
    }
    bool exhausted = next_index_ >= *size || examined == 0;
    done_ = remaining_ == 0 || exhausted;
    response_.set_next_index(next_index_);
    response_.set_more(!exhausted);
    if (absl::Status serialized =
            SerializeResponse(response_, &response_bytes_);
        !serialized.ok()) {
      Finish(ToGrpcStatus(serialized));
      return;
    }
    StartWrite(&response_bytes_);
  }

  NodeContext* const node_;
  std::shared_ptr<AuditView> view_;
  v1::AuditQuery query_;  // set before the first fill, then only read
  uint64_t next_index_ = 0;
  uint32_t remaining_ = 0;
  bool done_ = false;  // touched by one fill or write at a time
  v1::AuditQueryResponse response_;
  grpc::ByteBuffer response_bytes_;  // response_ as written
};

absl::StatusOr<uint64_t> ResolveSize(const Store& store, uint64_t requested) {
  if (requested != 0) return requested;
  IBSM_ASSIGN_OR_RETURN(v1::SignedCheckpoint latest, LatestCheckpoint(store));
  return latest.tree_size();
}

absl::StatusOr<v1::InclusionProof> BuildInclusion(
    const Store& store, const v1::InclusionProofRequest& request,
    AuditView& view) {
  absl::Status visible = absl::OkStatus();
  IBSM_RETURN_IF_ERROR(ScanAudit(store, request.index(), 1,
                                 [&](uint64_t index, absl::string_view bytes) {
                                   if (index == request.index()) {
                                     visible = view.CheckWhole(index, bytes);
                                   }
                                   return false;
                                 }));
  IBSM_RETURN_IF_ERROR(visible);
  IBSM_ASSIGN_OR_RETURN(uint64_t size, ResolveSize(store, request.tree_size()));
  IBSM_ASSIGN_OR_RETURN(
      std::vector<Hash> path,
      InclusionProof(StoredMerkleTree(&store), request.index(), size));
  v1::InclusionProof proof;
  proof.set_index(request.index());
  proof.set_tree_size(size);
  for (const Hash& h : path) proof.add_hashes(HashBytes(h));
  IBSM_RETURN_IF_ERROR(ScanAudit(store, request.index(), 1,
                                 [&](uint64_t index, absl::string_view bytes) {
                                   if (index == request.index()) {
                                     proof.set_record(std::string(bytes));
                                   }
                                   return false;
                                 }));
  if (absl::StatusOr<v1::SignedCheckpoint> c = CheckpointAt(store, size);
      c.ok()) {
    *proof.mutable_checkpoint() = *c;
  }
  return proof;
}

absl::StatusOr<v1::ConsistencyProof> BuildConsistency(
    const Store& store, const v1::ConsistencyProofRequest& request) {
  IBSM_ASSIGN_OR_RETURN(uint64_t to, ResolveSize(store, request.to_size()));
  IBSM_ASSIGN_OR_RETURN(
      std::vector<Hash> hashes,
      ConsistencyProof(StoredMerkleTree(&store), request.from_size(), to));
  v1::ConsistencyProof proof;
  proof.set_from_size(request.from_size());
  proof.set_to_size(to);
  for (const Hash& h : hashes) proof.add_hashes(HashBytes(h));
  return proof;
}

absl::StatusOr<v1::AuditExport> BuildExport(const Store& store,
                                            const std::string& node_id,
                                            const v1::ExportRequest& request,
                                            AuditView& view) {
  IBSM_ASSIGN_OR_RETURN(v1::SignedCheckpoint checkpoint,
                        request.to_size() == 0
                            ? LatestCheckpoint(store)
                            : CheckpointAt(store, request.to_size()));
  const uint64_t size = checkpoint.tree_size();
  const uint64_t first = request.first_index();
  if (first > size) {
    return absl::InvalidArgumentError(
        absl::StrCat("first_index ", first,
                     " is beyond the latest checkpoint (size ", size, ")"));
  }
  if (size - first > kMaxExportRecords) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the export would hold ", size - first, " records; export at most ",
        kMaxExportRecords, " at a time (raise first_index)"));
  }
  v1::AuditExport out;
  out.set_node_id(node_id);
  *out.mutable_checkpoint() = checkpoint;
  out.set_first_index(first);
  StoredMerkleTree tree(&store);
  IBSM_ASSIGN_OR_RETURN(std::vector<Hash> left, CompactRange(tree, first));
  for (const Hash& h : left) out.add_left_subtree_hashes(HashBytes(h));
  // Records as stored, whatever state they are in: judging them is the
  // verifier's job. An export is whole or refused: a redacted record would
  // not hash to its leaf.
  absl::Status visible = absl::OkStatus();
  IBSM_RETURN_IF_ERROR(ScanAudit(
      store, first, size - first, [&](uint64_t index, absl::string_view bytes) {
        if (index >= size) return false;
        visible = view.CheckWhole(index, bytes);
        if (!visible.ok()) return false;
        out.add_records(std::string(bytes));
        std::optional<Hash> leaf = tree.Get(0, index);
        out.add_stored_leaf_hashes(leaf ? HashBytes(*leaf) : std::string());
        return true;
      }));
  IBSM_RETURN_IF_ERROR(visible);
  if (request.kept_size() != 0 && request.kept_size() <= size) {
    IBSM_ASSIGN_OR_RETURN(std::vector<Hash> proof,
                          ConsistencyProof(tree, request.kept_size(), size));
    for (const Hash& h : proof) out.add_consistency_proof(HashBytes(h));
    if (absl::StatusOr<v1::SignedCheckpoint> kept =
            CheckpointAt(store, request.kept_size());
        kept.ok()) {
      *out.mutable_earlier_checkpoint() = *kept;
    }
  }
  return out;
}

// Digests of the log's sequences [from_sequence, last], at most `limit`.
absl::StatusOr<v1::AlertExport> BuildAlertExport(
    const Store& store, const std::string& node_id, uint64_t last_sequence,
    const v1::AlertExportRequest& request) {
  const uint64_t from = std::max<uint64_t>(request.from_sequence(), 1);
  const uint64_t limit = request.limit() == 0
                             ? kDefaultAlertExport
                             : std::min(request.limit(), kMaxAlertExport);
  v1::AlertExport out;
  out.set_node_id(node_id);
  out.set_from_sequence(from);
  if (from > last_sequence) {
    out.set_to_sequence(from - 1);  // empty range
    return out;
  }
  const uint64_t to = std::min(last_sequence, from + limit - 1);
  out.set_to_sequence(to);
  IBSM_RETURN_IF_ERROR(AppendAlertDigests(store, from, to, &out));
  return out;
}

// Raw methods: requests are parsed by ParseRequest, so bytes that are not
// the method's message get INVALID_ARGUMENT with a reason (raw_message.h).
class AuditorService final
    : public v1::Auditor::WithRawCallbackMethod_Query<
          v1::Auditor::WithRawCallbackMethod_GetCheckpoint<
              v1::Auditor::WithRawCallbackMethod_GetInclusionProof<
                  v1::Auditor::WithRawCallbackMethod_GetConsistencyProof<
                      v1::Auditor::WithRawCallbackMethod_Export<
                          v1::Auditor::WithRawCallbackMethod_ExportAlerts<
                              v1::Auditor::Service>>>>>> {
 public:
  explicit AuditorService(NodeContext* node) : node_(node) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Query(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes) override {
    return new QueryReactor(node_, context, request_bytes);
  }

  grpc::ServerUnaryReactor* GetCheckpoint(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes,
      grpc::ByteBuffer* response_bytes) override {
    return Unary<v1::CheckpointRequest, v1::SignedCheckpoint>(
        context, "Auditor.GetCheckpoint", request_bytes, response_bytes,
        v1::AUDIT_AUDITOR_QUERY,
        [](const v1::CheckpointRequest&) { return std::string("checkpoint"); },
        [node = node_](const v1::CheckpointRequest&, AuditView&,
                       v1::SignedCheckpoint* out) {
          IBSM_ASSIGN_OR_RETURN(*out, LatestCheckpoint(*node->store()));
          return absl::OkStatus();
        });
  }

  grpc::ServerUnaryReactor* GetInclusionProof(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes,
      grpc::ByteBuffer* response_bytes) override {
    return Unary<v1::InclusionProofRequest, v1::InclusionProof>(
        context, "Auditor.GetInclusionProof", request_bytes, response_bytes,
        v1::AUDIT_AUDITOR_QUERY,
        [](const v1::InclusionProofRequest& request) {
          return absl::StrCat("inclusion proof ", request.ShortDebugString());
        },
        [node = node_](const v1::InclusionProofRequest& request,
                       AuditView& view, v1::InclusionProof* out) {
          IBSM_ASSIGN_OR_RETURN(*out,
                                BuildInclusion(*node->store(), request, view));
          return absl::OkStatus();
        });
  }

  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes,
      grpc::ByteBuffer* response_bytes) override {
    return Unary<v1::ConsistencyProofRequest, v1::ConsistencyProof>(
        context, "Auditor.GetConsistencyProof", request_bytes, response_bytes,
        v1::AUDIT_AUDITOR_QUERY,
        [](const v1::ConsistencyProofRequest& request) {
          return absl::StrCat("consistency proof ", request.ShortDebugString());
        },
        [node = node_](const v1::ConsistencyProofRequest& request, AuditView&,
                       v1::ConsistencyProof* out) {
          IBSM_ASSIGN_OR_RETURN(*out,
                                BuildConsistency(*node->store(), request));
          return absl::OkStatus();
        });
  }

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request_bytes,
                                   grpc::ByteBuffer* response_bytes) override {
    return Unary<v1::ExportRequest, v1::AuditExport>(
        context, "Auditor.Export", request_bytes, response_bytes,
        v1::AUDIT_AUDITOR_EXPORT,
        [](const v1::ExportRequest& request) {
          return request.ShortDebugString();
        },
        [node = node_](const v1::ExportRequest& request, AuditView& view,
                       v1::AuditExport* out) {
          IBSM_ASSIGN_OR_RETURN(
              *out, BuildExport(*node->store(), node->config().node_id(),
                                request, view));
          return absl::OkStatus();
        });
  }

  grpc::ServerUnaryReactor* ExportAlerts(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes,
      grpc::ByteBuffer* response_bytes) override {
    return Unary<v1::AlertExportRequest, v1::AlertExport>(
        context, "Auditor.ExportAlerts", request_bytes, response_bytes,
        v1::AUDIT_AUDITOR_EXPORT,
        [](const v1::AlertExportRequest& request) {
          return absl::StrCat("alerts ", request.ShortDebugString());
        },
        [node = node_](const v1::AlertExportRequest& request, AuditView& view,
                       v1::AlertExport* out) {
          IBSM_ASSIGN_OR_RETURN(
              *out,
              BuildAlertExport(*node->store(), node->config().node_id(),
                               node->committer()->last_sequence(), request));
          // Whole or refused, like Export: a digest is the
          // metadata the auditor's view may hide.
          if (view.sees_all()) return absl::OkStatus();
          for (const v1::StoredAlertDigest& d : out->alerts()) {
            v1::AuditRecord probe;
            probe.set_classification(d.classification());
            if (!d.classification().empty() && view.Apply(&probe)) {
              out->Clear();
              return absl::PermissionDeniedError(
                  absl::StrCat("the stored alert at sequence ", d.sequence(),
                               " is above your clearance; the policy's "
                               "audit_metadata_above_clearance grants its "
                               "digest"));
            }
          }
          return absl::OkStatus();
        });
  }

 private:
  // Admits the call (parsing `request_bytes` as a `Request`), then runs
  // `work` on a worker and answers with the `Response` it filled.
  template <typename Request, typename Response, typename Detail, typename Work>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                  absl::string_view method,
                                  const grpc::ByteBuffer* request_bytes,
                                  grpc::ByteBuffer* response_bytes,
                                  v1::AuditAction action, Detail detail,
                                  Work work) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto request = std::make_shared<Request>();
    absl::StatusOr<std::shared_ptr<AuditView>> view =
        Admit(node_, context, method, *request_bytes, request.get(), action,
              std::move(detail));
    if (!view.ok()) {
      reactor->Finish(ToGrpcStatus(view.status()));
      return reactor;
    }
    node_->workers()->Schedule([reactor, response_bytes, request, work,
                                view = *std::move(view)]() mutable {
      Response response;
      absl::Status done = work(*request, *view, &response);
      if (done.ok()) done = SerializeResponse(response, response_bytes);
      reactor->Finish(ToGrpcStatus(done));
    });
    return reactor;
  }

  NodeContext* const node_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAuditorService(NodeContext* node) {
  return std::make_unique<AuditorService>(node);
}

}  // namespace ibsm::broker
