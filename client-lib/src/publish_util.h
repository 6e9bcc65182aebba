// Helpers shared by the Publisher and the CLI-independent parts of the
// client library. Private to the library.
#ifndef IBSM_CLIENT_LIB_SRC_PUBLISH_UTIL_H_
#define IBSM_CLIENT_LIB_SRC_PUBLISH_UTIL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ibsm::internal {

// The absl::Status for a google.rpc code carried in a message (PublishResult
// .code); codes outside the canonical range become UNKNOWN.
absl::Status StatusFromCode(int32_t code, absl::string_view message);

}  // namespace ibsm::internal

#endif  // IBSM_CLIENT_LIB_SRC_PUBLISH_UTIL_H_
