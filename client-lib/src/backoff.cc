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

void Backoff::Wait(grpc::Channel& channel, absl::Duration wait,
                   const std::function<bool()>& stop) const {
  constexpr absl::Duration kSlice = absl::Milliseconds(100);
  const Clock& clock = *options_.clock;
  const absl::Time until = clock.Now() + wait;
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  const bool was_ready = state == GRPC_CHANNEL_READY;
  while (true) {
    if (stop && stop()) return;
    const absl::Duration left = until - clock.Now();
    if (left <= absl::ZeroDuration()) return;
    if (!was_ready && state == GRPC_CHANNEL_READY) return;
    // Polls gRPC until the state changes or the slice ends. gRPC's deadline
    // is real time; the clock is asked again after each slice.
    if (channel.WaitForStateChange(
            state, absl::ToChronoTime(absl::Now() + std::min(left, kSlice)))) {
      state = channel.GetState(/*try_to_connect=*/true);
    }
  }
}

}  // namespace ibsm::internal
