// ibsm-broker as an operator runs it: start-up errors, clean SIGTERM.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::string Broker() { return BinaryDir() + "/bin/ibsm-broker"; }

std::string WriteConfig(const TempDir& dir, const std::string& text) {
  std::string path = dir.File("node.textproto");
  std::ofstream(path) << text;
  return path;
}

std::string ConfigText(const TempDir& dir, const std::string& key_file) {
  TlsFiles tls = Tls("node-CIV");
  return absl::StrCat("node_id: \"CIV\"\nlisten_address: \"127.0.0.1:0\"\n",
                      "data_dir: \"", dir.File("data"), "\"\n",
                      "tls {\n  cert_file: \"", tls.cert_file, "\"\n",
                      "  key_file: \"", key_file, "\"\n", "  ca_file: \"",
                      tls.ca_file, "\"\n}\n");
}

void ExpectOneLineExit2(const RunResult& r, const std::string& mentions) {
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains(mentions));
  std::vector<std::string> lines =
      absl::StrSplit(r.output, '\n', absl::SkipEmpty());
  CHECK(lines.size() == 1);
}

TEST_CASE("the broker refuses to start on bad setup with one line, exit 2") {
  TempDir dir;
  SECTION("no --config") {
    RunResult r = RunBinary(Broker(), {});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("usage"));
  }
  SECTION("a config file that does not exist") {
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", dir.File("nope")}),
                       "No such file");
  }
  SECTION("an unknown field in the config names file and line") {
    std::string path = WriteConfig(
        dir, ConfigText(dir, Tls("node-CIV").key_file) + "colour: \"red\"\n");
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", path}),
                       "node.textproto:9:");
  }
  SECTION("a missing key file") {
    std::string path =
        WriteConfig(dir, ConfigText(dir, dir.File("missing.key")));
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", path}), "missing.key");
  }
  SECTION("a key that does not match the certificate") {
    std::string path =
        WriteConfig(dir, ConfigText(dir, Tls("node-MLI").key_file));
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", path}),
                       "does not match");
  }
  SECTION("an invalid policy file names file and line") {
    std::ofstream(dir.File("policy.textproto"))
        << "name: \"p\"\nclassification_levels: \"A\"\nnodes { id: \"CIV\" "
           "clearance: \"B\" }\n";
    std::string path = WriteConfig(
        dir, ConfigText(dir, Tls("node-CIV").key_file) + "policy_file: \"" +
                 dir.File("policy.textproto") + "\"\n");
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", path}),
                       "policy.textproto:3");
  }
  SECTION("a private key file that group or others may read") {
    std::filesystem::copy_file(Tls("node-CIV").key_file, dir.File("open.key"));
    std::filesystem::permissions(dir.File("open.key"),
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write |
                                     std::filesystem::perms::group_read |
                                     std::filesystem::perms::others_read);
    std::string path = WriteConfig(dir, ConfigText(dir, dir.File("open.key")));
    ExpectOneLineExit2(
        RunBinary(Broker(), {"--config", path}, absl::Seconds(10)),
        "accessible by group or others (mode 0644)");
  }
  SECTION(
      "an encryption key file that is missing, open to others or not 32 "
      "bytes") {
    const std::string key = dir.File("node.key");
    auto with_key = [&](const std::string& file) {
      return WriteConfig(dir, ConfigText(dir, Tls("node-CIV").key_file) +
                                  "encryption { key_file: \"" + file +
                                  "\" }\n");
    };
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", with_key(key)}),
                       "node.key: encryption key file cannot be read");
    REQUIRE(RunBinary(Broker(), {"keygen", "--out", key}).exit_code == 0);
    std::filesystem::permissions(key, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    ExpectOneLineExit2(
        RunBinary(Broker(), {"--config", with_key(key)}),
        "node.key: encryption key file is accessible by group or others "
        "(mode 0640)");
    const std::string short_key = dir.File("short.key");
    std::ofstream(short_key) << std::string(31, 'k');
    std::filesystem::permissions(short_key,
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write);
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", with_key(short_key)}),
                       "short.key: encryption key file holds 31 bytes");
    ExpectOneLineExit2(
        RunBinary(Broker(),
                  {"--config",
                   WriteConfig(dir, ConfigText(dir, Tls("node-CIV").key_file) +
                                        "encryption { }\n")}),
        "encryption.key_file is required");
  }
  SECTION("a node_id that the node certificate does not carry") {
    std::string path = WriteConfig(
        dir, absl::StrReplaceAll(ConfigText(dir, Tls("node-CIV").key_file),
                                 {{"node_id: \"CIV\"", "node_id: \"MLI\""}}));
    ExpectOneLineExit2(
        RunBinary(Broker(), {"--config", path}, absl::Seconds(10)),
        "does not match the node certificate");
  }
  SECTION("a data directory that cannot be created") {
    std::ofstream(dir.File("data")) << "a file where the directory should be";
    std::string path =
        WriteConfig(dir, ConfigText(dir, Tls("node-CIV").key_file));
    ExpectOneLineExit2(RunBinary(Broker(), {"--config", path}),
                       "data directory");
  }
}

TEST_CASE("SIGTERM drains and exits 0; the data is there after restart") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  {
    BrokerProcess broker(config);
    auto police = Channel(broker.port(), Tls("agency-CIV_police"));
    for (int i = 0; i < 20; ++i) {
      REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("t", i))}).ok());
    }
    auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
    RawSubscription live(customs, OpenRequest({">"}));
    REQUIRE(live.ReadDeliveries(20).size() == 20);
    broker.Kill(SIGTERM);
    CHECK(broker.Wait() == 0);
    // The live subscriber was told to come back later.
    CHECK(live.AwaitEnd().error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  BrokerProcess broker(config);
  auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({">"}));
  REQUIRE(sub.ReadDeliveries(20).size() == 20);
}

TEST_CASE("SIGHUP reloads the policy file; the version is reported") {
  TempDir dir;
  std::string policy_path =
      SourceDir() + "/policies/ibsm-west-africa.textproto";
  std::string copy = dir.File("policy.textproto");
  std::filesystem::copy_file(policy_path, copy);
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(copy);
  config.set_policy_check_seconds(3600);  // only SIGHUP reloads here
  BrokerProcess broker(config);
  auto police = Channel(broker.port(), Tls("agency-CIV_police"));
  auto version = [&] {
    v1::NodeInfo info;
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(v1::Node::NewStub(police)->GetInfo(&ctx, {}, &info).ok());
    return info.policy_version();
  };
  const std::string before = version();
  CHECK(before.size() == 16);
  std::ofstream(copy, std::ios::app) << "\n# an operator's comment\n";
  broker.Kill(SIGHUP);
  REQUIRE(Eventually([&] { return version() != before; }));
}

}  // namespace
}  // namespace ibsm::testing
