// Layering probe (tests/CMakeLists.txt): compiled against ibsm_client only,
// this include must not be found, because the client library sits below the
// broker.
#include "storage/store.h"
