// Store::Write on a full disk, with ENOSPC injected through the RocksDB
// file system, so it runs where a test cannot mount a small file system
// (tests/fault/full_disk_test.cc is the real-disk test).
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <utility>

#include "storage/store.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

// A file that refuses appends with NoSpace (what RocksDB makes of ENOSPC)
// while `*full` is set.
class FullableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
               const std::atomic<bool>* full)
      : FSWritableFileOwnerWrapper(std::move(file)), full_(full) {}
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    if (full_->load()) return IOStatus::NoSpace("injected: disk full");
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    if (full_->load()) return IOStatus::NoSpace("injected: disk full");
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }

 private:
  const std::atomic<bool>* full_;
};

class FullableFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FullableFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FullableFileSystem"; }
  IOStatus NewWritableFile(const std::string& name,
                           const rocksdb::FileOptions& options,
                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                           IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) result->reset(new FullableFile(std::move(file), &full));
    return s;
  }
  std::atomic<bool> full{false};
};

// Meta keys, which no other code of the Store reads.
absl::Status PutMeta(Store* store, const std::string& key) {
  storage::Batch batch = store->NewBatch();
  batch.PutForTesting(Family::kMeta, key, "value");
  return store->Commit(std::move(batch), Durability::kSynced);
}

TEST_CASE(
    "Store: ENOSPC is RESOURCE_EXHAUSTED naming node and directory; "
    "writing resumes by itself once space returns, nothing written is lost",
    "[full_disk]") {
  testing::TempDir dir;
  auto fs = std::make_shared<FullableFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  const std::string path = dir.File("db");
  {
    auto store = Store::Open({path, "CIV", env.get()});
    REQUIRE(store.ok());
    REQUIRE(PutMeta(store->get(), "test-a").ok());

    fs->full = true;
    for (int i = 0; i < 3; ++i) {
      absl::Status refused = PutMeta(store->get(), "test-lost");
      INFO(refused.ToString());
      CHECK(absl::IsResourceExhausted(refused));
      CHECK_THAT(std::string(refused.message()),
                 Catch::StartsWith("node CIV: disk full at " + path));
    }
    // Reads work throughout.
    auto a = (*store)->Get(Family::kMeta, "test-a");
    REQUIRE(a.ok());
    CHECK(a->has_value());

    fs->full = false;
    absl::Status resumed = PutMeta(store->get(), "test-b");
    INFO(resumed.ToString());
    REQUIRE(resumed.ok());
    REQUIRE(PutMeta(store->get(), "test-c").ok());
  }
  auto store = Store::Open({path, "CIV", env.get()});
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  for (const char* key : {"test-a", "test-b", "test-c"}) {
    auto got = (*store)->Get(Family::kMeta, key);
    REQUIRE(got.ok());
    CHECK(got->has_value());
  }
  auto lost = (*store)->Get(Family::kMeta, "test-lost");
  REQUIRE(lost.ok());
  CHECK_FALSE(lost->has_value());
}

}  // namespace
}  // namespace ibsm::broker
