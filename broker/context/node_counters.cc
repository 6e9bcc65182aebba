#include "context/node_counters.h"

#include "absl/strings/ascii.h"

namespace ibsm::broker {

std::string StatusCodeLabel(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

void NodeCounters::CountPublish(const absl::Status& status, bool duplicate) {
  const char* outcome =
      !status.ok() ? "refused" : (duplicate ? "duplicate" : "accepted");
  std::pair<std::string, std::string> key{outcome,
                                          StatusCodeLabel(status.code())};
  absl::MutexLock lock(&mu_);
  ++publishes_[key];
}

void NodeCounters::CountCallRefused(absl::StatusCode code) {
  std::string key = StatusCodeLabel(code);
  absl::MutexLock lock(&mu_);
  ++calls_refused_[key];
}

void NodeCounters::ObserveLatency(absl::string_view method,
                                  absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  absl::MutexLock lock(&mu_);
  auto it = latencies_.find(std::string(method));
  if (it == latencies_.end()) {
    const std::string name = latencies_.size() < kMaxMethods
                                 ? std::string(method)
                                 : std::string("other");
    it = latencies_.try_emplace(name).first;
  }
  Latency& latency = it->second;
  for (size_t i = 0; i < kLatencyBounds.size(); ++i) {
    if (seconds <= kLatencyBounds[i]) {
      ++latency.buckets[i];
      break;
    }
  }
  ++latency.count;
  latency.sum_seconds += seconds;
}

std::map<std::pair<std::string, std::string>, uint64_t>
NodeCounters::Publishes() const {
  absl::MutexLock lock(&mu_);
  return publishes_;
}

std::map<std::string, uint64_t> NodeCounters::CallsRefused() const {
  absl::MutexLock lock(&mu_);
  return calls_refused_;
}

std::map<std::string, NodeCounters::Latency> NodeCounters::Latencies() const {
  absl::MutexLock lock(&mu_);
  return latencies_;
}

}  // namespace ibsm::broker
