// The node's operational log: one timestamped line per event on stderr
// (collected by systemd or the container runtime). Thread-safe.
#ifndef IBSM_BROKER_LOGGING_EVENT_LOG_H_
#define IBSM_BROKER_LOGGING_EVENT_LOG_H_

#include "absl/strings/string_view.h"

namespace ibsm::broker {

void LogEvent(absl::string_view line);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_LOGGING_EVENT_LOG_H_
