#include "progress.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "flags.h"

namespace ibsm::cli {

ProgressLine::ProgressLine(std::ostream& err, bool enabled, bool terminal)
    : err_(err), enabled_(enabled), terminal_(terminal) {}

void ProgressLine::Update(absl::string_view text, absl::Time now) {
  if (!enabled_) return;
  const absl::Duration every =
      terminal_ ? absl::Milliseconds(200) : absl::Seconds(1);
  if (now - last_ < every) return;
  last_ = now;
  if (terminal_) {
    err_ << "\r" << text << "\x1b[K";
    shown_ = true;
  } else {
    err_ << text << "\n";
  }
  err_.flush();
}

void ProgressLine::Done(absl::string_view summary) {
  if (!enabled_) return;
  if (terminal_ && shown_) err_ << "\r\x1b[K";
  shown_ = false;
  if (!summary.empty()) err_ << summary << "\n";
  err_.flush();
}

ProgressLine MakeProgressLine(const ParsedFlags& flags, std::ostream& err) {
  const bool terminal = isatty(STDERR_FILENO) == 1;
  return ProgressLine(err, flags.Bool("progress") || terminal, terminal);
}

int WithElapsedTime(ProgressLine& line, absl::string_view what,
                    absl::FunctionRef<int()> call) {
  if (!line.enabled()) return call();
  absl::Notification done;
  const absl::Time start = absl::Now();
  std::thread ticker([&] {
    while (!done.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      const absl::Duration elapsed =
          absl::Trunc(absl::Now() - start, absl::Seconds(1));
      line.Update(absl::StrCat(what, ": ", absl::FormatDuration(elapsed)));
    }
  });
  const int result = call();
  done.Notify();
  ticker.join();
  line.Done("");
  return result;
}

std::string CountOf(uint64_t done, uint64_t total) {
  const uint64_t percent = total == 0 ? 100 : done * 100 / total;
  return absl::StrFormat("%d of %d (%d%%)", done, total, percent);
}

}  // namespace ibsm::cli
