// The Node service (node info / health, federation links).
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "delivery/subscription_hub.h"
#include "ibsm/v1/broker.grpc.pb.h"
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

// Raw methods: each request is parsed by ParseRequest
// (broker/services/raw_message.h), so bytes that are not a NodeInfoRequest
// (LinksRequest) get INVALID_ARGUMENT.
class NodeService final
    : public v1::Node::WithRawCallbackMethod_GetInfo<
          v1::Node::WithRawCallbackMethod_GetLinks<v1::Node::Service>> {
 public:
  explicit NodeService(NodeContext* node) : node_(node) {}

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
};

}  // namespace

std::unique_ptr<grpc::Service> MakeNodeService(NodeContext* node) {
  return std::make_unique<NodeService>(node);
}

}  // namespace ibsm::broker
