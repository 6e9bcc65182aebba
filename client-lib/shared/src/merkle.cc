#include "ibsm/merkle.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ibsm/status_macros.h"

namespace ibsm {
namespace {

constexpr int kMaxLevels = 64;  // a uint64_t tree size has at most 64 levels

using crypto::Sha256;

absl::StatusOr<Hash> ReadNode(const MerkleStorage& storage, int level,
                              uint64_t index) {
  IBSM_ASSIGN_OR_RETURN(std::optional<Hash> hash, storage.Read(level, index));
  if (!hash.has_value()) {
    return absl::DataLossError(absl::StrCat(
        "merkle node (level ", level, ", index ", index,
        ") is missing from storage: the tree is smaller than asked for or "
        "storage is corrupt"));
  }
  return *hash;
}

// The complete subtree [begin, begin + size) where size is a power of two and
// begin a multiple of it.
absl::StatusOr<Hash> ReadComplete(const MerkleStorage& storage, uint64_t begin,
                                  uint64_t size) {
  int level = std::countr_zero(size);
  return ReadNode(storage, level, begin >> level);
}

// MTH(D[begin:end]) for a range that is a node of the RFC 9162 tree
// (0 < end - begin, begin a multiple of bit_ceil(end - begin)). It is made of
// one complete subtree per set bit of end - begin, largest first, folded from
// the right: one read per set bit.
absl::StatusOr<Hash> SubtreeHash(const MerkleStorage& storage, uint64_t begin,
                                 uint64_t end) {
  const uint64_t size = end - begin;
  IBSM_CHECK(size > 0);
  std::array<Hash, kMaxLevels> parts;
  int count = 0;
  uint64_t pos = begin;
  for (int level = kMaxLevels - 1; level >= 0; --level) {
    const uint64_t part = uint64_t{1} << level;
    if ((size & part) == 0) continue;
    IBSM_ASSIGN_OR_RETURN(parts[count], ReadNode(storage, level, pos >> level));
    ++count;
    pos += part;
  }
  Hash hash = parts[count - 1];
  for (int i = count - 2; i >= 0; --i) hash = NodeHash(parts[i], hash);
  return hash;
}

// Number of hashes in PATH(leaf_index, D[0:tree_size]), leaf_index < tree_size:
// the levels below the point where the paths to the leaf and to the last leaf
// split, plus one per left sibling above it on the right border.
size_t InclusionProofLength(uint64_t leaf_index, uint64_t tree_size) {
  const int inner = std::bit_width(leaf_index ^ (tree_size - 1));
  const int border =
      inner >= kMaxLevels ? 0 : std::popcount(leaf_index >> inner);
  return static_cast<size_t>(inner + border);
}

// Number of hashes in PROOF(size1, D[0:size2]), 0 < size1 < size2. The proof
// is the inclusion proof of the largest complete subtree ending at size1
// (levels counted from that subtree up), preceded by that subtree's hash
// unless it is the whole of the first tree.
size_t ConsistencyProofLength(uint64_t size1, uint64_t size2) {
  const int level = std::countr_zero(size1);
  const uint64_t index = (size1 >> level) - 1;
  const uint64_t nodes = ((size2 - 1) >> level) + 1;
  return (index == 0 ? 0 : 1) + InclusionProofLength(index, nodes);
}

std::string ShortHex(const Hash& hash) { return HexEncode(hash).substr(0, 16); }

}  // namespace

Hash LeafHash(absl::string_view record) {
  static constexpr char kLeafPrefix[1] = {0x00};
  return Sha256({absl::string_view(kLeafPrefix, 1), record});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  static constexpr char kNodePrefix[1] = {0x01};
  return Sha256({absl::string_view(kNodePrefix, 1), crypto::HashView(left),
                 crypto::HashView(right)});
}

Hash EmptyRootHash() { return Sha256(absl::string_view()); }

std::string HexEncode(const Hash& hash) {
  return absl::BytesToHexString(crypto::HashView(hash));
}

absl::StatusOr<std::vector<MerkleWrite>> AppendLeaves(
    const MerkleStorage& storage, uint64_t size_before,
    absl::Span<const Hash> leaf_hashes) {
  if (leaf_hashes.size() > std::numeric_limits<uint64_t>::max() - size_before) {
    return absl::InvalidArgumentError(
        absl::StrCat("appending ", leaf_hashes.size(), " leaves to a tree of ",
                     size_before, " overflows the tree size"));
  }
  // right_edge[L]: a complete subtree at level L completed by this call and
  // still waiting for its right sibling. Left siblings that are not here were
  // completed before this call and are read from storage.
  std::array<std::optional<Hash>, kMaxLevels> right_edge;
  std::vector<MerkleWrite> writes;
  writes.reserve(2 * leaf_hashes.size() + kMaxLevels);
  uint64_t leaf = size_before;
  for (const Hash& leaf_hash : leaf_hashes) {
    writes.push_back({0, leaf, leaf_hash});
    Hash hash = leaf_hash;
    int level = 0;
    // While the new node (level, leaf >> level) is a right child, its parent
    // is now complete. leaf < 2^64 - 1, so some bit is clear and level < 64.
    while (((leaf >> level) & 1) != 0) {
      Hash left;
      if (right_edge[level].has_value()) {
        left = *right_edge[level];
        right_edge[level].reset();
      } else {
        IBSM_ASSIGN_OR_RETURN(left,
                              ReadNode(storage, level, (leaf >> level) - 1));
      }
      hash = NodeHash(left, hash);
      ++level;
      writes.push_back({level, leaf >> level, hash});
    }
    right_edge[level] = hash;
    ++leaf;
  }
  return writes;
}

absl::StatusOr<Hash> RootHash(const MerkleStorage& storage,
                              uint64_t tree_size) {
  if (tree_size == 0) return EmptyRootHash();
  return SubtreeHash(storage, 0, tree_size);
}

absl::StatusOr<std::vector<Hash>> InclusionProof(const MerkleStorage& storage,
                                                 uint64_t leaf_index,
                                                 uint64_t tree_size) {
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof asked for leaf ", leaf_index,
                     " of a tree of ", tree_size, " leaves"));
  }
  // Walk PATH's recursion from the root down; siblings come out top-down.
  // Once the walk goes left, the remaining range is a complete subtree, so
  // only one sibling can be an incomplete range: O(log n) reads in total.
  std::vector<Hash> path;
  uint64_t begin = 0;
  uint64_t end = tree_size;
  while (end - begin > 1) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    Hash sibling;
    if (leaf_index < begin + k) {
      IBSM_ASSIGN_OR_RETURN(sibling, SubtreeHash(storage, begin + k, end));
      end = begin + k;
    } else {
      IBSM_ASSIGN_OR_RETURN(sibling, ReadComplete(storage, begin, k));
      begin += k;
    }
    path.push_back(sibling);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(const MerkleStorage& storage,
                                                   uint64_t size1,
                                                   uint64_t size2) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof asked from size ", size1,
                     " to the smaller size ", size2));
  }
  std::vector<Hash> proof;
  if (size1 == 0 || size1 == size2) return proof;
  // SUBPROOF(m, D[begin:end], b) unrolled; invariant begin < size1 <= end.
  uint64_t begin = 0;
  uint64_t end = size2;
  bool whole_first_tree = true;  // the RFC's b
  while (size1 != end) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    Hash node;
    if (size1 - begin <= k) {
      IBSM_ASSIGN_OR_RETURN(node, SubtreeHash(storage, begin + k, end));
      end = begin + k;
    } else {
      IBSM_ASSIGN_OR_RETURN(node, ReadComplete(storage, begin, k));
      begin += k;
      whole_first_tree = false;
    }
    proof.push_back(node);
  }
  if (!whole_first_tree) {
    // [begin, end) is complete here: the walk went left at least once.
    IBSM_ASSIGN_OR_RETURN(Hash node, SubtreeHash(storage, begin, end));
    proof.push_back(node);
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index,
                             uint64_t tree_size, const std::vector<Hash>& proof,
                             const Hash& root) {
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof: leaf index ", leaf_index,
                     " is not below the tree size ", tree_size));
  }
  const size_t want = InclusionProofLength(leaf_index, tree_size);
  if (proof.size() != want) {
    return absl::DataLossError(absl::StrCat(
        "inclusion proof of leaf ", leaf_index, " in a tree of ", tree_size,
        " has ", proof.size(), " hashes, expected ", want));
  }
  // RFC 9162 §2.1.3.2, step by step.
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) {
      return absl::DataLossError("inclusion proof is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::DataLossError("inclusion proof is too short");
  if (r != root) {
    return absl::DataLossError(
        absl::StrCat("inclusion proof of leaf ", leaf_index, " in a tree of ",
                     tree_size, " leads to root ", ShortHex(r),
                     "..., not the expected ", ShortHex(root), "..."));
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const Hash& root1, const Hash& root2,
                               const std::vector<Hash>& proof) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "consistency proof: size1 ", size1, " is larger than size2 ", size2));
  }
  if (size1 == 0 || size1 == size2) {
    if (!proof.empty()) {
      return absl::DataLossError(
          absl::StrCat("consistency proof from size ", size1, " to ", size2,
                       " has ", proof.size(), " hashes, expected none"));
    }
    if (size1 == 0 && root1 != EmptyRootHash()) {
      return absl::DataLossError(
          "consistency proof: root1 is not the root of the empty tree");
    }
    if (size1 == size2 && root1 != root2) {
      return absl::DataLossError(absl::StrCat(
          "consistency proof: two different roots for the same size ", size1));
    }
    return absl::OkStatus();
  }
  const size_t want = ConsistencyProofLength(size1, size2);
  if (proof.size() != want) {
    return absl::DataLossError(
        absl::StrCat("consistency proof from size ", size1, " to ", size2,
                     " has ", proof.size(), " hashes, expected ", want));
  }
  // RFC 9162 §2.1.4.2, step by step.
  std::vector<Hash> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(size1)) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return absl::DataLossError("consistency proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::DataLossError("consistency proof is too short");
  if (fr != root1) {
    return absl::DataLossError(
        absl::StrCat("consistency proof from size ", size1, " to ", size2,
                     " does not lead to root1 (got ", ShortHex(fr),
                     "..., expected ", ShortHex(root1), "...)"));
  }
  if (sr != root2) {
    return absl::DataLossError(
        absl::StrCat("consistency proof from size ", size1, " to ", size2,
                     " does not lead to root2 (got ", ShortHex(sr),
                     "..., expected ", ShortHex(root2), "...)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Hash>> CompactRange(const MerkleStorage& storage,
                                               uint64_t first_index) {
  std::vector<Hash> out;
  out.reserve(std::popcount(first_index));
  uint64_t pos = 0;
  for (int level = kMaxLevels - 1; level >= 0; --level) {
    const uint64_t part = uint64_t{1} << level;
    if ((first_index & part) == 0) continue;
    IBSM_ASSIGN_OR_RETURN(Hash hash, ReadNode(storage, level, pos >> level));
    out.push_back(hash);
    pos += part;
  }
  return out;
}

absl::StatusOr<Hash> RootFromRange(absl::Span<const Hash> left_subtrees,
                                   uint64_t first_index,
                                   absl::Span<const Hash> leaves) {
  const size_t want = static_cast<size_t>(std::popcount(first_index));
  if (left_subtrees.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "compact range of [0, ", first_index, ") has ", left_subtrees.size(),
        " subtree hashes, expected ", want, " (one per set bit)"));
  }
  if (leaves.size() > std::numeric_limits<uint64_t>::max() - first_index) {
    return absl::InvalidArgumentError(
        absl::StrCat(leaves.size(), " leaves after index ", first_index,
                     " overflow the tree size"));
  }
  // stack[0..count): the complete subtrees covering [0, size), one per set
  // bit of size, largest first. Appending a leaf merges equal-sized subtrees
  // from the right, as in AppendLeaves.
  std::array<Hash, kMaxLevels + 1> stack;
  int count = 0;
  for (int level = kMaxLevels - 1, i = 0; level >= 0; --level) {
    if ((first_index & (uint64_t{1} << level)) == 0) continue;
    stack[count++] = left_subtrees[i++];
  }
  uint64_t size = first_index;
  for (const Hash& leaf : leaves) {
    Hash hash = leaf;
    // While the new node is a right child, merge it with its left sibling:
    // the last subtree on the stack, of the same level.
    for (uint64_t bits = size; (bits & 1) != 0; bits >>= 1) {
      hash = NodeHash(stack[--count], hash);
    }
    stack[count++] = hash;
    ++size;
  }
  if (count == 0) return EmptyRootHash();
  Hash root = stack[count - 1];
  for (int i = count - 2; i >= 0; --i) root = NodeHash(stack[i], root);
  return root;
}

}  // namespace ibsm
