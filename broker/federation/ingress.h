// The receiving side of a federation link: the checks an offered alert
// must pass before this node stores it, in the order of docs/federation.md
// ("Ingress"), and its hand-over to the Committer together with its audit
// record and its onward outbox entries (hub relay). Refused offers are
// audited as AUDIT_FEDERATION_RECEIVE allowed=false, stored ones as
// allowed=true, in the same batch as the alert.
//
// An Ingress is stateless apart from the NodeContext it reads (which must
// outlive it) and is safe for concurrent use. A ChainCache belongs to one
// link stream (one thread at a time).
#ifndef IBSM_BROKER_FEDERATION_INGRESS_H_
#define IBSM_BROKER_FEDERATION_INGRESS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "ibsm/internal/v1/federation.pb.h"

namespace ibsm::broker {

class NodeContext;

// Bounds of what a peer may send (docs/federation.md, "Bounds").
inline constexpr int kMaxHops = 16;

// The signing chains one stream carried, by fingerprint, so that later
// offers may refer to a chain instead of carrying it (bounded: the oldest
// half is dropped when full; a dropped chain is asked for again with
// CHAIN_UNKNOWN).
class ChainCache {
 public:
  static constexpr size_t kMaxChains = 256;
  // The chain of `offer`: its own (remembered under its fingerprint, which
  // must match chain_sha256) or the remembered one it names. False when it
  // names an unknown chain; `*error` is set when the offer's chain and
  // fingerprint disagree.
  bool Resolve(internal::v1::LinkOffer* offer, std::string* error);

 private:
  absl::flat_hash_map<std::string, std::vector<std::string>> chains_;
};

class Ingress {
 public:
  explicit Ingress(NodeContext* node) : node_(node) {}

  // Checks the offers of `peer` (authenticated by the link) and submits
  // those that pass, and the refusals' audit records, to the Committer in
  // one synced batch. `done` gets one ack per offer, in order, once that
  // batch is durable (on the committer thread), or at once when nothing had
  // to be written.
  void Receive(
      const std::string& peer, internal::v1::LinkOffers offers,
      ChainCache* chains,
      absl::AnyInvocable<void(std::vector<internal::v1::LinkAck>)> done) const;

 private:
  NodeContext* const node_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_FEDERATION_INGRESS_H_
