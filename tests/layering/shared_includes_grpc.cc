// Layering probe (tests/CMakeLists.txt): compiled against ibsm_shared and
// ibsm_policy only, the gRPC services of the public API must not be found,
// because the shared layer and the policy engine are pure.
#include "ibsm/v1/broker.grpc.pb.h"
