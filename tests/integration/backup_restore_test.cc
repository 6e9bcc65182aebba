// `ibsm-broker backup` and `ibsm-broker restore` against a real broker
// process (docs/operations.md, "Backup and restore"): an online backup
// while alerts are published, a restore into the data directory, the start
// refused on the rolled-back trail until the operator accepts it, the trail
// verified against the backup's checkpoint and not against the abandoned
// one, and a durable subscriber that resumes from the backup's cursor.
#include <google/protobuf/text_format.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The published checkpoint file of a node (tree size 0 when absent).
internal::v1::PublishedCheckpoint ReadPublished(const std::string& path) {
  internal::v1::PublishedCheckpoint value;
  (void)google::protobuf::TextFormat::ParseFromString(ReadFile(path), &value);
  return value;
}

std::string BrokerBinary() { return BinaryDir() + "/bin/ibsm-broker"; }

RunResult Auditor(int port, std::vector<std::string> args) {
  return RunBinary(CliBinary(),
                   CliArgs(port, "auditor-UNODC_audit", std::move(args)));
}

// Publishes batches of alerts "<prefix><n>" as CIV/police until stopped;
// counts what was acknowledged.
class ContinuousPublisher {
 public:
  ContinuousPublisher(int port, std::string prefix)
      : channel_(Channel(port, Tls("agency-CIV_police"))),
        prefix_(std::move(prefix)),
        thread_([this] { Run(); }) {}
  ~ContinuousPublisher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t acknowledged() const { return acknowledged_.load(); }
  uint64_t last_sequence() const { return last_sequence_.load(); }

 private:
  void Run() {
    for (int batch = 0; !stop_; ++batch) {
      std::vector<v1::Alert> alerts;
      for (int i = 0; i < 10; ++i) {
        alerts.push_back(MakeAlert(absl::StrCat(prefix_, batch, "-", i)));
      }
      v1::PublishResponse response;
      if (!RawPublish(channel_, alerts, &response).ok()) continue;
      for (const auto& result : response.results()) {
        if (result.code() == 0) {
          ++acknowledged_;
          last_sequence_ = std::max(last_sequence_.load(), result.sequence());
        }
      }
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  const std::string prefix_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acknowledged_{0};
  std::atomic<uint64_t> last_sequence_{0};
  std::thread thread_;
};

TEST_CASE(
    "online backup while publishing; restore; the rolled-back trail is "
    "refused until accepted; the trail verifies; a durable subscriber "
    "resumes") {
  TempDir dir;
  const std::string data = dir.File("data");
  internal::v1::NodeConfig config = NodeConfigFor(data);
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(20);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  const std::string config_file = data + ".textproto";      // BrokerProcess's
  const std::string published_file = data + ".checkpoint";  // the default
  const std::string backup = dir.File("backup");
  const std::string node_cert = PkiDir() + "/node-CIV-chain.pem";
  const std::string ca = PkiDir() + "/ca.pem";

  uint64_t cursor_at_backup = 0;
  internal::v1::PublishedCheckpoint signed_before_stop;
  uint64_t backup_last_sequence = 0;
  {
    BrokerProcess broker(config);
    auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
    RawSubscription durable(
        customs, OpenRequest({">"}, "ops",
                             v1::SubscribeRequest::Open::START_EARLIEST, 100));
    REQUIRE(durable.WaitOpened());
    ContinuousPublisher publisher(broker.port(), "before-");
    REQUIRE(Eventually([&] { return publisher.acknowledged() >= 300; }));
    const std::vector<v1::Delivery>& first = durable.ReadDeliveries(100);
    REQUIRE(first.size() == 100);
    cursor_at_backup = first.back().sequence();
    REQUIRE(durable.SendFlow(cursor_at_backup, 0));
    // The ack is stored by the Committer with the next batches: let a few
    // go by before the backup, so the copy holds this cursor.
    const uint64_t acked_before = publisher.acknowledged();
    REQUIRE(Eventually(
        [&] { return publisher.acknowledged() > acked_before + 50; }));

    // Only the node's own certificate may take a backup.
    {
      auto police = Channel(broker.port(), Tls("agency-CIV_police"));
      grpc::ClientContext context;
      SetTestDeadline(context);
      auto reader =
          v1::Node::NewStub(police)->Backup(&context, v1::BackupRequest());
      v1::BackupChunk chunk;
      CHECK_FALSE(reader->Read(&chunk));
      grpc::Status refused = reader->Finish();
      CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);
      CHECK_THAT(refused.error_message(),
                 Catch::Contains("only node CIV's own certificate"));
    }

    const uint64_t acked_at_start = publisher.acknowledged();
    RunResult backed_up = RunBinary(
        BrokerBinary(), {"backup", "--config", config_file, "--to", backup},
        absl::Seconds(120));
    INFO(backed_up.output);
    REQUIRE(backed_up.exit_code == 0);
    CHECK_THAT(backed_up.output,
               Catch::Contains("backup of node CIV written to " + backup));
    // Publishes went on during the backup (it is online).
    CHECK(publisher.acknowledged() > acked_at_start);
    REQUIRE(std::filesystem::exists(backup + "/backup-manifest.textproto"));
    REQUIRE(std::filesystem::exists(backup + "/audit-checkpoint.note"));
    v1::BackupManifest manifest;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(
        ReadFile(backup + "/backup-manifest.textproto"), &manifest));
    backup_last_sequence = manifest.last_sequence();
    CHECK(manifest.node_id() == "CIV");
    CHECK(backup_last_sequence >= 300);
    CHECK(manifest.checkpoint().tree_size() > 0);
    CHECK(manifest.checkpoint().tree_size() <= manifest.audit_size());

    // A second backup into the same (non-empty) directory is refused.
    RunResult again = RunBinary(
        BrokerBinary(), {"backup", "--config", config_file, "--to", backup});
    CHECK(again.exit_code == 2);
    CHECK_THAT(again.output, Catch::Contains("not an empty directory"));

    // More is published and acknowledged, and checkpoints covering it are
    // signed, after the backup.
    REQUIRE(Eventually([&] {
      return publisher.last_sequence() > backup_last_sequence + 300;
    }));
    publisher.Stop();
    REQUIRE(Eventually([&] {
      internal::v1::PublishedCheckpoint p = ReadPublished(published_file);
      return p.checkpoint().tree_size() > manifest.audit_size() + 300 &&
             p.last_sequence() > backup_last_sequence + 300;
    }));
    // The backup itself is audited (in the trail that goes on, not in the
    // copy).
    auto auditor = Channel(broker.port(), Tls("auditor-UNODC_audit"));
    v1::AuditQuery query;
    query.set_action(v1::AUDIT_BACKUP);
    REQUIRE(
        Eventually([&] { return RawAuditQuery(auditor, query).size() == 1; }));
    std::vector<v1::AuditRecord> backups = RawAuditQuery(auditor, query);
    CHECK(backups[0].actor() == "CIV");
    CHECK(backups[0].allowed());
    CHECK_THAT(
        backups[0].detail(),
        Catch::Contains(absl::StrCat("last sequence ", backup_last_sequence)));
    (void)durable.Close();
    broker.Kill(SIGTERM);
    REQUIRE(broker.Wait() == 0);
    signed_before_stop = ReadPublished(published_file);
  }
  const uint64_t abandoned_size = signed_before_stop.checkpoint().tree_size();

  // The restore needs an empty data directory: it never overwrites one.
  RunResult refused_restore = RunBinary(
      BrokerBinary(), {"restore", "--config", config_file, "--from", backup});
  CHECK(refused_restore.exit_code == 2);
  CHECK_THAT(refused_restore.output, Catch::Contains("not an empty directory"));
  std::filesystem::rename(data, data + ".old");
  // A damaged backup is refused before anything is copied.
  {
    const std::string damaged = dir.File("damaged");
    std::filesystem::copy(backup, damaged);
    v1::BackupManifest manifest;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(
        ReadFile(damaged + "/backup-manifest.textproto"), &manifest));
    const v1::BackupFile& victim = manifest.files(0);
    {
      std::fstream f(damaged + "/" + victim.name(),
                     std::ios::in | std::ios::out | std::ios::binary);
      char byte = 0;
      f.read(&byte, 1);
      f.seekp(0);
      byte = static_cast<char>(byte ^ 0x01);
      f.write(&byte, 1);
    }
    RunResult refused =
        RunBinary(BrokerBinary(),
                  {"restore", "--config", config_file, "--from", damaged});
    INFO(refused.output);
    CHECK(refused.exit_code == 2);
    CHECK_THAT(refused.output, Catch::Contains("the backup is damaged") &&
                                   Catch::Contains(victim.name()));
    CHECK_FALSE(std::filesystem::exists(data + "/CURRENT"));
  }
  RunResult restored = RunBinary(
      BrokerBinary(), {"restore", "--config", config_file, "--from", backup});
  INFO(restored.output);
  REQUIRE(restored.exit_code == 0);
  CHECK_THAT(restored.output,
             Catch::Contains(
                 absl::StrCat("alerts up to sequence ", backup_last_sequence)));
  CHECK_THAT(
      restored.output,
      Catch::Contains(absl::StrCat("Alerts with sequences ",
                                   backup_last_sequence + 1, " to ")) &&
          Catch::Contains("gone from this node") &&
          Catch::Contains(absl::StrCat("--accept-rollback ", abandoned_size)));

  // The start on the shorter trail is refused, with the way out named.
  RunResult refused_start =
      RunBinary(BrokerBinary(), {"--config", config_file});
  INFO(refused_start.output);
  CHECK(refused_start.exit_code == 2);
  CHECK_THAT(
      refused_start.output,
      Catch::Contains("rolled back") &&
          Catch::Contains(absl::StrCat("--accept-rollback ", abandoned_size)));
  RunResult wrong_size = RunBinary(
      BrokerBinary(), {"--config", config_file, "--accept-rollback", "1"});
  CHECK(wrong_size.exit_code == 2);
  CHECK_THAT(wrong_size.output, Catch::Contains("(not 1)"));
  CHECK(ReadPublished(published_file).checkpoint().tree_size() ==
        abandoned_size);

  BrokerProcess broker(config,
                       {"--accept-rollback", std::to_string(abandoned_size)});
  const int port = broker.port();
  const std::string abandoned_file =
      absl::StrCat(published_file, ".abandoned-", abandoned_size);
  CHECK(std::filesystem::exists(abandoned_file));

  // The durable subscriber resumes after the cursor the backup holds: what
  // it acknowledged later is delivered again, up to the backup's last
  // alert, and a new alert (which reuses the next sequence) reaches it.
  auto customs = Channel(port, Tls("agency-CIV_customs"));
  RawSubscription durable(
      customs, OpenRequest({">"}, "ops",
                           v1::SubscribeRequest::Open::START_EARLIEST, 4096));
  REQUIRE(durable.WaitOpened());
  CHECK(durable.opened_info().last_sequence() == backup_last_sequence);
  std::vector<v1::Delivery> resumed = durable.ReadDeliveries(1);
  REQUIRE_FALSE(resumed.empty());
  CHECK(resumed.front().sequence() == cursor_at_backup + 1);
  const size_t expected = backup_last_sequence - resumed.front().sequence() + 1;
  resumed = durable.ReadDeliveries(expected);
  REQUIRE(resumed.size() == expected);
  CHECK(resumed.back().sequence() == backup_last_sequence);
  auto police = Channel(port, Tls("agency-CIV_police"));
  v1::PublishResponse response;
  REQUIRE(RawPublish(police, {MakeAlert("after-restore")}, &response).ok());
  CHECK(response.results(0).sequence() == backup_last_sequence + 1);
  resumed = durable.ReadDeliveries(expected + 1);
  REQUIRE(resumed.size() == expected + 1);
  CHECK(resumed.back().alert().id() == "after-restore");
  (void)durable.Close();

  // The rollback is in the trail, and the trail verifies against the
  // backup's checkpoint; against the abandoned checkpoint it does not.
  auto auditor = Channel(port, Tls("auditor-UNODC_audit"));
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_ROLLBACK_ACCEPTED);
  REQUIRE(
      Eventually([&] { return RawAuditQuery(auditor, query).size() == 1; }));
  std::vector<v1::AuditRecord> rollback = RawAuditQuery(auditor, query);
  CHECK_THAT(rollback[0].reason(), Catch::Contains(absl::StrCat(
                                       "--accept-rollback ", abandoned_size)));
  CHECK(rollback[0].detail() == signed_before_stop.checkpoint().note());

  const std::string exported = dir.File("after.bin");
  // A checkpoint covering the rollback record is signed.
  REQUIRE(Eventually([&] {
    return ReadPublished(published_file).checkpoint().tree_size() >
           rollback[0].index();
  }));
  RunResult export_run = Auditor(port, {"audit", "export", "-o", exported});
  INFO(export_run.output);
  REQUIRE(export_run.exit_code == 0);
  RunResult verified =
      RunBinary(CliBinary(),
                {"audit", "verify", exported, "--node-cert", node_cert, "--ca",
                 ca, "--kept-checkpoint", backup + "/audit-checkpoint.note"});
  INFO(verified.output);
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.output, Catch::StartsWith("OK:"));
  const std::string abandoned_note = dir.File("abandoned.note");
  {
    std::ofstream out(abandoned_note, std::ios::binary);
    out << signed_before_stop.checkpoint().note();
  }
  RunResult forked = RunBinary(
      CliBinary(), {"audit", "verify", exported, "--node-cert", node_cert,
                    "--ca", ca, "--kept-checkpoint", abandoned_note});
  INFO(forked.output);
  CHECK(forked.exit_code != 0);
}

}  // namespace
}  // namespace ibsm::testing
