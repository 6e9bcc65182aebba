// The event log's formats and its bound on repeats (broker/logging/).
// Each case logs to a file of its own, parses every line, and puts the log
// back on stderr.
#include "logging/event_log.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

google::protobuf::Struct ParseJson(const std::string& line) {
  google::protobuf::Struct object;
  auto parsed = google::protobuf::util::JsonStringToMessage(line, &object);
  INFO(line);
  REQUIRE(parsed.ok());
  return object;
}

// Logs to `file` in `format` until destroyed.
class LogToFile {
 public:
  LogToFile(const std::string& file, const std::string& format,
            const std::string& level = "") {
    auto options = ParseEventLogOptions(format, level, file);
    REQUIRE(options.ok());
    REQUIRE(ConfigureEventLog(*options).ok());
  }
  ~LogToFile() { (void)ConfigureEventLog(EventLogOptions{}); }
};

TEST_CASE(
    "json lines parse, with time, level and msg, whatever bytes the "
    "message holds",
    "[logging]") {
  testing::TempDir dir;
  {
    LogToFile log(dir.File("log"), "json");
    LogEvent("plain line");
    LogEvent("WARNING: something");
    LogEvent(std::string("quote \" backslash \\ newline \n tab \t nul ") +
             std::string(1, '\0') + " bad utf8 \xff\xfe é end");
    LogRefusal("call refused", "spiffe://ibsm/MLI/customs",
               "publish: permission_denied: not allowed");
  }
  std::vector<std::string> lines = Lines(dir.File("log"));
  REQUIRE(lines.size() == 4);
  for (const std::string& line : lines) {
    google::protobuf::Struct object = ParseJson(line);
    CHECK(object.fields().contains("time"));
    CHECK(object.fields().contains("level"));
    CHECK(object.fields().contains("msg"));
  }
  CHECK(ParseJson(lines[0]).fields().at("level").string_value() == "info");
  CHECK(ParseJson(lines[1]).fields().at("level").string_value() == "warning");
  CHECK(ParseJson(lines[2]).fields().at("msg").string_value().find(
            "quote \" backslash \\ newline \n tab") != std::string::npos);
  google::protobuf::Struct refusal = ParseJson(lines[3]);
  CHECK(refusal.fields().at("event").string_value() == "call refused");
  CHECK(refusal.fields().at("peer").string_value() ==
        "spiffe://ibsm/MLI/customs");
  CHECK(refusal.fields().at("reason").string_value() ==
        "publish: permission_denied: not allowed");
}

TEST_CASE("text lines keep today's shape", "[logging]") {
  testing::TempDir dir;
  {
    LogToFile log(dir.File("log"), "text");
    LogEvent("started in 12 ms");
  }
  std::vector<std::string> lines = Lines(dir.File("log"));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(" ibsm-broker: started in 12 ms") == 20);
}

TEST_CASE(
    "repeated refusals of one peer are bounded per window, another "
    "peer's still get through",
    "[logging]") {
  testing::TempDir dir;
  {
    LogToFile log(dir.File("log"), "json");
    for (int i = 0; i < 1000; ++i) {
      LogRefusal("TLS handshake refused", "attacker", "unknown CA");
    }
    LogRefusal("TLS handshake refused", "someone else", "expired");
  }
  std::vector<std::string> lines = Lines(dir.File("log"));
  // Unless a window boundary fell inside the loop, exactly the burst; at
  // most two bursts either way.
  REQUIRE(lines.size() >= static_cast<size_t>(kLogBurstPerKey) + 1);
  REQUIRE(lines.size() <= static_cast<size_t>(2 * kLogBurstPerKey) + 1);
  CHECK(ParseJson(lines.back()).fields().at("peer").string_value() ==
        "someone else");
}

TEST_CASE("the level drops lines below it", "[logging]") {
  testing::TempDir dir;
  {
    LogToFile log(dir.File("log"), "json", "warning");
    LogEvent("info line");
    LogEvent("WARNING: kept");
  }
  std::vector<std::string> lines = Lines(dir.File("log"));
  REQUIRE(lines.size() == 1);
  CHECK(ParseJson(lines[0]).fields().at("msg").string_value() ==
        "WARNING: kept");
}

TEST_CASE("unknown logging settings are refused naming the field",
          "[logging]") {
  auto format = ParseEventLogOptions("xml", "", "");
  REQUIRE_FALSE(format.ok());
  CHECK(format.status().message().find("logging.format") != std::string::npos);
  auto level = ParseEventLogOptions("json", "loud", "");
  REQUIRE_FALSE(level.ok());
  CHECK(level.status().message().find("logging.level") != std::string::npos);
}

TEST_CASE("JsonEscape keeps valid UTF-8 and replaces invalid bytes",
          "[logging]") {
  CHECK(JsonEscape("é€𝄞") == "é€𝄞");
  CHECK(JsonEscape("\xc0\x80") == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(JsonEscape("\xed\xa0\x80") ==
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  CHECK(JsonEscape(std::string(1, '\x01')) == "\\u0001");
}

}  // namespace
}  // namespace ibsm::broker
