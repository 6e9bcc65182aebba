// The node's event counters for its metrics (docs/operations.md,
// "Monitoring"): publishes answered by outcome and reason, alerts
// delivered, calls refused by reason, and latency histograms of RPCs by
// method. The components that see the events count them here; the metrics
// listener (broker/metrics/) reads a snapshot. Every label set is bounded:
// reasons are gRPC status code names and methods are the node's own, so a
// caller cannot grow the tables. Safe for concurrent use.
#ifndef IBSM_BROKER_CONTEXT_NODE_COUNTERS_H_
#define IBSM_BROKER_CONTEXT_NODE_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ibsm::broker {

// The lower-case name of a status code ("permission_denied", "ok").
std::string StatusCodeLabel(absl::StatusCode code);

class NodeCounters {
 public:
  // The upper bounds (seconds) of the RPC latency buckets.
  static constexpr std::array<double, 12> kLatencyBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

  struct Latency {
    std::array<uint64_t, kLatencyBounds.size()> buckets{};  // not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  // One alert of a publish answered: `status` OK (stored, or `duplicate`
  // of a stored one) or the refusal (its code is the reason).
  void CountPublish(const absl::Status& status, bool duplicate);
  // `alerts` alerts sent to local subscribers.
  void CountDeliveries(uint64_t alerts) { deliveries_ += alerts; }
  // A call refused before it did anything (identity, bad request, limits).
  void CountCallRefused(absl::StatusCode code);
  // A TLS handshake refused (chain, revocation, no certificate).
  void CountHandshakeRefused() { ++handshakes_refused_; }
  // One RPC of `method` ("/ibsm.v1.Publisher/Publish") took `elapsed`.
  void ObserveLatency(absl::string_view method, absl::Duration elapsed);

  // Snapshots. Publishes by (outcome, reason): outcome "accepted",
  // "duplicate" or "refused"; reason a code name ("ok" when accepted).
  std::map<std::pair<std::string, std::string>, uint64_t> Publishes() const;
  std::map<std::string, uint64_t> CallsRefused() const;
  std::map<std::string, Latency> Latencies() const;
  uint64_t deliveries() const { return deliveries_; }
  uint64_t handshakes_refused() const { return handshakes_refused_; }

 private:
  // At most this many methods get a histogram; later ones share "other".
  static constexpr size_t kMaxMethods = 64;

  std::atomic<uint64_t> deliveries_{0};
  std::atomic<uint64_t> handshakes_refused_{0};
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> publishes_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> calls_refused_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Latency> latencies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTEXT_NODE_COUNTERS_H_
