// Command-line flag parsing for the ibsm CLI: one small hand-written parser
// for `--name VALUE`, `--name=VALUE` and boolean `--name`, with values that
// may also come from environment variables, plus typed value parsers. Pure
// code (the environment is passed in), thread-compatible.
#ifndef IBSM_CLIENT_LIB_CLI_FLAGS_H_
#define IBSM_CLIENT_LIB_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ibsm::cli {

struct FlagSpec {
  enum class Kind { kBool, kValue, kRepeated };
  std::string name;  // without the leading "--"
  Kind kind = Kind::kValue;
  std::string value_name;  // shown in help, e.g. "HOST:PORT"
  std::string help;
  std::string env;      // environment variable used when the flag is absent
  char short_name = 0;  // one-letter alias, e.g. 'o' for `-o FILE`
};

// The flags found on a command line. Values are kept as given.
class ParsedFlags {
 public:
  bool Has(absl::string_view name) const;
  // The (last) value of `name`, or `fallback` when absent.
  std::string Get(absl::string_view name, std::string fallback = "") const;
  // Every value of a repeated flag, in order.
  std::vector<std::string> GetAll(absl::string_view name) const;
  bool Bool(absl::string_view name) const { return Has(name); }
  void Add(const std::string& name, std::string value);
  // `name` with `value` as its only value (one call of a command that
  // takes the flag repeatedly, e.g. one --target of several).
  void Set(const std::string& name, std::string value);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// Parses `args` (without the program and command words) against `specs`.
// `-x` is the flag whose short_name is 'x'. Non-flag arguments go to
// `positional`; everything after "--" is
// positional. INVALID_ARGUMENT for an unknown flag, a missing value, a value
// given to a boolean flag, or a non-repeated flag given twice.
absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<FlagSpec>& specs,
                                       const std::vector<std::string>& args,
                                       std::vector<std::string>* positional);

// For each spec with an `env` name that `flags` lacks, takes the value of
// that environment variable (through `getenv`) when it is set and not empty.
void ApplyEnvironment(const std::vector<FlagSpec>& specs,
                      const std::function<const char*(const char*)>& getenv,
                      ParsedFlags* flags);

// "  --name VALUE   help" lines, aligned.
std::string FormatFlagHelp(const std::vector<FlagSpec>& specs);

// Typed values. Errors are INVALID_ARGUMENT naming the flag.
// A duration: "3600s", "90m", "1h30m", or a plain number of seconds.
absl::StatusOr<absl::Duration> ParseDurationValue(absl::string_view flag,
                                                  absl::string_view value);
// An RFC 3339 time: "2025-01-31T12:00:00Z", "2025-01-31T12:00:00+01:00".
absl::StatusOr<absl::Time> ParseTimeValue(absl::string_view flag,
                                          absl::string_view value);
absl::StatusOr<uint64_t> ParseUintValue(absl::string_view flag,
                                        absl::string_view value);
absl::StatusOr<double> ParseDoubleValue(absl::string_view flag,
                                        absl::string_view value);
// "k=v" (the value may contain '='; the key may not be empty).
absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(
    absl::string_view flag, absl::string_view value);
// "A,B, C" -> {"A","B","C"}; empty items are dropped.
std::vector<std::string> SplitList(absl::string_view value);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_FLAGS_H_
