// Tests of broker/storage/log_cache.h: the in-memory window of recent records.
#include "storage/log_cache.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

namespace ibsm::broker {
namespace {

using Records = std::vector<std::shared_ptr<const LogRecord>>;

std::shared_ptr<const LogRecord> Rec(uint64_t sequence, size_t bytes) {
  auto r = std::make_shared<LogRecord>();
  r->sequence = sequence;
  r->bytes = bytes;
  r->stored.mutable_alert()->set_id("a" + std::to_string(sequence));
  return r;
}

// Records first..last, each `bytes` large.
Records Range(uint64_t first, uint64_t last, size_t bytes) {
  Records out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(Rec(s, bytes));
  return out;
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
