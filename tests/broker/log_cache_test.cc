// Tests of broker/storage/log_cache.h: the in-memory window of recent records.
#include "storage/log_cache.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ibsm::broker {
namespace {

using Records = std::vector<std::shared_ptr<const LogRecord>>;

// A record charged `bytes` (the budget tests set the charge directly).
std::shared_ptr<const LogRecord> Rec(uint64_t sequence, size_t bytes) {
  auto r = std::make_shared<LogRecord>();
  r->sequence = sequence;
  r->bytes = bytes;
  r->charge = bytes;
  r->stored.mutable_alert()->set_id("a" + std::to_string(sequence));
  return r;
}

// Records first..last, each `bytes` large.
Records Range(uint64_t first, uint64_t last, size_t bytes) {
  Records out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(Rec(s, bytes));
  return out;
}

// An alert as ibsm-bench publishes it (tests/bench/ibsm_bench.cc), parsed
// from its bytes as the publish path receives it, with its charge set as
// the publish path sets it.
std::shared_ptr<const LogRecord> BenchRecord(uint64_t sequence) {
  internal::v1::StoredAlert built;
  v1::Alert* alert = built.mutable_alert();
  alert->set_id(absl::StrCat("bench-1733140000-", sequence));
  alert->set_topic("border.incident");
  alert->set_classification("RESTRICTED");
  alert->set_severity(v1::SEVERITY_HIGH);
  alert->set_payload(std::string(1024, 'x'));
  (*alert->mutable_attributes())["bench"] = "bench-1733140000";
  alert->set_originator("CIV/police");
  alert->mutable_created_at()->set_seconds(1733140000);
  built.mutable_received_at()->set_seconds(1733140001);
  built.set_received_from("CIV");
  const std::string bytes = built.SerializeAsString();
  auto r = std::make_shared<LogRecord>();
  r->sequence = sequence;
  REQUIRE(r->stored.ParseFromString(bytes));
  r->bytes = bytes.size();
  r->charge = LogCache::Charge(*r);
  return r;
}

// Bytes the process's heap has handed out (glibc's count; the tests are
// not linked with jemalloc).
size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

std::vector<uint64_t> Sequences(const Records& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r->sequence);
  return out;
}

TEST_CASE("LogCache: contiguous appends are read back in order",
          "[log_cache]") {
  LogCache cache(1 << 20, 1);
  cache.Append(Range(1, 3, 10));
  cache.Append(Range(4, 4, 10));
  cache.Append({});  // empty append is harmless
  cache.Append(Range(5, 7, 10));

  Records out;
  REQUIRE(cache.Read(1, 100, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7});
  CHECK(out[0]->stored.alert().id() == "a1");

  out.clear();
  REQUIRE(cache.Read(5, 100, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{5, 6, 7});
}

TEST_CASE("LogCache: the records read are the very objects appended",
          "[log_cache]") {
  LogCache cache(1 << 20, 10);
  Records in = Range(10, 12, 5);
  cache.Append(in);
  Records out;
  REQUIRE(cache.Read(10, 10, &out));
  REQUIRE(out.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(out[i].get() == in[i].get());
}

TEST_CASE(
    "LogCache: a read starting before the cache returns false and "
    "appends nothing",
    "[log_cache]") {
  LogCache cache(1 << 20, 100);
  cache.Append(Range(100, 105, 1));
  Records out;
  out.push_back(Rec(1, 1));  // pre-existing content must be untouched
  CHECK_FALSE(cache.Read(99, 10, &out));
  CHECK_FALSE(cache.Read(0, 10, &out));
  CHECK(out.size() == 1);
  CHECK(cache.Read(100, 10, &out));
  CHECK(Sequences(out) ==
        std::vector<uint64_t>{1, 100, 101, 102, 103, 104, 105});
}

TEST_CASE(
    "LogCache: an empty cache serves its next sequence as empty, "
    "earlier ones as false",
    "[log_cache]") {
  LogCache cache(1000, 42);
  Records out;
  CHECK(cache.Read(42, 10, &out));
  CHECK(out.empty());
  CHECK(cache.Read(1000, 10, &out));
  CHECK(out.empty());
  CHECK_FALSE(cache.Read(41, 10, &out));
  CHECK(out.empty());
}

TEST_CASE("LogCache: a read beyond the end returns true and nothing",
          "[log_cache]") {
  LogCache cache(1 << 20, 1);
  cache.Append(Range(1, 5, 10));
  Records out;
  CHECK(cache.Read(6, 10, &out));  // the next sequence to be appended
  CHECK(out.empty());
  CHECK(cache.Read(1000000, 10, &out));
  CHECK(out.empty());
  CHECK(cache.Read(std::numeric_limits<uint64_t>::max(), 10, &out));
  CHECK(out.empty());
}

TEST_CASE("LogCache: max is honoured, including 0", "[log_cache]") {
  LogCache cache(1 << 20, 1);
  cache.Append(Range(1, 10, 10));
  for (size_t max : {0u, 1u, 3u, 9u, 10u, 11u}) {
    INFO("max " << max);
    Records out;
    REQUIRE(cache.Read(1, max, &out));
    CHECK(out.size() == std::min<size_t>(max, 10));
    if (!out.empty()) {
      CHECK(out.front()->sequence == 1);
      CHECK(out.back()->sequence == out.size());
    }
  }
  Records out;
  REQUIRE(cache.Read(8, 2, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{8, 9});
}

TEST_CASE("LogCache: eviction by byte budget keeps the newest records",
          "[log_cache]") {
  LogCache cache(300, 1);  // room for three 100-byte records
  cache.Append(Range(1, 3, 100));
  Records out;
  REQUIRE(cache.Read(1, 10, &out));  // exactly at budget: nothing evicted
  CHECK(Sequences(out) == std::vector<uint64_t>{1, 2, 3});

  cache.Append(Range(4, 5, 100));
  out.clear();
  CHECK_FALSE(cache.Read(1, 10, &out));
  CHECK_FALSE(cache.Read(2, 10, &out));
  REQUIRE(cache.Read(3, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{3, 4, 5});

  // A larger record pushes out as many older ones as needed (3 and 4:
  // 5 + 6 = 250 bytes fit, 4 + 5 + 6 = 350 do not).
  cache.Append({Rec(6, 150)});
  out.clear();
  CHECK_FALSE(cache.Read(4, 10, &out));
  REQUIRE(cache.Read(5, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{5, 6});

  // 250 + 260 > 300 and 260 alone fits: only the new record stays.
  cache.Append({Rec(7, 260)});
  out.clear();
  CHECK_FALSE(cache.Read(6, 10, &out));
  REQUIRE(cache.Read(7, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{7});
}

TEST_CASE("LogCache: a single record over budget is still kept (the newest)",
          "[log_cache]") {
  LogCache cache(100, 1);
  cache.Append({Rec(1, 50)});
  cache.Append({Rec(2, 1000)});
  Records out;
  CHECK_FALSE(cache.Read(1, 10, &out));
  REQUIRE(cache.Read(2, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{2});

  cache.Append({Rec(3, 1000)});
  out.clear();
  CHECK_FALSE(cache.Read(2, 10, &out));
  REQUIRE(cache.Read(3, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{3});
}

TEST_CASE("LogCache: eviction inside one big append keeps the newest",
          "[log_cache]") {
  LogCache cache(1000, 1);
  cache.Append(Range(1, 100, 100));  // 10000 bytes into a 1000-byte budget
  Records out;
  CHECK_FALSE(cache.Read(90, 100, &out));
  REQUIRE(cache.Read(91, 100, &out));
  CHECK(out.size() == 10);
  CHECK(out.front()->sequence == 91);
  CHECK(out.back()->sequence == 100);
}

TEST_CASE(
    "LogCache: concurrent readers see contiguous, ordered windows "
    "while a writer appends and evicts",
    "[log_cache][concurrency]") {
  LogCache cache(64 * 10, 1);  // about 64 records of 10 bytes
  constexpr uint64_t kLast = 20000;
  std::atomic<uint64_t> appended{0};
  std::atomic<bool> bad{false};

  std::thread writer([&] {
    for (uint64_t s = 1; s <= kLast; s += 4) {
      cache.Append(Range(s, s + 3, 10));
      appended.store(s + 3, std::memory_order_release);
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      uint64_t from = 1;
      while (from <= kLast && !bad) {
        Records out;
        uint64_t known = appended.load(std::memory_order_acquire);
        if (!cache.Read(from, 16, &out)) {
          from = known > 32 ? known - 32 : 1;  // fell behind: skip ahead
          continue;
        }
        for (size_t i = 0; i < out.size(); ++i) {
          if (out[i]->sequence != from + i) bad = true;
        }
        from += out.size();
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  CHECK_FALSE(bad);
  Records out;
  REQUIRE(cache.Read(kLast, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{kLast});
}

}  // namespace
}  // namespace ibsm::broker

namespace ibsm::broker {
namespace {

// The budget used to count serialized bytes only, so a 64 MiB cache held
// about 118 MiB of 1 KiB alerts.
TEST_CASE(
    "LogCache: a record is charged what it holds in memory, not its "
    "serialized size",
    "[log_cache]") {
  constexpr uint64_t kRecords = 2000;
  LogCache cache(size_t{1} << 30, 1);
  Records records;
  records.reserve(kRecords);
  const size_t heap_before = HeapInUse();
  size_t serialized = 0;
  for (uint64_t s = 1; s <= kRecords; ++s) {
    records.push_back(BenchRecord(s));
    serialized += records.back()->bytes;
  }
  cache.Append(records);
  const size_t held = HeapInUse() - heap_before;
  INFO("charged " << cache.charged_bytes() << ", heap " << held
                  << ", serialized " << serialized);
  // At least what the heap really gave those records and the cache's slots.
  CHECK(cache.charged_bytes() >= held);
  // At least the bytes plus what every record holds besides them: its own
  // object (with the StoredAlert), the Alert object and the shared_ptr's
  // control block.
  constexpr size_t kFixedOverhead =
      sizeof(LogRecord) + sizeof(v1::Alert) + 2 * sizeof(void*);
  CHECK(cache.charged_bytes() >= serialized + kRecords * kFixedOverhead);
  // And not wildly more.
  CHECK(cache.charged_bytes() <= 3 * serialized);
}

TEST_CASE("LogCache: Charge counts what a record owns besides its bytes",
          "[log_cache]") {
  auto few = std::make_shared<LogRecord>();
  few->stored.mutable_alert()->set_payload(std::string(600, 'x'));
  auto many = std::make_shared<LogRecord>();
  for (int i = 0; i < 50; ++i) {
    (*many->stored.mutable_alert()
          ->mutable_attributes())[absl::StrCat("k", i)] = "v";
  }
  // About the same serialized size (50 entries of 9 bytes, 600 bytes of
  // payload), but each map entry is a node on the heap.
  REQUIRE(many->stored.ByteSizeLong() <= few->stored.ByteSizeLong());
  CHECK(LogCache::Charge(*many) > LogCache::Charge(*few));
}

TEST_CASE("LogCache: evicts by the records' charge", "[log_cache]") {
  std::shared_ptr<const LogRecord> first = BenchRecord(1);
  // Room for three of these records' charges, but for six of their bytes.
  LogCache cache(3 * first->charge, 1);
  Records in = {first};
  for (uint64_t s = 2; s <= 6; ++s) in.push_back(BenchRecord(s));
  cache.Append(in);
  Records out;
  CHECK_FALSE(cache.Read(3, 10, &out));
  REQUIRE(cache.Read(4, 10, &out));
  CHECK(Sequences(out) == std::vector<uint64_t>{4, 5, 6});
  CHECK(cache.charged_bytes() <= 3 * first->charge);
}

}  // namespace
}  // namespace ibsm::broker
