// Factories for the node's gRPC services (callback API). Each service keeps a
// pointer to the NodeContext, which must outlive the service.
#ifndef IBSM_BROKER_SERVICES_SERVICES_H_
#define IBSM_BROKER_SERVICES_SERVICES_H_

#include <memory>

namespace grpc {
class Service;
}

namespace ibsm::broker {

class NodeContext;

std::unique_ptr<grpc::Service> MakePublisherService(NodeContext* node);
std::unique_ptr<grpc::Service> MakeSubscriberService(NodeContext* node);
std::unique_ptr<grpc::Service> MakeNodeService(NodeContext* node);
std::unique_ptr<grpc::Service> MakeAuditorService(NodeContext* node);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_SERVICES_H_
