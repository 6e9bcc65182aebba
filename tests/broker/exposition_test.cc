// The Prometheus text format (broker/metrics/exposition.h), checked against
// the exposition format 0.0.4 spec's own rules: escaping, value spelling,
// HELP/TYPE lines and histogram samples.
#include "metrics/exposition.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace ibsm::broker::metrics {
namespace {

TEST_CASE("label values escape backslash, double quote and line feed only",
          "[metrics]") {
  CHECK(EscapeLabelValue(R"(a\b"c)") == R"(a\\b\"c)");
  CHECK(EscapeLabelValue("line\nbreak") == "line\\nbreak");
  CHECK(EscapeLabelValue("tab\tand é stay") == "tab\tand é stay");
}

TEST_CASE("HELP text escapes backslash and line feed but not quotes",
          "[metrics]") {
  CHECK(EscapeHelp("a \"quoted\" \\ text\nnext") ==
        "a \"quoted\" \\\\ text\\nnext");
}

TEST_CASE(
    "values: integers plain, infinities and NaN as the format spells "
    "them, fractions in full",
    "[metrics]") {
  CHECK(FormatValue(0) == "0");
  CHECK(FormatValue(42) == "42");
  CHECK(FormatValue(-3) == "-3");
  CHECK(FormatValue(1700000000) == "1700000000");
  CHECK(FormatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatValue(std::nan("")) == "NaN");
  CHECK(FormatValue(0.25) == "0.25");
  CHECK(FormatValue(0.0005) == "0.0005");
  CHECK(std::stod(FormatValue(0.1)) == 0.1);
}

TEST_CASE(
    "a family has HELP then TYPE, and samples with their labels in "
    "order",
    "[metrics]") {
  MetricsText text;
  text.Family("ibsm_publishes_total", "counter", "Alerts\nanswered.");
  text.Sample("ibsm_publishes_total",
              {{"outcome", "refused"}, {"reason", "a\"b"}}, 3);
  text.Sample("ibsm_publishes_total", {}, 1);
  CHECK(text.text() ==
        "# HELP ibsm_publishes_total Alerts\\nanswered.\n"
        "# TYPE ibsm_publishes_total counter\n"
        "ibsm_publishes_total{outcome=\"refused\",reason=\"a\\\"b\"} 3\n"
        "ibsm_publishes_total 1\n");
}

TEST_CASE(
    "a histogram has cumulative buckets ending with le=\"+Inf\", then "
    "_sum and _count",
    "[metrics]") {
  MetricsText text;
  text.Family("rpc_seconds", "histogram", "Latency.");
  HistogramData data;
  data.upper_bounds = {0.1, 1};
  data.cumulative_counts = {2, 3};
  data.count = 4;
  data.sum = 7.5;
  text.Histogram("rpc_seconds", {{"method", "/p/Publish"}}, data);
  CHECK(text.text() ==
        "# HELP rpc_seconds Latency.\n"
        "# TYPE rpc_seconds histogram\n"
        "rpc_seconds_bucket{method=\"/p/Publish\",le=\"0.1\"} 2\n"
        "rpc_seconds_bucket{method=\"/p/Publish\",le=\"1\"} 3\n"
        "rpc_seconds_bucket{method=\"/p/Publish\",le=\"+Inf\"} 4\n"
        "rpc_seconds_sum{method=\"/p/Publish\"} 7.5\n"
        "rpc_seconds_count{method=\"/p/Publish\"} 4\n");
}

TEST_CASE("a histogram without labels has only le on its buckets",
          "[metrics]") {
  MetricsText text;
  HistogramData data;
  data.count = 0;
  text.Histogram("h", {}, data);
  CHECK(text.text() == "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

}  // namespace
}  // namespace ibsm::broker::metrics
