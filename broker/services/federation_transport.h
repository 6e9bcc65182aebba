// The gRPC transport of federation links (docs/federation.md): the
// FederationLink service that peers dial on the federation port (node
// certificates only; the client services are not served there), and the
// dialer that opens a link to a peer's federation port with this node's
// certificate and checks that the node it reached is that peer. Both hand
// the stream to the LinkManager as a LinkStream.
//
// The service and the dialer keep pointers to `node` and `links`, which
// must outlive them; both are safe for concurrent use.
#ifndef IBSM_BROKER_SERVICES_FEDERATION_TRANSPORT_H_
#define IBSM_BROKER_SERVICES_FEDERATION_TRANSPORT_H_

#include <memory>

#include "federation/link_manager.h"

namespace grpc {
class Service;
}

namespace ibsm::broker {

class NodeContext;

std::unique_ptr<grpc::Service> MakeFederationService(NodeContext* node,
                                                     LinkManager* links);

// Dials with the node's TLS files (read at every dial, so renewed files are
// used), waits at most 5 s for the connection, and compresses the stream.
LinkManager::Dialer MakeFederationDialer(NodeContext* node);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_FEDERATION_TRANSPORT_H_
