// The publish path up to the Committer: checks a batch of alerts from an
// authenticated caller (rules, originator, authorization) and turns it into a
// PublishGroup, then turns the committed group into per-alert results. Used by
// both the unary and the streaming publish calls so there is one path.
// Stateless; safe for concurrent use.
#ifndef IBSM_BROKER_PUBLISH_PUBLISH_PATH_H_
#define IBSM_BROKER_PUBLISH_PUBLISH_PATH_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ibsm/spiffe_id.h"
#include "publish/committer.h"

namespace ibsm::v1 {
class Alert;
class PublishResponse;
}  // namespace ibsm::v1

namespace google::protobuf {
template <typename T>
class RepeatedPtrField;
}

namespace ibsm::broker {

class NodeContext;

// INVALID_ARGUMENT for a request that is wrong as a whole (empty, too many
// alerts). Otherwise a group with one entry per alert, in order; entries that
// were refused carry their status and are not written.
absl::StatusOr<std::unique_ptr<PublishGroup>> PreparePublish(
    const NodeContext& node, const Identity& caller,
    google::protobuf::RepeatedPtrField<v1::Alert>* alerts);

// The originator signature of one alert at publish, after the originator
// check: a signed alert must carry originator and created_at itself and
// pass the node's AlertVerifier (UNAVAILABLE when there is none: fail
// closed); an unsigned alert is refused FAILED_PRECONDITION on a federated
// node and accepted on a single node (docs/signature-format.md).
absl::Status CheckOriginatorSignature(const NodeContext& node,
                                      const v1::Alert& alert);

// SHA-256 of the alert's content: of its canonical bytes
// (ibsm/canonical_alert.h), with `originator` set. Two publishes of one
// (originator, id) are the same alert exactly when these are equal
// (docs/storage.md).
std::string AlertContentSha256(const v1::Alert& alert);
// The same hash of `*alert`, computed without copying it: the fields the
// content leaves out (created_at, signature, signing_chain) are moved out
// and back, so `*alert` is unchanged afterwards. For the publish and
// ingress paths, which own the alert.
std::string AlertContentSha256InPlace(v1::Alert* alert);

// Appends one result per entry to `response`.
void AppendResults(const PublishGroup& group, v1::PublishResponse* response);

// The first refused or failed entry's status, OK if all were stored.
absl::Status FirstError(const PublishGroup& group);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_PUBLISH_PUBLISH_PATH_H_
