// The CLI's one progress line for long operations (`ibsm subscribe`
// draining a durable backlog, `ibsm audit export` waiting for the node):
// on stderr, so that stdout stays the command's output for scripts.
//
// Shown when stderr is a terminal, or with --progress. On a terminal the
// line is rewritten in place ("\r", erased to its end) at most 5 times a
// second; otherwise (--progress into a file or pipe) each update is its own
// line, at most once a second, so that a log stays readable. Done() ends
// the line with a summary. Not thread-safe: one thread updates it.
#ifndef IBSM_CLIENT_LIB_CLI_PROGRESS_H_
#define IBSM_CLIENT_LIB_CLI_PROGRESS_H_

#include <ostream>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ibsm::cli {

class ParsedFlags;

class ProgressLine {
 public:
  // `enabled` false: every call does nothing. `terminal`: rewrite in place.
  ProgressLine(std::ostream& err, bool enabled, bool terminal);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ProgressLine(ProgressLine&&) = default;

  // Shows `text` unless the last update was too recent (`now` for tests).
  void Update(absl::string_view text, absl::Time now = absl::Now());
  // Replaces the line with `summary` (if not empty) and a newline.
  void Done(absl::string_view summary);

  bool enabled() const { return enabled_; }

 private:
  std::ostream& err_;
  const bool enabled_;
  const bool terminal_;
  absl::Time last_ = absl::InfinitePast();
  bool shown_ = false;  // a terminal line is open
};

// The progress line of a command with a --progress flag: enabled by that
// flag or when stderr is a terminal.
ProgressLine MakeProgressLine(const ParsedFlags& flags, std::ostream& err);

// Runs `call`, a blocking call, while another thread shows "<what>: N s"
// on `line` every second; clears the line after it and returns its result.
int WithElapsedTime(ProgressLine& line, absl::string_view what,
                    absl::FunctionRef<int()> call);

// "1234 of 5000 (24%)".
std::string CountOf(uint64_t done, uint64_t total);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_PROGRESS_H_
