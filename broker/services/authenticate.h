// Who is calling, for every service of a node: AuthenticateCall() reads the
// peer's certificate chain from the call's auth context, checks it with the
// node's PeerVerifier (whole chain against the current CRLs, identity bound
// to the issuing node's intermediate CA) and records every refusal in the
// audit trail with bounded sizes. Long-lived calls (streams) register in
// LiveCalls, so that a CRL change ends the calls of a now-revoked peer.
// Free functions are thread-safe; LiveCalls is safe for concurrent use.
#ifndef IBSM_BROKER_SERVICES_AUTHENTICATE_H_
#define IBSM_BROKER_SERVICES_AUTHENTICATE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ibsm/spiffe_id.h"

namespace grpc {
class AuthContext;
class ServerContextBase;
}  // namespace grpc

namespace ibsm::broker {

class NodeContext;
class PeerVerifier;

// The streams that are open now, with the certificate chain of their peer.
class LiveCalls {
 public:
  // Unregisters its call when destroyed. The reactor that owns it destroys
  // it in OnDone (by deleting itself), so the context is valid while
  // registered.
  class Registration {
   public:
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    friend class LiveCalls;
    Registration(LiveCalls* calls, uint64_t id) : calls_(calls), id_(id) {}
    LiveCalls* const calls_;
    const uint64_t id_;
  };

  // `context` must stay valid until the returned registration is destroyed;
  // `*this` must outlive it.
  std::unique_ptr<Registration> Add(grpc::ServerContextBase* context,
                                    std::string actor, std::string call,
                                    std::string leaf_pem,
                                    std::string chain_pem);

  // Cancels every registered call whose chain `verifier` now refuses and
  // records each in the audit trail via `node`. Returns how many ended.
  size_t EndRefused(PeerVerifier* verifier, NodeContext* node);

  size_t size() const;

 private:
  struct Call {
    grpc::ServerContextBase* context;
    std::string actor;
    std::string call;
    std::string leaf_pem;
    std::string chain_pem;
  };
  void Remove(uint64_t id);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
};

// The identity of the peer of `context`, for call `call` ("publish",
// "subscribe", "node info", "audit query", ...). A refusal is
// UNAUTHENTICATED (chain, revocation) or PERMISSION_DENIED (identity not
// bound to its issuer), with a reason naming the certificate, and is
// recorded as AUDIT_CALL_REFUSED. With `live` set, the call is registered
// in the node's LiveCalls on success and `*live` keeps it registered.
absl::StatusOr<Identity> AuthenticateCall(
    NodeContext* node, grpc::ServerContextBase* context, absl::string_view call,
    std::unique_ptr<LiveCalls::Registration>* live = nullptr);

// The identity the TLS peer of `auth` proves with its certificate chain,
// checked by `verifier` (chain, CRLs, binding to its node's CA):
// UNAUTHENTICATED or PERMISSION_DENIED with the reason otherwise. For the
// dialling side of a federation link, which checks the node it reached.
absl::StatusOr<Identity> AuthenticatePeer(PeerVerifier* verifier,
                                          const grpc::AuthContext* auth);

// Records in the audit trail that `actor`'s call was refused with `status`
// before it did anything (an identity refusal, request bytes that do not
// parse, a batch refused as a whole), as AUDIT_CALL_REFUSED with `detail`
// naming the call. The reason is cut to a bounded size.
void AuditRefusedCall(NodeContext* node, absl::string_view actor,
                      absl::string_view detail, const absl::Status& status);

// A call refused by one of `actor`'s limits (NodeContext::identity_limits):
// recorded as AuditRefusedCall does, but at most once a minute per identity
// and limit, each record counting the refusals not recorded since.
void AuditLimitRefusal(NodeContext* node, absl::string_view actor,
                       absl::string_view detail, const absl::Status& status);

// After the node's certificate, CA or CRL files changed: reloads the
// verifier's roots and CRLs, then ends the live calls it now refuses.
void ApplyCertificateChange(NodeContext* node);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_AUTHENTICATE_H_
