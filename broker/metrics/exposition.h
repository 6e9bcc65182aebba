// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): metric
// families with their HELP and TYPE lines, label values escaped, histograms
// as cumulative _bucket{le=...} samples ending with le="+Inf", then _sum and
// _count. Pure code: it formats what it is given and reads nothing else.
// A MetricsText is not thread-safe; build one per scrape.
#ifndef IBSM_BROKER_METRICS_EXPOSITION_H_
#define IBSM_BROKER_METRICS_EXPOSITION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace ibsm::broker::metrics {

// Label name/value pairs of one sample, in the order written.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Cumulative histogram data: counts[i] samples were <= upper_bounds[i]
// (bounds ascending, without +Inf); `count` samples in all, summing to `sum`.
struct HistogramData {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> cumulative_counts;  // same size as upper_bounds
  uint64_t count = 0;
  double sum = 0;
};

// Escapes a label value: backslash, double quote and line feed.
std::string EscapeLabelValue(absl::string_view value);
// Escapes a HELP text: backslash and line feed.
std::string EscapeHelp(absl::string_view help);
// A sample value: integers without a fraction, +Inf, -Inf, NaN as the
// format spells them, other values with full precision.
std::string FormatValue(double value);

class MetricsText {
 public:
  // Starts a family: "# HELP name help" and "# TYPE name type" (`type` is
  // counter, gauge, histogram or untyped). Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*; a family is started once per scrape.
  void Family(absl::string_view name, absl::string_view type,
              absl::string_view help);
  // One sample of the current family ("name{labels} value").
  void Sample(absl::string_view name, const Labels& labels, double value);
  // The samples of one histogram of the current family.
  void Histogram(absl::string_view name, const Labels& labels,
                 const HistogramData& data);

  const std::string& text() const { return text_; }

 private:
  void AppendSample(absl::string_view name, const Labels& labels,
                    absl::string_view extra_name, absl::string_view extra_value,
                    const std::string& value);
  std::string text_;
};

}  // namespace ibsm::broker::metrics

#endif  // IBSM_BROKER_METRICS_EXPOSITION_H_
