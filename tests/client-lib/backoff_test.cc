// Tests for client-lib/src/backoff.h.
#include "client-lib/src/backoff.h"

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
