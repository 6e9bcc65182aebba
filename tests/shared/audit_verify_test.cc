// Tests of client-lib/shared/include/ibsm/audit_verify.h (offline verification
// of an AuditExport) and of the compact-range helpers of
// client-lib/shared/include/ibsm/merkle.h it uses. Real trees are built with
// merkle.h over synthetic AuditRecords in a map, checkpoints are signed with
// P-256 keys made here; every tampering must be detected and, where the export
// allows it, located at the exact record index.
#include "ibsm/audit_verify.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/stubs/logging.h"
#include "ibsm/checkpoint.h"
#include "ibsm/merkle.h"
#include "ibsm/v1/audit.pb.h"
#include "tests/support/test_keys.h"

namespace ibsm::broker {
namespace {

constexpr char kNode[] = "CIV";
constexpr char kOrigin[] = "ibsm/CIV";
constexpr int64_t kTime = 1718000000;

// ---- Keys ----

using testing::MakeP256;
using testing::PemKey;

// One key pair for the whole file: generating keys is the slow part.
const PemKey& NodeKey() {
  static const PemKey* key = new PemKey(MakeP256());
  return *key;
}
const PemKey& OtherKey() {
  static const PemKey* key = new PemKey(MakeP256());
  return *key;
}

SigningKey Signer(const PemKey& key) {
  absl::StatusOr<SigningKey> signer = SigningKey::FromPem(key.private_pem);
  REQUIRE(signer.ok());
  return std::move(*signer);
}

VerifyingKey Verifier(const PemKey& key) {
  absl::StatusOr<VerifyingKey> v =
      VerifyingKey::FromCertificatePem(key.cert_pem);
  REQUIRE(v.ok());
  return std::move(*v);
}

// ---- A trail: records, the tree over them, checkpoints, exports ----

class MapStorage : public MerkleStorage {
 public:
  std::optional<Hash> Get(int level, uint64_t index) const override {
    auto it = nodes_.find({level, index});
    if (it == nodes_.end()) return std::nullopt;
    return it->second;
  }
  void Apply(const std::vector<MerkleWrite>& writes) {
    for (const MerkleWrite& w : writes) nodes_[{w.level, w.index}] = w.hash;
  }

 private:
  std::map<std::pair<int, uint64_t>, Hash> nodes_;
};

std::string Bytes(const Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

v1::AuditRecord MakeRecord(uint64_t index, const std::string& node) {
  v1::AuditRecord r;
  r.set_index(index);
  r.mutable_time()->set_seconds(kTime - 1000 + static_cast<int64_t>(index));
  r.set_node(node);
  r.set_actor(index % 3 == 0 ? "CIV/police" : "CIV/customs");
  r.set_action(index % 2 == 0 ? v1::AUDIT_PUBLISH : v1::AUDIT_DELIVER);
  r.set_allowed(index % 5 != 4);
  r.set_reason(index % 5 == 4 ? "classification above ceiling" : "allowed");
  r.set_rule("border-security");
  r.set_policy_version("2025-01-31.1");
  r.set_alert_id(absl::StrCat("alert-", index / 2));
  r.set_topic("terrorism.suspect-movement");
  r.set_classification("RESTRICTED");
  r.set_sequence(index / 2 + 1);
  r.set_payload_sha256(std::string(32, static_cast<char>(index)));
  return r;
}

std::string Serialize(const v1::AuditRecord& r) {
  std::string out;
  REQUIRE(r.SerializeToString(&out));
  return out;
}

struct Trail {
  std::vector<std::string> records;  // serialized, by index
  MapStorage storage;

  explicit Trail(uint64_t n, const std::string& node = kNode) {
    std::vector<Hash> leaves;
    for (uint64_t i = 0; i < n; ++i) {
      records.push_back(Serialize(MakeRecord(i, node)));
      leaves.push_back(LeafHash(records.back()));
    }
    absl::StatusOr<std::vector<MerkleWrite>> writes =
        AppendLeaves(storage, 0, leaves);
    REQUIRE(writes.ok());
    storage.Apply(*writes);
  }

  Checkpoint At(uint64_t size, int64_t time = kTime) const {
    absl::StatusOr<Hash> root = RootHash(storage, size);
    REQUIRE(root.ok());
    return Checkpoint{kOrigin, size, *root, time};
  }
};

v1::SignedCheckpoint Signed(const Checkpoint& cp, const PemKey& key) {
  absl::StatusOr<std::string> note = SignCheckpoint(cp, Signer(key));
  REQUIRE(note.ok());
  v1::SignedCheckpoint out;
  out.set_note(*note);
  out.set_tree_size(cp.tree_size);
  out.set_root_hash(Bytes(cp.root));
  out.mutable_time()->set_seconds(cp.time_unix);
  return out;
}

std::string Note(const Checkpoint& cp, const PemKey& key = NodeKey()) {
  return Signed(cp, key).note();
}

// What the node's exporter produces: records [first, size) with the
// checkpoint of `size`.
v1::AuditExport MakeExport(const Trail& trail, uint64_t first, uint64_t size) {
  v1::AuditExport e;
  e.set_node_id(kNode);
  *e.mutable_checkpoint() = Signed(trail.At(size), NodeKey());
  e.set_first_index(first);
  for (uint64_t i = first; i < size; ++i) {
    e.add_records(trail.records[i]);
    std::optional<Hash> leaf = trail.storage.Get(0, i);
    REQUIRE(leaf.has_value());
    e.add_stored_leaf_hashes(Bytes(*leaf));
  }
  absl::StatusOr<std::vector<Hash>> left = CompactRange(trail.storage, first);
  REQUIRE(left.ok());
  for (const Hash& h : *left) e.add_left_subtree_hashes(Bytes(h));
  return e;
}

VerifyReport Verify(const v1::AuditExport& e, const std::string* kept = nullptr,
                    const PemKey& key = NodeKey(),
                    const std::string& origin = kOrigin) {
  absl::StatusOr<VerifyReport> r = VerifyExport(e, Verifier(key), origin, kept);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

// The report of a detected tampering, located at `index` (or not located).
void RequireBad(const VerifyReport& r, std::optional<uint64_t> index,
                const std::string& words) {
  INFO("problem: " << r.problem);
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_index == index);
  CHECK_THAT(r.problem, Catch::Contains(words));
  if (index.has_value()) {
    CHECK_THAT(r.problem,
               Catch::StartsWith(absl::StrCat("record ", *index, ": ")));
  }
}

// The record at `index` of an export, edited by `edit`, re-serialized.
void EditRecord(v1::AuditExport* e, uint64_t index,
                const std::function<void(v1::AuditRecord*)>& edit) {
  const int pos = static_cast<int>(index - e->first_index());
  v1::AuditRecord r;
  REQUIRE(r.ParseFromString(e->records(pos)));
  edit(&r);
  *e->mutable_records(pos) = Serialize(r);
}

// ---- Merkle compact-range helpers ----

TEST_CASE("CompactRange and RootFromRange rebuild every root", "[merkle]") {
  Trail trail(70);
  std::vector<Hash> leaves;
  for (const std::string& r : trail.records) leaves.push_back(LeafHash(r));
  for (uint64_t size = 0; size <= 70; ++size) {
    absl::StatusOr<Hash> want = RootHash(trail.storage, size);
    REQUIRE(want.ok());
    for (uint64_t first = 0; first <= size; ++first) {
      absl::StatusOr<std::vector<Hash>> left =
          CompactRange(trail.storage, first);
      REQUIRE(left.ok());
      REQUIRE(left->size() == static_cast<size_t>(std::popcount(first)));
      absl::StatusOr<Hash> got = RootFromRange(
          *left, first,
          absl::MakeConstSpan(leaves).subspan(first, size - first));
      INFO("size " << size << " first " << first);
      REQUIRE(got.ok());
      REQUIRE(*got == *want);
    }
  }
  // Largest first: the compact range of [0, 13) is [0,8) [8,12) [12,13).
  absl::StatusOr<std::vector<Hash>> left = CompactRange(trail.storage, 13);
  REQUIRE(left.ok());
  REQUIRE(left->size() == 3);
  CHECK((*left)[0] == *trail.storage.Get(3, 0));
  CHECK((*left)[1] == *trail.storage.Get(2, 2));
  CHECK((*left)[2] == *trail.storage.Get(0, 12));
}

TEST_CASE("RootFromRange and CompactRange reject what describes no tree",
          "[merkle]") {
  CHECK(*RootFromRange({}, 0, {}) == EmptyRootHash());
  Hash h{};
  CHECK(RootFromRange({}, 5, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(RootFromRange({h}, 5, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(RootFromRange({h, h, h}, 5, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(RootFromRange({h}, 0, {h}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  std::vector<Hash> left(64, h);
  CHECK(RootFromRange(left, ~uint64_t{0}, {h}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(RootFromRange(left, ~uint64_t{0}, {}).ok());
  Trail trail(5);
  CHECK(CompactRange(trail.storage, 6).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(CompactRange(trail.storage, 0)->empty());
}

// ---- Genuine exports verify ----

TEST_CASE("genuine full and partial exports verify", "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 1, 5, 8, 12, 13}) {
    INFO("first_index " << first);
    VerifyReport r = Verify(MakeExport(trail, first, 13));
    INFO(r.problem);
    CHECK(r.ok);
    CHECK(r.problem.empty());
    CHECK(r.records_checked == 13 - first);
    CHECK(r.tree_size == 13);
    CHECK(r.first_index == first);
    CHECK(r.root == trail.At(13).root);
    CHECK(r.time_unix == kTime);
    CHECK_FALSE(r.first_bad_index.has_value());
    CHECK_FALSE(r.earlier_checkpoint_consistent);
  }
  // Prefixes of the trail, including the empty one, too.
  for (uint64_t size : {0, 1, 2, 8, 9}) {
    INFO("size " << size);
    CHECK(Verify(MakeExport(trail, 0, size)).ok);
  }
  // Without the optional stored leaf hashes the root still decides.
  v1::AuditExport e = MakeExport(trail, 3, 13);
  e.clear_stored_leaf_hashes();
  CHECK(Verify(e).ok);
}

// ---- Tampered records are detected and located ----

TEST_CASE("a modified record is located", "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 2}) {
    v1::AuditExport e = MakeExport(trail, first, 13);
    EditRecord(&e, 4,
               [](v1::AuditRecord* r) { r->set_allowed(!r->allowed()); });
    EditRecord(&e, 9, [](v1::AuditRecord* r) { r->set_actor("MLI/customs"); });
    VerifyReport r = Verify(e);
    RequireBad(r, 4, "altered");
    CHECK(r.records_checked == 4 - first);
  }
  // The last record, and the first of a partial export.
  v1::AuditExport e = MakeExport(trail, 0, 13);
  EditRecord(&e, 12, [](v1::AuditRecord* r) { r->set_reason("nothing"); });
  RequireBad(Verify(e), 12, "altered");
  e = MakeExport(trail, 7, 13);
  EditRecord(&e, 7, [](v1::AuditRecord* r) { r->clear_payload_sha256(); });
  RequireBad(Verify(e), 7, "altered");
  // Bytes that do not parse at all.
  e = MakeExport(trail, 0, 13);
  e.set_records(5, "\xff\xff\xff\xff");
  RequireBad(Verify(e), 5, "does not parse");
}

TEST_CASE("a deleted record is located", "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 3}) {
    v1::AuditExport e = MakeExport(trail, first, 13);
    const int pos = static_cast<int>(6 - first);
    e.mutable_records()->erase(e.mutable_records()->begin() + pos);
    RequireBad(Verify(e), 6, "missing");
    // Deleting its stored leaf too changes nothing.
    e.mutable_stored_leaf_hashes()->erase(
        e.mutable_stored_leaf_hashes()->begin() + pos);
    RequireBad(Verify(e), 6, "missing");
  }
  v1::AuditExport e = MakeExport(trail, 0, 13);
  e.mutable_records()->erase(e.mutable_records()->begin());
  RequireBad(Verify(e), 0, "missing");
}

TEST_CASE("swapped records are located", "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 2}) {
    v1::AuditExport e = MakeExport(trail, first, 13);
    std::swap(*e.mutable_records(static_cast<int>(3 - first)),
              *e.mutable_records(static_cast<int>(7 - first)));
    VerifyReport r = Verify(e);
    RequireBad(r, 3, "out of place");
    CHECK_THAT(r.problem, Catch::Contains("claims index 7"));
  }
  // Records renumbered to hide a swap: their leaves no longer match.
  v1::AuditExport e = MakeExport(trail, 0, 13);
  std::swap(*e.mutable_records(3), *e.mutable_records(7));
  EditRecord(&e, 3, [](v1::AuditRecord* r) { r->set_index(3); });
  EditRecord(&e, 7, [](v1::AuditRecord* r) { r->set_index(7); });
  RequireBad(Verify(e), 3, "altered");
}

TEST_CASE("a truncated tail is located", "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 5}) {
    v1::AuditExport e = MakeExport(trail, first, 13);
    for (int i = 0; i < 3; ++i) e.mutable_records()->RemoveLast();
    VerifyReport r = Verify(e);
    RequireBad(r, 10, "missing");
    CHECK_THAT(r.problem, Catch::Contains("records 10 to 12 are missing"));
    CHECK(r.records_checked == 10 - first);
    // The exporter dropping the stored leaves as well.
    for (int i = 0; i < 3; ++i) e.mutable_stored_leaf_hashes()->RemoveLast();
    RequireBad(Verify(e), 10, "missing");
  }
  v1::AuditExport e = MakeExport(trail, 0, 13);
  e.clear_records();
  RequireBad(Verify(e), 0, "missing");
}

TEST_CASE("an inserted forged record is located", "[audit_verify]") {
  Trail trail(13);
  // A forged record that claims the index of its position.
  v1::AuditExport e = MakeExport(trail, 0, 13);
  v1::AuditRecord forged = MakeRecord(5, kNode);
  forged.set_actor("CIV/gendarmerie");
  e.mutable_records()->Add();
  for (int i = e.records_size() - 1; i > 5; --i) {
    e.mutable_records()->SwapElements(i, i - 1);
  }
  *e.mutable_records(5) = Serialize(forged);
  VerifyReport r = Verify(e);
  RequireBad(r, 5, "altered");
  CHECK_THAT(r.problem, Catch::Contains("inserted"));
  // One with any other index.
  forged.set_index(99);
  *e.mutable_records(5) = Serialize(forged);
  RequireBad(Verify(e), 5, "out of place");
  // Appended after the last record: beyond the checkpoint.
  e = MakeExport(trail, 4, 13);
  *e.add_records() = Serialize(MakeRecord(13, kNode));
  RequireBad(Verify(e), 13, "extra record");
}

TEST_CASE("a record of another node is located", "[audit_verify]") {
  Trail trail(13);
  v1::AuditExport e = MakeExport(trail, 0, 13);
  EditRecord(&e, 8, [](v1::AuditRecord* r) { r->set_node("MLI"); });
  RequireBad(Verify(e), 8, "written by node 'MLI'");
}

TEST_CASE("records rewritten with their stored leaves are detected by the root",
          "[audit_verify]") {
  Trail trail(13);
  for (uint64_t first : {0, 6}) {
    v1::AuditExport e = MakeExport(trail, first, 13);
    EditRecord(&e, 9,
               [](v1::AuditRecord* r) { r->set_allowed(!r->allowed()); });
    e.set_stored_leaf_hashes(
        static_cast<int>(9 - first),
        Bytes(LeafHash(e.records(static_cast<int>(9 - first)))));
    RequireBad(Verify(e), std::nullopt,
               "records or tree were rewritten after the checkpoint; index "
               "unknown within the export");
  }
  // A rewritten left subtree of a partial export.
  v1::AuditExport e = MakeExport(trail, 6, 13);
  std::string h = e.left_subtree_hashes(0);
  h[0] ^= 1;
  e.set_left_subtree_hashes(0, h);
  RequireBad(Verify(e), std::nullopt, "index unknown within the export");
  // Missing or extra left subtrees.
  e = MakeExport(trail, 6, 13);
  e.mutable_left_subtree_hashes()->RemoveLast();
  RequireBad(Verify(e), std::nullopt, "export: compact range");
  e = MakeExport(trail, 6, 13);
  e.add_left_subtree_hashes(std::string(32, 'x'));
  RequireBad(Verify(e), std::nullopt, "export: compact range");
  e = MakeExport(trail, 6, 13);
  e.set_left_subtree_hashes(1, "short");
  RequireBad(Verify(e), std::nullopt, "left subtree hash 1 has 5 bytes");
}

// ---- The checkpoint ----

TEST_CASE("a wrong node certificate is detected", "[audit_verify]") {
  Trail trail(13);
  VerifyReport r = Verify(MakeExport(trail, 0, 13), nullptr, OtherKey());
  RequireBad(r, std::nullopt, "checkpoint: ");
  CHECK_THAT(r.problem, Catch::Contains("not signed by the expected key"));
  CHECK(r.records_checked == 0);
  // The right key, but the export of another log.
  r = Verify(MakeExport(trail, 0, 13), nullptr, NodeKey(), "ibsm/MLI");
  RequireBad(r, std::nullopt, "checkpoint: ");
}

TEST_CASE("a tampered checkpoint is detected", "[audit_verify]") {
  Trail trail(13);
  v1::AuditExport e = MakeExport(trail, 0, 13);
  // The signed note claims 13; a note edited to claim 12.
  std::string note = e.checkpoint().note();
  e.mutable_checkpoint()->set_note(
      absl::StrReplaceAll(note, {{"\n13\n", "\n12\n"}}));
  REQUIRE(e.checkpoint().note() != note);
  RequireBad(Verify(e), std::nullopt, "does not verify");
  // A signature byte flipped.
  e = MakeExport(trail, 0, 13);
  note[note.size() - 3] = note[note.size() - 3] == 'A' ? 'B' : 'A';
  e.mutable_checkpoint()->set_note(note);
  RequireBad(Verify(e), std::nullopt, "checkpoint: ");
  // Unsigned fields that contradict the note.
  e = MakeExport(trail, 0, 13);
  e.mutable_checkpoint()->set_tree_size(12);
  RequireBad(Verify(e), std::nullopt, "tree_size field (12)");
  e = MakeExport(trail, 0, 13);
  e.mutable_checkpoint()->set_root_hash(Bytes(trail.At(12).root));
  RequireBad(Verify(e), std::nullopt, "root_hash field");
  e = MakeExport(trail, 0, 13);
  e.mutable_checkpoint()->mutable_time()->set_seconds(kTime + 1);
  RequireBad(Verify(e), std::nullopt, "time field");
  e = MakeExport(trail, 0, 13);
  e.clear_checkpoint();
  RequireBad(Verify(e), std::nullopt, "checkpoint: ");
  // The export's node_id is not the node of the verified log.
  e = MakeExport(trail, 0, 13);
  e.set_node_id("MLI");
  RequireBad(Verify(e), std::nullopt, "node_id is 'MLI'");
  // An export that starts beyond its checkpoint.
  e = MakeExport(trail, 0, 13);
  e.set_first_index(14);
  RequireBad(Verify(e), std::nullopt, "beyond the checkpoint's tree size 13");
}

TEST_CASE("an invalid origin is an error, not a verdict", "[audit_verify]") {
  Trail trail(3);
  for (const char* origin : {"", "ibsm/", "CIV", "other/CIV"}) {
    absl::StatusOr<VerifyReport> r = VerifyExport(
        MakeExport(trail, 0, 3), Verifier(NodeKey()), origin, nullptr);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

// ---- Kept checkpoints: consistency and roll-back ----

TEST_CASE("a kept smaller checkpoint is checked for consistency",
          "[audit_verify]") {
  Trail trail(13);
  for (uint64_t kept_size : {0, 1, 5, 7, 8, 12, 13}) {
    const std::string kept = Note(trail.At(kept_size, kTime - 500));
    for (uint64_t first : {0, 3, 7}) {
      if (first > kept_size && kept_size != 0) continue;  // needs a proof
      INFO("kept " << kept_size << " first " << first);
      VerifyReport r = Verify(MakeExport(trail, first, 13), &kept);
      INFO(r.problem);
      CHECK(r.ok);
      CHECK(r.earlier_checkpoint_consistent);
      CHECK(r.kept_tree_size == kept_size);
    }
  }
}

TEST_CASE("a kept checkpoint before a partial export needs the proof",
          "[audit_verify]") {
  Trail trail(13);
  const std::string kept = Note(trail.At(5, kTime - 500));
  v1::AuditExport e = MakeExport(trail, 9, 13);
  absl::StatusOr<VerifyReport> r =
      VerifyExport(e, Verifier(NodeKey()), kOrigin, &kept);
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);

  *e.mutable_earlier_checkpoint() = Signed(trail.At(5, kTime - 500), NodeKey());
  absl::StatusOr<std::vector<Hash>> proof =
      ConsistencyProof(trail.storage, 5, 13);
  REQUIRE(proof.ok());
  for (const Hash& h : *proof) e.add_consistency_proof(Bytes(h));
  VerifyReport ok = Verify(e, &kept);
  INFO(ok.problem);
  CHECK(ok.ok);
  CHECK(ok.earlier_checkpoint_consistent);

  // A mutated proof fails.
  v1::AuditExport bad = e;
  std::string h = bad.consistency_proof(0);
  h[5] ^= 0x40;
  bad.set_consistency_proof(0, h);
  RequireBad(Verify(bad, &kept), std::nullopt, "not consistent with");
  bad = e;
  bad.mutable_consistency_proof()->RemoveLast();
  RequireBad(Verify(bad, &kept), std::nullopt, "not consistent with");
  bad = e;
  bad.set_consistency_proof(0, "xx");
  RequireBad(Verify(bad, &kept), std::nullopt, "consistency proof hash 0");
}

TEST_CASE("a kept checkpoint of different data is detected", "[audit_verify]") {
  Trail trail(13);
  // What the node signed before its operator rewrote record 2: a trail
  // whose first 7 records differ from the one served now.
  Trail before(13);
  v1::AuditRecord old = MakeRecord(2, kNode);
  old.set_allowed(false);
  before.records[2] = Serialize(old);
  std::vector<Hash> leaves;
  for (const std::string& r : before.records) leaves.push_back(LeafHash(r));
  MapStorage storage;
  storage.Apply(*AppendLeaves(storage, 0, leaves));
  const Checkpoint kept_cp{kOrigin, 7, *RootHash(storage, 7), kTime - 500};
  const std::string kept = Note(kept_cp);

  for (uint64_t first : {0, 4, 7}) {
    INFO("first " << first);
    VerifyReport r = Verify(MakeExport(trail, first, 13), &kept);
    RequireBad(r, std::nullopt, "not consistent with the checkpoint you kept");
    CHECK_FALSE(r.earlier_checkpoint_consistent);
  }
  // Through the proof path (export after the kept size).
  v1::AuditExport e = MakeExport(trail, 9, 13);
  *e.mutable_earlier_checkpoint() = Signed(kept_cp, NodeKey());
  absl::StatusOr<std::vector<Hash>> proof =
      ConsistencyProof(trail.storage, 7, 13);
  REQUIRE(proof.ok());
  for (const Hash& h : *proof) e.add_consistency_proof(Bytes(h));
  RequireBad(Verify(e, &kept), std::nullopt, "not consistent with");

  // The same size with another root: the node signed a fork.
  const std::string fork =
      Note(Checkpoint{kOrigin, 13, *RootHash(storage, 13), kTime});
  RequireBad(Verify(MakeExport(trail, 0, 13), &fork), std::nullopt, "fork");
}

TEST_CASE("a roll-back against a kept larger checkpoint is detected",
          "[audit_verify]") {
  Trail trail(20);
  const std::string kept = Note(trail.At(20));
  // An older copy of the database serves only 13 records.
  VerifyReport r = Verify(MakeExport(trail, 0, 13), &kept);
  RequireBad(r, std::nullopt,
             "roll-back: the node serves a shorter trail (size 13) than a "
             "checkpoint you kept (size 20)");
  CHECK_FALSE(r.earlier_checkpoint_consistent);
  CHECK(Verify(MakeExport(trail, 0, 20), &kept).ok);
}

TEST_CASE("a kept checkpoint that does not verify is an input error",
          "[audit_verify]") {
  Trail trail(13);
  const std::string foreign = Note(trail.At(5), OtherKey());
  absl::StatusOr<VerifyReport> r = VerifyExport(
      MakeExport(trail, 0, 13), Verifier(NodeKey()), kOrigin, &foreign);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(r.status().message()),
             Catch::StartsWith("kept checkpoint: "));
  const std::string garbage = "not a note";
  r = VerifyExport(MakeExport(trail, 0, 13), Verifier(NodeKey()), kOrigin,
                   &garbage);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
}

// ---- Malformed input never crashes ----

TEST_CASE("malformed exports are reported, never crash", "[audit_verify]") {
  Trail trail(13);
  v1::AuditExport e = MakeExport(trail, 0, 13);
  e.set_stored_leaf_hashes(3, "short");
  RequireBad(Verify(e), 3, "stored leaf hash has 5 bytes");
  e = MakeExport(trail, 0, 13);
  e.add_stored_leaf_hashes(std::string(32, 'x'));
  RequireBad(Verify(e), std::nullopt, "14 stored leaf hashes for 13 records");

  // A huge signed tree size with a few records: no loop over the size.
  Checkpoint huge{kOrigin, ~uint64_t{0} - 1, trail.At(13).root, kTime};
  e = MakeExport(trail, 0, 13);
  *e.mutable_checkpoint() = Signed(huge, NodeKey());
  RequireBad(Verify(e), 13, "missing");
  e.set_first_index(~uint64_t{0} - 3);
  e.clear_left_subtree_hashes();
  CHECK_FALSE(Verify(e).ok);

  // Random byte flips of a serialized export: a report or a parse failure,
  // and never "ok" for content that changed.
  v1::AuditExport original = MakeExport(trail, 5, 13);
  std::string wire;
  REQUIRE(original.SerializeToString(&wire));
  // Flipped bytes often make invalid UTF-8, which protobuf logs on parsing.
  google::protobuf::LogSilencer quiet;
  std::mt19937_64 rng(42);
  int parsed = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = wire;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      mutated[rng() % mutated.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    v1::AuditExport m;
    if (!m.ParseFromString(mutated)) continue;
    ++parsed;
    absl::StatusOr<VerifyReport> r =
        VerifyExport(m, Verifier(NodeKey()), kOrigin, nullptr);
    REQUIRE(r.ok());
    if (r->ok) {
      // Only a change that the verified content does not depend on.
      CHECK(m.checkpoint().note() == original.checkpoint().note());
      CHECK(std::equal(m.records().begin(), m.records().end(),
                       original.records().begin(), original.records().end()));
    }
  }
  CHECK(parsed > 100);
}

// ---- VerifyAlerts: the stored log against the trail ----

v1::AuditExport TrailOf(const std::vector<v1::AuditRecord>& records) {
  v1::AuditExport trail;
  trail.set_node_id(kNode);
  for (const v1::AuditRecord& r : records) {
    trail.add_records(r.SerializeAsString());
  }
  return trail;
}

v1::AuditRecord Published(uint64_t index, uint64_t sequence,
                          const std::string& payload_hash) {
  v1::AuditRecord r;
  r.set_index(index);
  r.set_node(kNode);
  r.set_action(v1::AUDIT_PUBLISH);
  r.set_allowed(true);
  r.set_sequence(sequence);
  r.set_alert_id(absl::StrCat("a", sequence));
  r.set_originator("CIV/police");
  r.set_topic("border.incident");
  r.set_classification("RESTRICTED");
  r.set_payload_sha256(payload_hash);
  return r;
}

v1::StoredAlertDigest Stored(const v1::AuditRecord& r) {
  v1::StoredAlertDigest d;
  d.set_sequence(r.sequence());
  d.set_alert_id(r.alert_id());
  d.set_originator(r.originator());
  d.set_topic(r.topic());
  d.set_classification(r.classification());
  d.set_payload_sha256(r.payload_sha256());
  return d;
}

TEST_CASE(
    "VerifyAlerts accepts matching alerts and retention gaps, and names an "
    "edited, deleted or resurrected alert",
    "[audit_verify]") {
  v1::AuditRecord p1 = Published(0, 1, std::string(32, '1'));
  v1::AuditRecord p2 = Published(1, 2, std::string(32, '2'));
  v1::AuditRecord p3 = Published(2, 3, std::string(32, '3'));
  v1::AuditRecord removed2;
  removed2.set_index(3);
  removed2.set_node(kNode);
  removed2.set_action(v1::AUDIT_RETENTION_REMOVE);
  removed2.set_allowed(true);
  removed2.set_sequence(2);
  const v1::AuditExport trail = TrailOf({p1, p2, p3, removed2});
  auto alerts = [](std::vector<v1::StoredAlertDigest> ds) {
    v1::AlertExport e;
    e.set_node_id(kNode);
    e.set_from_sequence(1);
    for (auto& d : ds) *e.add_alerts() = d;
    e.set_to_sequence(ds.size());
    return e;
  };
  v1::StoredAlertDigest absent2;
  absent2.set_sequence(2);
  absent2.set_absent(true);

  AlertsReport good =
      VerifyAlerts(trail, alerts({Stored(p1), absent2, Stored(p3)}));
  INFO(good.problem);
  CHECK(good.ok);
  CHECK(good.alerts_checked == 2);
  CHECK(good.removed_by_retention == 1);

  v1::StoredAlertDigest edited = Stored(p3);
  edited.set_payload_sha256(std::string(32, 'x'));
  AlertsReport e = VerifyAlerts(trail, alerts({Stored(p1), absent2, edited}));
  CHECK_FALSE(e.ok);
  CHECK(e.first_bad_sequence == 3);
  CHECK_THAT(e.problem, Catch::Contains("payload SHA-256"));

  v1::StoredAlertDigest absent3;
  absent3.set_sequence(3);
  absent3.set_absent(true);
  AlertsReport d = VerifyAlerts(trail, alerts({Stored(p1), absent2, absent3}));
  CHECK_FALSE(d.ok);
  CHECK(d.first_bad_sequence == 3);
  CHECK_THAT(d.problem, Catch::Contains("missing from the log"));

  AlertsReport r =
      VerifyAlerts(trail, alerts({Stored(p1), Stored(p2), Stored(p3)}));
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_sequence == 2);
  CHECK_THAT(r.problem, Catch::Contains("removed by retention"));

  v1::AlertExport other = alerts({Stored(p1)});
  other.set_node_id("MLI");
  CHECK_FALSE(VerifyAlerts(trail, other).ok);
}

// ---- VerifyInclusionProof ----

// What the node's Auditor service answers for record `index` of the tree of
// `size`: the record, its audit path and the signed checkpoint.
v1::InclusionProof MakeProof(const Trail& trail, uint64_t index,
                             uint64_t size) {
  v1::InclusionProof p;
  p.set_index(index);
  p.set_tree_size(size);
  p.set_record(trail.records[index]);
  absl::StatusOr<std::vector<Hash>> path =
      InclusionProof(trail.storage, index, size);
  REQUIRE(path.ok());
  for (const Hash& h : *path) p.add_hashes(Bytes(h));
  *p.mutable_checkpoint() = Signed(trail.At(size), NodeKey());
  return p;
}

TEST_CASE("VerifyInclusionProof accepts a good proof, signed or not") {
  const Trail trail(13);
  const v1::InclusionProof proof = MakeProof(trail, 5, 13);
  const VerifyingKey key = Verifier(NodeKey());
  int trusted_calls = 0;
  InclusionReport r =
      VerifyInclusionProof(proof, &key, kOrigin, [&](const Checkpoint& cp) {
        ++trusted_calls;
        CHECK(cp.tree_size == 13);
        return absl::OkStatus();
      });
  INFO(r.problem);
  CHECK(r.verdict == InclusionVerdict::kVerified);
  CHECK(trusted_calls == 1);
  REQUIRE(r.root.has_value());
  CHECK(*r.root == trail.At(13).root);
  CHECK(r.record_parsed);
  CHECK(r.record.index() == 5);
  CHECK(r.leaf_hash == LeafHash(trail.records[5]));
  REQUIRE(r.signed_checkpoint.has_value());

  // Without a key the same proof only matches the root it came with.
  CHECK(VerifyInclusionProof(proof, nullptr, kOrigin).verdict ==
        InclusionVerdict::kUnsigned);
}

TEST_CASE("VerifyInclusionProof fails an altered leaf") {
  const Trail trail(13);
  v1::InclusionProof proof = MakeProof(trail, 5, 13);
  v1::AuditRecord altered = MakeRecord(5, kNode);
  altered.set_reason("rewritten");
  proof.set_record(Serialize(altered));
  const VerifyingKey key = Verifier(NodeKey());
  InclusionReport r = VerifyInclusionProof(proof, &key, kOrigin);
  CHECK(r.verdict == InclusionVerdict::kFailed);
  CHECK_FALSE(r.problem.empty());
  // Unsigned or not, a path that does not hold is a failure.
  CHECK(VerifyInclusionProof(proof, nullptr, kOrigin).verdict ==
        InclusionVerdict::kFailed);
}

TEST_CASE("VerifyInclusionProof fails a proof for another index") {
  const Trail trail(13);
  const VerifyingKey key = Verifier(NodeKey());
  SECTION("the record claims another index than the proof") {
    v1::InclusionProof proof = MakeProof(trail, 5, 13);
    proof.set_index(6);
    InclusionReport r = VerifyInclusionProof(proof, &key, kOrigin);
    CHECK(r.verdict == InclusionVerdict::kFailed);
    CHECK(r.problem == "the record does not parse as record 6");
  }
  SECTION("the path of another index, with this record") {
    v1::InclusionProof proof = MakeProof(trail, 6, 13);
    proof.set_index(5);
    proof.set_record(trail.records[5]);
    InclusionReport r = VerifyInclusionProof(proof, &key, kOrigin);
    CHECK(r.verdict == InclusionVerdict::kFailed);
  }
}

TEST_CASE("VerifyInclusionProof: signature, signer and tree size come first") {
  const Trail trail(13);
  const VerifyingKey other = Verifier(OtherKey());
  const VerifyingKey key = Verifier(NodeKey());
  v1::InclusionProof proof = MakeProof(trail, 5, 13);
  CHECK(VerifyInclusionProof(proof, &other, kOrigin).verdict ==
        InclusionVerdict::kBadSignature);
  InclusionReport refused =
      VerifyInclusionProof(proof, &key, kOrigin, [](const Checkpoint&) {
        return absl::PermissionDeniedError("not trusted");
      });
  CHECK(refused.verdict == InclusionVerdict::kFailed);
  CHECK(refused.problem == "not trusted");
  proof.clear_checkpoint();
  CHECK(VerifyInclusionProof(proof, &key, kOrigin).verdict ==
        InclusionVerdict::kNoCheckpoint);
}

}  // namespace
}  // namespace ibsm::broker
