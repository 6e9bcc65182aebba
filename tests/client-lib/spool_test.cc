// The Publisher's offline spool on its own (client-lib/src/spool.h): real
// RocksDB in temp dirs, no node.
#include "client-lib/src/spool.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ibsm/publisher.h"
#include "tests/support/power_loss_env.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using internal::Spool;
using internal::SpoolBounds;
using internal::SpoolSettlement;

SpoolBounds Bounds(uint64_t alerts, uint64_t bytes = uint64_t{1} << 30) {
  return SpoolBounds{alerts, bytes};
}

TEST_CASE("spool: appended alerts come back after a reopen, in order") {
  TempDir dir;
  const std::string path = dir.File("spool");
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  {
    auto spool = Spool::Open(path, Bounds(100));
    REQUIRE(spool.ok());
    CHECK((*spool)->TakeRecovered().empty());
    for (int i = 0; i < 10; ++i) {
      auto seq = (*spool)->Append(MakeAlert(absl::StrCat("a-", i)),
                                  t0 + absl::Seconds(i));
      REQUIRE(seq.ok());
      CHECK(*seq == static_cast<uint64_t>(i + 1));
    }
    // Two acknowledged, one refused.
    std::vector<SpoolSettlement> settled = {
        {1, absl::OkStatus()},
        {3, absl::OkStatus()},
        {5, absl::PermissionDeniedError("not yours")}};
    REQUIRE((*spool)->Settle(settled, t0 + absl::Seconds(20)).ok());
    SpoolState state = (*spool)->State(t0 + absl::Seconds(30));
    CHECK(state.alerts == 7);
    CHECK(state.oldest_spooled_at == t0 + absl::Seconds(1));
    CHECK(state.oldest_age == absl::Seconds(29));
    REQUIRE(state.refusals.size() == 1);
    CHECK(state.refusals[0].alert_id == "a-4");
    CHECK(state.refusals[0].status.code() ==
          absl::StatusCode::kPermissionDenied);
  }
  auto reopened = Spool::Open(path, Bounds(100));
  REQUIRE(reopened.ok());
  std::vector<internal::SpooledEntry> recovered = (*reopened)->TakeRecovered();
  std::vector<std::string> ids;
  for (const auto& e : recovered) ids.push_back(e.alert.id());
  CHECK(ids == std::vector<std::string>{"a-1", "a-3", "a-5", "a-6", "a-7",
                                        "a-8", "a-9"});
  // The same bytes as appended: a resend carries the same signature.
  CHECK(recovered[0].alert.SerializeAsString() ==
        MakeAlert("a-1").SerializeAsString());
  // New alerts go after the recovered ones and after the refusal record.
  auto next = (*reopened)->Append(MakeAlert("b"), t0);
  REQUIRE(next.ok());
  CHECK(*next == 11);
  SpoolState state = (*reopened)->State(t0);
  CHECK(state.alerts == 8);
  CHECK(state.refusals.size() == 1);
}

TEST_CASE(
    "spool: a full spool refuses with RESOURCE_EXHAUSTED naming bound "
    "and dir, and drops nothing") {
  TempDir dir;
  const std::string path = dir.File("spool");
  const absl::Time now = absl::Now();
  SECTION("spool_max_alerts") {
    auto spool = Spool::Open(path, Bounds(3));
    REQUIRE(spool.ok());
    for (int i = 0; i < 3; ++i) {
      REQUIRE((*spool)->Append(MakeAlert(absl::StrCat("a-", i)), now).ok());
    }
    auto refused = (*spool)->Append(MakeAlert("a-3"), now);
    REQUIRE(refused.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(absl::StrContains(refused.status().message(), "spool_max_alerts"));
    CHECK(absl::StrContains(refused.status().message(), path));
    CHECK((*spool)->State(now).alerts == 3);
    // Room again once the node acknowledged one.
    std::vector<SpoolSettlement> settled = {{1, absl::OkStatus()}};
    REQUIRE((*spool)->Settle(settled, now).ok());
    CHECK((*spool)->Append(MakeAlert("a-3"), now).ok());
  }
  SECTION("spool_max_bytes") {
    // The size of one record, measured on a spool of its own.
    uint64_t record = 0;
    {
      auto probe = Spool::Open(dir.File("probe"), Bounds(10));
      REQUIRE(probe.ok());
      REQUIRE((*probe)->Append(MakeAlert("a-0"), now).ok());
      record = (*probe)->State(now).bytes;
    }
    // Room for two and a half.
    auto spool = Spool::Open(path, Bounds(1000, 2 * record + record / 2));
    REQUIRE(spool.ok());
    REQUIRE((*spool)->Append(MakeAlert("a-0"), now).ok());
    REQUIRE((*spool)->Append(MakeAlert("a-1"), now).ok());
    auto refused = (*spool)->Append(MakeAlert("a-2"), now);
    REQUIRE(refused.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(absl::StrContains(refused.status().message(), "spool_max_bytes"));
    SpoolState state = (*spool)->State(now);
    CHECK(state.alerts == 2);
    CHECK(state.bytes <= state.max_bytes);
    CHECK(state.max_bytes == 2 * record + record / 2);
  }
}

TEST_CASE(
    "spool: one process or Spool at a time; not-a-spool directories "
    "are refused") {
  TempDir dir;
  const std::string path = dir.File("spool");
  auto first = Spool::Open(path, Bounds(10));
  REQUIRE(first.ok());
  auto second = Spool::Open(path, Bounds(10));
  REQUIRE(second.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(second.status().message(), "in use"));
  CHECK(absl::StrContains(second.status().message(), path));
  // Read-only state works while it is held.
  REQUIRE((*first)->Append(MakeAlert("x"), absl::Now()).ok());
  auto state = ReadSpoolState(path);
  REQUIRE(state.ok());
  CHECK(state->alerts == 1);
  CHECK(state->max_alerts == 10);

  // A directory with other files in it is never turned into a spool.
  const std::string other = dir.File("other");
  REQUIRE(std::filesystem::create_directory(other));
  std::ofstream(other + "/notes.txt") << "not a spool";
  auto refused = Spool::Open(other, Bounds(10));
  REQUIRE(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(refused.status().message(), "not a spool"));
  CHECK(ReadSpoolState(other).status().code() == absl::StatusCode::kNotFound);
  // A missing directory: created by Open (not its parents), absent for
  // ReadSpoolState.
  CHECK(ReadSpoolState(dir.File("none")).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(Spool::Open(dir.File("no/such/parent"), Bounds(10)).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("spool: only the newest refusal records are kept") {
  TempDir dir;
  auto spool = Spool::Open(dir.File("spool"), Bounds(5000));
  REQUIRE(spool.ok());
  const absl::Time now = absl::Now();
  std::vector<SpoolSettlement> settled;
  for (size_t i = 0; i < kMaxSpoolRefusals + 5; ++i) {
    auto seq = (*spool)->Append(MakeAlert(absl::StrCat("r-", i)), now);
    REQUIRE(seq.ok());
    settled.push_back({*seq, absl::InvalidArgumentError("bad")});
  }
  REQUIRE((*spool)->Settle(settled, now).ok());
  SpoolState state = (*spool)->State(now);
  CHECK(state.alerts == 0);
  REQUIRE(state.refusals.size() == kMaxSpoolRefusals);
  CHECK(state.refusals.front().alert_id == "r-5");
  spool->reset();
  auto read = ReadSpoolState(dir.File("spool"));
  REQUIRE(read.ok());
  CHECK(read->refusals.size() == kMaxSpoolRefusals);
}

TEST_CASE(
    "spool: power loss, many cycles: every accepted alert survives, none "
    "written after the cut comes back") {
  PowerLossEnv power;
  TempDir dir;
  const std::string path = dir.File("spool");
  const absl::Time now = absl::Now();
  std::set<std::string> accepted;   // synced before a cut, not settled
  std::set<std::string> settled;    // acknowledged: may come back, or not
  std::set<std::string> after_cut;  // never reached the disk
  int next = 0;
  for (int cycle = 0; cycle < 8; ++cycle) {
    INFO("cycle " << cycle);
    {
      auto spool = Spool::Open(path, Bounds(100000), power.env());
      REQUIRE(spool.ok());
      std::set<std::string> recovered;
      for (const auto& e : (*spool)->TakeRecovered()) {
        CHECK(recovered.insert(e.alert.id()).second);
      }
      for (const std::string& id : accepted) {
        INFO(id);
        CHECK(recovered.count(id) == 1);
      }
      for (const std::string& id : recovered) {
        INFO(id);
        CHECK((accepted.count(id) == 1 || settled.count(id) == 1));
        CHECK(after_cut.count(id) == 0);
      }
      std::vector<SpoolSettlement> acked;
      for (int i = 0; i < 60; ++i) {
        const std::string id = absl::StrCat("p-", next++);
        auto seq = (*spool)->Append(MakeAlert(id), now);
        REQUIRE(seq.ok());
        if (i % 3 == 0) {
          acked.push_back({*seq, absl::OkStatus()});
          settled.insert(id);
        } else {
          accepted.insert(id);
        }
      }
      REQUIRE((*spool)->Settle(acked, now).ok());
      power.CutPower();
      for (int i = 0; i < 5; ++i) {
        const std::string id = absl::StrCat("p-", next++);
        // The process does not know the power is gone.
        REQUIRE((*spool)->Append(MakeAlert(id), now).ok());
        after_cut.insert(id);
      }
    }
    REQUIRE(power.RestorePower().ok());
  }
}

}  // namespace
}  // namespace ibsm::testing
