// The published checkpoint (broker/audit/published_checkpoint.h): written by
// AuditTrail::MaybeCheckpoint before the checkpoint is stored, and the
// start-up check that refuses a trail shorter than it or holding another
// history, unless the rollback is accepted with its exact tree size. Real
// RocksDB in temp dirs; trails built with the AuditTrail itself.
#include "audit/published_checkpoint.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "storage/store.h"
#include "storage/write_batch.h"
#include "tests/support/test_keys.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

struct Trail {
  std::unique_ptr<Store> store;
  std::unique_ptr<AuditTrail> trail;
};

// A store with `records` audit records whose reasons start with `history`,
// checkpointed, recording into `published_file` (may be empty).
Trail MakeTrail(const std::string& dir, const std::string& history, int records,
                const std::string& published_file) {
  Trail t;
  auto store = Store::Open({dir, "CIV"});
  REQUIRE(store.ok());
  t.store = *std::move(store);
  const ::ibsm::testing::PemKey key = ::ibsm::testing::MakeP256();
  auto signing = SigningKey::FromPem(key.private_pem);
  REQUIRE(signing.ok());
  AuditOptions options;
  options.node_id = "CIV";
  options.published_checkpoint_file = published_file;
  auto trail = AuditTrail::Open(t.store.get(), *std::move(signing), options);
  REQUIRE(trail.ok());
  t.trail = *std::move(trail);
  for (int i = 0; i < records; ++i) {
    std::vector<v1::AuditRecord> batch_records = {AuditEvent(
        v1::AUDIT_NODE_START, "CIV", true, absl::StrCat(history, i))};
    storage::Batch batch = t.store->NewBatch();
    REQUIRE(t.trail->Append(&batch_records, &batch).ok());
    REQUIRE(t.store->Commit(std::move(batch), Durability::kSynced).ok());
    t.trail->Committed();
  }
  REQUIRE(t.trail->MaybeCheckpoint(absl::Now(), /*force=*/true).ok());
  return t;
}

TEST_CASE(
    "the published checkpoint is written with each checkpoint, and a start "
    "on a shorter or other trail is refused unless accepted with its size",
    "[audit][backup]") {
  ::ibsm::testing::TempDir dir;
  const std::string file = dir.File("published.checkpoint");
  Trail original = MakeTrail(dir.File("a"), "original-", 3, file);
  auto published = ReadPublishedCheckpoint(file, "CIV");
  REQUIRE(published.ok());
  REQUIRE(published->has_value());
  auto latest = LatestCheckpoint(*original.store);
  REQUIRE(latest.ok());
  CHECK((*published)->checkpoint().tree_size() == 3);
  CHECK((*published)->checkpoint().note() == latest->note());

  SECTION("the trail that signed it, and one extending it, start") {
    auto same =
        CheckPublishedCheckpointAtStart(*original.store, 3, file, "CIV", 0);
    REQUIRE(same.ok());
    CHECK_FALSE(same->has_value());
  }
  SECTION("another node's file is refused") {
    auto other = ReadPublishedCheckpoint(file, "MLI");
    REQUIRE_FALSE(other.ok());
    CHECK_THAT(std::string(other.status().message()),
               Catch::Contains("belongs to node CIV, not MLI"));
  }
  SECTION("a shorter trail is refused, naming the size to accept") {
    Trail shorter = MakeTrail(dir.File("b"), "original-", 2, "");
    auto refused =
        CheckPublishedCheckpointAtStart(*shorter.store, 2, file, "CIV", 0);
    REQUIRE_FALSE(refused.ok());
    CHECK(absl::IsFailedPrecondition(refused.status()));
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("holds 2 records") &&
                   Catch::Contains("--accept-rollback 3"));
  }
  SECTION(
      "a trail of the same size with another history is refused; accepted "
      "with the right size it starts and the old file is kept") {
    Trail forked = MakeTrail(dir.File("c"), "forked-", 3, "");
    auto refused =
        CheckPublishedCheckpointAtStart(*forked.store, 3, file, "CIV", 0);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("another history"));
    auto wrong =
        CheckPublishedCheckpointAtStart(*forked.store, 3, file, "CIV", 4);
    REQUIRE_FALSE(wrong.ok());
    CHECK_THAT(std::string(wrong.status().message()),
               Catch::Contains("--accept-rollback 3 (not 4)"));
    auto accepted =
        CheckPublishedCheckpointAtStart(*forked.store, 3, file, "CIV", 3);
    REQUIRE(accepted.ok());
    REQUIRE(accepted->has_value());
    CHECK((*accepted)->kept_as == file + ".abandoned-3");
    CHECK((*accepted)->abandoned.checkpoint().note() == latest->note());
    CHECK(std::filesystem::exists(file + ".abandoned-3"));
    // The file now follows the trail the node runs on.
    auto now = ReadPublishedCheckpoint(file, "CIV");
    REQUIRE(now.ok());
    REQUIRE(now->has_value());
    auto forked_latest = LatestCheckpoint(*forked.store);
    REQUIRE(forked_latest.ok());
    CHECK((*now)->checkpoint().note() == forked_latest->note());
    auto again =
        CheckPublishedCheckpointAtStart(*forked.store, 3, file, "CIV", 0);
    REQUIRE(again.ok());
    CHECK_FALSE(again->has_value());
  }
  SECTION("a missing file is written from the store's latest checkpoint") {
    std::filesystem::remove(file);
    auto started =
        CheckPublishedCheckpointAtStart(*original.store, 3, file, "CIV", 0);
    REQUIRE(started.ok());
    auto written = ReadPublishedCheckpoint(file, "CIV");
    REQUIRE(written.ok());
    REQUIRE(written->has_value());
    CHECK((*written)->checkpoint().tree_size() == 3);
  }
}

}  // namespace
}  // namespace ibsm::broker
