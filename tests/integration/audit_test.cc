// The audit trail of a real node: what is recorded, who may read it, proofs
// against signed checkpoints, and tampering found by offline verification.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "ibsm/audit_verify.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/merkle.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "node/node.h"
#include "storage/key_codec.h"
#include "storage/store.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using ibsm::Hash;

internal::v1::NodeConfig AuditedConfig(const TempDir& dir) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(5);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  return config;
}

std::unique_ptr<broker::Node> Start(const internal::v1::NodeConfig& config) {
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

v1::SignedCheckpoint WaitForCheckpoint(const std::shared_ptr<grpc::Channel>& ch,
                                       uint64_t at_least) {
  auto stub = v1::Auditor::NewStub(ch);
  std::optional<v1::SignedCheckpoint> found =
      EventuallyValue([&]() -> std::optional<v1::SignedCheckpoint> {
        grpc::ClientContext ctx;
        SetTestDeadline(ctx);
        v1::SignedCheckpoint c;
        if (stub->GetCheckpoint(&ctx, {}, &c).ok() &&
            c.tree_size() >= at_least) {
          return c;
        }
        return std::nullopt;
      });
  if (!found.has_value()) FAIL("no checkpoint of size >= " << at_least);
  return *found;
}

Hash RequireHash(const std::string& bytes) {
  std::optional<Hash> h = crypto::HashFromBytes(bytes);
  REQUIRE(h.has_value());
  return *h;
}

TEST_CASE(
    "publishes, refusals, deliveries and acks are recorded; auditors "
    "query them, others are refused and that is recorded too") {
  TempDir dir;
  auto node = Start(AuditedConfig(dir));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto customs = Channel(node->port(), Tls("agency-CIV_customs"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));

  RawSubscription sub(customs, OpenRequest({"border.>"}, "desk"));
  REQUIRE(sub.WaitOpened());
  v1::Alert alert = MakeAlert("aud-1", "border.incident", "RESTRICTED");
  REQUIRE(RawPublish(police, {alert}).ok());
  REQUIRE(sub.ReadDeliveries(1).size() == 1);
  REQUIRE(sub.SendFlow(1, 0));
  // Refused: customs may not publish SECRET terrorism intelligence.
  CHECK(RawPublish(customs, {MakeAlert("aud-2", "terrorism.attack", "SECRET")})
            .error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(sub.Close().ok());

  // A non-auditor is refused.
  grpc::Status refused;
  RawAuditQuery(police, v1::AuditQuery(), &refused);
  CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);

  auto has = [](const std::vector<v1::AuditRecord>& rs, v1::AuditAction a,
                const std::string& actor, bool allowed) {
    for (const auto& r : rs) {
      if (r.action() == a && r.actor() == actor && r.allowed() == allowed) {
        return true;
      }
    }
    return false;
  };
  std::vector<v1::AuditRecord> records;
  // Acks and closes arrive asynchronously.
  CHECK(Eventually([&] {
    records = RawAuditQuery(auditor, v1::AuditQuery());
    // Records of asynchronous events (closes, acks, the auditor's own
    // earlier queries) are committed with the next batch.
    return has(records, v1::AUDIT_SUBSCRIBE_CLOSE, "CIV/customs", true) &&
           has(records, v1::AUDIT_CALL_REFUSED, "CIV/police", false) &&
           has(records, v1::AUDIT_ACK, "CIV/customs", true) &&
           has(records, v1::AUDIT_AUDITOR_QUERY, "UNODC/audit", true);
  }));
  CHECK(has(records, v1::AUDIT_NODE_START, "CIV", true));
  CHECK(has(records, v1::AUDIT_SUBSCRIBE_OPEN, "CIV/customs", true));
  CHECK(has(records, v1::AUDIT_PUBLISH, "CIV/police", true));
  CHECK(has(records, v1::AUDIT_PUBLISH, "CIV/customs", false));
  CHECK(has(records, v1::AUDIT_DELIVER, "CIV/customs", true));
  CHECK(has(records, v1::AUDIT_ACK, "CIV/customs", true));
  CHECK(has(records, v1::AUDIT_SUBSCRIBE_CLOSE, "CIV/customs", true));
  CHECK(has(records, v1::AUDIT_CALL_REFUSED, "CIV/police", false));
  CHECK(has(records, v1::AUDIT_AUDITOR_QUERY, "UNODC/audit", true));
  for (size_t i = 0; i < records.size(); ++i) CHECK(records[i].index() == i);

  // The accepted publish record carries the payload's hash, not the payload.
  for (const auto& r : records) {
    if (r.action() == v1::AUDIT_PUBLISH && r.allowed()) {
      CHECK(r.alert_id() == "aud-1");
      CHECK(r.sequence() == 1);
      CHECK(r.payload_sha256().size() == 32);
      CHECK(r.rule() == "border-incident");
      CHECK_FALSE(r.policy_version().empty());
      CHECK(r.ShortDebugString().find(alert.payload()) == std::string::npos);
    }
  }

  // Filters: by action and decision.
  v1::AuditQuery denied;
  denied.set_decision(v1::AuditQuery::DECISION_DENIED);
  for (const auto& r : RawAuditQuery(auditor, denied)) CHECK_FALSE(r.allowed());
  v1::AuditQuery by_alert;
  by_alert.set_alert_id("aud-1");
  by_alert.set_action(v1::AUDIT_DELIVER);
  auto deliveries = RawAuditQuery(auditor, by_alert);
  REQUIRE(deliveries.size() == 1);
  CHECK(deliveries[0].recipient() == "CIV/customs");
}

TEST_CASE(
    "inclusion and consistency proofs verify against signed checkpoints") {
  TempDir dir;
  auto node = Start(AuditedConfig(dir));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  auto stub = v1::Auditor::NewStub(auditor);
  auto key = ibsm::VerifyingKey::FromCertificatePem(
      *ReadFileToString(Tls("node-CIV").cert_file));
  REQUIRE(key.ok());

  for (int i = 0; i < 6; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("p", i))}).ok());
  }
  v1::SignedCheckpoint first = WaitForCheckpoint(auditor, 6);
  auto parsed = ibsm::VerifyCheckpoint(first.note(), "ibsm/CIV", *key);
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  CHECK(parsed->tree_size == first.tree_size());

  for (int i = 6; i < 20; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("p", i))}).ok());
  }
  v1::SignedCheckpoint second =
      WaitForCheckpoint(auditor, first.tree_size() + 14);
  REQUIRE(ibsm::VerifyCheckpoint(second.note(), "ibsm/CIV", *key).ok());

  for (uint64_t index : {uint64_t{0}, uint64_t{3}, second.tree_size() - 1}) {
    v1::InclusionProofRequest request;
    request.set_index(index);
    v1::InclusionProof proof;
    grpc::ClientContext ctx;
    SetTestDeadline(ctx);
    REQUIRE(stub->GetInclusionProof(&ctx, request, &proof).ok());
    std::vector<Hash> path;
    for (const auto& h : proof.hashes()) path.push_back(RequireHash(h));
    CHECK(ibsm::VerifyInclusion(ibsm::LeafHash(proof.record()), index,
                                proof.tree_size(), path,
                                RequireHash(second.root_hash()))
              .ok());
  }
  v1::ConsistencyProofRequest request;
  request.set_from_size(first.tree_size());
  request.set_to_size(second.tree_size());
  v1::ConsistencyProof proof;
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  REQUIRE(stub->GetConsistencyProof(&ctx, request, &proof).ok());
  std::vector<Hash> hashes;
  for (const auto& h : proof.hashes()) hashes.push_back(RequireHash(h));
  CHECK(ibsm::VerifyConsistency(first.tree_size(), second.tree_size(),
                                RequireHash(first.root_hash()),
                                RequireHash(second.root_hash()), hashes)
            .ok());
}

v1::AuditExport ExportFrom(const std::shared_ptr<grpc::Channel>& auditor,
                           uint64_t to_size, uint64_t kept_size = 0) {
  v1::ExportRequest request;
  request.set_to_size(to_size);
  request.set_kept_size(kept_size);
  v1::AuditExport exported;
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  grpc::Status s =
      v1::Auditor::NewStub(auditor)->Export(&ctx, request, &exported);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return exported;
}

ibsm::VerifyReport Verify(const v1::AuditExport& exported,
                          const std::string* kept_note = nullptr) {
  auto key = ibsm::VerifyingKey::FromCertificatePem(
      *ReadFileToString(Tls("node-CIV").cert_file));
  REQUIRE(key.ok());
  auto report = ibsm::VerifyExport(exported, *key, "ibsm/CIV", kept_note);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  return *report;
}

// Runs a node, publishes, stops it (which signs a final checkpoint) and
// returns that checkpoint's size.
uint64_t RunAndStop(const internal::v1::NodeConfig& config, int alerts,
                    const std::string& prefix) {
  auto node = Start(config);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  for (int i = 0; i < alerts; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat(prefix, i))}).ok());
  }
  node->Shutdown(absl::Seconds(1));
  node.reset();
  auto store = broker::Store::Open(StoreOptionsFor(config));
  REQUIRE(store.ok());
  auto latest = broker::LatestCheckpoint(**store);
  REQUIRE(latest.ok());
  auto size = broker::AuditSize(**store);
  REQUIRE(size.ok());
  REQUIRE(latest->tree_size() == *size);  // the stop checkpoint covers all
  return *size;
}

TEST_CASE(
    "records changed, deleted or reordered in RocksDB are "
    "detected and located by offline verification") {
  struct Case {
    const char* name;
    std::function<void(broker::Store&, broker::storage::Batch&, uint64_t size)>
        tamper;
    std::optional<uint64_t> located_at;  // nullopt: detected, index unknown
  };
  auto record_at = [](broker::Store& store, uint64_t index) {
    auto value = store.Get(broker::Family::kAudit, broker::AuditKey(index));
    REQUIRE(value.ok());
    REQUIRE(value->has_value());
    return **value;
  };
  std::vector<Case> cases = {
      {"a changed record",
       [&](broker::Store& store, broker::storage::Batch& b, uint64_t) {
         v1::AuditRecord r;
         REQUIRE(r.ParseFromString(record_at(store, 3)));
         r.set_actor("CIV/someone-else");
         b.AppendAuditRecord(3, r.SerializeAsString());
       },
       3},
      {"a deleted record",
       [&](broker::Store&, broker::storage::Batch& b, uint64_t) {
         b.DeleteForTesting(broker::Family::kAudit, broker::AuditKey(4));
       },
       4},
      {"two records swapped",
       [&](broker::Store& store, broker::storage::Batch& b, uint64_t) {
         std::string r2 = record_at(store, 2), r5 = record_at(store, 5);
         b.AppendAuditRecord(2, r5);
         b.AppendAuditRecord(5, r2);
       },
       2},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    TempDir dir;
    internal::v1::NodeConfig config = AuditedConfig(dir);
    const uint64_t size = RunAndStop(config, 10, "t");
    REQUIRE(size >= 12);  // node start, 10 publishes, node stop
    {
      auto store = broker::Store::Open(StoreOptionsFor(config));
      REQUIRE(store.ok());
      broker::storage::Batch batch = (*store)->NewBatch();
      c.tamper(**store, batch, size);
      REQUIRE(
          (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
    }
    auto node = Start(config);
    auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
    // Verified against the checkpoint the node signed before the tampering.
    ibsm::VerifyReport report = Verify(ExportFrom(auditor, size));
    INFO(report.problem);
    CHECK_FALSE(report.ok);
    if (c.located_at) {
      REQUIRE(report.first_bad_index.has_value());
      CHECK(*report.first_bad_index == *c.located_at);
    }
  }
}

TEST_CASE(
    "an untouched trail verifies, and a rolled-back database is caught "
    "by the checkpoint the auditor kept") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  RunAndStop(config, 5, "old");
  std::filesystem::copy(config.data_dir(), dir.File("old-copy"),
                        std::filesystem::copy_options::recursive);
  const uint64_t newer_size = RunAndStop(config, 10, "new");

  std::string kept_note;
  {
    auto node = Start(config);
    auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
    v1::AuditExport exported = ExportFrom(auditor, newer_size);
    ibsm::VerifyReport report = Verify(exported);
    INFO(report.problem);
    CHECK(report.ok);
    CHECK(report.records_checked == newer_size);
    kept_note = exported.checkpoint().note();
    node->Shutdown(absl::Seconds(1));
  }
  // The operator serves the older copy of the database.
  std::filesystem::remove_all(config.data_dir());
  std::filesystem::rename(dir.File("old-copy"), config.data_dir());
  auto node = Start(config);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  v1::SignedCheckpoint latest = WaitForCheckpoint(auditor, 1);
  ibsm::VerifyReport report =
      Verify(ExportFrom(auditor, latest.tree_size()), &kept_note);
  INFO(report.problem);
  CHECK_FALSE(report.ok);
  CHECK_THAT(report.problem, Catch::Contains("roll") ||
                                 Catch::Contains("shorter") ||
                                 Catch::Contains("inconsistent"));
}

TEST_CASE(
    "a delivery record lists every alert of one response and is found "
    "by any of their ids") {
  TempDir dir;
  auto node = Start(AuditedConfig(dir));
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  std::vector<v1::Alert> alerts;
  for (int i = 0; i < 5; ++i) {
    alerts.push_back(MakeAlert(absl::StrCat("batch-", i), "border.incident"));
  }
  REQUIRE(RawPublish(police, alerts).ok());
  RawSubscription sub(Channel(node->port(), Tls("agency-CIV_customs")),
                      OpenRequest({"border.>"}));
  REQUIRE(sub.ReadDeliveries(5).size() == 5);
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_DELIVER);
  query.set_alert_id("batch-3");
  std::vector<v1::AuditRecord> found;
  CHECK(Eventually([&] {
    found = RawAuditQuery(auditor, query);
    return !found.empty();
  }));
  REQUIRE(found.size() == 1);
  CHECK(found[0].recipient() == "CIV/customs");
  std::set<std::string> listed;
  for (const auto& a : found[0].alerts()) listed.insert(a.alert_id());
  CHECK(listed.count("batch-3") == 1);
  size_t delivered_in_records = 0;
  v1::AuditQuery all_deliveries;
  all_deliveries.set_action(v1::AUDIT_DELIVER);
  for (const auto& r : RawAuditQuery(auditor, all_deliveries)) {
    delivered_in_records += r.alerts_size();
  }
  CHECK(delivered_in_records == 5);
}

TEST_CASE("a change of the CRL directory is noticed and recorded") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  std::filesystem::copy(PkiDir() + "/crl", dir.File("crl"));
  config.mutable_tls()->set_crl_dir(dir.File("crl"));
  config.mutable_tls()->set_reload_interval_seconds(1);
  auto node = Start(config);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  // A new CRL is published into the directory.
  std::filesystem::copy_file(PkiDir() + "/crl/CIV-ca.crl.pem",
                             dir.File("crl/CIV-ca-renewed.crl.pem"));
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_CERT_RELOAD);
  std::vector<v1::AuditRecord> found;
  CHECK(Eventually([&] {
    found = RawAuditQuery(auditor, query);
    return !found.empty();
  }));
  REQUIRE(found.size() == 1);
  CHECK(found[0].allowed());
  CHECK_THAT(found[0].reason(), Catch::Contains("CRL"));
}

// Edits the stored alert at `sequence` of a stopped node's data directory,
// as someone with the files and the node key could.
void EditStoredAlert(const internal::v1::NodeConfig& config, uint64_t sequence,
                     const std::function<void(v1::Alert*)>& edit) {
  auto store = broker::Store::Open(StoreOptionsFor(config));
  REQUIRE(store.ok());
  const std::string key = broker::EncodeSequence(sequence);
  auto value = (*store)->Get(broker::Family::kLog, key);
  REQUIRE(value.ok());
  REQUIRE(value->has_value());
  absl::StatusOr<internal::v1::StoredAlert> stored =
      (*store)->DecodeAlert(sequence, **value);
  REQUIRE(stored.ok());
  edit(stored->mutable_alert());
  broker::storage::Batch batch = (*store)->NewBatch();
  REQUIRE(batch.PutAlert(sequence, *stored).ok());
  REQUIRE((*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
}

v1::AlertExport ExportAlerts(const std::shared_ptr<grpc::Channel>& auditor) {
  v1::AlertExport exported;
  grpc::ClientContext ctx;
  SetTestDeadline(ctx);
  grpc::Status s = v1::Auditor::NewStub(auditor)->ExportAlerts(
      &ctx, v1::AlertExportRequest(), &exported);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return exported;
}

// Records of `action` in the trail, waiting until at least one is there.
std::vector<v1::AuditRecord> WaitForRecords(
    const std::shared_ptr<grpc::Channel>& auditor, v1::AuditAction action) {
  v1::AuditQuery query;
  query.set_action(action);
  std::vector<v1::AuditRecord> found;
  // Empty after the deadline: the caller's checks then say what is missing.
  (void)Eventually([&] {
    found = RawAuditQuery(auditor, query);
    return !found.empty();
  });
  return found;
}

TEST_CASE(
    "a stored alert edited or deleted on a stopped node is refused with "
    "DATA_LOSS at delivery, recorded, and flagged by verify with the alert "
    "export") {
  struct Case {
    const char* name;
    bool remove;  // delete the alert instead of editing its payload
  };
  for (const Case& c :
       {Case{"an edited payload", false}, Case{"a deleted alert", true}}) {
    INFO(c.name);
    TempDir dir;
    internal::v1::NodeConfig config = AuditedConfig(dir);
    const uint64_t size = RunAndStop(config, 5, "tamper-");
    if (c.remove) {
      auto store = broker::Store::Open(StoreOptionsFor(config));
      REQUIRE(store.ok());
      broker::storage::Batch batch = (*store)->NewBatch();
      batch.RemoveAlert(3);
      REQUIRE(
          (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
    } else {
      EditStoredAlert(config, 3,
                      [](v1::Alert* a) { a->set_payload("a forged payload"); });
    }
    auto node = Start(config);
    auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));

    // From outside: a catch-up subscriber gets the alerts before it, then
    // DATA_LOSS naming the sequence; never the forged payload or a silent
    // gap.
    RawSubscription sub(Channel(node->port(), Tls("agency-CIV_customs")),
                        OpenRequest({"border.>"}));
    const std::vector<v1::Delivery>& got = sub.ReadDeliveries(5);
    grpc::Status end = sub.AwaitEnd();
    INFO(end.error_message());
    CHECK(end.error_code() == grpc::StatusCode::DATA_LOSS);
    CHECK_THAT(end.error_message(), Catch::Contains("sequence 3"));
    REQUIRE(got.size() == 2);
    CHECK(got[0].sequence() == 1);
    CHECK(got[1].sequence() == 2);

    // Recorded in the trail: by the start-up check (no recipient) and for
    // the refused subscriber.
    std::optional<v1::AuditRecord> refused;
    bool at_start = false;
    CHECK(Eventually([&] {
      for (const auto& r :
           WaitForRecords(auditor, v1::AUDIT_INTEGRITY_FAILURE)) {
        CHECK_FALSE(r.allowed());
        CHECK(r.sequence() == 3);
        if (r.recipient() == "CIV/customs") refused = r;
        if (r.recipient().empty()) at_start = true;
      }
      return refused.has_value() && at_start;
    }));
    REQUIRE(refused.has_value());
    CHECK(at_start);
    CHECK(refused->actor() == "CIV");

    // Offline: the trail verifies, the alert export against it does not.
    v1::AuditExport trail = ExportFrom(auditor, size);
    REQUIRE(Verify(trail).ok);
    ibsm::AlertsReport alerts =
        ibsm::VerifyAlerts(trail, ExportAlerts(auditor));
    INFO(alerts.problem);
    CHECK_FALSE(alerts.ok);
    REQUIRE(alerts.first_bad_sequence.has_value());
    CHECK(*alerts.first_bad_sequence == 3);
    CHECK_THAT(alerts.problem,
               Catch::Contains(c.remove ? "missing" : "payload"));
  }
}

TEST_CASE(
    "the start-up check of the newest stored alerts records an edited one") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  RunAndStop(config, 5, "tail-");
  EditStoredAlert(config, 5,
                  [](v1::Alert* a) { a->set_topic("border.other"); });
  auto node = Start(config);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  std::vector<v1::AuditRecord> failures =
      WaitForRecords(auditor, v1::AUDIT_INTEGRITY_FAILURE);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].actor() == "CIV");
  CHECK(failures[0].sequence() == 5);
  CHECK_THAT(failures[0].reason(), Catch::Contains("topic"));
}

TEST_CASE(
    "alerts removed by retention leave an accounted gap: catch-up after a "
    "restart delivers the rest and the alert export verifies") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  uint64_t size = 0;
  {
    auto node = Start(config);
    auto police = Channel(node->port(), Tls("agency-CIV_police"));
    v1::Alert expiring = MakeAlert("ret-1");
    *expiring.mutable_expires_at() = expiring.created_at();
    expiring.mutable_expires_at()->set_seconds(expiring.created_at().seconds() +
                                               60);
    REQUIRE(RawPublish(police, {MakeAlert("ret-0"), expiring}).ok());
    REQUIRE(RawPublish(police, {MakeAlert("ret-2")}).ok());
    auto removed = node->RunRetention(absl::Now() + absl::Minutes(5));
    REQUIRE(removed.ok());
    REQUIRE(*removed == 1);
    node->Shutdown(absl::Seconds(1));
  }
  {
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    auto latest = broker::LatestCheckpoint(**store);
    REQUIRE(latest.ok());
    size = latest->tree_size();
  }
  auto node = Start(config);
  RawSubscription sub(Channel(node->port(), Tls("agency-CIV_customs")),
                      OpenRequest({"border.>"}));
  const std::vector<v1::Delivery>& got = sub.ReadDeliveries(2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].alert().id() == "ret-0");
  CHECK(got[1].alert().id() == "ret-2");
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  v1::AuditExport trail = ExportFrom(auditor, size);
  REQUIRE(Verify(trail).ok);
  ibsm::AlertsReport alerts = ibsm::VerifyAlerts(trail, ExportAlerts(auditor));
  INFO(alerts.problem);
  CHECK(alerts.ok);
  CHECK(alerts.alerts_checked == 2);
  CHECK(alerts.removed_by_retention == 1);
}

TEST_CASE(
    "after the node's key and certificate are renewed on disk, checkpoints "
    "are signed with the new key, the switch is recorded, and a trail "
    "spanning the rotation verifies with each checkpoint's own key") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  std::filesystem::copy_file(config.tls().cert_file(), dir.File("node.pem"));
  std::filesystem::copy_file(config.tls().key_file(), dir.File("node.key"));
  config.mutable_tls()->set_cert_file(dir.File("node.pem"));
  config.mutable_tls()->set_key_file(dir.File("node.key"));
  config.mutable_tls()->set_reload_interval_seconds(1);
  auto old_key = ibsm::VerifyingKey::FromCertificatePem(
      *ReadFileToString(dir.File("node.pem")));
  REQUIRE(old_key.ok());
  auto node = Start(config);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("rot-a", i))}).ok());
  }
  const std::string kept = WaitForCheckpoint(auditor, 4).note();
  REQUIRE(ibsm::VerifyCheckpoint(kept, "ibsm/CIV", *old_key).ok());

  // Renewal with a new key, the way an operator or an ACME client does it.
  IssueCertificate("CIV-ca", "spiffe://ibsm/CIV", dir.File("renewed"));
  std::filesystem::rename(dir.File("renewed.key"), dir.File("node.key"));
  std::filesystem::copy_file(dir.File("renewed-chain.pem"),
                             dir.File("node.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  auto new_key = ibsm::VerifyingKey::FromCertificatePem(
      *ReadFileToString(dir.File("node.pem")));
  REQUIRE(new_key.ok());

  std::vector<v1::AuditRecord> switched;
  CHECK(Eventually([&] {
    for (const auto& r : RawAuditQuery(auditor, [] {
           v1::AuditQuery q;
           q.set_action(v1::AUDIT_CERT_RELOAD);
           return q;
         }())) {
      if (r.allowed() &&
          r.detail().find("checkpoint key") != std::string::npos) {
        switched.push_back(r);
      }
    }
    return !switched.empty();
  }));
  REQUIRE(switched.size() == 1);

  for (int i = 0; i < 3; ++i) {
    REQUIRE(RawPublish(police, {MakeAlert(absl::StrCat("rot-b", i))}).ok());
  }
  v1::SignedCheckpoint latest;
  REQUIRE(Eventually([&] {
    latest = WaitForCheckpoint(auditor, switched[0].index() + 1);
    return ibsm::VerifyCheckpoint(latest.note(), "ibsm/CIV", *new_key).ok();
  }));

  v1::AuditExport exported = ExportFrom(auditor, latest.tree_size());
  auto report =
      ibsm::VerifyExport(exported, *new_key, "ibsm/CIV", &kept, &*old_key);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  INFO(report->problem);
  CHECK(report->ok);
  CHECK(report->earlier_checkpoint_consistent);

  // From outside: the CLI checks each checkpoint with the certificate that
  // signed it, each trusted through the root.
  const std::string file = dir.File("rotated.bin");
  const std::string kept_file = dir.File("kept.note");
  std::ofstream(file, std::ios::binary) << exported.SerializeAsString();
  std::ofstream(kept_file) << kept;
  const std::string old_cert = Tls("node-CIV").cert_file;
  RunResult both = RunBinary(
      CliBinary(), {"audit", "verify", file, "--node-cert", old_cert,
                    "--node-cert", dir.File("renewed-chain.pem"), "--ca",
                    PkiDir() + "/ca.pem", "--kept-checkpoint", kept_file});
  INFO(both.output);
  CHECK(both.exit_code == 0);
  CHECK_THAT(both.output,
             Catch::Contains("consistent with the checkpoint you kept") &&
                 Catch::Contains("signed by a rotated key"));
  RunResult new_only = RunBinary(
      CliBinary(),
      {"audit", "verify", file, "--node-cert", dir.File("renewed-chain.pem"),
       "--ca", PkiDir() + "/ca.pem", "--kept-checkpoint", kept_file});
  INFO(new_only.output);
  CHECK(new_only.exit_code == 2);
  CHECK_THAT(new_only.output, Catch::Contains("kept checkpoint"));
}

TEST_CASE(
    "a stored audit record that does not parse is DATA_LOSS naming its "
    "index, not skipped by a query") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  RunAndStop(config, 5, "q");
  {
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    broker::storage::Batch batch = (*store)->NewBatch();
    // 0xff is field 31 with wire type 7, which does not exist.
    batch.AppendAuditRecord(3, std::string("\xff\xff\xff\xff", 4));
    REQUIRE(
        (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
  }
  auto node = Start(config);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  grpc::Status status;
  std::vector<v1::AuditRecord> records =
      RawAuditQuery(auditor, v1::AuditQuery(), &status);
  INFO(status.error_message());
  CHECK(status.error_code() == grpc::StatusCode::DATA_LOSS);
  CHECK_THAT(status.error_message(), Catch::Contains("audit record 3"));
  for (const auto& r : records) CHECK(r.index() < 3);
}

TEST_CASE(
    "a node whose audit trail was truncated below its last checkpoint "
    "refuses to start instead of overwriting the evidence") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  const uint64_t size = RunAndStop(config, 10, "t");
  {
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    broker::storage::Batch batch = (*store)->NewBatch();
    for (uint64_t i = 7; i < size; ++i) {
      batch.DeleteForTesting(broker::Family::kAudit, broker::AuditKey(i));
    }
    REQUIRE(
        (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
  }
  auto node = broker::Node::Start(config);
  REQUIRE_FALSE(node.ok());
  CHECK(node.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(node.status().message()),
             Catch::Contains("holds 7 records") &&
                 Catch::Contains("records were removed"));
}

// Makes the data directory of a stopped node look written by a broker from
// before alerts were linked to their audit records: no link keys and no
// links marker in `meta`. Returns the links it removed, by sequence.
std::map<uint64_t, std::string> RemoveAlertAuditLinks(
    const internal::v1::NodeConfig& config) {
  auto store = broker::Store::Open(StoreOptionsFor(config));
  REQUIRE(store.ok());
  const std::string prefix = "alert-audit/";
  std::map<uint64_t, std::string> links;
  broker::storage::Batch batch = (*store)->NewBatch();
  REQUIRE((*store)
              ->Scan(broker::Family::kMeta, prefix, 1 << 20,
                     [&](absl::string_view key, absl::string_view value) {
                       if (!absl::StartsWith(key, prefix)) return false;
                       auto sequence =
                           broker::DecodeSequence(key.substr(prefix.size()));
                       REQUIRE(sequence.has_value());
                       links[*sequence] = std::string(value);
                       batch.DeleteForTesting(broker::Family::kMeta, key);
                       return true;
                     })
              .ok());
  auto marker =
      (*store)->Get(broker::Family::kMeta, broker::kAlertAuditLinksVersionKey);
  REQUIRE(marker.ok());
  REQUIRE(marker->has_value());  // a store created by this broker has it
  batch.DeleteForTesting(broker::Family::kMeta,
                         broker::kAlertAuditLinksVersionKey);
  REQUIRE((*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
  return links;
}

std::map<uint64_t, std::string> AlertAuditLinks(broker::Store& store) {
  const std::string prefix = "alert-audit/";
  std::map<uint64_t, std::string> links;
  REQUIRE(store
              .Scan(broker::Family::kMeta, prefix, 1 << 20,
                    [&](absl::string_view key, absl::string_view value) {
                      if (!absl::StartsWith(key, prefix)) return false;
                      auto sequence =
                          broker::DecodeSequence(key.substr(prefix.size()));
                      REQUIRE(sequence.has_value());
                      links[*sequence] = std::string(value);
                      return true;
                    })
              .ok());
  return links;
}

TEST_CASE(
    "a data directory written before alerts were linked to the audit trail "
    "is migrated once at start: catch-up delivers every stored alert, the "
    "start-up check passes, and the migration is recorded") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  {
    auto node = Start(config);
    auto police = Channel(node->port(), Tls("agency-CIV_police"));
    v1::Alert expiring = MakeAlert("old-1");
    *expiring.mutable_expires_at() = expiring.created_at();
    expiring.mutable_expires_at()->set_seconds(expiring.created_at().seconds() +
                                               60);
    REQUIRE(RawPublish(police, {MakeAlert("old-0"), expiring}).ok());
    const v1::Alert again = MakeAlert("old-2");
    REQUIRE(RawPublish(police, {again}).ok());
    REQUIRE(RawPublish(police, {again}).ok());  // a duplicate of sequence 3
    REQUIRE(RawPublish(police, {MakeAlert("old-3")}).ok());
    auto removed = node->RunRetention(absl::Now() + absl::Minutes(5));
    REQUIRE(removed.ok());
    REQUIRE(*removed == 1);
    node->Shutdown(absl::Seconds(1));
  }
  const std::map<uint64_t, std::string> written = RemoveAlertAuditLinks(config);
  REQUIRE(written.size() == 4);  // sequences 1-4, 2 linked to its removal

  {
    auto node = Start(config);
    RawSubscription sub(Channel(node->port(), Tls("agency-CIV_customs")),
                        OpenRequest({"border.>"}));
    const std::vector<v1::Delivery>& got = sub.ReadDeliveries(3);
    REQUIRE(got.size() == 3);
    CHECK(got[0].alert().id() == "old-0");
    CHECK(got[1].alert().id() == "old-2");
    CHECK(got[2].alert().id() == "old-3");
    CHECK(sub.Close().ok());
    auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
    std::vector<v1::AuditRecord> migrated =
        WaitForRecords(auditor, v1::AUDIT_ALERT_LINKS_MIGRATED);
    REQUIRE(migrated.size() == 1);
    CHECK(migrated[0].allowed());
    CHECK(migrated[0].actor() == "CIV");
    CHECK_THAT(migrated[0].detail(),
               Catch::Contains("publish links 4, retention removal links 1"));
    v1::AuditQuery failures;
    failures.set_action(v1::AUDIT_INTEGRITY_FAILURE);
    CHECK(
        RawAuditQuery(auditor, failures).empty());  // the start-up check passed
    node->Shutdown(absl::Seconds(1));
  }
  {
    // The links are those the broker wrote with the alerts, and the marker
    // is back.
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    CHECK(AlertAuditLinks(**store) == written);
    auto marker = (*store)->Get(broker::Family::kMeta,
                                broker::kAlertAuditLinksVersionKey);
    REQUIRE(marker.ok());
    CHECK(marker->has_value());
  }
  // Once only: the next start does not migrate again.
  auto node = Start(config);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  CHECK(WaitForRecords(auditor, v1::AUDIT_ALERT_LINKS_MIGRATED).size() == 1);
}

TEST_CASE(
    "a migration interrupted by a crash reruns from scratch to the same "
    "links, in bounded batches; a record that does not parse stops it") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  RunAndStop(config, 7, "crash-");
  const std::map<uint64_t, std::string> written = RemoveAlertAuditLinks(config);
  REQUIRE(written.size() == 7);
  auto open_trail = [&](broker::Store* store) {
    auto key = ReadFileToString(config.tls().key_file());
    REQUIRE(key.ok());
    auto signing = ibsm::SigningKey::FromPem(*key);
    REQUIRE(signing.ok());
    broker::AuditOptions options;
    options.node_id = "CIV";
    auto trail = broker::AuditTrail::Open(store, *std::move(signing), options);
    REQUIRE(trail.ok());
    return *std::move(trail);
  };
  {
    // A crash after the first batch: some links, no marker.
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    broker::storage::Batch batch = (*store)->NewBatch();
    batch.PutForTesting(broker::Family::kMeta, broker::AlertAuditLinkKey(1),
                        written.at(1));
    batch.PutForTesting(broker::Family::kMeta, broker::AlertAuditLinkKey(2),
                        written.at(2));
    REQUIRE(
        (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
  }
  {
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    auto trail = open_trail(store->get());
    const uint64_t size = trail->size();
    auto m = broker::MigrateAlertAuditLinks(store->get(), trail.get(), "CIV",
                                            /*batch_records=*/3);
    INFO(m.status().ToString());
    REQUIRE(m.ok());
    CHECK(m->ran);
    CHECK(m->records_scanned == size);
    CHECK(m->publish_links == 5);  // 1 and 2 were already there
    CHECK(m->batches == (size + 2) / 3);
    CHECK(AlertAuditLinks(**store) == written);
    CHECK(trail->size() == size + 1);  // the migration's record
    // Done: a second call does nothing.
    auto again =
        broker::MigrateAlertAuditLinks(store->get(), trail.get(), "CIV", 3);
    REQUIRE(again.ok());
    CHECK_FALSE(again->ran);
    CHECK(trail->size() == size + 1);
  }
  RemoveAlertAuditLinks(config);
  {
    auto store = broker::Store::Open(StoreOptionsFor(config));
    REQUIRE(store.ok());
    broker::storage::Batch batch = (*store)->NewBatch();
    batch.AppendAuditRecord(3, "\xff\xff not a record");
    REQUIRE(
        (*store)->Commit(std::move(batch), broker::Durability::kSynced).ok());
  }
  auto node = broker::Node::Start(config);
  REQUIRE_FALSE(node.ok());
  CHECK(node.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(node.status().message()),
             Catch::Contains("audit record 3 does not parse"));
}

TEST_CASE(
    "after the migration of a data directory without links, a stored alert "
    "whose payload was edited is still refused: links come from the audit "
    "records, not from the log") {
  TempDir dir;
  internal::v1::NodeConfig config = AuditedConfig(dir);
  RunAndStop(config, 5, "edited-");
  RemoveAlertAuditLinks(config);
  EditStoredAlert(config, 3,
                  [](v1::Alert* a) { a->set_payload("a forged payload"); });
  auto node = Start(config);
  RawSubscription sub(Channel(node->port(), Tls("agency-CIV_customs")),
                      OpenRequest({"border.>"}));
  const std::vector<v1::Delivery>& got = sub.ReadDeliveries(5);
  grpc::Status end = sub.AwaitEnd();
  INFO(end.error_message());
  CHECK(end.error_code() == grpc::StatusCode::DATA_LOSS);
  CHECK_THAT(end.error_message(), Catch::Contains("sequence 3"));
  CHECK_THAT(end.error_message(), Catch::Contains("payload SHA-256"));
  REQUIRE(got.size() == 2);
  CHECK(got[1].sequence() == 2);
  auto auditor = Channel(node->port(), Tls("auditor-UNODC_audit"));
  CHECK(WaitForRecords(auditor, v1::AUDIT_ALERT_LINKS_MIGRATED).size() == 1);
  std::vector<v1::AuditRecord> failures =
      WaitForRecords(auditor, v1::AUDIT_INTEGRITY_FAILURE);
  REQUIRE_FALSE(failures.empty());
  CHECK(failures[0].sequence() == 3);
}

}  // namespace
}  // namespace ibsm::testing
