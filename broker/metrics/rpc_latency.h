// A gRPC server interceptor that measures every unary call of the node's
// client port, from its arrival (initial metadata received) to its status,
// into NodeCounters::ObserveLatency by method. Streams (publish streams,
// subscriptions) are not measured: their length is the client's choice,
// not the node's latency. The factory is thread-safe; `counters` must
// outlive the server.
#ifndef IBSM_BROKER_METRICS_RPC_LATENCY_H_
#define IBSM_BROKER_METRICS_RPC_LATENCY_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace ibsm::broker {

class NodeCounters;

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcLatencyInterceptorFactory(NodeCounters* counters);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_METRICS_RPC_LATENCY_H_
