// What the node's metrics listener exports (docs/operations.md,
// "Monitoring"): one scrape reads the node's counters (NodeCounters,
// IdentityLimits, PeerVerifier), its state (store, committer, hub, audit
// trail, policy, links, health) and its certificate files, and writes them
// in the Prometheus text format (exposition.h). No payload, attribute or
// alert id ever appears; labels are node-controlled names (peer node ids,
// durable subscription names of the node's agencies, limit and code names).
// Safe to call from any thread while the node runs.
#ifndef IBSM_BROKER_METRICS_NODE_METRICS_H_
#define IBSM_BROKER_METRICS_NODE_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace ibsm::broker {

class HealthState;
class NodeContext;
class PolicyWatcher;

struct MetricsSources {
  NodeContext* node = nullptr;            // required
  const HealthState* health = nullptr;    // may be null
  const PolicyWatcher* policy = nullptr;  // null without a policy file
};

// The exposition text of one scrape at `now`.
std::string CollectNodeMetrics(const MetricsSources& sources, absl::Time now);

// The expiry times (Unix seconds) of the certificates in PEM file `path`,
// each with its subject, in file order. Empty when it cannot be read.
struct CertificateExpiry {
  std::string subject;
  int64_t not_after_unix = 0;
};
std::vector<CertificateExpiry> ReadCertificateExpiries(const std::string& path);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_METRICS_NODE_METRICS_H_
