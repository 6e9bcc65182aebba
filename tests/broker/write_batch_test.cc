// Tests of broker/write_batch.h: every operation of a storage::Batch
// committed to a real RocksDB in a temporary directory and read back through
// the Store's read functions; a commit that fails leaves nothing visible.
#include "storage/write_batch.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_trail.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/v1/audit.pb.h"
#include "storage/key_codec.h"
#include "storage/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using ::ibsm::testing::TempDir;

std::unique_ptr<Store> MustOpen(const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

std::unique_ptr<Store> MustOpen(const std::string& path) {
  return MustOpen(StoreOptions{path, "CIV"});
}

// What one batch with every kind of record stores.
struct Records {
  std::string alert1 = "stored alert 1";
  std::string alert2 = "stored alert 2";
  std::string dedup_key = DedupKey("CIV/police", "a1");
  std::string content_sha256 = std::string(32, '\x11');
  std::string cursor_key = CursorKey("CIV/customs", "desk");
  std::string audit_record;
  std::string merkle_hash = std::string(32, '\x22');
  std::string checkpoint;

  Records() {
    v1::AuditRecord r;
    r.set_index(0);
    r.set_node("CIV");
    r.set_action(v1::AUDIT_PUBLISH);
    r.set_sequence(1);
    audit_record = r.SerializeAsString();
    v1::SignedCheckpoint c;
    c.set_tree_size(1);
    c.set_note("a note");
    checkpoint = c.SerializeAsString();
  }
};

void AddEveryRecord(const Records& r, storage::Batch* batch) {
  batch->PutForTesting(Family::kLog, EncodeSequence(1), r.alert1);
  batch->PutForTesting(Family::kLog, EncodeSequence(2), r.alert2);
  batch->PutDedup(r.dedup_key, 1, r.content_sha256);
  batch->PutCursor(r.cursor_key, 2);
  batch->AppendAuditRecord(0, r.audit_record);
  batch->PutMerkleNode(0, 0, r.merkle_hash);
  batch->PutLastSequence(5);
  batch->PutAlertAuditLink(1, 0);
  batch->PutCheckpoint(1, r.checkpoint);
}

using LogRecords = std::vector<std::pair<uint64_t, std::string>>;

LogRecords ReadLog(const Store& store) {
  LogRecords out;
  absl::Status s =
      store.ScanLog(0, 100, [&](uint64_t seq, absl::string_view value) {
        out.emplace_back(seq, std::string(value));
        return true;
      });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

TEST_CASE(
    "storage::Batch: each operation stores its record in its own family, "
    "read back through the Store",
    "[store][batch]") {
  TempDir dir;
  const std::string path = dir.File("data");
  const Records r;
  {
    std::unique_ptr<Store> store = MustOpen(path);
    storage::Batch batch = store->NewBatch();
    CHECK(batch.empty());
    AddEveryRecord(r, &batch);
    CHECK_FALSE(batch.empty());
    absl::Status committed =
        store->Commit(std::move(batch), Durability::kSynced);
    INFO(committed.ToString());
    REQUIRE(committed.ok());
  }
  std::unique_ptr<Store> store = MustOpen(path);

  CHECK(ReadLog(*store) == LogRecords{{1, r.alert1}, {2, r.alert2}});
  // The high-water mark, above the last log key.
  CHECK(store->recovered_last_sequence() == 5);

  auto dedup = store->FindDedupEntry("CIV/police", "a1");
  REQUIRE(dedup.ok());
  REQUIRE(dedup->has_value());
  CHECK((*dedup)->sequence == 1);
  CHECK((*dedup)->content_sha256 == r.content_sha256);

  auto cursor = store->GetCursor("CIV/customs", "desk");
  REQUIRE(cursor.ok());
  CHECK(*cursor == std::optional<uint64_t>(2));

  auto audit_size = AuditSize(*store);
  REQUIRE(audit_size.ok());
  CHECK(*audit_size == 1);
  std::vector<std::string> audit;
  REQUIRE(ScanAudit(*store, 0, 10, [&](uint64_t index, absl::string_view v) {
            CHECK(index == audit.size());
            audit.emplace_back(v);
            return true;
          }).ok());
  CHECK(audit == std::vector<std::string>{r.audit_record});

  auto leaf = StoredMerkleTree(store.get()).Read(0, 0);
  REQUIRE(leaf.ok());
  REQUIRE(leaf->has_value());
  CHECK(std::string(reinterpret_cast<const char*>((*leaf)->data()),
                    (*leaf)->size()) == r.merkle_hash);

  auto link = store->Get(Family::kMeta, AlertAuditLinkKey(1));
  REQUIRE(link.ok());
  CHECK(*link == std::optional<std::string>(EncodeSequence(0)));

  auto latest = LatestCheckpoint(*store);
  REQUIRE(latest.ok());
  CHECK(latest->SerializeAsString() == r.checkpoint);
  auto at = CheckpointAt(*store, 1);
  REQUIRE(at.ok());
  CHECK(at->SerializeAsString() == r.checkpoint);

  // Removals, and the meta records a store is created with.
  storage::Batch removal = store->NewBatch();
  removal.RemoveAlert(1);
  removal.RemoveDedup(r.dedup_key);
  internal::v1::NodeMeta node;
  node.set_schema_version(1);
  node.set_node_id("CIV");
  removal.PutNodeMeta(node.SerializeAsString());
  removal.PutAlertAuditLinksVersion(kAlertAuditLinksVersion);
  REQUIRE(store->Commit(std::move(removal), Durability::kBuffered).ok());
  CHECK(ReadLog(*store) == LogRecords{{2, r.alert2}});
  auto removed = store->FindDedupEntry("CIV/police", "a1");
  REQUIRE(removed.ok());
  CHECK_FALSE(removed->has_value());
  auto stored_node = store->Get(Family::kMeta, kNodeMetaKey);
  REQUIRE(stored_node.ok());
  CHECK(*stored_node == std::optional<std::string>(node.SerializeAsString()));
  auto version = store->Get(Family::kMeta, kAlertAuditLinksVersionKey);
  REQUIRE(version.ok());
  CHECK(*version ==
        std::optional<std::string>(EncodeSequence(kAlertAuditLinksVersion)));
}

TEST_CASE(
    "storage::Batch: a commit whose write fails leaves nothing of it "
    "visible, before and after a restart",
    "[store][batch][fault]") {
  ::ibsm::testing::FaultEnv env;
  TempDir dir;
  StoreOptions options{dir.File("data"), "CIV"};
  options.env = env.env();
  const Records r;
  {
    std::unique_ptr<Store> store = MustOpen(options);
    storage::Batch batch = store->NewBatch();
    AddEveryRecord(r, &batch);
    env.FailLogWrites(true);
    absl::Status failed = store->Commit(std::move(batch), Durability::kSynced);
    env.FailLogWrites(false);
    INFO(failed.ToString());
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.code() == absl::StatusCode::kInternal);
    CHECK_THAT(std::string(failed.message()), Catch::Contains("injected"));

    // Nothing but what `log` holds.
    auto nothing_visible = [&r](const Store& s, const LogRecords& log) {
      CHECK(ReadLog(s) == log);
      auto dedup = s.FindDedupEntry("CIV/police", "a1");
      REQUIRE(dedup.ok());
      CHECK_FALSE(dedup->has_value());
      auto cursor = s.GetCursorByKey(r.cursor_key);
      REQUIRE(cursor.ok());
      CHECK_FALSE(cursor->has_value());
      auto audit_size = AuditSize(s);
      REQUIRE(audit_size.ok());
      CHECK(*audit_size == 0);
      auto leaf = StoredMerkleTree(&s).Read(0, 0);
      REQUIRE(leaf.ok());
      CHECK_FALSE(leaf->has_value());
      for (const std::string& key :
           {std::string(kLastSequenceKey), AlertAuditLinkKey(1),
            std::string(kLatestCheckpointKey), CheckpointKey(1)}) {
        INFO("meta key " << key);
        auto value = s.Get(Family::kMeta, key);
        REQUIRE(value.ok());
        CHECK_FALSE(value->has_value());
      }
    };
    nothing_visible(*store, {});
    store.reset();

    // RocksDB takes a write-ahead-log I/O error (unlike a full disk) as
    // fatal until the database is reopened; reopened, it replays nothing of
    // the failed batch and writes again.
    store = MustOpen(options);
    CHECK(store->recovered_last_sequence() == 0);
    nothing_visible(*store, {});
    storage::Batch next = store->NewBatch();
    next.PutForTesting(Family::kLog, EncodeSequence(7), "after the failure");
    absl::Status written = store->Commit(std::move(next), Durability::kSynced);
    INFO(written.ToString());
    REQUIRE(written.ok());
    nothing_visible(*store, {{7, "after the failure"}});
  }
}

}  // namespace
}  // namespace ibsm::broker
