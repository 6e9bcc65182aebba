// The one conversion from absl::Status to grpc::Status. Components answer
// absl::Status; only the gRPC services (this folder) build grpc::Status, with
// this function, so a status code and its message cross the wire unchanged.
#ifndef IBSM_BROKER_SERVICES_GRPC_STATUS_H_
#define IBSM_BROKER_SERVICES_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ibsm::broker {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_GRPC_STATUS_H_
