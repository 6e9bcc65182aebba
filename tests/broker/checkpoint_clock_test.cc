// The time-based audit checkpoint follows the injected clock: the Committer
// signs it once its clock passes AuditOptions::checkpoint_every, not before.
// Real RocksDB in a temp dir, a FakeClock; no wall-clock asserts.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "audit/audit_trail.h"
#include "ibsm/clock.h"
#include "publish/committer.h"
#include "storage/log_cache.h"
#include "storage/store.h"
#include "tests/support/eventually.h"
#include "tests/support/test_keys.h"
#include "tests/support/test_support.h"

namespace ibsm::broker {
namespace {

TEST_CASE(
    "a time-based audit checkpoint is signed once the committer's clock "
    "passes checkpoint_every, not before",
    "[committer][audit][clock]") {
  ::ibsm::testing::TempDir dir;
  FakeClock clock;
  auto store = Store::Open({dir.File("data"), "CIV"});
  REQUIRE(store.ok());
  const ::ibsm::testing::PemKey key = ::ibsm::testing::MakeP256();
  auto signing = SigningKey::FromPem(key.private_pem);
  REQUIRE(signing.ok());
  AuditOptions audit_options;
  audit_options.node_id = "CIV";
  audit_options.checkpoint_every_records = 1000000;  // only time counts
  audit_options.checkpoint_every = absl::Seconds(10);
  audit_options.clock = &clock;
  auto trail =
      AuditTrail::Open(store->get(), *std::move(signing), audit_options);
  REQUIRE(trail.ok());
  LogCache cache(size_t{1} << 20, (*store)->recovered_last_sequence() + 1);
  CommitterOptions options;
  options.clock = &clock;
  auto committer = std::make_unique<Committer>(
      store->get(), &cache, trail->get(), options, [](uint64_t) {});

  committer->Audit(AuditEvent(v1::AUDIT_NODE_START, "CIV", true, "test"));
  REQUIRE(::ibsm::testing::Eventually([&] {
    auto size = AuditSize(**store);
    return size.ok() && *size == 1;
  }));
  // The record is committed and the fake time has not moved: not due.
  CHECK(absl::IsNotFound(LatestCheckpoint(**store).status()));

  clock.Advance(absl::Seconds(9));
  clock.Advance(absl::Seconds(1));
  REQUIRE(::ibsm::testing::Eventually(
      [&] { return LatestCheckpoint(**store).ok(); }));
  auto latest = LatestCheckpoint(**store);
  REQUIRE(latest.ok());
  CHECK(latest->tree_size() == 1);
  // Signed at the committer's time, the fake one.
  CHECK(latest->time().seconds() == absl::ToUnixSeconds(clock.Now()));
  committer.reset();
}

}  // namespace
}  // namespace ibsm::broker
