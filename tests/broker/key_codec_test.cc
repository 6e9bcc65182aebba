// Tests of broker/storage/key_codec.h: sequence keys and composite keys.
#include "storage/key_codec.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace ibsm::broker {
namespace {

TEST_CASE("EncodeSequence/DecodeSequence round-trip edge values",
          "[key_codec]") {
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<uint64_t> values = {0,
                                        1,
                                        255,
                                        256,
                                        257,
                                        65535,
                                        65536,
                                        (uint64_t{1} << 32) - 1,
                                        uint64_t{1} << 32,
                                        (uint64_t{1} << 56) - 1,
                                        uint64_t{1} << 56,
                                        uint64_t{1} << 63,
                                        kMax - 1,
                                        kMax};
  for (uint64_t v : values) {
    INFO("value " << v);
    std::string key = EncodeSequence(v);
    CHECK(key.size() == 8);
    std::optional<uint64_t> back = DecodeSequence(key);
    REQUIRE(back.has_value());
    CHECK(*back == v);
  }
}

TEST_CASE("EncodeSequence is big-endian", "[key_codec]") {
  CHECK(EncodeSequence(0) == std::string(8, '\0'));
  CHECK(EncodeSequence(1) == std::string("\0\0\0\0\0\0\0\x01", 8));
  CHECK(EncodeSequence(255) == std::string("\0\0\0\0\0\0\0\xff", 8));
  CHECK(EncodeSequence(256) == std::string("\0\0\0\0\0\0\x01\0", 8));
  CHECK(EncodeSequence(0x0102030405060708ULL) ==
        std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(EncodeSequence(std::numeric_limits<uint64_t>::max()) ==
        std::string(8, '\xff'));
}

TEST_CASE("Bytewise order of encodings equals numeric order (random pairs)",
          "[key_codec][property]") {
  std::mt19937_64 rng(42);
  // Mix full-range values with small ones and neighbours, where byte carries
  // and sign bits of `char` would show up.
  std::uniform_int_distribution<uint64_t> full;
  std::uniform_int_distribution<uint64_t> small(0, 70000);
  for (int i = 0; i < 20000; ++i) {
    uint64_t a, b;
    switch (i % 4) {
      case 0:
        a = full(rng);
        b = full(rng);
        break;
      case 1:
        a = small(rng);
        b = small(rng);
        break;
      case 2:
        a = full(rng);
        b = a + 1;
        break;  // may wrap: still a pair
      default:
        a = small(rng);
        b = full(rng);
        break;
    }
    const std::string ka = EncodeSequence(a);
    const std::string kb = EncodeSequence(b);
    INFO("a=" << a << " b=" << b);
    // std::string compares with char_traits<char>, which compares as
    // unsigned char, i.e. bytewise like RocksDB's default comparator.
    CHECK((ka < kb) == (a < b));
    CHECK((ka == kb) == (a == b));
    CHECK((ka.compare(kb) > 0) == (a > b));
  }
}

TEST_CASE("DecodeSequence rejects keys that are not exactly 8 bytes",
          "[key_codec]") {
  for (size_t n : {0u, 1u, 7u, 9u, 16u}) {
    INFO("size " << n);
    CHECK_FALSE(DecodeSequence(std::string(n, '\x01')).has_value());
  }
  CHECK(DecodeSequence(std::string(8, '\x01')).has_value());
}

TEST_CASE("DedupKey/CursorKey keep the boundary: (a,bc) != (ab,c)",
          "[key_codec]") {
  CHECK(DedupKey("a", "bc") != DedupKey("ab", "c"));
  CHECK(CursorKey("a", "bc") != CursorKey("ab", "c"));
  CHECK(DedupKey("CIV/police", "x1") == std::string("CIV/police\0x1", 13));
  CHECK(CursorKey("CIV/police", "durable") ==
        std::string("CIV/police\0durable", 18));
  CHECK(DedupKey("", "") == std::string(1, '\0'));
  // Deterministic.
  CHECK(DedupKey("MLI/army", "a") == DedupKey("MLI/army", "a"));
}

TEST_CASE("DedupKey: all splits of one string give distinct keys",
          "[key_codec][property]") {
  const std::string s = "CIV/police:alert-42";
  std::vector<std::string> keys;
  for (size_t i = 0; i <= s.size(); ++i) {
    keys.push_back(DedupKey(s.substr(0, i), s.substr(i)));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) {
      INFO("split " << i << " vs " << j);
      CHECK(keys[i] != keys[j]);
    }
  }
}

}  // namespace
}  // namespace ibsm::broker
