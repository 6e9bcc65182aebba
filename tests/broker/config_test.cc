// Tests of broker/node/config.h: ParseConfig (protobuf text format).
// Formatting is off in this file: its raw strings hold policy and config
// text whose line numbers the tests check.
// clang-format off
#include "node/config.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace ibsm::broker {
namespace {

constexpr const char* kFullConfig = R"pb(# A complete node configuration.
node_id: "CIV"
listen_address: "0.0.0.0:7443"
data_dir: "/var/lib/ibsm"
tls {
  cert_file: "/etc/ibsm/node-chain.pem"
  key_file: "/etc/ibsm/node.key"
  ca_file: "/etc/ibsm/ca.pem"
  crl_dir: "/etc/ibsm/crl"
  reload_interval_seconds: 30
}
durability: DURABILITY_ASYNC
limits {
  max_alert_bytes: 65536
  max_batch_alerts: 100
  max_inflight_per_stream: 200
  max_credit: 300
  max_commit_group: 400
  max_subscriptions: 500
  log_cache_mib: 16
  rocksdb_block_cache_mib: 128
  rocksdb_memtable_mib: 256
}
port_file: "/run/ibsm/port"
shutdown_grace_seconds: 9
)pb";

// The smallest valid config: only the required fields.
constexpr const char* kMinimalConfig = R"pb(node_id: "MLI"
listen_address: "127.0.0.1:0"
data_dir: "/tmp/x"
tls {
  cert_file: "c.pem"
  key_file: "k.pem"
  ca_file: "ca.pem"
}
)pb";

TEST_CASE("ParseConfig reads every field of a full valid config", "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(kFullConfig, "full.txtpb");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->node_id() == "CIV");
  CHECK(config->listen_address() == "0.0.0.0:7443");
  CHECK(config->data_dir() == "/var/lib/ibsm");
  CHECK(config->tls().cert_file() == "/etc/ibsm/node-chain.pem");
  CHECK(config->tls().key_file() == "/etc/ibsm/node.key");
  CHECK(config->tls().ca_file() == "/etc/ibsm/ca.pem");
  CHECK(config->tls().crl_dir() == "/etc/ibsm/crl");
  CHECK(config->tls().reload_interval_seconds() == 30);
  CHECK(config->durability() == internal::v1::DURABILITY_ASYNC);
  // Explicit non-zero limits are kept, not replaced by defaults.
  CHECK(config->limits().max_alert_bytes() == 65536);
  CHECK(config->limits().max_batch_alerts() == 100);
  CHECK(config->limits().max_inflight_per_stream() == 200);
  CHECK(config->limits().max_credit() == 300);
  CHECK(config->limits().max_commit_group() == 400);
  CHECK(config->limits().max_subscriptions() == 500);
  CHECK(config->limits().log_cache_mib() == 16);
  CHECK(config->limits().rocksdb_block_cache_mib() == 128);
  CHECK(config->limits().rocksdb_memtable_mib() == 256);
  CHECK(config->port_file() == "/run/ibsm/port");
  CHECK(config->shutdown_grace_seconds() == 9);
}

TEST_CASE("ParseConfig fills defaults for zero/absent values", "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> config =
      ParseConfig(kMinimalConfig, "minimal.txtpb");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->node_id() == "MLI");
  CHECK(config->limits().max_alert_bytes() == 1048576);  // 1 MiB
  CHECK(config->limits().max_batch_alerts() == 1024);
  CHECK(config->limits().max_inflight_per_stream() == 4096);
  CHECK(config->limits().max_credit() == 4096);
  CHECK(config->limits().max_commit_group() == 8192);
  CHECK(config->limits().max_subscriptions() == 10000);
  CHECK(config->limits().log_cache_mib() == 64);
  CHECK(config->limits().rocksdb_block_cache_mib() == 32);
  CHECK(config->limits().rocksdb_memtable_mib() == 64);
  CHECK(config->durability() == internal::v1::DURABILITY_SYNC);
  CHECK(config->shutdown_grace_seconds() == 5);
  CHECK(config->tls().reload_interval_seconds() == 60);
  CHECK(config->tls().handshake_timeout_seconds() == 5);
  CHECK(config->tls().crl_dir().empty());
  CHECK(config->port_file().empty());
}

TEST_CASE("ParseConfig puts the published checkpoint next to data_dir and "
          "refuses it inside data_dir", "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> config =
      ParseConfig(kMinimalConfig, "minimal.txtpb");
  REQUIRE(config.ok());
  CHECK(config->published_checkpoint_file() == config->data_dir() + ".checkpoint");
  std::string outside = absl::StrCat(kMinimalConfig, R"pb(
published_checkpoint_file: "/srv/other/ibsm.checkpoint"
)pb");
  config = ParseConfig(outside, "outside.txtpb");
  REQUIRE(config.ok());
  CHECK(config->published_checkpoint_file() == "/srv/other/ibsm.checkpoint");
  for (const std::string& inside :
       {absl::StrCat(config->data_dir(), "/published.checkpoint"),
        absl::StrCat(config->data_dir(), "/./sub/../x")}) {
    std::string text = absl::StrCat(kMinimalConfig, "published_checkpoint_file: \"",
                                    inside, "\"\n");
    absl::StatusOr<internal::v1::NodeConfig> refused = ParseConfig(text, "inside.txtpb");
    INFO(inside);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("is inside data_dir") &&
                   Catch::Contains("inside.txtpb"));
  }
}

TEST_CASE("ParseConfig: explicit zeros and DURABILITY_UNSPECIFIED get "
          "defaults; a partial limits block keeps its values",
          "[config]") {
  std::string text = absl::StrCat(kMinimalConfig, R"pb(
durability: DURABILITY_UNSPECIFIED
limits { max_alert_bytes: 0 max_credit: 7 }
shutdown_grace_seconds: 0
)pb");
  absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(text, "zeros.txtpb");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->durability() == internal::v1::DURABILITY_SYNC);
  CHECK(config->limits().max_alert_bytes() == 1048576);
  CHECK(config->limits().max_credit() == 7);
  CHECK(config->limits().max_batch_alerts() == 1024);
  CHECK(config->shutdown_grace_seconds() == 5);
}

TEST_CASE("ParseConfig refuses RocksDB memory limits outside 8..65536 MiB, "
          "naming the field",
          "[config]") {
  struct Case {
    const char* field;
    uint32_t mib;
    bool ok;
  };
  for (const Case& c : {Case{"rocksdb_memtable_mib", 4, false},
                        Case{"rocksdb_memtable_mib", 7, false},
                        Case{"rocksdb_memtable_mib", 8, true},
                        Case{"rocksdb_memtable_mib", 65536, true},
                        Case{"rocksdb_memtable_mib", 65537, false},
                        Case{"rocksdb_block_cache_mib", 1, false},
                        Case{"rocksdb_block_cache_mib", 8, true},
                        Case{"rocksdb_block_cache_mib", 100000, false}}) {
    INFO(c.field << " " << c.mib);
    std::string text = absl::StrCat(kMinimalConfig, "limits { ", c.field,
                                    ": ", c.mib, " }\n");
    absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(text, "mem.txtpb");
    CHECK(config.ok() == c.ok);
    if (c.ok) continue;
    CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(config.status().message()) ==
          absl::StrCat("mem.txtpb: limits.", c.field, " is ", c.mib,
                       " MiB; it must be between 8 and 65536 MiB"));
  }
}

TEST_CASE("ParseConfig refuses tls.handshake_timeout_seconds outside 1..60, "
          "naming the field",
          "[config]") {
  for (auto [seconds, ok] : {std::pair{1u, true}, std::pair{60u, true},
                             std::pair{61u, false}, std::pair{3600u, false}}) {
    INFO(seconds);
    std::string text = absl::StrReplaceAll(
        kMinimalConfig,
        {{"ca_file: \"ca.pem\"\n",
          absl::StrCat("ca_file: \"ca.pem\"\nhandshake_timeout_seconds: ",
                       seconds, "\n")}});
    absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(text, "hs.txtpb");
    CHECK(config.ok() == ok);
    if (ok) {
      CHECK(config->tls().handshake_timeout_seconds() == seconds);
      continue;
    }
    CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(config.status().message()) ==
          absl::StrCat("hs.txtpb: tls.handshake_timeout_seconds is ", seconds,
                       "; it must be between 1 and 60 seconds (0: 5)"));
  }
}

// Returns the 1-based line number the message reports after "source:".
struct Position {
  int line = -1;
  int column = -1;
};
Position PositionIn(const std::string& message, const std::string& source) {
  Position p;
  std::string prefix = source + ":";
  if (message.rfind(prefix, 0) != 0) return p;
  std::vector<std::string> parts =
      absl::StrSplit(message.substr(prefix.size()), absl::MaxSplits(':', 2));
  if (parts.size() < 3) return p;
  p.line = std::atoi(parts[0].c_str());
  p.column = std::atoi(parts[1].c_str());
  return p;
}

TEST_CASE("ParseConfig refuses an unknown field, reporting source:line:col",
          "[config]") {
  struct Case {
    std::string name;
    std::string text;
    int line;            // 1-based line of the unknown field
    std::string field;   // the unknown field name
  };
  const std::vector<Case> cases = {
      {"top-level unknown field on line 3",
       "node_id: \"CIV\"\nlisten_address: \"x:1\"\nbogus_field: 1\n", 3,
       "bogus_field"},
      {"unknown field indented inside tls on line 6",
       "node_id: \"CIV\"\n"
       "listen_address: \"x:1\"\n"
       "data_dir: \"/d\"\n"
       "tls {\n"
       "  cert_file: \"c\"\n"
       "  certfile: \"typo\"\n"
       "}\n",
       6, "certfile"},
      {"unknown field on line 1", "nodeid: \"CIV\"\n", 1, "nodeid"},
      {"unknown block after comments and a blank line, on line 5",
       "# comment\n# comment\n\nnode_id: \"CIV\"\n    limits_x { }\n", 5,
       "limits_x"},
  };
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(c.text, "node.txtpb");
    INFO("status: " << config.status().ToString());
    REQUIRE(config.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(config.status().message());
    CHECK_THAT(message, Catch::StartsWith("node.txtpb:"));
    CHECK_THAT(message, Catch::Contains("\"" + c.field + "\""));
    Position pos = PositionIn(message, "node.txtpb");
    CHECK(pos.line == c.line);
    // The column is 1-based and points at the field name or at the token
    // right after it (protobuf reports the position after the name).
    std::vector<std::string> lines = absl::StrSplit(c.text, '\n');
    const std::string& line = lines[c.line - 1];
    const size_t name_at = line.find(c.field);
    size_t next_token = name_at + c.field.size();
    while (next_token < line.size() && line[next_token] == ' ') ++next_token;
    CHECK(pos.column >= static_cast<int>(name_at) + 1);
    CHECK(pos.column <= static_cast<int>(next_token) + 1);
  }
}

TEST_CASE("ParseConfig reads the encryption section and refuses it without "
          "a key file",
          "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> off =
      ParseConfig(kMinimalConfig, "m.txtpb");
  REQUIRE(off.ok());
  CHECK_FALSE(off->has_encryption());
  absl::StatusOr<internal::v1::NodeConfig> on = ParseConfig(
      absl::StrCat(kMinimalConfig,
                   "encryption { key_file: \"/k/new.key\" "
                   "old_key_files: \"/k/old.key\" }\n"),
      "e.txtpb");
  REQUIRE(on.ok());
  CHECK(on->encryption().key_file() == "/k/new.key");
  CHECK(on->encryption().old_key_files_size() == 1);
  for (const char* bad : {"encryption { }\n",
                          "encryption { old_key_files: \"/k/old.key\" }\n",
                          "encryption { key_file: \"/k\" old_key_files: \"\" }\n"}) {
    absl::StatusOr<internal::v1::NodeConfig> config =
        ParseConfig(absl::StrCat(kMinimalConfig, bad), "e.txtpb");
    INFO(bad);
    CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(config.status().message()),
               Catch::Contains("e.txtpb: encryption."));
  }
}

TEST_CASE("ParseConfig: unknown field message names the field", "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> config =
      ParseConfig(absl::StrCat(kMinimalConfig, "frobnicate: true\n"), "f.txtpb");
  REQUIRE(config.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(config.status().message()),
             Catch::Contains("frobnicate"));
  // kMinimalConfig has 8 lines, so the unknown field is on line 9.
  CHECK(PositionIn(std::string(config.status().message()), "f.txtpb").line == 9);
}

TEST_CASE("ParseConfig names each missing required field", "[config]") {
  struct Case {
    std::string field;  // as named in the message
    std::string line_to_drop;
  };
  const std::vector<Case> cases = {
      {"node_id", "node_id: \"MLI\""},
      {"listen_address", "listen_address: \"127.0.0.1:0\""},
      {"data_dir", "data_dir: \"/tmp/x\""},
      {"tls.cert_file", "  cert_file: \"c.pem\""},
      {"tls.key_file", "  key_file: \"k.pem\""},
      {"tls.ca_file", "  ca_file: \"ca.pem\""},
  };
  for (const Case& c : cases) {
    INFO("missing: " << c.field);
    std::vector<std::string> lines = absl::StrSplit(kMinimalConfig, '\n');
    size_t before = lines.size();
    lines.erase(std::remove(lines.begin(), lines.end(), c.line_to_drop),
                lines.end());
    REQUIRE(lines.size() == before - 1);  // the table matches the config
    absl::StatusOr<internal::v1::NodeConfig> config =
        ParseConfig(absl::StrJoin(lines, "\n"), "req.txtpb");
    INFO("status: " << config.status().ToString());
    CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(config.status().message()),
               Catch::Contains("'" + c.field + "'"));
    CHECK_THAT(std::string(config.status().message()),
               Catch::StartsWith("req.txtpb"));
  }
}

TEST_CASE("ParseConfig: a missing tls block names tls.cert_file; an empty "
          "text names node_id",
          "[config]") {
  absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(
      "node_id: \"A\"\nlisten_address: \"x:1\"\ndata_dir: \"/d\"\n", "t");
  CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(config.status().message()),
             Catch::Contains("'tls.cert_file'"));

  config = ParseConfig("", "empty.txtpb");
  CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(config.status().message()),
             Catch::Contains("'node_id'"));
}

TEST_CASE("ParseConfig reports the line of a syntax error", "[config]") {
  struct Case {
    std::string name;
    std::string text;
    int line;
  };
  const std::vector<Case> cases = {
      {"missing colon before a string on line 4",
       "node_id: \"CIV\"\nlisten_address: \"x:1\"\n\ndata_dir \"/d\"\n", 4},
      {"unterminated block: error at end, line 4",
       "node_id: \"CIV\"\ntls {\n  cert_file: \"c\"\n", 4},
      {"string where a number is expected on line 3",
       "node_id: \"CIV\"\nlimits {\n  max_credit: \"many\"\n}\n", 3},
      {"unknown enum value followed by more fields, on line 2",
       "node_id: \"CIV\"\ndurability: DURABILITY_MAYBE listen_address: \"x\"\n",
       2},
      {"number out of range on line 2",
       "node_id: \"CIV\"\nshutdown_grace_seconds: 99999999999\n", 2},
      {"stray closing brace on line 5",
       "node_id: \"CIV\"\n\n\n\n}\n", 5},
  };
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    absl::StatusOr<internal::v1::NodeConfig> config = ParseConfig(c.text, "s.txtpb");
    INFO("status: " << config.status().ToString());
    REQUIRE(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(PositionIn(std::string(config.status().message()), "s.txtpb").line ==
          c.line);
  }
}

TEST_CASE("LoadConfig reads a file and uses its path as the source name",
          "[config]") {
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       ("ibsm-config-test-" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  const std::string good = dir + "/good.txtpb";
  const std::string bad = dir + "/bad.txtpb";
  std::ofstream(good) << kMinimalConfig;
  std::ofstream(bad) << "node_id: \"CIV\"\nnope: 1\n";

  absl::StatusOr<internal::v1::NodeConfig> config = LoadConfig(good);
  INFO(config.status().ToString());
  CHECK(config.ok());

  config = LoadConfig(bad);
  CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(config.status().message()),
             Catch::StartsWith(bad + ":2:"));

  config = LoadConfig(dir + "/does-not-exist.txtpb");
  CHECK_FALSE(config.ok());

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_CASE("ParseConfig reads metrics, logging and enable_reflection, and "
          "refuses an unknown log format or level or a metrics setting "
          "without its address, naming the field",
          "[config]") {
  const std::string full = absl::StrCat(
      kMinimalConfig,
      "metrics { listen_address: \"127.0.0.1:9464\" port_file: \"m.port\" "
      "client_ca_file: \"scrapers.pem\" }\n"
      "logging { format: \"json\" level: \"warning\" file: \"b.log\" }\n"
      "enable_reflection: true\n");
  absl::StatusOr<internal::v1::NodeConfig> config =
      ParseConfig(full, "obs.txtpb");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->metrics().listen_address() == "127.0.0.1:9464");
  CHECK(config->metrics().client_ca_file() == "scrapers.pem");
  CHECK(config->logging().format() == "json");
  CHECK(config->enable_reflection());

  struct Bad {
    const char* text;
    const char* field;
  };
  for (const Bad& bad :
       {Bad{"logging { format: \"xml\" }\n", "logging.format is 'xml'"},
        Bad{"logging { level: \"loud\" }\n", "logging.level is 'loud'"},
        Bad{"metrics { port_file: \"m.port\" }\n",
            "metrics.port_file and metrics.client_ca_file need "
            "metrics.listen_address"}}) {
    INFO(bad.text);
    absl::StatusOr<internal::v1::NodeConfig> refused =
        ParseConfig(absl::StrCat(kMinimalConfig, bad.text), "obs.txtpb");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(refused.status().message()).rfind(
              absl::StrCat("obs.txtpb: ", bad.field), 0) == 0);
  }
}

}  // namespace
}  // namespace ibsm::broker
// clang-format on
