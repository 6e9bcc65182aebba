// The one place where absl::Status and grpc::Status are converted: components
// use absl::Status inside, services and the client library convert at the
// gRPC boundary with these two functions.
#ifndef IBSM_GRPC_STATUS_H_
#define IBSM_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ibsm {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ibsm

#endif  // IBSM_GRPC_STATUS_H_
