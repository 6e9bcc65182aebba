#include "json_writer.h"

#include "absl/strings/str_join.h"

namespace ibsm::cli {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
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
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonStringArray(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const std::string& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

JsonObject& JsonObject::String(absl::string_view key, absl::string_view value) {
  return Raw(key, JsonString(value));
}

JsonObject& JsonObject::OptionalString(
    absl::string_view key, const std::optional<std::string>& value) {
  return value.has_value() ? String(key, *value) : Null(key);
}

JsonObject& JsonObject::OptionalNumber(absl::string_view key,
                                       const std::optional<uint64_t>& value) {
  return value.has_value() ? Number(key, *value) : Null(key);
}

JsonObject& JsonObject::Bool(absl::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}

JsonObject& JsonObject::Null(absl::string_view key) { return Raw(key, "null"); }

JsonObject& JsonObject::Raw(absl::string_view key, absl::string_view json) {
  absl::StrAppend(&members_, members_.empty() ? "" : ",", JsonString(key), ":",
                  json);
  return *this;
}

std::string JsonObject::Close() const {
  return absl::StrCat("{", members_, "}");
}

}  // namespace ibsm::cli
