// Tests of client-lib/shared/include/ibsm/merkle.h: RFC 6962/9162 test vectors,
// property tests against a naive recursive reference, mutated proofs, and read
// counts.
#include "ibsm/merkle.h"

#include <openssl/sha.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ibsm::broker {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// ---- Independent reference: RFC 9162 §2.1 written as recursion ----

Hash RefSha256(const std::string& data) {
  Hash out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         out.data());
  return out;
}
std::string Bytes(const Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}
Hash RefLeaf(const std::string& record) {
  return RefSha256(std::string(1, '\0') + record);
}
Hash RefNode(const Hash& l, const Hash& r) {
  return RefSha256("\x01" + Bytes(l) + Bytes(r));
}
// Largest power of two strictly below n (n >= 2).
uint64_t RefSplit(uint64_t n) {
  uint64_t k = 1;
  while (k < n - k) k *= 2;  // k * 2 < n, without overflow
  return k;
}

using Range = std::pair<uint64_t, uint64_t>;  // [begin, end) of leaves

struct RefTree {
  std::vector<Hash> leaves;  // leaf hashes

  Hash Mth(uint64_t begin, uint64_t end) const {
    if (end - begin == 1) return leaves[begin];
    uint64_t k = RefSplit(end - begin);
    return RefNode(Mth(begin, begin + k), Mth(begin + k, end));
  }
  Hash Root(uint64_t n) const { return n == 0 ? RefSha256("") : Mth(0, n); }
  // PATH(m, D[begin:end]) as ranges, bottom-up.
  void PathRanges(uint64_t m, uint64_t begin, uint64_t end,
                  std::vector<Range>* out) const {
    if (end - begin <= 1) return;
    uint64_t k = RefSplit(end - begin);
    if (m < k) {
      PathRanges(m, begin, begin + k, out);
      out->push_back({begin + k, end});
    } else {
      PathRanges(m - k, begin + k, end, out);
      out->push_back({begin, begin + k});
    }
  }
  // SUBPROOF(m, D[begin:end], b) as ranges, bottom-up.
  void SubproofRanges(uint64_t m, uint64_t begin, uint64_t end, bool b,
                      std::vector<Range>* out) const {
    uint64_t n = end - begin;
    if (m == n) {
      if (!b) out->push_back({begin, end});
      return;
    }
    uint64_t k = RefSplit(n);
    if (m <= k) {
      SubproofRanges(m, begin, begin + k, b, out);
      out->push_back({begin + k, end});
    } else {
      SubproofRanges(m - k, begin + k, end, false, out);
      out->push_back({begin, begin + k});
    }
  }
  std::vector<Hash> Hashes(const std::vector<Range>& ranges) const {
    std::vector<Hash> out;
    for (const Range& r : ranges) out.push_back(Mth(r.first, r.second));
    return out;
  }
  std::vector<Hash> Path(uint64_t m, uint64_t n) const {
    std::vector<Range> ranges;
    PathRanges(m, 0, n, &ranges);
    return Hashes(ranges);
  }
  std::vector<Hash> Consistency(uint64_t m, uint64_t n) const {
    if (m == 0 || m == n) return {};
    std::vector<Range> ranges;
    SubproofRanges(m, 0, n, true, &ranges);
    return Hashes(ranges);
  }
};

// How a verifier must combine the proof hashes: starting from a seed range,
// each proof element is a sibling on the left ('L') or the right ('R'). Two
// (index, size) claims with the same shape make RFC 9162 verification compute
// the same thing, so a proof for one also "verifies" for the other: the
// index and size are bound only through the root. Mutating the index or size
// is therefore only detectable when the shape changes; nullopt = no valid
// proof can exist for the claim.
std::optional<std::string> Shape(Range seed, const std::vector<Range>& ranges) {
  std::string shape;
  for (const Range& r : ranges) {
    if (r.second == seed.first) {
      shape += 'L';
      seed.first = r.first;
    } else if (r.first == seed.second) {
      shape += 'R';
      seed.second = r.second;
    } else {
      return std::nullopt;
    }
  }
  return shape;
}
std::optional<std::string> InclusionShape(const RefTree& t, uint64_t index,
                                          uint64_t size) {
  if (index >= size) return std::nullopt;
  std::vector<Range> ranges;
  t.PathRanges(index, 0, size, &ranges);
  return Shape({index, index + 1}, ranges);
}
std::optional<std::string> ConsistencyShape(const RefTree& t, uint64_t size1,
                                            uint64_t size2) {
  if (size1 == 0 || size1 >= size2) return std::nullopt;
  std::vector<Range> ranges;
  t.SubproofRanges(size1, 0, size2, true, &ranges);
  std::string prefix;
  Range seed;
  if (std::has_single_bit(size1)) {
    prefix = "root1:";  // root1 is the seed, not part of the proof
    seed = {0, size1};
  } else {
    prefix = "proof0:";
    seed = ranges.front();
    ranges.erase(ranges.begin());
  }
  std::optional<std::string> shape = Shape(seed, ranges);
  if (!shape.has_value()) return std::nullopt;
  return prefix + *shape;
}

// ---- Storage for tests ----

class MapStorage : public MerkleStorage {
 public:
  std::optional<Hash> Get(int level, uint64_t index) const override {
    ++reads;
    auto it = nodes.find({level, index});
    if (it == nodes.end()) return std::nullopt;
    return it->second;
  }
  void Apply(const std::vector<MerkleWrite>& writes) {
    for (const MerkleWrite& w : writes) {
      auto [it, inserted] = nodes.insert({{w.level, w.index}, w.hash});
      // A stored node is immutable: a second write must be identical.
      REQUIRE((inserted || it->second == w.hash));
    }
  }

  std::map<std::pair<int, uint64_t>, Hash> nodes;
  mutable uint64_t reads = 0;
};

// Pretends to hold every complete subtree of a tree of `size` leaves without
// storing anything, so that read counts and index arithmetic can be checked
// at sizes up to 2^64 - 1. The hashes are made up, not a real tree.
class SyntheticStorage : public MerkleStorage {
 public:
  explicit SyntheticStorage(uint64_t size) : size_(size) {}
  std::optional<Hash> Get(int level, uint64_t index) const override {
    ++reads;
    if (level < 0 || level > 63) return std::nullopt;
    // Complete iff (index + 1) * 2^level <= size, without overflow.
    if (index >= (size_ >> level)) return std::nullopt;
    return RefSha256(absl::StrCat(level, "/", index));
  }
  mutable uint64_t reads = 0;

 private:
  uint64_t size_;
};

Hash FromHex(const std::string& hex) {
  std::string bytes = absl::HexStringToBytes(hex);
  REQUIRE(bytes.size() == 32);
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

// The standard 8-leaf test data of RFC 6962 implementations.
std::vector<std::string> TestLeaves() {
  return {std::string(),
          std::string("\x00", 1),
          "\x10",
          "\x20\x21",
          "\x30\x31",
          "\x40\x41\x42\x43",
          "\x50\x51\x52\x53\x54\x55\x56\x57",
          "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
}

// Roots of the test data for sizes 1..8, as published with
// transparency-dev/merkle and certificate-transparency-go.
const char* const kTestRoots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

// Appends `records` one leaf per call, as a committer with one record per
// batch would.
void AppendOneByOne(MapStorage* storage, const std::vector<Hash>& leaves) {
  uint64_t size = 0;
  for (const Hash& leaf : leaves) {
    absl::StatusOr<std::vector<MerkleWrite>> writes =
        AppendLeaves(*storage, size, {leaf});
    INFO(writes.status().ToString());
    REQUIRE(writes.ok());
    storage->Apply(*writes);
    ++size;
  }
}

RefTree MakeTree(uint64_t n, MapStorage* storage) {
  RefTree ref;
  for (uint64_t i = 0; i < n; ++i) {
    ref.leaves.push_back(RefLeaf(absl::StrCat("audit record ", i)));
  }
  absl::StatusOr<std::vector<MerkleWrite>> writes =
      AppendLeaves(*storage, 0, ref.leaves);
  REQUIRE(writes.ok());
  storage->Apply(*writes);
  return ref;
}

Hash Flip(Hash h, int byte, int bit) {
  h[byte] ^= static_cast<uint8_t>(1u << bit);
  return h;
}

uint64_t CeilLog2(uint64_t n) {
  return n <= 1 ? 0 : static_cast<uint64_t>(std::bit_width(n - 1));
}

// ---- Hashes and test vectors ----

TEST_CASE("LeafHash, NodeHash and EmptyRootHash are the RFC 6962 hashes",
          "[merkle]") {
  CHECK(HexEncode(EmptyRootHash()) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexEncode(LeafHash("")) == kTestRoots[0]);
  for (const std::string& record : TestLeaves()) {
    CHECK(LeafHash(record) == RefLeaf(record));
  }
  Hash a = LeafHash("a");
  Hash b = LeafHash("b");
  CHECK(NodeHash(a, b) == RefNode(a, b));
  CHECK(NodeHash(a, b) != NodeHash(b, a));
  // Domain separation: a leaf whose record is 0x01||a||b is not that node.
  CHECK(LeafHash("\x01" + Bytes(a) + Bytes(b)) != NodeHash(a, b));
}

TEST_CASE("HexEncode is 64 lower-case hex digits", "[merkle]") {
  Hash h{};
  h[0] = 0xab;
  h[31] = 0x0f;
  std::string hex = HexEncode(h);
  CHECK(hex.size() == 64);
  CHECK(hex.substr(0, 2) == "ab");
  CHECK(hex.substr(62) == "0f");
}

TEST_CASE("RFC 6962 test data: roots of sizes 0 to 8", "[merkle][vectors]") {
  std::vector<Hash> leaves;
  for (const std::string& record : TestLeaves())
    leaves.push_back(LeafHash(record));
  MapStorage one_by_one;
  AppendOneByOne(&one_by_one, leaves);
  MapStorage batched;
  absl::StatusOr<std::vector<MerkleWrite>> writes =
      AppendLeaves(batched, 0, leaves);
  REQUIRE(writes.ok());
  batched.Apply(*writes);
  CHECK(batched.nodes == one_by_one.nodes);
  CHECK(one_by_one.nodes.size() == 8 + 4 + 2 + 1);

  absl::StatusOr<Hash> empty = RootHash(batched, 0);
  REQUIRE(empty.ok());
  CHECK(*empty == EmptyRootHash());
  for (uint64_t size = 1; size <= 8; ++size) {
    INFO("size " << size);
    absl::StatusOr<Hash> root = RootHash(batched, size);
    REQUIRE(root.ok());
    CHECK(HexEncode(*root) == kTestRoots[size - 1]);
  }
}

TEST_CASE("RFC 6962 test data: known inclusion proofs", "[merkle][vectors]") {
  struct Vector {
    uint64_t index;
    uint64_t size;
    std::vector<std::string> proof;
  };
  // From transparency-dev/merkle proof/verify_test.go (there 1-based).
  const std::vector<Vector> vectors = {
      {0, 1, {}},
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       3,
       {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  std::vector<std::string> records = TestLeaves();
  std::vector<Hash> leaves;
  for (const std::string& record : records) leaves.push_back(LeafHash(record));
  MapStorage storage;
  AppendOneByOne(&storage, leaves);

  for (const Vector& v : vectors) {
    INFO("leaf " << v.index << " of " << v.size);
    std::vector<Hash> want;
    for (const std::string& hex : v.proof) want.push_back(FromHex(hex));
    absl::StatusOr<std::vector<Hash>> proof =
        InclusionProof(storage, v.index, v.size);
    REQUIRE(proof.ok());
    CHECK(*proof == want);
    const Hash root = FromHex(kTestRoots[v.size - 1]);
    const Hash leaf = LeafHash(records[v.index]);
    CHECK(VerifyInclusion(leaf, v.index, v.size, want, root).ok());

    // The mutations of transparency-dev's corruptInclusionProof: all fail.
    if (v.index > 0) {
      CHECK_FALSE(VerifyInclusion(leaf, v.index - 1, v.size, want, root).ok());
    }
    CHECK_FALSE(VerifyInclusion(leaf, v.index + 1, v.size, want, root).ok());
    CHECK_FALSE(VerifyInclusion(leaf, v.index ^ 2, v.size, want, root).ok());
    CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size * 2, want, root).ok());
    CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size / 2, want, root).ok());
    CHECK_FALSE(
        VerifyInclusion(LeafHash("WrongLeaf"), v.index, v.size, want, root)
            .ok());
    CHECK_FALSE(
        VerifyInclusion(leaf, v.index, v.size, want, EmptyRootHash()).ok());
    std::vector<Hash> longer = want;
    longer.push_back(root);
    CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size, longer, root).ok());
    longer = want;
    longer.insert(longer.begin(), root);
    CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size, longer, root).ok());
    for (size_t i = 0; i < want.size(); ++i) {
      std::vector<Hash> bad = want;
      bad[i] = Flip(bad[i], 0, 3);
      CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size, bad, root).ok());
    }
    if (!want.empty()) {
      std::vector<Hash> shorter(want.begin(), want.end() - 1);
      CHECK_FALSE(VerifyInclusion(leaf, v.index, v.size, shorter, root).ok());
    }
  }
}

TEST_CASE("RFC 6962 test data: known consistency proofs", "[merkle][vectors]") {
  struct Vector {
    uint64_t size1;
    uint64_t size2;
    std::vector<std::string> proof;
  };
  // From transparency-dev/merkle proof/verify_test.go.
  const std::vector<Vector> vectors = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {6,
       7,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  };
  std::vector<Hash> leaves;
  for (const std::string& record : TestLeaves())
    leaves.push_back(LeafHash(record));
  MapStorage storage;
  AppendOneByOne(&storage, leaves);

  for (const Vector& v : vectors) {
    INFO("from " << v.size1 << " to " << v.size2);
    std::vector<Hash> want;
    for (const std::string& hex : v.proof) want.push_back(FromHex(hex));
    absl::StatusOr<std::vector<Hash>> proof =
        ConsistencyProof(storage, v.size1, v.size2);
    REQUIRE(proof.ok());
    CHECK(*proof == want);
    const Hash root1 = FromHex(kTestRoots[v.size1 - 1]);
    const Hash root2 = FromHex(kTestRoots[v.size2 - 1]);
    absl::Status ok = VerifyConsistency(v.size1, v.size2, root1, root2, want);
    INFO(ok.ToString());
    CHECK(ok.ok());
    if (want.empty()) continue;

    // The mutations of transparency-dev's corruptConsistencyProof: all fail.
    const Hash wrong = LeafHash("WrongRoot");
    CHECK_FALSE(
        VerifyConsistency(v.size1 - 1, v.size2, root1, root2, want).ok());
    CHECK_FALSE(
        VerifyConsistency(v.size1 + 1, v.size2, root1, root2, want).ok());
    CHECK_FALSE(
        VerifyConsistency(v.size1 ^ 2, v.size2, root1, root2, want).ok());
    CHECK_FALSE(
        VerifyConsistency(v.size1, v.size2 * 2, root1, root2, want).ok());
    CHECK_FALSE(
        VerifyConsistency(v.size1, v.size2 / 2, root1, root2, want).ok());
    CHECK_FALSE(VerifyConsistency(v.size1, v.size2, wrong, root2, want).ok());
    CHECK_FALSE(VerifyConsistency(v.size1, v.size2, root1, wrong, want).ok());
    CHECK_FALSE(VerifyConsistency(v.size1, v.size2, root2, root1, want).ok());
    CHECK_FALSE(VerifyConsistency(v.size1, v.size2, root1, root2, {}).ok());
    for (const Hash& extra : {Hash{}, root1, root2, want[0]}) {
      std::vector<Hash> longer = want;
      longer.push_back(extra);
      CHECK_FALSE(
          VerifyConsistency(v.size1, v.size2, root1, root2, longer).ok());
      longer = want;
      longer.insert(longer.begin(), extra);
      CHECK_FALSE(
          VerifyConsistency(v.size1, v.size2, root1, root2, longer).ok());
    }
    std::vector<Hash> shorter(want.begin(), want.end() - 1);
    CHECK_FALSE(
        VerifyConsistency(v.size1, v.size2, root1, root2, shorter).ok());
    for (size_t i = 0; i < want.size(); ++i) {
      std::vector<Hash> bad = want;
      bad[i] = Flip(bad[i], 0, 4);
      CHECK_FALSE(VerifyConsistency(v.size1, v.size2, root1, root2, bad).ok());
    }
  }
}

// ---- Edge cases of verification ----

TEST_CASE("VerifyInclusion rejects impossible sizes and indices",
          "[merkle][verify]") {
  const Hash leaf = LeafHash("data");
  // A one-leaf tree: the root is the leaf hash and the proof is empty.
  CHECK(VerifyInclusion(leaf, 0, 1, {}, leaf).ok());
  CHECK(VerifyInclusion(leaf, 0, 1, {}, EmptyRootHash()).code() ==
        absl::StatusCode::kDataLoss);
  CHECK(VerifyInclusion(leaf, 0, 1, {leaf}, leaf).code() ==
        absl::StatusCode::kDataLoss);
  for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 0}, {1, 0}, {1, 1}, {2, 1}, {kMax, kMax}, {kMax, 0}}) {
    INFO(index << " of " << size);
    absl::Status status = VerifyInclusion(leaf, index, size, {}, leaf);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               Catch::Contains("is not below the tree size"));
  }
  // The largest possible tree: no overflow, just a wrong proof.
  std::vector<Hash> proof(64, leaf);
  CHECK(VerifyInclusion(leaf, kMax - 1, kMax, proof, leaf).code() ==
        absl::StatusCode::kDataLoss);
  CHECK(VerifyInclusion(leaf, 0, kMax, proof, leaf).code() ==
        absl::StatusCode::kDataLoss);
  // Absurdly long proofs are rejected by length, whatever they contain.
  std::vector<Hash> huge(10000, leaf);
  absl::Status status = VerifyInclusion(leaf, 5, 8, huge, leaf);
  CHECK(status.code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("has 10000 hashes, expected 3"));
}

TEST_CASE("VerifyConsistency edge cases: empty trees and equal sizes",
          "[merkle][verify]") {
  const Hash empty = EmptyRootHash();
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  CHECK(VerifyConsistency(0, 0, empty, empty, {}).ok());
  CHECK(VerifyConsistency(0, 5, empty, a, {}).ok());  // anything extends empty
  CHECK_FALSE(VerifyConsistency(0, 5, a, a, {}).ok());  // root1 is not empty
  CHECK_FALSE(VerifyConsistency(0, 0, empty, a, {}).ok());
  CHECK_FALSE(VerifyConsistency(0, 5, empty, a, {a}).ok());
  CHECK(VerifyConsistency(1, 1, a, a, {}).ok());
  CHECK(VerifyConsistency(kMax, kMax, a, a, {}).ok());
  CHECK(VerifyConsistency(1, 1, a, b, {}).code() ==
        absl::StatusCode::kDataLoss);
  CHECK(VerifyConsistency(1, 1, a, a, {a}).code() ==
        absl::StatusCode::kDataLoss);
  CHECK(VerifyConsistency(2, 1, a, b, {}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyConsistency(kMax, 0, a, b, {a}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyConsistency(1, 2, a, b, {}).code() ==
        absl::StatusCode::kDataLoss);
  // Near the largest sizes: no overflow, just a wrong proof.
  std::vector<Hash> proof(65, a);
  for (auto [s1, s2] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, kMax},
           {kMax - 1, kMax},
           {uint64_t{1} << 63, kMax},
           {(uint64_t{1} << 63) - 1, uint64_t{1} << 63}}) {
    for (size_t len = 0; len <= proof.size(); ++len) {
      std::vector<Hash> p(proof.begin(), proof.begin() + len);
      CHECK(VerifyConsistency(s1, s2, a, b, p).code() ==
            absl::StatusCode::kDataLoss);
    }
  }
}

// ---- Property tests against the reference ----

TEST_CASE("Roots and inclusion proofs match the reference for sizes 1..130",
          "[merkle][property]") {
  MapStorage storage;
  RefTree ref = MakeTree(130, &storage);
  uint64_t proofs = 0;
  for (uint64_t size = 1; size <= 130; ++size) {
    absl::StatusOr<Hash> root = RootHash(storage, size);
    REQUIRE(root.ok());
    REQUIRE(*root == ref.Root(size));
    for (uint64_t index = 0; index < size; ++index) {
      absl::StatusOr<std::vector<Hash>> proof =
          InclusionProof(storage, index, size);
      REQUIRE(proof.ok());
      REQUIRE(*proof == ref.Path(index, size));
      absl::Status status =
          VerifyInclusion(ref.leaves[index], index, size, *proof, *root);
      INFO("leaf " << index << " of " << size << ": " << status.ToString());
      REQUIRE(status.ok());
      ++proofs;
    }
  }
  CHECK(proofs == 130 * 131 / 2);
}

TEST_CASE("Consistency proofs match the reference for all sizes up to 70",
          "[merkle][property]") {
  MapStorage storage;
  RefTree ref = MakeTree(70, &storage);
  for (uint64_t size2 = 0; size2 <= 70; ++size2) {
    for (uint64_t size1 = 0; size1 <= size2; ++size1) {
      INFO("from " << size1 << " to " << size2);
      absl::StatusOr<std::vector<Hash>> proof =
          ConsistencyProof(storage, size1, size2);
      REQUIRE(proof.ok());
      REQUIRE(*proof == ref.Consistency(size1, size2));
      absl::Status status = VerifyConsistency(size1, size2, ref.Root(size1),
                                              ref.Root(size2), *proof);
      INFO(status.ToString());
      REQUIRE(status.ok());
    }
  }
}

TEST_CASE("Every mutated inclusion proof fails for sizes 1..64",
          "[merkle][property][mutation]") {
  MapStorage storage;
  RefTree ref = MakeTree(130, &storage);
  uint64_t rejected = 0;
  uint64_t wrong_claims = 0;       // wrong index or size, rejected
  uint64_t indistinguishable = 0;  // wrong index or size, same shape
  for (uint64_t size = 1; size <= 64; ++size) {
    const Hash root = ref.Root(size);
    for (uint64_t index = 0; index < size; ++index) {
      INFO("leaf " << index << " of " << size);
      const Hash leaf = ref.leaves[index];
      const std::vector<Hash> proof = ref.Path(index, size);
      REQUIRE(VerifyInclusion(leaf, index, size, proof, root).ok());
      auto must_fail = [&](const char* what, const Hash& l, uint64_t i,
                           uint64_t s, const std::vector<Hash>& p,
                           const Hash& r) {
        INFO(what);
        CHECK_FALSE(VerifyInclusion(l, i, s, p, r).ok());
        ++rejected;
      };
      // Bits 0, 3 and 7 of every fifth byte of every proof element.
      for (size_t e = 0; e < proof.size(); ++e) {
        for (int byte = 0; byte < 32; byte += 5) {
          for (int bit : {0, 3, 7}) {
            std::vector<Hash> bad = proof;
            bad[e] = Flip(bad[e], byte, bit);
            must_fail("flipped proof bit", leaf, index, size, bad, root);
          }
        }
      }
      if (!proof.empty()) {
        must_fail("truncated", leaf, index, size,
                  std::vector<Hash>(proof.begin(), proof.end() - 1), root);
        must_fail("first dropped", leaf, index, size,
                  std::vector<Hash>(proof.begin() + 1, proof.end()), root);
        must_fail("empty", leaf, index, size, {}, root);
      }
      for (const Hash& extra : {Hash{}, root, leaf}) {
        std::vector<Hash> longer = proof;
        longer.push_back(extra);
        must_fail("extended", leaf, index, size, longer, root);
        longer = proof;
        longer.insert(longer.begin(), extra);
        must_fail("prepended", leaf, index, size, longer, root);
      }
      for (size_t e = 0; e + 1 < proof.size(); ++e) {
        std::vector<Hash> swapped = proof;
        std::swap(swapped[e], swapped[e + 1]);
        must_fail("swapped", leaf, index, size, swapped, root);
      }
      must_fail("wrong root", leaf, index, size, proof, Flip(root, 31, 0));
      must_fail("empty-tree root", leaf, index, size, proof, EmptyRootHash());
      if (size > 1) {
        must_fail("root of size - 1", leaf, index, size, proof,
                  ref.Root(size - 1));
      }
      must_fail("wrong leaf", Flip(leaf, 0, 0), index, size, proof, root);
      must_fail("record hashed as node", RefSha256("\x01" + Bytes(leaf)), index,
                size, proof, root);
      // Another index or size fails unless the claim has the same shape; then
      // RFC 9162 verification cannot tell them apart and must accept (only
      // the root, from a signed checkpoint of that size, binds them).
      const std::optional<std::string> shape = InclusionShape(ref, index, size);
      REQUIRE(shape.has_value());
      std::vector<std::pair<uint64_t, uint64_t>> claims = {
          {index + 1, size}, {index ^ 1, size}, {index ^ 2, size},
          {index, size + 1}, {index, size * 2}, {index, size / 2},
          {index, size - 1}, {kMax - 1, kMax},  {index, kMax}};
      if (index > 0) claims.push_back({index - 1, size});
      for (auto [i, s] : claims) {
        if (i == index && s == size) continue;
        INFO("claimed leaf " << i << " of " << s);
        if (InclusionShape(ref, i, s) == shape) {
          CHECK(VerifyInclusion(leaf, i, s, proof, root).ok());
          ++indistinguishable;
        } else {
          must_fail("wrong index or size", leaf, i, s, proof, root);
          ++wrong_claims;
        }
      }
    }
  }
  INFO("rejected " << rejected << ", of which wrong index or size "
                   << wrong_claims << "; indistinguishable "
                   << indistinguishable);
  CHECK(rejected > 100000);
  CHECK(wrong_claims > 10000);
}

TEST_CASE("Every mutated consistency proof fails for sizes up to 48",
          "[merkle][property][mutation]") {
  MapStorage storage;
  RefTree ref = MakeTree(100, &storage);
  uint64_t rejected = 0;
  uint64_t wrong_claims = 0;       // wrong index or size, rejected
  uint64_t indistinguishable = 0;  // wrong index or size, same shape
  for (uint64_t size2 = 2; size2 <= 48; ++size2) {
    for (uint64_t size1 = 1; size1 < size2; ++size1) {
      INFO("from " << size1 << " to " << size2);
      const Hash root1 = ref.Root(size1);
      const Hash root2 = ref.Root(size2);
      const std::vector<Hash> proof = ref.Consistency(size1, size2);
      REQUIRE_FALSE(proof.empty());
      REQUIRE(VerifyConsistency(size1, size2, root1, root2, proof).ok());
      auto must_fail = [&](const char* what, uint64_t s1, uint64_t s2,
                           const Hash& r1, const Hash& r2,
                           const std::vector<Hash>& p) {
        INFO(what);
        CHECK_FALSE(VerifyConsistency(s1, s2, r1, r2, p).ok());
        ++rejected;
      };
      for (size_t e = 0; e < proof.size(); ++e) {
        for (int byte = 0; byte < 32; byte += 5) {
          for (int bit : {0, 4, 7}) {
            std::vector<Hash> bad = proof;
            bad[e] = Flip(bad[e], byte, bit);
            must_fail("flipped proof bit", size1, size2, root1, root2, bad);
          }
        }
      }
      must_fail("truncated", size1, size2, root1, root2,
                std::vector<Hash>(proof.begin(), proof.end() - 1));
      must_fail("first dropped", size1, size2, root1, root2,
                std::vector<Hash>(proof.begin() + 1, proof.end()));
      must_fail("empty", size1, size2, root1, root2, {});
      for (const Hash& extra : {Hash{}, root1, root2, proof[0]}) {
        std::vector<Hash> longer = proof;
        longer.push_back(extra);
        must_fail("extended", size1, size2, root1, root2, longer);
        longer = proof;
        longer.insert(longer.begin(), extra);
        must_fail("prepended", size1, size2, root1, root2, longer);
      }
      for (size_t e = 0; e + 1 < proof.size(); ++e) {
        std::vector<Hash> swapped = proof;
        std::swap(swapped[e], swapped[e + 1]);
        must_fail("swapped", size1, size2, root1, root2, swapped);
      }
      must_fail("wrong root1", size1, size2, Flip(root1, 0, 0), root2, proof);
      must_fail("wrong root2", size1, size2, root1, Flip(root2, 31, 7), proof);
      must_fail("swapped roots", size1, size2, root2, root1, proof);
      must_fail("root1 of another size", size1, size2, ref.Root(size1 + 1),
                root2, proof);
      must_fail("root2 of another size", size1, size2, root1,
                ref.Root(size2 + 1), proof);
      const std::optional<std::string> shape =
          ConsistencyShape(ref, size1, size2);
      REQUIRE(shape.has_value());
      std::vector<std::pair<uint64_t, uint64_t>> claims = {
          {size1 - 1, size2}, {size1 + 1, size2}, {size1 ^ 2, size2},
          {size1, size2 + 1}, {size1, size2 - 1}, {size1, size2 * 2},
          {size1, size2 / 2}, {size2, size1},     {size1, kMax},
          {0, size2}};
      for (auto [s1, s2] : claims) {
        INFO("claimed from " << s1 << " to " << s2);
        if (ConsistencyShape(ref, s1, s2) == shape) {
          CHECK(VerifyConsistency(s1, s2, root1, root2, proof).ok());
          ++indistinguishable;
        } else {
          must_fail("wrong sizes", s1, s2, root1, root2, proof);
          ++wrong_claims;
        }
      }
    }
  }
  INFO("rejected " << rejected << ", of which wrong sizes " << wrong_claims
                   << "; indistinguishable " << indistinguishable);
  CHECK(rejected > 50000);
  CHECK(wrong_claims > 5000);
}

// ---- Appending ----

TEST_CASE("AppendLeaves writes each leaf and the parents it completes",
          "[merkle][append]") {
  MapStorage storage;
  uint64_t size = 0;
  for (uint64_t n = 0; n < 300; ++n) {
    const Hash leaf = LeafHash(absl::StrCat("record ", n));
    storage.reads = 0;
    absl::StatusOr<std::vector<MerkleWrite>> writes =
        AppendLeaves(storage, size, {leaf});
    REQUIRE(writes.ok());
    // Leaf n completes one parent per trailing one bit of n, and reads the
    // left sibling of each.
    const int completes = std::countr_one(n);
    REQUIRE(writes->size() == static_cast<size_t>(1 + completes));
    CHECK(storage.reads == static_cast<uint64_t>(completes));
    CHECK((*writes)[0] == MerkleWrite{0, n, leaf});
    for (int level = 1; level <= completes; ++level) {
      CHECK((*writes)[level].level == level);
      CHECK((*writes)[level].index == (n >> level));
    }
    storage.Apply(*writes);
    ++size;
  }
}

TEST_CASE("AppendLeaves in batches equals appending one by one",
          "[merkle][append]") {
  std::vector<Hash> leaves;
  for (int i = 0; i < 1000; ++i) {
    leaves.push_back(LeafHash(absl::StrCat("record ", i)));
  }
  MapStorage one_by_one;
  AppendOneByOne(&one_by_one, leaves);

  std::mt19937_64 rng(42);
  for (int round = 0; round < 5; ++round) {
    MapStorage batched;
    uint64_t size = 0;
    while (size < leaves.size()) {
      uint64_t n = std::min<uint64_t>(leaves.size() - size, 1 + rng() % 70);
      batched.reads = 0;
      // None of the writes of this batch are in storage while it is built.
      absl::StatusOr<std::vector<MerkleWrite>> writes = AppendLeaves(
          batched, size, absl::MakeConstSpan(leaves).subspan(size, n));
      REQUIRE(writes.ok());
      CHECK(batched.reads <= static_cast<uint64_t>(std::popcount(size)));
      batched.Apply(*writes);
      size += n;
    }
    CHECK(batched.nodes == one_by_one.nodes);
  }
  // An empty batch is a no-op.
  absl::StatusOr<std::vector<MerkleWrite>> none =
      AppendLeaves(one_by_one, 1000, {});
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("AppendLeaves at the largest sizes", "[merkle][append]") {
  const Hash leaf = LeafHash("x");
  {
    // Leaf 2^63 - 1 completes a parent at every level up to the root of 2^63.
    SyntheticStorage storage((uint64_t{1} << 63) - 1);
    absl::StatusOr<std::vector<MerkleWrite>> writes =
        AppendLeaves(storage, (uint64_t{1} << 63) - 1, {leaf});
    REQUIRE(writes.ok());
    REQUIRE(writes->size() == 64);
    CHECK(writes->back().level == 63);
    CHECK(writes->back().index == 0);
    CHECK(storage.reads == 63);
  }
  {
    // The last leaf a uint64_t size allows.
    SyntheticStorage storage(kMax - 1);
    absl::StatusOr<std::vector<MerkleWrite>> writes =
        AppendLeaves(storage, kMax - 1, {leaf});
    REQUIRE(writes.ok());
    CHECK(writes->size() == 1);
    absl::StatusOr<std::vector<MerkleWrite>> too_many =
        AppendLeaves(storage, kMax - 1, {leaf, leaf});
    CHECK(too_many.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(AppendLeaves(storage, kMax, {leaf}).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

// ---- Storage problems ----

TEST_CASE("A node missing from storage is DATA_LOSS, never a crash",
          "[merkle][errors]") {
  MapStorage storage;
  MakeTree(10, &storage);
  // Beyond the stored tree.
  CHECK(RootHash(storage, 11).status().code() == absl::StatusCode::kDataLoss);
  CHECK(InclusionProof(storage, 0, 12).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(ConsistencyProof(storage, 3, 16).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(AppendLeaves(storage, 11, {LeafHash("x")}).status().code() ==
        absl::StatusCode::kDataLoss);
  // A lost interior node.
  storage.nodes.erase({1, 2});  // covers leaves 4 and 5
  absl::Status status = RootHash(storage, 6).status();
  CHECK(status.code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("(level 1, index 2)"));
  CHECK(InclusionProof(storage, 6, 7).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(ConsistencyProof(storage, 6, 7).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(AppendLeaves(storage, 7, {LeafHash("x")}).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(RootHash(storage, 8).ok());  // the root of 8 is stored whole
  // Requests that describe no proof.
  CHECK(InclusionProof(storage, 10, 10).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(InclusionProof(storage, 0, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ConsistencyProof(storage, 5, 4).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // Empty proofs need no storage at all.
  MapStorage empty;
  CHECK(ConsistencyProof(empty, 0, 1000)->empty());
  CHECK(ConsistencyProof(empty, 1000, 1000)->empty());
  CHECK(empty.reads == 0);
}

// ---- Read counts ----

TEST_CASE("Roots and proofs read O(log n) nodes", "[merkle][reads]") {
  MapStorage storage;
  constexpr uint64_t kSize = 5000;
  MakeTree(kSize, &storage);
  uint64_t worst_root = 0;
  uint64_t worst_inclusion = 0;
  uint64_t worst_consistency = 0;
  for (uint64_t size :
       {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1023}, uint64_t{1024},
        uint64_t{1025}, uint64_t{4095}, uint64_t{4999}, kSize}) {
    const uint64_t bound = 2 * CeilLog2(size) + 2;
    INFO("size " << size << ", bound " << bound);
    storage.reads = 0;
    REQUIRE(RootHash(storage, size).ok());
    CHECK(storage.reads == static_cast<uint64_t>(std::popcount(size)));
    worst_root = std::max(worst_root, storage.reads);
    for (uint64_t i = 0; i < size; ++i) {
      storage.reads = 0;
      REQUIRE(InclusionProof(storage, i, size).ok());
      REQUIRE(storage.reads <= bound);
      worst_inclusion = std::max(worst_inclusion, storage.reads);
      storage.reads = 0;
      REQUIRE(ConsistencyProof(storage, i + 1, size).ok());
      REQUIRE(storage.reads <= bound);
      worst_consistency = std::max(worst_consistency, storage.reads);
    }
  }
  INFO("worst reads: root " << worst_root << ", inclusion " << worst_inclusion
                            << ", consistency " << worst_consistency);
  CHECK(worst_inclusion <= 2 * CeilLog2(kSize) + 2);
  CHECK(worst_consistency <= 2 * CeilLog2(kSize) + 2);
}

TEST_CASE("Proofs of huge synthetic trees read O(log n) nodes",
          "[merkle][reads]") {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> sizes = {kMax,
                                 kMax - 1,
                                 uint64_t{1} << 63,
                                 (uint64_t{1} << 63) + 1,
                                 1000000007,
                                 (uint64_t{1} << 40) - 1};
  for (int i = 0; i < 20; ++i) sizes.push_back(rng() | 1);
  for (uint64_t size : sizes) {
    const uint64_t bound = 2 * CeilLog2(size) + 2;
    SyntheticStorage storage(size);
    INFO("size " << size);
    REQUIRE(RootHash(storage, size).ok());
    CHECK(storage.reads == static_cast<uint64_t>(std::popcount(size)));
    for (uint64_t index :
         {uint64_t{0}, size / 2, size - 2, size - 1, rng() % size}) {
      INFO("index " << index);
      storage.reads = 0;
      absl::StatusOr<std::vector<Hash>> proof =
          InclusionProof(storage, index, size);
      REQUIRE(proof.ok());
      CHECK(storage.reads <= bound);
      CHECK(proof->size() <= 64);
      if (index == 0) continue;
      storage.reads = 0;
      absl::StatusOr<std::vector<Hash>> consistency =
          ConsistencyProof(storage, index, size);
      REQUIRE(consistency.ok());
      CHECK(storage.reads <= bound);
      CHECK(consistency->size() <= 65);
    }
  }
}

}  // namespace
}  // namespace ibsm::broker
