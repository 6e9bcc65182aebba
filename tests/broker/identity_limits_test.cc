// The per-identity limits (broker/context/identity_limits.h), with a fake
// clock: the token bucket, the in-flight and stream bounds, their release,
// and the rate limiting of their audit records.
#include "context/identity_limits.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "ibsm/clock.h"

namespace ibsm::broker {
namespace {

IdentityLimits::Bounds Small() {
  IdentityLimits::Bounds b;
  b.publish_rate = 10;
  b.publish_burst = 20;
  b.max_inflight_alerts = 100;
  b.max_inflight_bytes = 1000;
  b.max_streams = 3;
  b.max_subscriptions = 2;
  return b;
}

TEST_CASE("token bucket: a burst, then the rate", "[limits]") {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  TokenBucket bucket(10, 20, t0);
  CHECK(bucket.TryTake(20, t0));
  CHECK_FALSE(bucket.TryTake(1, t0));
  CHECK_FALSE(bucket.TryTake(2, t0 + absl::Milliseconds(100)));  // 1 token
  CHECK(bucket.TryTake(1, t0 + absl::Milliseconds(100)));
  CHECK(bucket.TryTake(10, t0 + absl::Milliseconds(1100)));
  // Never more than the burst, however long it was idle.
  CHECK_FALSE(bucket.TryTake(21, t0 + absl::Hours(1)));
  CHECK(bucket.TryTake(20, t0 + absl::Hours(1)));
}

TEST_CASE("token bucket: how long until n tokens", "[limits]") {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  TokenBucket bucket(10, 20, t0);
  CHECK(bucket.TimeUntil(20, t0) == absl::ZeroDuration());
  REQUIRE(bucket.TryTake(20, t0));
  CHECK(bucket.TimeUntil(5, t0) == absl::Milliseconds(500));
  CHECK(bucket.TimeUntil(5, t0 + absl::Milliseconds(200)) ==
        absl::Milliseconds(300));
  // More than the burst: the time until the bucket is full.
  CHECK(bucket.TimeUntil(1000, t0 + absl::Milliseconds(200)) ==
        absl::Milliseconds(1800));
}

TEST_CASE(
    "identity limits: a request larger than the burst is refused naming the "
    "burst, and the wait for a refused identity",
    "[limits]") {
  FakeClock clock;
  IdentityLimits limits(Small(), &clock);
  auto big = limits.AdmitPublish("CIV/police", 21, 10);
  REQUIRE(absl::IsResourceExhausted(big.status()));
  CHECK(absl::StrContains(big.status().message(),
                          "limits.identity_publish_burst"));
  CHECK(limits.PublishWait("CIV/police", 5) == absl::ZeroDuration());
  REQUIRE(limits.AdmitPublish("CIV/police", 20, 10).ok());
  CHECK(limits.PublishWait("CIV/police", 5) == absl::Milliseconds(500));
  CHECK(limits.PublishWait("CIV/customs", 5) == absl::ZeroDuration());
}

TEST_CASE(
    "identity limits: the publish rate is per identity, and a refusal names "
    "the limit and the identity",
    "[limits]") {
  FakeClock clock;
  IdentityLimits limits(Small(), &clock);
  auto a = limits.AdmitPublish("spiffe://ibsm/CIV/police", 20, 10);
  REQUIRE(a.ok());
  auto refused = limits.AdmitPublish("spiffe://ibsm/CIV/police", 1, 10);
  REQUIRE(absl::IsResourceExhausted(refused.status()));
  CHECK(absl::StrContains(refused.status().message(),
                          "spiffe://ibsm/CIV/police"));
  CHECK(absl::StrContains(refused.status().message(),
                          "limits.identity_publish_rate (10 alerts/s"));
  // Another identity is not affected.
  CHECK(limits.AdmitPublish("spiffe://ibsm/CIV/customs", 20, 10).ok());
  clock.Advance(absl::Seconds(1));
  CHECK(limits.AdmitPublish("spiffe://ibsm/CIV/police", 10, 10).ok());
}

TEST_CASE("identity limits: in-flight alerts and bytes are given back",
          "[limits]") {
  FakeClock clock;
  IdentityLimits::Bounds b = Small();
  b.publish_rate = b.publish_burst = 1000000;
  IdentityLimits limits(b, &clock);
  auto held = limits.AdmitPublish("id", 100, 10);
  REQUIRE(held.ok());
  auto over = limits.AdmitPublish("id", 1, 1);
  REQUIRE(absl::IsResourceExhausted(over.status()));
  CHECK(absl::StrContains(over.status().message(),
                          "limits.identity_max_inflight_alerts"));
  held->reset();
  auto bytes = limits.AdmitPublish("id", 1, 1001);
  REQUIRE(absl::IsResourceExhausted(bytes.status()));
  CHECK(absl::StrContains(bytes.status().message(),
                          "limits.identity_max_inflight_mib"));
  CHECK(limits.AdmitPublish("id", 100, 1000).ok());
}

TEST_CASE("identity limits: streams and subscriptions", "[limits]") {
  FakeClock clock;
  IdentityLimits limits(Small(), &clock);
  std::vector<std::unique_ptr<IdentityLimits::Lease>> held;
  for (bool subscription : {true, true}) {
    auto s = limits.AdmitStream("id", subscription);
    REQUIRE(s.ok());
    held.push_back(*std::move(s));
  }
  auto third_subscription = limits.AdmitStream("id", true);
  REQUIRE(absl::IsResourceExhausted(third_subscription.status()));
  CHECK(absl::StrContains(third_subscription.status().message(),
                          "limits.identity_max_subscriptions"));
  auto publish_stream = limits.AdmitStream("id", false);
  REQUIRE(publish_stream.ok());
  held.push_back(*std::move(publish_stream));
  auto fourth = limits.AdmitStream("id", false);
  REQUIRE(absl::IsResourceExhausted(fourth.status()));
  CHECK(absl::StrContains(fourth.status().message(),
                          "limits.identity_max_streams"));
  CHECK(limits.AdmitStream("other", true).ok());
  held.erase(held.begin());  // a subscription ends
  CHECK(limits.AdmitStream("id", true).ok());
}

TEST_CASE(
    "identity limits: refusals are audited once a minute per identity and "
    "limit, with the count of those not recorded",
    "[limits]") {
  FakeClock clock;
  IdentityLimits limits(Small(), &clock);
  const absl::Status rate = absl::ResourceExhaustedError(
      "identity id exceeded limits.identity_publish_rate (10 alerts/s)");
  const absl::Status streams = absl::ResourceExhaustedError(
      "identity id exceeded limits.identity_max_streams (3)");
  std::string note;
  CHECK(limits.ShouldAudit("id", rate, &note));
  CHECK(note.empty());
  for (int i = 0; i < 50; ++i)
    CHECK_FALSE(limits.ShouldAudit("id", rate, &note));
  CHECK(limits.ShouldAudit("id", streams, &note));  // another limit
  CHECK(limits.ShouldAudit("other", rate, &note));  // another identity
  clock.Advance(absl::Seconds(61));
  CHECK(limits.ShouldAudit("id", rate, &note));
  CHECK(absl::StrContains(note, "50 more refusals"));
}

}  // namespace
}  // namespace ibsm::broker
