// The Node service (node info / health, federation links, online backup).
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "control/backup.h"
#include "delivery/subscription_hub.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "logging/event_log.h"
#include "publish/committer.h"
#include "services/authenticate.h"
#include "services/grpc_status.h"
#include "services/raw_message.h"
#include "services/services.h"
#include "storage/key_ring.h"
#include "storage/seal.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

// Records the refusal of `caller`'s call `method` ("Node.GetInfo") by
// `decision` and returns PERMISSION_DENIED "<what> refused: <reason>".
grpc::Status Refuse(NodeContext* node, const Identity& caller,
                    const Decision& decision, absl::string_view method,
                    absl::string_view what) {
  v1::AuditRecord record =
      AuditEvent(v1::AUDIT_CALL_REFUSED, caller.id(), false, decision.reason);
  record.set_rule(decision.rule);
  record.set_policy_version(decision.policy_version);
  record.set_detail(std::string(method));
  node->committer()->Audit(std::move(record));
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat(what, " refused: ", decision.reason));
}

// A backup stream that ends at once with `status`.
class FinishedBackup final : public grpc::ServerWriteReactor<v1::BackupChunk> {
 public:
  explicit FinishedBackup(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One online backup (Node.Backup): the staging, the reading of files and
// the waits for each write run on a thread of its own, never in a
// reaction; one write in flight. `*running` is set by the caller and
// cleared here before the call finishes.
class BackupReactor final : public grpc::ServerWriteReactor<v1::BackupChunk> {
 public:
  BackupReactor(NodeContext* node, std::atomic<bool>* running,
                std::string caller)
      : node_(node), running_(running), caller_(std::move(caller)) {
    thread_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_done_ = true;
    write_ok_ = ok;
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override {
    // Finish() is the thread's last touch of this reactor.
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
    delete this;
  }

 private:
  void Run() {
    v1::BackupManifest manifest;
    uint64_t bytes = 0;
    absl::Status status = Produce(&manifest, &bytes);
    v1::AuditRecord record = AuditEvent(
        v1::AUDIT_BACKUP, caller_, status.ok(),
        status.ok() ? "online backup sent" : std::string(status.message()));
    record.set_detail(absl::StrCat(
        "files ", manifest.files_size(), ", bytes ", bytes, ", last sequence ",
        manifest.last_sequence(), ", audit size ", manifest.audit_size(),
        ", checkpoint ", manifest.checkpoint().tree_size()));
    node_->committer()->Audit(std::move(record));
    LogEvent(status.ok()
                 ? absl::StrCat("backup for ", caller_,
                                " sent: ", manifest.files_size(), " files, ",
                                bytes, " bytes, alerts up to sequence ",
                                manifest.last_sequence())
                 : absl::StrCat("backup for ", caller_,
                                " failed: ", status.message()));
    running_->store(false);
    Finish(ToGrpcStatus(status));
  }

  absl::Status Produce(v1::BackupManifest* manifest, uint64_t* bytes) {
    const internal::v1::NodeConfig& config = node_->config();
    StoreOptions copy{BackupStagingDir(config.data_dir()), config.node_id()};
    copy.block_cache_bytes = uint64_t{8} << 20;
    copy.memtable_bytes = uint64_t{8} << 20;
    absl::StatusOr<std::unique_ptr<StagedBackup>> staged =
        StagedBackup::Create(*node_->store(), copy, IBSM_VERSION);
    if (!staged.ok()) return staged.status();
    while (true) {
      if (cancelled_.load()) {
        return absl::CancelledError("the backup was cancelled by the client");
      }
      absl::StatusOr<std::optional<v1::BackupChunk>> chunk =
          (*staged)->NextChunk();
      if (!chunk.ok()) return chunk.status();
      if (!*chunk) break;
      *bytes += (*chunk)->data().size();
      if (!Write(std::move(**chunk))) {
        return absl::CancelledError("the backup stream broke");
      }
    }
    *manifest = (*staged)->manifest();
    v1::BackupChunk last;
    *last.mutable_manifest() = *manifest;
    if (!Write(std::move(last))) {
      return absl::CancelledError("the backup stream broke");
    }
    return absl::OkStatus();
  }

  // Sends `chunk` and waits until gRPC is done with it.
  bool Write(v1::BackupChunk chunk) {
    chunk_ = std::move(chunk);
    {
      absl::MutexLock lock(&mu_);
      write_done_ = false;
    }
    StartWrite(&chunk_);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&write_done_));
    return write_ok_;
  }

  NodeContext* const node_;
  std::atomic<bool>* const running_;
  const std::string caller_;
  std::atomic<bool> cancelled_{false};
  v1::BackupChunk chunk_;  // the write in flight
  absl::Mutex mu_;
  bool write_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the rest exists
};

// Raw methods: each request is parsed by ParseRequest
// (broker/services/raw_message.h), so bytes that are not a NodeInfoRequest
// (LinksRequest) get INVALID_ARGUMENT.
class NodeService final
    : public v1::Node::WithRawCallbackMethod_GetInfo<
          v1::Node::WithRawCallbackMethod_GetLinks<
              v1::Node::WithCallbackMethod_Backup<v1::Node::Service>>> {
 public:
  explicit NodeService(NodeContext* node) : node_(node) {}

  // Only the node's own certificate (what `ibsm-broker backup --config`
  // presents, read from the node's key file) may copy the whole data
  // directory; anyone else is refused and audited. One at a time.
  grpc::ServerWriteReactor<v1::BackupChunk>* Backup(
      grpc::CallbackServerContext* context,
      const v1::BackupRequest* /*request: no fields*/) override {
    absl::StatusOr<Identity> caller =
        AuthenticateCall(node_, context, "backup");
    if (!caller.ok()) return new FinishedBackup(ToGrpcStatus(caller.status()));
    const std::string& node_id = node_->config().node_id();
    if (caller->is_agency() || caller->node != node_id) {
      Decision refused = Decision::Deny(
          "backup",
          absl::StrCat("only node ", node_id,
                       "'s own certificate may take a backup, not ",
                       caller->id()),
          node_->authorizer()->version());
      return new FinishedBackup(
          Refuse(node_, *caller, refused, "Node.Backup", "backup"));
    }
    bool expected = false;
    if (!backup_running_.compare_exchange_strong(expected, true)) {
      v1::AuditRecord record =
          AuditEvent(v1::AUDIT_BACKUP, caller->id(), false,
                     "another backup of this node is running");
      node_->committer()->Audit(std::move(record));
      return new FinishedBackup(
          grpc::Status(grpc::StatusCode::ABORTED,
                       "another backup of this node is running; retry when "
                       "it is done"));
    }
    return new BackupReactor(node_, &backup_running_, caller->id());
  }

  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request_bytes,
                                    grpc::ByteBuffer* response_bytes) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<Identity> caller =
        AuthenticateCall(node_, context, "node info");
    if (!caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
    v1::NodeInfoRequest request;
    if (absl::Status parsed = ParseRequest(*request_bytes, &request);
        !parsed.ok()) {
      AuditRefusedCall(node_, caller->id(), "Node.GetInfo", parsed);
      reactor->Finish(ToGrpcStatus(parsed));
      return reactor;
    }
    std::shared_ptr<const Authorizer> authorizer = node_->authorizer();
    // An identity the policy does not know, or that may not act here,
    // learns nothing of the node; the refusal is audited like any other.
    Decision allowed = authorizer->MayGetNodeInfo(*caller);
    if (!allowed.allowed) {
      reactor->Finish(
          Refuse(node_, *caller, allowed, "Node.GetInfo", "node information"));
      return reactor;
    }
    // Counts tell how busy the node is (and, with sequences, how much an
    // agency does not see): operators and auditors only. Zero otherwise.
    const bool counts = authorizer->MaySeeNodeCounts(*caller).allowed;
    v1::NodeInfo response;
    v1::NodeInfo* info = &response;
    info->set_node_id(node_->config().node_id());
    info->set_version(IBSM_VERSION);
    info->set_caller(caller->id());
    if (counts) info->set_last_sequence(node_->committer()->last_sequence());
    info->set_durability(
        internal::v1::Durability_Name(node_->config().durability()));
    info->set_policy_version(authorizer->version());
    int64_t started = absl::ToUnixSeconds(node_->started_at());
    info->mutable_started_at()->set_seconds(started);
    info->set_serving(true);
    if (counts) {
      info->set_active_subscriptions(
          static_cast<uint32_t>(node_->hub()->size()));
    }
    for (const std::string& level : authorizer->classification_levels()) {
      info->add_classification_levels(level);
    }
    if (const KeyRing* keys = node_->store()->keys(); keys != nullptr) {
      info->set_encryption_at_rest(true);
      info->set_encryption_key_id(seal::KeyIdHex(keys->current_key_id()));
    }
    reactor->Finish(ToGrpcStatus(SerializeResponse(response, response_bytes)));
    return reactor;
  }

  // The links' state tells who this node talks to and how much waits for
  // whom: operators and auditors at this node only, like the counts of
  // GetInfo. The request has no fields, so nothing in the answer's size is
  // caller-controlled (one entry per configured peer).
  grpc::ServerUnaryReactor* GetLinks(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request_bytes,
      grpc::ByteBuffer* response_bytes) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<Identity> caller =
        AuthenticateCall(node_, context, "node links");
    if (!caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
    v1::LinksRequest request;
    if (absl::Status parsed = ParseRequest(*request_bytes, &request);
        !parsed.ok()) {
      AuditRefusedCall(node_, caller->id(), "Node.GetLinks", parsed);
      reactor->Finish(ToGrpcStatus(parsed));
      return reactor;
    }
    Decision allowed = node_->authorizer()->MaySeeNodeCounts(*caller);
    if (!allowed.allowed) {
      reactor->Finish(
          Refuse(node_, *caller, allowed, "Node.GetLinks", "node links"));
      return reactor;
    }
    v1::Links response;
    if (node_->links_source()) response = node_->links_source()();
    // The node answers for itself, whatever the source filled in.
    response.set_node_id(node_->config().node_id());
    reactor->Finish(ToGrpcStatus(SerializeResponse(response, response_bytes)));
    return reactor;
  }

 private:
  NodeContext* const node_;
  std::atomic<bool> backup_running_{false};
};

}  // namespace

std::unique_ptr<grpc::Service> MakeNodeService(NodeContext* node) {
  return std::make_unique<NodeService>(node);
}

}  // namespace ibsm::broker
