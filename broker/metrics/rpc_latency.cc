#include "metrics/rpc_latency.h"

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "context/node_counters.h"

namespace ibsm::broker {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerRpcInfo;

class RpcLatencyInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcLatencyInterceptor(NodeCounters* counters, const char* method)
      : counters_(counters), method_(method == nullptr ? "" : method) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      started_ = absl::Now();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS) &&
        started_ != absl::InfinitePast()) {
      counters_->ObserveLatency(method_, absl::Now() - started_);
    }
    methods->Proceed();
  }

 private:
  NodeCounters* const counters_;
  const std::string method_;
  absl::Time started_ = absl::InfinitePast();
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(NodeCounters* counters) : counters_(counters) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      ServerRpcInfo* info) override {
    if (info->type() != ServerRpcInfo::Type::UNARY) return nullptr;
    return new RpcLatencyInterceptor(counters_, info->method());
  }

 private:
  NodeCounters* const counters_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcLatencyInterceptorFactory(NodeCounters* counters) {
  return std::make_unique<Factory>(counters);
}

}  // namespace ibsm::broker
