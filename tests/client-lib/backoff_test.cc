// Tests for client-lib/src/backoff.h.
#include "client-lib/src/backoff.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "absl/status/status.h"

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

TEST_CASE("WaitForRetry waits until the deadline or until told to stop") {
  // Nothing listens on port 1: the channel stays out of READY.
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  absl::Time start = absl::Now();
  ibsm::internal::WaitForRetry(*channel, start + absl::Milliseconds(300));
  absl::Duration waited = absl::Now() - start;
  CHECK(waited >= absl::Milliseconds(300));
  CHECK(waited < absl::Seconds(2));

  std::atomic<int> checks{0};
  start = absl::Now();
  ibsm::internal::WaitForRetry(*channel, start + absl::Seconds(30),
                               [&] { return ++checks > 2; });
  waited = absl::Now() - start;
  CHECK(checks == 3);
  CHECK(waited < absl::Seconds(2));
}
