// Encryption at rest through a real broker process (docs/security.md,
// "Encryption at rest"): the raw files of the data directory, the node's
// report of it, and the keygen and reencrypt commands.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "storage/store.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::string Broker() { return BinaryDir() + "/bin/ibsm-broker"; }

// 64 random hex digits: a marker no compression or encoding hides.
std::string Marker() {
  std::random_device rd;
  std::string bytes(32, '\0');
  for (char& c : bytes) c = static_cast<char>(rd());
  return absl::BytesToHexString(bytes);
}

std::vector<v1::Alert> MarkedAlerts(const std::string& prefix, int n,
                                    const std::string& payload,
                                    const std::string& attribute) {
  std::vector<v1::Alert> alerts;
  for (int i = 0; i < n; ++i) {
    v1::Alert a = MakeAlert(absl::StrCat(prefix, i));
    a.set_content_type("text/plain");
    a.set_payload(payload);
    (*a.mutable_attributes())["suspect"] = attribute;
    alerts.push_back(std::move(a));
  }
  return alerts;
}

// Every file under the data directory, by name, with its bytes.
std::vector<std::pair<std::string, std::string>> RawFiles(
    const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files.emplace_back(entry.path().filename().string(),
                       std::string(std::istreambuf_iterator<char>(in), {}));
  }
  return files;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() &&
         s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void CheckDelivered(const std::vector<v1::Delivery>& got, size_t n,
                    const std::string& payload, const std::string& attribute) {
  REQUIRE(got.size() == n);
  for (const v1::Delivery& d : got) {
    CHECK(d.alert().payload() == payload);
    CHECK(d.alert().attributes().at("suspect") == attribute);
  }
}

TEST_CASE(
    "the data directory's raw files hold no payload or attribute in the "
    "clear; with encryption off they do") {
  const bool encrypted = GENERATE(true, false);
  INFO("encryption " << (encrypted ? "on" : "off"));
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  if (!encrypted) config.clear_encryption();
  const std::string payload = Marker();
  const std::string attribute = Marker();
  {
    // Flushed to table files by the clean stop.
    BrokerProcess broker(config);
    auto police = Channel(broker.port(), Tls("agency-CIV_police"));
    REQUIRE(
        RawPublish(police, MarkedAlerts("sst-", 20, payload, attribute)).ok());
    v1::NodeInfo info;
    REQUIRE(RawNodeInfo(police, &info).ok());
    CHECK(info.encryption_at_rest() == encrypted);
    CHECK(info.encryption_key_id().size() == (encrypted ? 16 : 0));
    RunResult shown = RunBinary(
        CliBinary(),
        CliArgs(broker.port(), "agency-CIV_police", {"node", "info"}));
    INFO(shown.output);
    CHECK(shown.exit_code == 0);
    CHECK_THAT(
        shown.output,
        Catch::Contains(encrypted ? absl::StrCat("encryption:     on, key id ",
                                                 info.encryption_key_id())
                                  : "encryption:     off"));
    broker.Kill(SIGTERM);
    REQUIRE(broker.Wait() == 0);
  }
  {
    // Left in the write-ahead log by a crash.
    BrokerProcess broker(config);
    auto police = Channel(broker.port(), Tls("agency-CIV_police"));
    REQUIRE(
        RawPublish(police, MarkedAlerts("wal-", 20, payload, attribute)).ok());
    // Read back from RocksDB (the first 20 are not in the log cache of
    // this process): opened on the delivery path.
    auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
    RawSubscription sub(customs, OpenRequest({">"}));
    CheckDelivered(sub.ReadDeliveries(40), 40, payload, attribute);
    broker.Kill(SIGKILL);
    broker.Wait();
  }
  bool saw_sst = false;
  bool saw_wal = false;
  bool marker_in_sst = false;
  bool marker_in_wal = false;
  for (const auto& [name, bytes] : RawFiles(config.data_dir())) {
    const bool sst = EndsWith(name, ".sst");
    const bool wal = EndsWith(name, ".log") && name != "LOG";
    saw_sst = saw_sst || (sst && !bytes.empty());
    saw_wal = saw_wal || (wal && !bytes.empty());
    const bool marked = bytes.find(payload) != std::string::npos ||
                        bytes.find(attribute) != std::string::npos;
    marker_in_sst = marker_in_sst || (sst && marked);
    marker_in_wal = marker_in_wal || (wal && marked);
    if (encrypted) {
      INFO("file " << name);
      CHECK(bytes.find(payload) == std::string::npos);
      CHECK(bytes.find(attribute) == std::string::npos);
    }
  }
  CHECK(saw_sst);
  CHECK(saw_wal);
  if (!encrypted) {
    // The same scan finds them when they are stored in the clear.
    CHECK(marker_in_sst);
    CHECK(marker_in_wal);
  }

  // The audit trail holds hashes of payloads, never the payload or an
  // attribute, whether encryption is on or not.
  auto store = broker::Store::Open(StoreOptionsFor(config));
  REQUIRE(store.ok());
  size_t audit_records = 0;
  REQUIRE((*store)
              ->Scan(broker::Family::kAudit, "", 1000000,
                     [&](absl::string_view, absl::string_view value) {
                       ++audit_records;
                       CHECK(value.find(payload) == absl::string_view::npos);
                       CHECK(value.find(attribute) == absl::string_view::npos);
                       return true;
                     })
              .ok());
  CHECK(audit_records >= 40);
}

std::string WriteConfig(const internal::v1::NodeConfig& config,
                        const std::string& path) {
  std::string text;
  REQUIRE(google::protobuf::TextFormat::PrintToString(config, &text));
  std::ofstream(path) << text;
  return path;
}

TEST_CASE("ibsm-broker keygen writes a 0600 key and never overwrites one") {
  TempDir dir;
  const std::string key = dir.File("node.key");
  RunResult made = RunBinary(Broker(), {"keygen", "--out", key});
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  CHECK_THAT(made.output, Catch::Contains("key id "));
  struct stat st;
  REQUIRE(stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 32);
  RunResult again = RunBinary(Broker(), {"keygen", "--out", key});
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.output, Catch::Contains("never overwritten"));
  CHECK(RunBinary(Broker(), {"keygen"}).exit_code == 2);
}

TEST_CASE(
    "ibsm-broker reencrypt moves plaintext and old-key records to the "
    "current key; the old key can then be dropped") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  const std::string key_a = config.encryption().key_file();
  const std::string payload = Marker();
  const std::string attribute = Marker();
  auto publish_and_stop = [&](const internal::v1::NodeConfig& c,
                              const std::string& prefix) {
    BrokerProcess broker(c);
    auto police = Channel(broker.port(), Tls("agency-CIV_police"));
    REQUIRE(
        RawPublish(police, MarkedAlerts(prefix, 5, payload, attribute)).ok());
    broker.Kill(SIGTERM);
    REQUIRE(broker.Wait() == 0);
  };
  internal::v1::NodeConfig plain = config;
  plain.clear_encryption();
  publish_and_stop(plain, "plain-");  // 1..5 from before encryption
  publish_and_stop(config, "a-");     // 6..10 under key A

  // Rotate: B for new writes, A kept for reading.
  const std::string key_b = dir.File("b.key");
  REQUIRE(RunBinary(Broker(), {"keygen", "--out", key_b}).exit_code == 0);
  internal::v1::NodeConfig rotated = config;
  rotated.mutable_encryption()->set_key_file(key_b);
  rotated.mutable_encryption()->add_old_key_files(key_a);
  publish_and_stop(rotated, "b-");  // 11..15 under B
  const std::string rotated_file =
      WriteConfig(rotated, dir.File("rotated.textproto"));
  {
    // Not while the node runs: its store is locked.
    BrokerProcess broker(rotated);
    RunResult busy =
        RunBinary(Broker(), {"reencrypt", "--config", rotated_file});
    INFO(busy.output);
    CHECK(busy.exit_code == 2);
    CHECK_THAT(busy.output, Catch::Contains("stopped node"));
    broker.Kill(SIGTERM);
    REQUIRE(broker.Wait() == 0);
  }
  RunResult done = RunBinary(Broker(), {"reencrypt", "--config", rotated_file});
  INFO(done.output);
  REQUIRE(done.exit_code == 0);
  CHECK_THAT(done.output,
             Catch::Contains("re-encrypted 10 of 15 stored alerts"));
  RunResult again =
      RunBinary(Broker(), {"reencrypt", "--config", rotated_file});
  CHECK_THAT(again.output, Catch::Contains("re-encrypted 0 of 15"));

  // Drop A: everything still reads, through delivery from RocksDB.
  internal::v1::NodeConfig only_b = rotated;
  only_b.mutable_encryption()->clear_old_key_files();
  BrokerProcess broker(only_b);
  auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
  RawSubscription sub(customs, OpenRequest({">"}));
  CheckDelivered(sub.ReadDeliveries(15), 15, payload, attribute);
}

}  // namespace
}  // namespace ibsm::testing
