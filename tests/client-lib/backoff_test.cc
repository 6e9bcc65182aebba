// Tests for client-lib/src/backoff.h.
#include "client-lib/src/backoff.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "absl/status/status.h"
#include "ibsm/clock.h"

using ibsm::BackoffOptions;
using ibsm::internal::Backoff;

TEST_CASE("Backoff without jitter doubles up to the maximum") {
  BackoffOptions o;
  o.initial = absl::Milliseconds(100);
  o.max = absl::Milliseconds(350);
  o.multiplier = 2;
  o.jitter = 0;
  Backoff b(o, 1);
  CHECK(b.Next() == absl::Milliseconds(100));
  CHECK(b.Next() == absl::Milliseconds(200));
  CHECK(b.Next() == absl::Milliseconds(350));
  CHECK(b.Next() == absl::Milliseconds(350));
  b.Reset();
  CHECK(b.Next() == absl::Milliseconds(100));
}

TEST_CASE("Backoff jitter stays within the configured fraction") {
  BackoffOptions o;
  o.initial = absl::Seconds(1);
  o.max = absl::Seconds(1);
  o.jitter = 0.2;
  Backoff b(o, 42);
  for (int i = 0; i < 1000; ++i) {
    absl::Duration d = b.Next();
    CHECK(d >= absl::Milliseconds(800));
    CHECK(d <= absl::Milliseconds(1200));
  }
}

TEST_CASE("Backoff survives many attempts without overflow") {
  BackoffOptions o;
  o.jitter = 0;
  Backoff b(o, 1);
  for (int i = 0; i < 200; ++i) (void)b.Next();
  CHECK(b.Next() == o.max);
}

TEST_CASE("Only UNAVAILABLE and DEADLINE_EXCEEDED are retried as is") {
  CHECK(ibsm::internal::IsRetryable(absl::UnavailableError("x")));
  CHECK(ibsm::internal::IsRetryable(absl::DeadlineExceededError("x")));
  CHECK_FALSE(ibsm::internal::IsRetryable(absl::PermissionDeniedError("x")));
  CHECK_FALSE(ibsm::internal::IsRetryable(absl::InvalidArgumentError("x")));
  CHECK_FALSE(ibsm::internal::IsRetryable(absl::OkStatus()));
}

// A channel that stays out of READY: nothing listens on port 1.
std::shared_ptr<grpc::Channel> UnreachableChannel() {
  return grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
}

TEST_CASE("Backoff::Wait returns once its clock passes the wait, not before") {
  ibsm::FakeClock clock;
  BackoffOptions o;
  o.clock = &clock;
  const Backoff b(o, 1);
  std::shared_ptr<grpc::Channel> channel = UnreachableChannel();
  // Wait asks `stop` before each look at the clock: the test moves the fake
  // time from there, half the wait first, the rest two looks later.
  int checks = 0;
  b.Wait(*channel, absl::Seconds(30), [&] {
    ++checks;
    if (checks == 1 || checks == 3) clock.Advance(absl::Seconds(15));
    return false;
  });
  CHECK(checks == 3);  // still waiting after the first half
}

TEST_CASE("Backoff::Wait returns when told to stop, whatever the clock") {
  ibsm::FakeClock clock;
  BackoffOptions o;
  o.clock = &clock;
  const Backoff b(o, 1);
  std::shared_ptr<grpc::Channel> channel = UnreachableChannel();
  std::atomic<int> checks{0};
  b.Wait(*channel, absl::Hours(1), [&] { return ++checks > 2; });
  CHECK(checks == 3);
}

TEST_CASE("Backoff::Wait with no time to wait returns at once") {
  ibsm::FakeClock clock;
  BackoffOptions o;
  o.clock = &clock;
  const Backoff b(o, 1);
  std::shared_ptr<grpc::Channel> channel = UnreachableChannel();
  b.Wait(*channel, absl::ZeroDuration());
  b.Wait(*channel, -absl::Seconds(1));
}
