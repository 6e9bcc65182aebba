#include "ibsm/grpc_status.h"

namespace ibsm {

// absl::StatusCode and grpc::StatusCode share the canonical numbering.
absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace ibsm
