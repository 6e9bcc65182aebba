// The CLI's one way to write JSON by hand, for output that is not a proto
// (a proto is printed with ToJsonLine, alert_format.h): JsonString escapes a
// string and JsonObject builds one single-line object, keys in the order
// added, no whitespace:
//
//   io.out << JsonObject()
//                 .String("file", file)
//                 .Number("records", n)
//                 .OptionalNumber("kept_size", kept)  // null when unset
//                 .Close()
//          << "\n";
//
// Thread-compatible.
#ifndef IBSM_CLIENT_LIB_CLI_JSON_WRITER_H_
#define IBSM_CLIENT_LIB_CLI_JSON_WRITER_H_

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ibsm::cli {

// `s` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view s);

// ["a","b"]: the strings of `items`, each escaped.
std::string JsonStringArray(const std::vector<std::string>& items);

class JsonObject {
 public:
  JsonObject& String(absl::string_view key, absl::string_view value);
  // Null when unset.
  JsonObject& OptionalString(absl::string_view key,
                             const std::optional<std::string>& value);
  template <typename Int,
            typename = std::enable_if_t<std::is_integral_v<Int> &&
                                        !std::is_same_v<Int, bool>>>
  JsonObject& Number(absl::string_view key, Int value) {
    return Raw(key, absl::StrCat(value));
  }
  // Null when unset.
  JsonObject& OptionalNumber(absl::string_view key,
                             const std::optional<uint64_t>& value);
  JsonObject& Bool(absl::string_view key, bool value);
  JsonObject& Null(absl::string_view key);
  // `json` is already JSON (a nested object, an array, a proto's JSON).
  JsonObject& Raw(absl::string_view key, absl::string_view json);

  // The object: "{" members "}".
  std::string Close() const;

 private:
  std::string members_;
};

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_JSON_WRITER_H_
