#include "services/grpc_status.h"

#include <string>

namespace ibsm::broker {

// absl::StatusCode and grpc::StatusCode share the canonical numbering.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace ibsm::broker
