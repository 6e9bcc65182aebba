// Exponential backoff with jitter, private to the client library. Not
// thread-safe: each reconnecting loop owns its own Backoff.
#ifndef IBSM_CLIENT_LIB_SRC_BACKOFF_H_
#define IBSM_CLIENT_LIB_SRC_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "ibsm/client.h"

namespace ibsm::internal {

class Backoff {
 public:
  explicit Backoff(const BackoffOptions& options, uint64_t seed = 0);

  // The wait before the next attempt; grows with each call up to max.
  absl::Duration Next();
  // After a success: the next wait is `initial` again.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

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
