#include "logging/event_log.h"

#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ibsm::broker {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

struct RepeatState {
  absl::Time window_start = absl::InfinitePast();
  int written = 0;
  uint64_t suppressed = 0;
};

class EventLog {
 public:
  static EventLog& Get() {
    static EventLog* log = new EventLog();  // never destroyed: used at exit
    return *log;
  }

  absl::Status Configure(const EventLogOptions& options) {
    std::FILE* out = stderr;
    if (!options.file.empty()) {
      out = std::fopen(options.file.c_str(), "a");
      if (out == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot open the log file ", options.file, " for appending"));
      }
      std::setvbuf(out, nullptr, _IOLBF, 0);
    }
    absl::MutexLock lock(&mu_);
    if (out_ != stderr && out_ != nullptr) std::fclose(out_);
    out_ = out;
    options_ = options;
    return absl::OkStatus();
  }

  // Writes the line unless its key is over its budget; `fields` is the
  // JSON text of the extra fields (",\"event\":...") or empty.
  void Write(LogLevel level, absl::string_view key, int burst,
             absl::string_view text, absl::string_view fields) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    if (level < options_.level) return;
    uint64_t suppressed = 0;
    if (!key.empty()) {
      auto it = repeats_.find(key);
      if (it == repeats_.end()) {
        if (repeats_.size() >= kLogMaxKeys) ForgetOldWindows(now);
        it = repeats_
                 .try_emplace(repeats_.size() < kLogMaxKeys
                                  ? std::string(key)
                                  : std::string("(other)"))
                 .first;
      }
      RepeatState& state = it->second;
      if (now - state.window_start >= kLogWindow) {
        state.window_start = now;
        state.written = 0;
      }
      if (state.written >= burst) {
        ++state.suppressed;
        return;
      }
      ++state.written;
      suppressed = state.suppressed;
      state.suppressed = 0;
    }
    const std::string stamp =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
    std::string line;
    if (options_.json) {
      line = absl::StrCat(
          "{\"time\":\"",
          absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()),
          "\",\"level\":\"", LevelName(level), "\",\"msg\":\"",
          JsonEscape(text), "\"", fields);
      if (suppressed > 0)
        absl::StrAppend(&line, ",\"suppressed\":", suppressed);
      line += "}\n";
    } else {
      line = absl::StrCat(stamp, " ibsm-broker: ", text);
      if (suppressed > 0) {
        absl::StrAppend(&line, " (", suppressed,
                        " similar lines suppressed before this one)");
      }
      line += "\n";
    }
    // One write per line so concurrent lines do not interleave.
    std::fwrite(line.data(), 1, line.size(), out_);
  }

 private:
  void ForgetOldWindows(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto it = repeats_.begin(); it != repeats_.end();) {
      auto here = it++;
      if (now - here->second.window_start >= kLogWindow &&
          here->second.suppressed == 0) {
        repeats_.erase(here);
      }
    }
  }

  absl::Mutex mu_;
  std::FILE* out_ ABSL_GUARDED_BY(mu_) = stderr;
  EventLogOptions options_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RepeatState> repeats_ ABSL_GUARDED_BY(mu_);
};

// The key of a free-form line: its first words, digits dropped, so that
// "refused 1", "refused 2" share one budget.
std::string LineKey(absl::string_view line) {
  std::string key;
  for (char c : line.substr(0, 48)) {
    if (c < '0' || c > '9') key += c;
  }
  return key;
}

}  // namespace

absl::StatusOr<EventLogOptions> ParseEventLogOptions(absl::string_view format,
                                                     absl::string_view level,
                                                     absl::string_view file) {
  EventLogOptions options;
  if (format == "json") {
    options.json = true;
  } else if (!format.empty() && format != "text") {
    return absl::InvalidArgumentError(absl::StrCat(
        "logging.format is '", format, "'; it must be \"text\" or \"json\""));
  }
  if (level == "debug") {
    options.level = LogLevel::kDebug;
  } else if (level == "warning") {
    options.level = LogLevel::kWarning;
  } else if (level == "error") {
    options.level = LogLevel::kError;
  } else if (!level.empty() && level != "info") {
    return absl::InvalidArgumentError(absl::StrCat(
        "logging.level is '", level,
        "'; it must be \"debug\", \"info\", \"warning\" or \"error\""));
  }
  options.file = std::string(file);
  return options;
}

absl::Status ConfigureEventLog(const EventLogOptions& options) {
  return EventLog::Get().Configure(options);
}

void LogEvent(absl::string_view line) {
  const bool warning = line.rfind("WARNING:", 0) == 0;
  LogEvent(warning ? LogLevel::kWarning : LogLevel::kInfo, line);
}

void LogEvent(LogLevel level, absl::string_view line) {
  EventLog::Get().Write(level, LineKey(line), kLogBurstPerEventKey, line, "");
}

void LogRefusal(absl::string_view event, absl::string_view peer,
                absl::string_view reason) {
  const std::string fields = absl::StrCat(
      ",\"event\":\"", JsonEscape(event), "\",\"peer\":\"", JsonEscape(peer),
      "\",\"reason\":\"", JsonEscape(reason), "\"");
  EventLog::Get().Write(
      LogLevel::kWarning, absl::StrCat(event, std::string(1, '\0'), peer),
      kLogBurstPerKey, absl::StrCat(event, " for '", peer, "': ", reason),
      fields);
}

std::string JsonEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            absl::StrAppendFormat(&out, "\\u%04x", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: lead byte, length, continuation bytes, no
    // overlong forms or surrogates; anything else becomes U+FFFD.
    size_t length = 0;
    uint32_t code = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
      code = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      code = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      code = c & 0x07;
    }
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) {
        valid = false;
      } else {
        code = (code << 6) | (next & 0x3f);
      }
    }
    if (valid) {
      valid = !(length == 3 && code < 0x800) &&
              !(length == 4 && (code < 0x10000 || code > 0x10ffff)) &&
              !(code >= 0xd800 && code <= 0xdfff);
    }
    if (valid) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

}  // namespace ibsm::broker
