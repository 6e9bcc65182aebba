// Encryption at rest over a real RocksDB (storage/key_ring.h, reencrypt.h):
// what PutAlert stores, what every read opens, what a moved or altered
// record gives, key files, rotation and re-encryption.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "audit/log_integrity.h"
#include "ibsm/alert_signature.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "publish/publish_path.h"
#include "storage/key_codec.h"
#include "storage/key_ring.h"
#include "storage/log_cache.h"
#include "storage/reencrypt.h"
#include "storage/seal.h"
#include "storage/store.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

using ::ibsm::testing::MakeAlert;
using ::ibsm::testing::TempDir;

std::shared_ptr<const KeyRing> Ring(char current,
                                    std::vector<char> older = {}) {
  std::vector<std::string> keys;
  for (char c : older) keys.push_back(std::string(seal::kKeyBytes, c));
  auto ring = KeyRing::FromKeys(std::string(seal::kKeyBytes, current), keys);
  REQUIRE(ring.ok());
  return *ring;
}

std::unique_ptr<Store> OpenWith(const std::string& path,
                                std::shared_ptr<const KeyRing> keys) {
  StoreOptions options{path, "CIV"};
  options.keys = std::move(keys);
  auto store = Store::Open(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

internal::v1::StoredAlert Stored(const std::string& id) {
  internal::v1::StoredAlert stored;
  *stored.mutable_alert() = MakeAlert(id);
  stored.mutable_alert()->set_originator("CIV/police");
  (*stored.mutable_alert()->mutable_attributes())["suspect"] = "name-" + id;
  stored.mutable_alert()->set_payload("secret payload of " + id);
  stored.mutable_alert()->set_signature("sig-" + id);
  stored.mutable_received_at()->set_seconds(1700000000);
  stored.set_received_from("CIV");
  return stored;
}

void Write(Store& store, uint64_t sequence,
           const internal::v1::StoredAlert& stored) {
  storage::Batch batch = store.NewBatch();
  REQUIRE(batch.PutAlert(sequence, stored).ok());
  REQUIRE(store.Commit(std::move(batch), Durability::kSynced).ok());
}

std::string Raw(const Store& store, uint64_t sequence) {
  auto value = store.Get(Family::kLog, EncodeSequence(sequence));
  REQUIRE(value.ok());
  REQUIRE(value->has_value());
  return **value;
}

std::string Deterministic(const v1::Alert& alert) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  alert.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// The alert read back is the published one, byte for byte: its content
// hash (idempotency), its signature and the bytes it signs do not change.
void ExpectSame(const internal::v1::StoredAlert& got,
                const internal::v1::StoredAlert& want) {
  CHECK(Deterministic(got.alert()) == Deterministic(want.alert()));
  CHECK(AlertContentSha256(got.alert()) == AlertContentSha256(want.alert()));
  CHECK(AlertSigningBytes(got.alert()) == AlertSigningBytes(want.alert()));
  CHECK(got.alert().signature() == want.alert().signature());
  CHECK(got.received_at().seconds() == want.received_at().seconds());
  CHECK(got.received_from() == want.received_from());
  CHECK(got.seal_format() == 0);
  CHECK(got.sealed().empty());
}

TEST_CASE("a sealed record keeps routing fields clear and opens to the alert") {
  TempDir dir;
  auto keys = Ring('a');
  auto store = OpenWith(dir.File("data"), keys);
  const internal::v1::StoredAlert a = Stored("a-1");
  Write(*store, 1, a);

  internal::v1::StoredAlert raw;
  REQUIRE(raw.ParseFromString(Raw(*store, 1)));
  CHECK(raw.seal_format() == seal::kFormatAes256GcmV1);
  CHECK(raw.key_id() == keys->current_key_id());
  CHECK(raw.nonce().size() == seal::kNonceBytes);
  CHECK(raw.alert().payload().empty());
  CHECK(raw.alert().attributes().empty());
  // What routing, policy and retention read stays in the clear.
  CHECK(raw.alert().id() == "a-1");
  CHECK(raw.alert().topic() == a.alert().topic());
  CHECK(raw.alert().classification() == a.alert().classification());
  CHECK(raw.alert().originator() == "CIV/police");
  CHECK(Raw(*store, 1).find("secret payload") == std::string::npos);
  CHECK(Raw(*store, 1).find("name-a-1") == std::string::npos);

  auto got = store->GetAlert(1);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  ExpectSame(**got, a);
  auto decoded = store->DecodeAlert(1, Raw(*store, 1));
  REQUIRE(decoded.ok());
  ExpectSame(*decoded, a);
}

TEST_CASE("two seals of one record use different nonces") {
  TempDir dir;
  auto store = OpenWith(dir.File("data"), Ring('a'));
  Write(*store, 1, Stored("a-1"));
  const std::string first = Raw(*store, 1);
  Write(*store, 1, Stored("a-1"));
  CHECK(first != Raw(*store, 1));
}

TEST_CASE("a sealed value copied over another record's key is DATA_LOSS") {
  TempDir dir;
  auto store = OpenWith(dir.File("data"), Ring('a'));
  Write(*store, 1, Stored("a-1"));
  Write(*store, 2, Stored("a-2"));
  // Also a value copied under a record of the same alert id and originator:
  // the sequence alone makes it fail.
  Write(*store, 3, Stored("a-1"));
  for (uint64_t target : {uint64_t{2}, uint64_t{3}}) {
    storage::Batch batch = store->NewBatch();
    batch.PutForTesting(Family::kLog, EncodeSequence(target), Raw(*store, 1));
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
    auto got = store->GetAlert(target);
    INFO(got.status().ToString());
    REQUIRE(got.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(got.status().message()),
               Catch::Contains(absl::StrCat("sequence ", target)) &&
                   Catch::Contains("integrity check"));
  }
  // Delivery's read of the log stops at it, having delivered nothing wrong.
  std::vector<std::shared_ptr<const LogRecord>> out;
  uint64_t bad = 0;
  absl::Status read = ReadVerifiedLog(*store, 2, 2, &out, &bad);
  CHECK(read.code() == absl::StatusCode::kDataLoss);
  CHECK(bad == 2);
  CHECK(out.empty());
}

TEST_CASE("an edited clear field of a sealed record is DATA_LOSS") {
  TempDir dir;
  auto store = OpenWith(dir.File("data"), Ring('a'));
  Write(*store, 1, Stored("a-1"));
  auto edit = [&](auto change) {
    internal::v1::StoredAlert raw;
    REQUIRE(raw.ParseFromString(Raw(*store, 1)));
    change(&raw);
    storage::Batch batch = store->NewBatch();
    batch.PutForTesting(Family::kLog, EncodeSequence(1),
                        raw.SerializeAsString());
    REQUIRE(store->Commit(std::move(batch), Durability::kSynced).ok());
    CHECK(store->GetAlert(1).status().code() == absl::StatusCode::kDataLoss);
  };
  const std::string original = Raw(*store, 1);
  edit([](internal::v1::StoredAlert* r) {
    r->mutable_alert()->set_originator("CIV/other");
  });
  edit([&](internal::v1::StoredAlert* r) {
    r->ParseFromString(original);
    r->mutable_alert()->set_id("a-9");
  });
  edit([&](internal::v1::StoredAlert* r) {
    r->ParseFromString(original);
    (*r->mutable_nonce())[0] ^= 1;
  });
  edit([&](internal::v1::StoredAlert* r) {
    r->ParseFromString(original);
    (*r->mutable_sealed())[3] ^= 1;
  });
  edit([&](internal::v1::StoredAlert* r) {
    r->ParseFromString(original);
    r->set_seal_format(2);
  });
}

TEST_CASE("plaintext records from before encryption still read") {
  TempDir dir;
  const internal::v1::StoredAlert old = Stored("old-1");
  {
    auto store = OpenWith(dir.File("data"), nullptr);
    Write(*store, 1, old);
    CHECK(Raw(*store, 1) == old.SerializeAsString());
  }
  auto store = OpenWith(dir.File("data"), Ring('a'));
  auto got = store->GetAlert(1);
  REQUIRE(got.ok());
  ExpectSame(**got, old);
}

TEST_CASE("a record under a key the node lacks names the key id") {
  TempDir dir;
  auto a = Ring('a');
  {
    auto store = OpenWith(dir.File("data"), a);
    Write(*store, 1, Stored("a-1"));
  }
  const std::string id = seal::KeyIdHex(a->current_key_id());
  for (auto keys : {Ring('b'), std::shared_ptr<const KeyRing>()}) {
    auto store = OpenWith(dir.File("data"), keys);
    auto got = store->GetAlert(1);
    INFO(got.status().ToString());
    CHECK(got.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(got.status().message()),
               Catch::Contains("sequence 1") && Catch::Contains(id));
  }
}

TEST_CASE(
    "rotation: write under A, rotate to B, read both, re-encrypt, drop A") {
  TempDir dir;
  const std::string path = dir.File("data");
  std::vector<internal::v1::StoredAlert> alerts;
  for (int i = 1; i <= 7; ++i) alerts.push_back(Stored(absl::StrCat("r-", i)));
  {
    auto store = OpenWith(path, nullptr);  // 1: plaintext, from before
    Write(*store, 1, alerts[0]);
  }
  {
    auto store = OpenWith(path, Ring('a'));  // 2..4 under A
    for (uint64_t s = 2; s <= 4; ++s) Write(*store, s, alerts[s - 1]);
  }
  auto b_and_a = Ring('b', {'a'});
  {
    auto store = OpenWith(path, b_and_a);  // 5..7 under B, A kept
    for (uint64_t s = 5; s <= 7; ++s) Write(*store, s, alerts[s - 1]);
    for (uint64_t s = 1; s <= 7; ++s) {
      auto got = store->GetAlert(s);
      REQUIRE(got.ok());
      ExpectSame(**got, alerts[s - 1]);
    }
    // Batches of 2, so the job takes several synced batches.
    auto done = ReencryptLog(store.get(), 2);
    REQUIRE(done.ok());
    CHECK(done->scanned == 7);
    CHECK(done->rewritten == 4);  // the plaintext one and A's three
    auto again = ReencryptLog(store.get(), 2);
    REQUIRE(again.ok());
    CHECK(again->rewritten == 0);
  }
  auto store = OpenWith(path, Ring('b'));  // A dropped
  for (uint64_t s = 1; s <= 7; ++s) {
    auto got = store->GetAlert(s);
    INFO(got.status().ToString());
    REQUIRE(got.ok());
    ExpectSame(**got, alerts[s - 1]);
    CHECK(SealedUnderCurrentKey(*store->keys(), Raw(*store, s)));
  }
}

TEST_CASE("re-encryption stopped half way finishes when run again") {
  TempDir dir;
  const std::string path = dir.File("data");
  {
    auto store = OpenWith(path, Ring('a'));
    for (uint64_t s = 1; s <= 3; ++s) Write(*store, s, Stored("x"));
  }
  {
    auto store = OpenWith(path, Ring('c'));
    Write(*store, 4, Stored("y"));
  }
  {
    auto store = OpenWith(path, Ring('a'));
    for (uint64_t s = 5; s <= 6; ++s) Write(*store, s, Stored("z"));
  }
  {
    // Key C is missing: the job stops at sequence 4, after committing the
    // records before it, and says which key it lacks.
    auto store = OpenWith(path, Ring('b', {'a'}));
    auto done = ReencryptLog(store.get(), 2);
    REQUIRE(done.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(
        std::string(done.status().message()),
        Catch::Contains("sequence 4") &&
            Catch::Contains(seal::KeyIdHex(Ring('c')->current_key_id())));
    CHECK(SealedUnderCurrentKey(*store->keys(), Raw(*store, 3)));
  }
  auto store = OpenWith(path, Ring('b', {'a', 'c'}));
  auto done = ReencryptLog(store.get(), 2);
  REQUIRE(done.ok());
  CHECK(done->rewritten == 3);  // 4, 5 and 6; 1..3 were done before
  for (uint64_t s = 1; s <= 6; ++s) {
    CHECK(SealedUnderCurrentKey(*store->keys(), Raw(*store, s)));
  }
}

TEST_CASE("re-encryption needs a key") {
  TempDir dir;
  auto store = OpenWith(dir.File("data"), nullptr);
  CHECK(ReencryptLog(store.get()).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("key files: made 0600 and never overwritten; bad ones refused") {
  TempDir dir;
  const std::string good = dir.File("node.key");
  auto id = WriteNewKeyFile(good);
  REQUIRE(id.ok());
  struct stat st;
  REQUIRE(stat(good.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 32);
  CHECK(WriteNewKeyFile(good).status().code() ==
        absl::StatusCode::kAlreadyExists);
  auto ring = KeyRing::Load(good, {});
  REQUIRE(ring.ok());
  CHECK((*ring)->current_key_id() == *id);

  auto refused = [&](const std::string& file, const std::string& says) {
    auto r = KeyRing::Load(good, {file});
    INFO(r.status().ToString());
    CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(r.status().message()),
               Catch::Contains(file) && Catch::Contains(says));
    auto as_current = KeyRing::Load(file, {});
    CHECK(as_current.status().code() == absl::StatusCode::kFailedPrecondition);
  };
  refused(dir.File("missing.key"), "cannot be read");
  for (mode_t mode : {0640, 0604, 0660, 0644}) {
    const std::string open = dir.File(absl::StrCat("open-", mode, ".key"));
    REQUIRE(WriteNewKeyFile(open).ok());
    REQUIRE(chmod(open.c_str(), mode) == 0);
    refused(open, "accessible by group or others");
  }
  for (size_t n : {size_t{0}, size_t{31}, size_t{33}, size_t{64}}) {
    const std::string sized = dir.File(absl::StrCat("size-", n, ".key"));
    std::ofstream(sized) << std::string(n, 'k');
    REQUIRE(chmod(sized.c_str(), 0600) == 0);
    refused(sized, absl::StrCat("holds ", n, " bytes"));
  }
}

}  // namespace
}  // namespace ibsm::broker
