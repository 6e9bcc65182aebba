// The Merkle tree of the audit trail, as defined by RFC 9162 §2.1 (the same
// hashing as RFC 6962): leaf hash SHA-256(0x00 || record), interior node hash
// SHA-256(0x01 || left || right). Pure code, no I/O: every function is
// thread-safe.
//
// Only complete (perfect) subtrees are stored. Node (level L, index i) covers
// leaves [i * 2^L, (i + 1) * 2^L); level 0 holds the leaf hashes. Roots of
// other sizes and all proofs are assembled from O(log n) stored nodes.
//
// Who owns what: the caller owns the storage. These functions only read it
// through MerkleStorage; AppendLeaves returns the writes, and the caller puts
// them into the same atomic batch as the records they hash. Typical use, as
// in the broker's AuditTrail::Append (broker/audit/audit_trail.cc):
//
//   std::vector<Hash> leaves;  // LeafHash(record) of each record in the batch
//   IBSM_ASSIGN_OR_RETURN(std::vector<MerkleWrite> writes,
//                         AppendLeaves(storage, tree_size, leaves));
//   for (const MerkleWrite& w : writes) {
//     batch.PutMerkleNode(w.level, w.index, crypto::HashView(w.hash));
//   }
//   // Commit the batch; the tree size is now tree_size + leaves.size().
//
// Error policy: a node missing from storage is DATA_LOSS (corrupt storage or a
// tree size beyond the stored tree; callers check sizes against their own tree
// size first). Verification never crashes on untrusted input: sizes or
// indices that describe no tree are INVALID_ARGUMENT, a proof that does not
// match is DATA_LOSS, each with a message saying what failed.
#ifndef IBSM_MERKLE_H_
#define IBSM_MERKLE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "ibsm/crypto.h"

namespace ibsm {

using Hash = crypto::Hash;  // SHA-256

// Read access to the stored complete subtrees. Implementations are backed by
// RocksDB in the broker and by a map in tests; they must be safe for
// concurrent reads if proofs are served concurrently.
class MerkleStorage {
 public:
  virtual ~MerkleStorage() = default;
  // Hash of the complete subtree at `level` (0 = leaves) and `index`;
  // nullopt if absent.
  virtual std::optional<Hash> Get(int level, uint64_t index) const = 0;
  // The same, but a read that failed is its error rather than "absent", so
  // that an I/O error is not reported as a damaged tree (DATA_LOSS). The
  // tree functions below read through this. Storage that cannot fail keeps
  // the default.
  virtual absl::StatusOr<std::optional<Hash>> Read(int level,
                                                   uint64_t index) const {
    return Get(level, index);
  }
};

// One node to store: the complete subtree at (level, index) has `hash`.
struct MerkleWrite {
  int level;
  uint64_t index;
  Hash hash;

  friend bool operator==(const MerkleWrite&, const MerkleWrite&) = default;
};

// SHA-256(0x00 || record).
Hash LeafHash(absl::string_view record);
// SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);
// SHA-256 of the empty string: the root of the empty tree.
Hash EmptyRootHash();
// Lower-case hex, 64 characters.
std::string HexEncode(const Hash& hash);

// Appends leaves number size_before, size_before + 1, ... (their hashes in
// order) to a tree of `size_before` leaves. Returns, in order, each leaf at
// (0, n) and every parent it completes: on average two writes per leaf.
// `storage` must hold the tree of size `size_before`; writes of leaves in the
// same call are taken from memory, so a whole batch needs one call. Reads at
// most one stored node per set bit of size_before. Never writes.
absl::StatusOr<std::vector<MerkleWrite>> AppendLeaves(
    const MerkleStorage& storage, uint64_t size_before,
    absl::Span<const Hash> leaf_hashes);

// MTH(D[0:tree_size]) (RFC 9162 §2.1.1); EmptyRootHash() for size 0. Reads
// one stored node per set bit of tree_size.
absl::StatusOr<Hash> RootHash(const MerkleStorage& storage, uint64_t tree_size);

// PATH(leaf_index, D[0:tree_size]) (RFC 9162 §2.1.3.1), ordered from the
// leaf's sibling up. INVALID_ARGUMENT unless leaf_index < tree_size. At most
// 2 * ceil(log2(tree_size)) + 2 reads.
absl::StatusOr<std::vector<Hash>> InclusionProof(const MerkleStorage& storage,
                                                 uint64_t leaf_index,
                                                 uint64_t tree_size);

// PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1). Empty when size1 is 0 or
// equals size2; INVALID_ARGUMENT if size1 > size2. At most
// 2 * ceil(log2(size2)) + 2 reads.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(const MerkleStorage& storage,
                                                   uint64_t size1,
                                                   uint64_t size2);

// RFC 9162 §2.1.3.2: OK iff `proof` shows that the leaf with `leaf_hash` is
// number `leaf_index` of the tree of `tree_size` leaves whose root is `root`.
absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index,
                             uint64_t tree_size, const std::vector<Hash>& proof,
                             const Hash& root);

// RFC 9162 §2.1.4.2: OK iff `proof` shows that the tree of size2 leaves with
// root2 extends the tree of size1 leaves with root1. When size1 == size2 the
// proof must be empty and the roots equal. When size1 == 0 the proof must be
// empty and root1 must be EmptyRootHash() (root2 cannot be checked).
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const Hash& root1, const Hash& root2,
                               const std::vector<Hash>& proof);

// The compact range of [0, first_index) (RFC 9162 §2.1 trees; "compact
// range" as in transparency-dev): the hashes of the complete subtrees that
// cover leaves [0, first_index), one per set bit of first_index, largest (left
// most) first. Together with the leaves from first_index on, they rebuild the
// root of any larger tree (RootFromRange): an export of a range carries them
// so the verifier can check the range against a checkpoint. Empty for 0.
// Reads popcount(first_index) stored nodes; DATA_LOSS if one is missing.
absl::StatusOr<std::vector<Hash>> CompactRange(const MerkleStorage& storage,
                                               uint64_t first_index);

// MTH(D[0:first_index + leaves.size()]) from the compact range of
// [0, first_index) (`left_subtrees`, as CompactRange returns it) and the leaf
// hashes of the following leaves, in order. Pure computation, O(n) hashes
// for n leaves and O(log n) memory. EmptyRootHash() when both are empty.
// INVALID_ARGUMENT if left_subtrees does not have popcount(first_index)
// hashes or the size overflows. Nothing here checks that left_subtrees are
// genuine: comparing the result with a trusted root does.
absl::StatusOr<Hash> RootFromRange(absl::Span<const Hash> left_subtrees,
                                   uint64_t first_index,
                                   absl::Span<const Hash> leaves);

}  // namespace ibsm

#endif  // IBSM_MERKLE_H_
