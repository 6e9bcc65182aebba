// Tests of the federation outbox: its key layout (send order), the
// in-memory index (broker/storage/outbox.h) against a real RocksDB, and the
// Committer's outbox step with its per-peer bounds.
#include "storage/outbox.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "publish/committer.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/store.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using ::ibsm::testing::TempDir;

TEST_CASE("outbox keys sort by peer, then priority, then sequence",
          "[outbox]") {
  std::vector<OutboxKey> keys = {
      {"MLI", OutboxPriority::kOther, 1},
      {"MLI", OutboxPriority::kCritical, 9},
      {"MLI", OutboxPriority::kHigh, 3},
      {"MLI", OutboxPriority::kCritical, 2},
      {"MLI", OutboxPriority::kOther, 300},
      {"MLIX", OutboxPriority::kCritical, 1},
  };
  std::vector<std::string> encoded;
  for (const OutboxKey& k : keys) encoded.push_back(EncodeOutboxKey(k));
  std::sort(encoded.begin(), encoded.end());
  std::vector<std::pair<int, uint64_t>> order;
  for (const std::string& e : encoded) {
    std::optional<OutboxKey> k = DecodeOutboxKey(e);
    REQUIRE(k.has_value());
    if (k->peer == "MLI") {
      order.emplace_back(static_cast<int>(k->priority), k->sequence);
    }
  }
  CHECK(order == std::vector<std::pair<int, uint64_t>>{
                     {0, 2}, {0, 9}, {1, 3}, {2, 1}, {2, 300}});
}

TEST_CASE("DecodeOutboxKey refuses malformed keys", "[outbox]") {
  CHECK_FALSE(DecodeOutboxKey("").has_value());
  CHECK_FALSE(DecodeOutboxKey("short").has_value());
  std::string key = EncodeOutboxKey({"NER", OutboxPriority::kHigh, 7});
  std::string bad_priority = key;
  bad_priority[4] = 9;
  CHECK_FALSE(DecodeOutboxKey(bad_priority).has_value());
  std::string no_separator = key;
  no_separator[3] = 'x';
  CHECK_FALSE(DecodeOutboxKey(no_separator).has_value());
  std::optional<OutboxKey> ok = DecodeOutboxKey(key);
  REQUIRE(ok.has_value());
  CHECK(ok->peer == "NER");
  CHECK(ok->priority == OutboxPriority::kHigh);
  CHECK(ok->sequence == 7);
}

PublishEntry Entry(const std::string& id, v1::Severity severity,
                   std::vector<std::string> peers) {
  PublishEntry entry;
  entry.record = std::make_shared<LogRecord>();
  v1::Alert* alert = entry.record->stored.mutable_alert();
  alert->set_id(id);
  alert->set_topic("border.incident");
  alert->set_classification("RESTRICTED");
  alert->set_severity(severity);
  alert->set_originator("CIV/police");
  entry.record->stored.set_received_from("CIV");
  entry.value = entry.record->stored.SerializeAsString();
  entry.record->bytes = entry.value.size();
  entry.record->charge = LogCache::Charge(*entry.record);
  entry.outbox_peers = std::move(peers);
  return entry;
}

std::unique_ptr<PublishGroup> Commit(Committer& committer,
                                     std::vector<PublishEntry> entries) {
  auto group = std::make_unique<PublishGroup>();
  group->entries = std::move(entries);
  // The promise lives in the callback, which the Committer owns while it
  // runs: set_value may still be running when the future is ready.
  std::promise<std::unique_ptr<PublishGroup>> promise;
  auto future = promise.get_future();
  group->done =
      [p = std::move(promise)](std::unique_ptr<PublishGroup> g) mutable {
        p.set_value(std::move(g));
      };
  committer.Submit(std::move(group));
  REQUIRE(future.wait_for(std::chrono::seconds(60)) ==
          std::future_status::ready);
  return future.get();
}

TEST_CASE(
    "the Committer writes outbox entries with the alert, refuses a publish "
    "past a peer's bound, and removes entries; the index survives a reopen",
    "[outbox]") {
  TempDir dir;
  absl::flat_hash_map<std::string, OutboxBounds> bounds = {
      {"MLI", {3, 1 << 20}}, {"NER", {100, 1 << 20}}};
  {
    std::unique_ptr<Store> store = *Store::Open({dir.path(), "CIV"});
    std::unique_ptr<Outbox> outbox = *Outbox::Load(*store, bounds);
    LogCache cache(1 << 20, 1);
    CommitterOptions options;
    options.outbox = outbox.get();
    Committer committer(store.get(), &cache, nullptr, options, [](uint64_t) {});
    std::vector<PublishEntry> entries;
    entries.push_back(Entry("a1", v1::SEVERITY_LOW, {"MLI", "NER"}));
    entries.push_back(Entry("a2", v1::SEVERITY_CRITICAL, {"MLI"}));
    entries.push_back(Entry("a3", v1::SEVERITY_HIGH, {"MLI"}));
    entries.push_back(Entry("a4", v1::SEVERITY_HIGH, {"MLI", "NER"}));
    entries.push_back(Entry("a5", v1::SEVERITY_LOW, {"NER"}));
    std::unique_ptr<PublishGroup> done = Commit(committer, std::move(entries));
    CHECK(done->entries[0].status.ok());
    CHECK(done->entries[1].status.ok());
    CHECK(done->entries[2].status.ok());
    // The fourth alert for MLI is past its bound of 3: not stored at all,
    // not even for NER, and the reason names the peer and the bound.
    CHECK(absl::IsResourceExhausted(done->entries[3].status));
    CHECK(done->entries[3].sequence == 0);
    CHECK_THAT(
        std::string(done->entries[3].status.message()),
        Catch::Contains("peer MLI") && Catch::Contains("max_backlog_alerts"));
    CHECK(done->entries[4].status.ok());

    OutboxBacklog mli = outbox->Backlog("MLI");
    CHECK(mli.alerts[0] == 1);  // a2
    CHECK(mli.alerts[1] == 1);  // a3
    CHECK(mli.alerts[2] == 1);  // a1
    CHECK(outbox->Backlog("NER").total() == 2);
    CHECK_FALSE(outbox->Fits("MLI", 1, 1));
    CHECK_FALSE(outbox->Fits("UNODC", 1, 1));  // not a peer

    std::vector<OutboxItem> next = outbox->Next("MLI", {}, 10);
    REQUIRE(next.size() == 3);
    CHECK(next[0].sequence == done->entries[1].sequence);  // CRITICAL
    CHECK(next[1].sequence == done->entries[2].sequence);  // HIGH
    CHECK(next[2].sequence == done->entries[0].sequence);  // LOW
    CHECK(outbox->Next("MLI", {next[0].sequence}, 1)[0].sequence ==
          next[1].sequence);

    absl::Notification removed;
    committer.RemoveOutbox(
        {OutboxKey{"MLI", next[0].priority, next[0].sequence}}, {},
        [&] { removed.Notify(); });
    REQUIRE(removed.WaitForNotificationWithTimeout(absl::Seconds(60)));
    CHECK(outbox->Backlog("MLI").total() == 2);
    CHECK(outbox->Fits("MLI", 1, 1));
  }
  // Reopened: the index is rebuilt from the family and equals it.
  std::unique_ptr<Store> store = *Store::Open({dir.path(), "CIV"});
  std::unique_ptr<Outbox> outbox =
      *Outbox::Load(*store, {{"NER", {100, 1 << 20}}});
  CHECK(outbox->Backlog("NER").total() == 2);
  CHECK(outbox->Backlog("MLI").total() == 2);
  std::vector<std::pair<std::string, uint64_t>> unconfigured =
      outbox->Unconfigured();
  REQUIRE(unconfigured.size() == 1);
  CHECK(unconfigured[0] == std::make_pair(std::string("MLI"), uint64_t{2}));
}

TEST_CASE(
    "a peer's bound holds while earlier batches are written but not yet "
    "synced and answered (pipelined committer)",
    "[outbox]") {
  TempDir dir;
  std::unique_ptr<Store> store = *Store::Open({dir.path(), "CIV"});
  std::unique_ptr<Outbox> outbox =
      *Outbox::Load(*store, {{"MLI", {5, 1 << 20}}});
  LogCache cache(1 << 20, 1);
  CommitterOptions options;
  options.outbox = outbox.get();
  REQUIRE(options.pipelined);
  // The first batch's completion waits here, so the outbox index does not
  // yet hold its entries while the next batches are written.
  absl::Notification first_completed, release;
  std::atomic<bool> first{true};
  Committer committer(store.get(), &cache, nullptr, options, [&](uint64_t) {
    if (first.exchange(false)) {
      first_completed.Notify();
      release.WaitForNotification();
    }
  });
  std::vector<std::future<std::unique_ptr<PublishGroup>>> answers;
  auto submit = [&](std::vector<PublishEntry> entries) {
    auto group = std::make_unique<PublishGroup>();
    group->entries = std::move(entries);
    std::promise<std::unique_ptr<PublishGroup>> promise;
    answers.push_back(promise.get_future());
    group->done =
        [p = std::move(promise)](std::unique_ptr<PublishGroup> g) mutable {
          p.set_value(std::move(g));
        };
    committer.Submit(std::move(group));
  };
  std::vector<PublishEntry> fill;
  for (int i = 0; i < 4; ++i) {
    fill.push_back(Entry(absl::StrCat("fill", i), v1::SEVERITY_LOW, {"MLI"}));
  }
  submit(std::move(fill));
  REQUIRE(first_completed.WaitForNotificationWithTimeout(absl::Seconds(60)));
  // One more fits (4 + 1 = 5); every later one is past the bound, though
  // the index still shows 0 waiting.
  for (int i = 1; i < 9; ++i) {
    std::vector<PublishEntry> one;
    one.push_back(Entry(absl::StrCat("more", i), v1::SEVERITY_LOW, {"MLI"}));
    submit(std::move(one));
  }
  // Let the committer thread write what it can before the first batch is
  // answered (it stops after kMaxUnsyncedBatches).
  absl::SleepFor(absl::Milliseconds(300));
  release.Notify();
  int accepted = 0;
  int refused = 0;
  for (auto& answer : answers) {
    REQUIRE(answer.wait_for(std::chrono::seconds(60)) ==
            std::future_status::ready);
    std::unique_ptr<PublishGroup> done = answer.get();
    for (const PublishEntry& e : done->entries) {
      if (e.status.ok()) {
        ++accepted;
      } else {
        CHECK(absl::IsResourceExhausted(e.status));
        ++refused;
      }
    }
  }
  CHECK(accepted == 5);
  CHECK(refused == 7);
  CHECK(outbox->Backlog("MLI").total() == 5);
}

TEST_CASE("Outbox::Load refuses an entry that does not parse", "[outbox]") {
  TempDir dir;
  {
    std::unique_ptr<Store> store = *Store::Open({dir.path(), "CIV"});
    storage::Batch batch = store->NewBatch();
    batch.PutForTesting(Family::kOutbox, "garbage", "x");
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  }
  std::unique_ptr<Store> store = *Store::Open({dir.path(), "CIV"});
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Load(*store, {});
  CHECK(absl::IsDataLoss(outbox.status()));
}

}  // namespace
}  // namespace ibsm::broker
