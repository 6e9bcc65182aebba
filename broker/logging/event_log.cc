#include "logging/event_log.h"

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ibsm::broker {

void LogEvent(absl::string_view line) {
  std::string stamp =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  // One fprintf per line so concurrent lines do not interleave.
  std::fprintf(stderr, "%s ibsm-broker: %.*s\n", stamp.c_str(),
               static_cast<int>(line.size()), line.data());
}

}  // namespace ibsm::broker
