#include "metrics/exposition.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace ibsm::broker::metrics {

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest of 15 or 17 significant digits that reads back the same
  // (0.1, not 0.10000000000000001).
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.15g", value);
  if (std::strtod(buffer, nullptr) != value) {
    std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  }
  return buffer;
}

void MetricsText::Family(absl::string_view name, absl::string_view type,
                         absl::string_view help) {
  absl::StrAppend(&text_, "# HELP ", name, " ", EscapeHelp(help), "\n",
                  "# TYPE ", name, " ", type, "\n");
}

void MetricsText::AppendSample(absl::string_view name, const Labels& labels,
                               absl::string_view extra_name,
                               absl::string_view extra_value,
                               const std::string& value) {
  absl::StrAppend(&text_, name);
  if (!labels.empty() || !extra_name.empty()) {
    text_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      absl::StrAppend(&text_, first ? "" : ",", label, "=\"",
                      EscapeLabelValue(label_value), "\"");
      first = false;
    }
    if (!extra_name.empty()) {
      absl::StrAppend(&text_, first ? "" : ",", extra_name, "=\"", extra_value,
                      "\"");
    }
    text_ += '}';
  }
  absl::StrAppend(&text_, " ", value, "\n");
}

void MetricsText::Sample(absl::string_view name, const Labels& labels,
                         double value) {
  AppendSample(name, labels, "", "", FormatValue(value));
}

void MetricsText::Histogram(absl::string_view name, const Labels& labels,
                            const HistogramData& data) {
  const std::string bucket = absl::StrCat(name, "_bucket");
  for (size_t i = 0; i < data.upper_bounds.size(); ++i) {
    const uint64_t in = i < data.cumulative_counts.size()
                            ? data.cumulative_counts[i]
                            : data.count;
    AppendSample(bucket, labels, "le", FormatValue(data.upper_bounds[i]),
                 absl::StrCat(in));
  }
  AppendSample(bucket, labels, "le", "+Inf", absl::StrCat(data.count));
  AppendSample(absl::StrCat(name, "_sum"), labels, "", "",
               FormatValue(data.sum));
  AppendSample(absl::StrCat(name, "_count"), labels, "", "",
               absl::StrCat(data.count));
}

}  // namespace ibsm::broker::metrics
