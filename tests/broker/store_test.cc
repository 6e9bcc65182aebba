// Tests of broker/storage/store.h against a real RocksDB in a temporary
// directory.
#include "storage/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ibsm/internal/v1/storage.pb.h"
#include "storage/key_codec.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using ::ibsm::testing::TempDir;

std::unique_ptr<Store> MustOpen(const std::string& path,
                                const std::string& node = "CIV") {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open({path, node});
  INFO("open " << path << " as " << node << ": " << store.status().ToString());
  REQUIRE(store.ok());
  REQUIRE(*store != nullptr);
  return *std::move(store);
}

// Writes log records with the given sequences (value "v<seq>") in one batch.
void WriteLog(Store& store, const std::vector<uint64_t>& sequences) {
  storage::Batch batch = store.NewBatch();
  for (uint64_t s : sequences)
    batch.PutForTesting(Family::kLog, EncodeSequence(s),
                        "v" + std::to_string(s));
  absl::Status written = store.Commit(std::move(batch), Durability::kSynced);
  INFO(written.ToString());
  REQUIRE(written.ok());
}

std::vector<std::pair<uint64_t, std::string>> Scan(const Store& store,
                                                   uint64_t from, size_t max) {
  std::vector<std::pair<uint64_t, std::string>> out;
  absl::Status s =
      store.ScanLog(from, max, [&](uint64_t seq, absl::string_view v) {
        out.emplace_back(seq, std::string(v));
        return true;
      });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

const std::vector<std::string> kFamilyNames = {
    "log", "dedup", "cursor", "meta", "audit", "merkle", "outbox"};

TEST_CASE("Store::Open creates the database with all column families",
          "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    CHECK(store->recovered_last_sequence() == 0);
    // One record per Family, to find below in the family of its name.
    storage::Batch batch = store->NewBatch();
    for (int i = 0; i < kFamilyCount; ++i) {
      batch.PutForTesting(static_cast<Family>(i), "family-test",
                          std::to_string(i));
    }
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  }
  std::vector<std::string> names;
  rocksdb::Status s =
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names);
  INFO(s.ToString());
  REQUIRE(s.ok());
  for (const std::string& want : kFamilyNames) {
    INFO("family " << want);
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  }
  CHECK(names.size() == kFamilyNames.size() + 1);  // + "default"

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names)
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors,
                                   &handles, &raw);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t h = 0; h < handles.size(); ++h) {
    const auto it = std::find(kFamilyNames.begin(), kFamilyNames.end(),
                              handles[h]->GetName());
    std::string value;
    if (it == kFamilyNames.end()) continue;  // "default"
    INFO("family " << *it);
    REQUIRE(db->Get(rocksdb::ReadOptions(), handles[h], "family-test", &value)
                .ok());
    CHECK(value == std::to_string(it - kFamilyNames.begin()));
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  }
}

TEST_CASE("Store: a fresh database is empty", "[store]") {
  TempDir dir;
  std::unique_ptr<Store> store = MustOpen(dir.File("data"));
  CHECK(store->recovered_last_sequence() == 0);
  CHECK(Scan(*store, 0, 100).empty());
  auto dup = store->FindDuplicate("CIV/police", "a1");
  REQUIRE(dup.ok());
  CHECK_FALSE(dup->has_value());
  auto cursor = store->GetCursor("CIV/police", "durable");
  REQUIRE(cursor.ok());
  CHECK_FALSE(cursor->has_value());
  CHECK(store->Flush().ok());
}

TEST_CASE(
    "Store: reopening with the same node id works, with another node id "
    "is refused naming both nodes",
    "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  MustOpen(path, "CIV").reset();
  MustOpen(path, "CIV").reset();

  absl::StatusOr<std::unique_ptr<Store>> other = Store::Open({path, "MLI"});
  INFO(other.status().ToString());
  REQUIRE(other.status().code() == absl::StatusCode::kFailedPrecondition);
  const std::string message(other.status().message());
  CHECK_THAT(message, Catch::Contains("CIV"));
  CHECK_THAT(message, Catch::Contains("MLI"));
  CHECK_THAT(message, Catch::Contains(path));

  // The refusal changed nothing: the rightful node still opens it, and the
  // other node is still refused.
  MustOpen(path, "CIV").reset();
  CHECK(Store::Open({path, "MLI"}).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Store: node id comparison is exact (case and prefix)", "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  MustOpen(path, "CIV").reset();
  for (const char* other : {"civ", "CI", "CIVX", ""}) {
    INFO("node " << other);
    CHECK(Store::Open({path, other}).status().code() ==
          absl::StatusCode::kFailedPrecondition);
  }
}

TEST_CASE(
    "Store: recovered_last_sequence is the highest log key after "
    "reopen, in numeric (big-endian) order",
    "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    WriteLog(*store, {1, 2, 3});
    CHECK(store->recovered_last_sequence() == 0);  // computed at open only
  }
  {
    std::unique_ptr<Store> store = MustOpen(path);
    CHECK(store->recovered_last_sequence() == 3);
    // 256 is numerically above 255 and 3, though its low byte is 0.
    WriteLog(*store, {255, 256, 4});
  }
  {
    std::unique_ptr<Store> store = MustOpen(path);
    CHECK(store->recovered_last_sequence() == 256);
    WriteLog(*store, {uint64_t{1} << 40});
    CHECK(store->Flush().ok());  // from SST files rather than the WAL
  }
  std::unique_ptr<Store> store = MustOpen(path);
  CHECK(store->recovered_last_sequence() == (uint64_t{1} << 40));
}

TEST_CASE(
    "Store: a path under a regular file is refused with "
    "FAILED_PRECONDITION naming the path",
    "[store]") {
  TempDir dir;
  const std::string file = dir.File("file");
  std::ofstream(file) << "not a directory";
  const std::string path = file + "/data";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open({path, "CIV"});
  INFO(store.status().ToString());
  CHECK(store.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(store.status().message()), Catch::Contains(path));
}

TEST_CASE("Store: a directory already open (locked) is refused", "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  std::unique_ptr<Store> first = MustOpen(path);
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open({path, "CIV"});
  INFO(second.status().ToString());
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
  first.reset();
  MustOpen(path).reset();  // the lock is released on close
}

TEST_CASE(
    "Store::ScanLog starts at `from`, honours max and stops when fn "
    "returns false",
    "[store]") {
  TempDir dir;
  std::unique_ptr<Store> store = MustOpen(dir.File("data"));
  WriteLog(*store, {1, 2, 3, 4, 5, 255, 256, 257});

  auto all = Scan(*store, 0, 1000);
  REQUIRE(all.size() == 8);
  std::vector<uint64_t> seqs;
  for (auto& [s, v] : all) {
    seqs.push_back(s);
    CHECK(v == "v" + std::to_string(s));
  }
  CHECK(seqs == std::vector<uint64_t>{1, 2, 3, 4, 5, 255, 256, 257});

  auto from3 = Scan(*store, 3, 2);
  REQUIRE(from3.size() == 2);
  CHECK(from3[0].first == 3);
  CHECK(from3[1].first == 4);

  auto gap = Scan(*store, 6, 1000);  // 6 is absent: starts at the next key
  REQUIRE(gap.size() == 3);
  CHECK(gap[0].first == 255);

  CHECK(Scan(*store, 258, 1000).empty());
  CHECK(Scan(*store, 1, 0).empty());

  std::vector<uint64_t> visited;
  absl::Status s =
      store->ScanLog(1, 1000, [&](uint64_t seq, absl::string_view) {
        visited.push_back(seq);
        return seq < 3;
      });
  REQUIRE(s.ok());
  CHECK(visited == std::vector<uint64_t>{1, 2, 3});
}

TEST_CASE(
    "Store::FindDuplicate and GetCursor read their families and "
    "separate key parts",
    "[store]") {
  TempDir dir;
  std::unique_ptr<Store> store = MustOpen(dir.File("data"));
  storage::Batch batch = store->NewBatch();
  // An entry without a content hash, as written before hashes were kept.
  batch.PutDedup(DedupKey("CIV/police", "a1"), 77, /*content_sha256=*/"");
  batch.PutCursor(CursorKey("CIV/police", "watch"), 300);
  REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());

  auto dup = store->FindDuplicate("CIV/police", "a1");
  REQUIRE(dup.ok());
  REQUIRE(dup->has_value());
  CHECK(**dup == 77);
  // Other originator, other id, or a shifted boundary: no match.
  for (auto [o, i] : std::vector<std::pair<std::string, std::string>>{
           {"CIV/army", "a1"}, {"CIV/police", "a2"}, {"CIV/polic", "ea1"}}) {
    auto none = store->FindDuplicate(o, i);
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
  }
  // Dedup and cursor are separate families.
  auto not_cursor = store->GetCursor("CIV/police", "a1");
  REQUIRE(not_cursor.ok());
  CHECK_FALSE(not_cursor->has_value());

  auto cursor = store->GetCursor("CIV/police", "watch");
  REQUIRE(cursor.ok());
  REQUIRE(cursor->has_value());
  CHECK(**cursor == 300);
}

TEST_CASE("Store: corrupt index values are reported as DATA_LOSS", "[store]") {
  TempDir dir;
  std::unique_ptr<Store> store = MustOpen(dir.File("data"));
  storage::Batch batch = store->NewBatch();
  batch.PutForTesting(Family::kDedup, DedupKey("CIV/p", "x"), "short");
  batch.PutForTesting(Family::kCursor, CursorKey("CIV/p", "c"), "123456789");
  REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  CHECK(store->FindDuplicate("CIV/p", "x").status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(store->GetCursor("CIV/p", "c").status().code() ==
        absl::StatusCode::kDataLoss);
}

TEST_CASE(
    "Store::Open refuses corrupt node metadata, a newer schema and a "
    "malformed log key",
    "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");

  SECTION("corrupt node metadata is DATA_LOSS") {
    {
      std::unique_ptr<Store> store = MustOpen(path);
      storage::Batch batch = store->NewBatch();
      batch.PutForTesting(Family::kMeta, kNodeMetaKey, "\xff\xff\xff");
      REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
    }
    CHECK(Store::Open({path, "CIV"}).status().code() ==
          absl::StatusCode::kDataLoss);
  }
  SECTION("a newer schema version is FAILED_PRECONDITION") {
    {
      std::unique_ptr<Store> store = MustOpen(path);
      internal::v1::NodeMeta meta;
      meta.set_schema_version(99);
      meta.set_node_id("CIV");
      storage::Batch batch = store->NewBatch();
      batch.PutNodeMeta(meta.SerializeAsString());
      REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
    }
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open({path, "CIV"});
    CHECK(s.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("99"));
  }
  SECTION("a log key that is not 8 bytes is DATA_LOSS") {
    {
      std::unique_ptr<Store> store = MustOpen(path);
      storage::Batch batch = store->NewBatch();
      batch.PutForTesting(Family::kLog,
                          "\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff",
                          "v");
      REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
    }
    CHECK(Store::Open({path, "CIV"}).status().code() ==
          absl::StatusCode::kDataLoss);
  }
}

TEST_CASE("Store: writes without sync are also durable across a clean close",
          "[store]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    storage::Batch batch = store->NewBatch();
    batch.PutForTesting(Family::kLog, EncodeSequence(9), "v9");
    REQUIRE(store->Commit(std::move(batch), Durability::kBuffered).ok());
  }
  std::unique_ptr<Store> store = MustOpen(path);
  CHECK(store->recovered_last_sequence() == 9);
  auto all = Scan(*store, 0, 10);
  REQUIRE(all.size() == 1);
  CHECK(all[0].second == "v9");
}

TEST_CASE("Store::Open creates the data directory with mode 0700",
          "[store][permissions]") {
  TempDir dir;
  const std::string path = dir.File("data");
  { std::unique_ptr<Store> store = MustOpen(path); }
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE(
    "Store::Open tightens an existing data directory that group or others "
    "may read to 0700",
    "[store][permissions]") {
  TempDir dir;
  const std::string path = dir.File("data");
  REQUIRE(mkdir(path.c_str(), 0755) == 0);
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  { std::unique_ptr<Store> store = MustOpen(path); }
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE(
    "Store: the recovered last sequence is the stored high-water mark, "
    "even when the end of the log was removed",
    "[store][hwm]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    WriteLog(*store, {1, 2, 3});
    storage::Batch batch = store->NewBatch();
    batch.RemoveAlert(3);
    batch.PutLastSequence(3);
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  }
  CHECK(MustOpen(path)->recovered_last_sequence() == 3);
}

TEST_CASE(
    "Store: without a high-water mark (an older store) the last log key "
    "is used; a mark below the last log key loses to it",
    "[store][hwm]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    WriteLog(*store, {1, 2, 7});
  }
  CHECK(MustOpen(path)->recovered_last_sequence() == 7);
  {
    std::unique_ptr<Store> store = MustOpen(path);
    storage::Batch batch = store->NewBatch();
    batch.PutLastSequence(5);
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  }
  CHECK(MustOpen(path)->recovered_last_sequence() == 7);
}

TEST_CASE("Store::Open refuses a corrupt high-water mark with DATA_LOSS",
          "[store][hwm]") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    std::unique_ptr<Store> store = MustOpen(path);
    storage::Batch batch = store->NewBatch();
    batch.PutForTesting(Family::kMeta, kLastSequenceKey, "abc");
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
  }
  CHECK(Store::Open({path, "CIV"}).status().code() ==
        absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ibsm::broker
