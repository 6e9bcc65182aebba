#include "backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"

namespace ibsm::internal {

Backoff::Backoff(const BackoffOptions& options, uint64_t seed)
    : options_(options), rng_(seed != 0 ? seed : std::random_device{}()) {}

absl::Duration Backoff::Next() {
  double initial = absl::ToDoubleSeconds(options_.initial);
  double max = absl::ToDoubleSeconds(options_.max);
  double multiplier = std::max(1.0, options_.multiplier);
  double wait = initial * std::pow(multiplier, std::min(attempt_, 62));
  wait = std::min(wait, max);
  ++attempt_;
  double jitter = std::clamp(options_.jitter, 0.0, 1.0);
  if (jitter > 0) {
    std::uniform_real_distribution<double> dist(1.0 - jitter, 1.0 + jitter);
    wait *= dist(rng_);
  }
  return absl::Seconds(std::max(0.0, wait));
}

bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace ibsm::internal
