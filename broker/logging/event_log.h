// The node's operational log (docs/operations.md, "Logs"): one line per
// event, on stderr (collected by systemd or the container runtime) or
// appended to a file. Two formats:
//   text  "<UTC time> ibsm-broker: <event>" (the default; start-up checks
//         and operators read these lines);
//   json  one object per line: {"time", "level", "msg"} and, for refusals,
//         "event", "peer", "reason", plus "suppressed" (see below).
// Lines carry metadata only: never a payload, an attribute or an alert's
// content (callers pass none).
//
// Under attack the volume is bounded: LogRefusal() lines of one kind and
// peer are written at most kLogBurstPerKey times per kLogWindow, LogEvent()
// lines whose first 48 bytes are alike (digits aside) kLogBurstPerEventKey
// times; the rest are counted, and the next line
// of that key written says how many were suppressed. The table of keys is
// bounded (kMaxKeys; beyond it, one shared key).
//
// Every function is thread-safe. ConfigureEventLog is called once at start,
// before the node's threads log.
#ifndef IBSM_BROKER_LOGGING_EVENT_LOG_H_
#define IBSM_BROKER_LOGGING_EVENT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ibsm::broker {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

struct EventLogOptions {
  bool json = false;
  LogLevel level = LogLevel::kInfo;
  std::string file;  // empty: stderr
};

inline constexpr absl::Duration kLogWindow = absl::Seconds(10);
inline constexpr int kLogBurstPerKey = 5;        // LogRefusal
inline constexpr int kLogBurstPerEventKey = 20;  // LogEvent
inline constexpr size_t kLogMaxKeys = 1024;

// "text"/"json" (empty: text) and "debug"/"info"/"warning"/"error" (empty:
// info); INVALID_ARGUMENT naming the field otherwise.
absl::StatusOr<EventLogOptions> ParseEventLogOptions(absl::string_view format,
                                                     absl::string_view level,
                                                     absl::string_view file);
// Applies `options`; FAILED_PRECONDITION when the file cannot be opened for
// appending (the previous destination stays).
absl::Status ConfigureEventLog(const EventLogOptions& options);

// An event at info level; a line beginning "WARNING:" is a warning.
void LogEvent(absl::string_view line);
void LogEvent(LogLevel level, absl::string_view line);

// A refused handshake or call (`event`: "handshake refused", "call
// refused"), with the peer (its identity or address) and the reason.
// Rate-limited by (event, peer).
void LogRefusal(absl::string_view event, absl::string_view peer,
                absl::string_view reason);

// `text` as a JSON string body (without quotes): quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
std::string JsonEscape(absl::string_view text);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_LOGGING_EVENT_LOG_H_
