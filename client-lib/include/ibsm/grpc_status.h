// The client side of the status boundary: a gRPC call's status as the
// absl::Status the library's functions return (same code, same message).
#ifndef IBSM_GRPC_STATUS_H_
#define IBSM_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ibsm {

absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ibsm

#endif  // IBSM_GRPC_STATUS_H_
