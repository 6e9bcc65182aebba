// Exponential backoff with jitter, private to the client library, with the
// wait itself (Wait) on the options' Clock. Not thread-safe: each
// reconnecting loop owns its own Backoff.
#ifndef IBSM_CLIENT_LIB_SRC_BACKOFF_H_
#define IBSM_CLIENT_LIB_SRC_BACKOFF_H_

#include <cstdint>
#include <functional>
#include <random>

#include "absl/time/time.h"
#include "ibsm/client.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace ibsm::internal {

class Backoff {
 public:
  explicit Backoff(const BackoffOptions& options, uint64_t seed = 0);

  // The wait before the next attempt; grows with each call up to max.
  absl::Duration Next();
  // After a success: the next wait is `initial` again.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

  // Waits `wait` of the options' clock before the next attempt on
  // `channel`, while watching the channel's connectivity. Returns early when
  // `stop` (optional, checked at least every 100 ms) returns true, or when
  // the channel was not READY on entry and becomes READY (the node is back:
  // reconnect at once).
  //
  // Watching is what lets the channel reconnect while we wait. With gRPC's
  // synchronous API a connection attempt (TCP connect, TLS handshake) only
  // advances while some thread polls gRPC: a call in progress or a state
  // watch. Once a fail-fast call has failed on a channel in
  // TRANSIENT_FAILURE, nothing polls, and the attempt advanced only at
  // gRPC's 5-second backup poll, one handshake step at a time (~20 s per
  // attempt); meanwhile every call failed at once with the stale
  // "Connection refused".
  void Wait(grpc::Channel& channel, absl::Duration wait,
            const std::function<bool()>& stop = nullptr) const;

 private:
  BackoffOptions options_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

// True for gRPC codes after which the same request may simply be sent again
// (the node did not refuse it): UNAVAILABLE and DEADLINE_EXCEEDED.
bool IsRetryable(const absl::Status& status);

}  // namespace ibsm::internal

#endif  // IBSM_CLIENT_LIB_SRC_BACKOFF_H_
