// Per-identity limits (docs/security.md, "Limits"): how much one caller,
// named by the SPIFFE id of its certificate, may take of a node, over all
// its calls together, so that one stolen or misbehaving certificate cannot
// slow another agency's publishes or deliveries.
//
//  * publish rate: a token bucket of `publish_burst` alerts refilled at
//    `publish_rate` per second;
//  * alerts (and their bytes) accepted and not yet answered;
//  * concurrent streams (publish streams and subscriptions), and
//    subscriptions.
//
// A refusal is RESOURCE_EXHAUSTED naming the identity, the limit (its config
// field) and its value. Whether a refusal goes to the audit trail is decided
// here too (ShouldAudit): at most once a minute per identity and limit, with
// the number of refusals not recorded since, so that a flood of refusals
// cannot flood the trail.
//
// Identities are kept while they hold something or were seen in the last
// minutes; the table is bounded by kMaxIdentities (beyond it, the oldest
// idle entries go first). Every method is thread-safe. The clock must
// outlive the object.
#ifndef IBSM_BROKER_CONTEXT_IDENTITY_LIMITS_H_
#define IBSM_BROKER_CONTEXT_IDENTITY_LIMITS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/clock.h"

namespace ibsm::internal::v1 {
class Limits;
}  // namespace ibsm::internal::v1

namespace ibsm::broker {

// A token bucket: `burst` tokens at most, refilled at `rate` per second.
// Pure: the caller gives the time. Not thread-safe on its own.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, absl::Time now);
  // Takes `n` tokens if there are that many at `now`; false (and nothing
  // taken) otherwise.
  bool TryTake(double n, absl::Time now);
  // How long from `now` until `n` tokens (at most `burst`) are there.
  absl::Duration TimeUntil(double n, absl::Time now);

 private:
  void Refill(absl::Time now);
  const double rate_;
  const double burst_;
  double tokens_;
  absl::Time last_;
};

class IdentityLimits {
 public:
  static constexpr size_t kMaxIdentities = 100000;

  struct Bounds {
    uint32_t publish_rate = 10000;
    uint32_t publish_burst = 20000;
    uint64_t max_inflight_alerts = 16384;
    uint64_t max_inflight_bytes = uint64_t{64} << 20;
    uint32_t max_streams = 256;
    uint32_t max_subscriptions = 128;
  };
  // From the node config's limits (after ApplyDefaults).
  static Bounds FromConfig(const internal::v1::Limits& limits);

  explicit IdentityLimits(Bounds bounds, Clock* clock = RealClock());
  ~IdentityLimits();
  IdentityLimits(const IdentityLimits&) = delete;
  IdentityLimits& operator=(const IdentityLimits&) = delete;

  // Something an identity holds (a stream, or alerts in flight); given back
  // when destroyed. Must not outlive the IdentityLimits.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    friend class IdentityLimits;
    Lease(IdentityLimits* limits, std::string identity, bool stream,
          bool subscription, uint64_t alerts, uint64_t bytes);
    IdentityLimits* const limits_;
    const std::string identity_;
    const bool stream_;
    const bool subscription_;
    const uint64_t alerts_;
    const uint64_t bytes_;
  };

  // A publish of `alerts` alerts of `bytes` bytes in all: within the rate
  // and the in-flight bounds, a lease on them until they are answered.
  absl::StatusOr<std::unique_ptr<Lease>> AdmitPublish(
      absl::string_view identity, uint64_t alerts, uint64_t bytes);
  // How long until `identity` could publish `alerts` alerts within its rate
  // (zero if now). A publish stream refused by the rate does not read its
  // next request before then: a flood of refused requests costs the node
  // one parse per stream and wait, not one per request the client can send.
  absl::Duration PublishWait(absl::string_view identity, uint64_t alerts);
  // A new stream (a publish stream, or a subscription when `subscription`).
  absl::StatusOr<std::unique_ptr<Lease>> AdmitStream(absl::string_view identity,
                                                     bool subscription);

  // Whether the refusal `refused` (one of the statuses above) of
  // `identity` should be audited now; if so, `*note` gets what to add to
  // the record: how many refusals of that limit were not recorded since
  // the last one (empty when none).
  bool ShouldAudit(absl::string_view identity, const absl::Status& refused,
                   std::string* note);

  // How many refusals each limit made (by its config field, e.g.
  // "identity_publish_rate"), over all identities, counted by ShouldAudit
  // (which sees every refusal) for the node's metrics.
  absl::flat_hash_map<std::string, uint64_t> Hits() const;

 private:
  struct Usage {
    explicit Usage(const Bounds& b, absl::Time now)
        : bucket(b.publish_rate, b.publish_burst, now) {}
    TokenBucket bucket;
    uint64_t inflight_alerts = 0;
    uint64_t inflight_bytes = 0;
    uint32_t streams = 0;
    uint32_t subscriptions = 0;
    absl::Time last_seen;
  };
  struct AuditState {
    absl::Time last_recorded = absl::InfinitePast();
    uint64_t suppressed = 0;
  };

  Usage& UsageOf(absl::string_view identity, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const Lease& lease);
  void ForgetIdle(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Bounds bounds_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Usage> usage_ ABSL_GUARDED_BY(mu_);
  // By limit; bounded by the limits' own names.
  absl::flat_hash_map<std::string, uint64_t> hits_ ABSL_GUARDED_BY(mu_);
  // By identity and limit ("identity\0limit").
  absl::flat_hash_map<std::string, AuditState> audits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTEXT_IDENTITY_LIMITS_H_
