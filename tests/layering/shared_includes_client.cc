// Layering probe (tests/CMakeLists.txt): compiled against ibsm_shared only,
// the client library's headers must not be found.
#include "ibsm/client.h"
