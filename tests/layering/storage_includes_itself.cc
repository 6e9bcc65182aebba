// Layering probe (tests/CMakeLists.txt), the control: with ibsm_storage
// linked, its header compiles, so the refused probes fail for the layering
// and not for a broken probe.
#include "storage/store.h"
