#include "backoff.h"

#include <grpcpp/channel.h>

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

void WaitForRetry(grpc::Channel& channel, absl::Time until,
                  const std::function<bool()>& stop) {
  constexpr absl::Duration kSlice = absl::Milliseconds(100);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  const bool was_ready = state == GRPC_CHANNEL_READY;
  while (true) {
    if (stop && stop()) return;
    const absl::Time now = absl::Now();
    if (now >= until) return;
    if (!was_ready && state == GRPC_CHANNEL_READY) return;
    // Polls gRPC until the state changes or the slice ends.
    if (channel.WaitForStateChange(
            state, absl::ToChronoTime(std::min(until, now + kSlice)))) {
      state = channel.GetState(/*try_to_connect=*/true);
    }
  }
}

}  // namespace ibsm::internal
