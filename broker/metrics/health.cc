#include "metrics/health.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "logging/event_log.h"
#include "storage/store.h"

namespace ibsm::broker {

HealthState::HealthState() = default;

std::string HealthState::ReasonLocked() const {
  if (stopping_) return "the node is shutting down";
  if (!started_) return "starting: the store is not open yet";
  return store_problem_;
}

std::string HealthState::NotServingReason() const {
  absl::ReaderMutexLock lock(&mu_);
  return ReasonLocked();
}

void HealthState::SetStarted() {
  std::string before = NotServingReason();
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
  }
  Changed(before);
}

void HealthState::SetStoreProblem(std::string problem) {
  std::string before = NotServingReason();
  {
    absl::MutexLock lock(&mu_);
    store_problem_ = std::move(problem);
  }
  Changed(before);
}

void HealthState::SetStopping() {
  std::string before = NotServingReason();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Changed(before);
}

void HealthState::OnChange(std::function<void(bool serving)> listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

void HealthState::Changed(const std::string& before) {
  std::vector<std::function<void(bool)>> listeners;
  std::string now;
  {
    absl::ReaderMutexLock lock(&mu_);
    now = ReasonLocked();
    listeners = listeners_;
  }
  if (now == before) return;
  // The start and the stop say so in lines of their own.
  const bool quiet =
      before.rfind("starting:", 0) == 0 || now == "the node is shutting down";
  if (!quiet) {
    LogEvent(now.empty() ? std::string("health: SERVING")
                         : absl::StrCat("health: NOT_SERVING: ", now));
  }
  for (const auto& listener : listeners) listener(now.empty());
}

std::string CheckStoreHealth(const Store& store) {
  absl::StatusOr<uint64_t> free = store.FreeBytes();
  if (!free.ok()) {
    return absl::StrCat("cannot read the free space of the data directory: ",
                        free.status().message());
  }
  if (*free < kMinFreeDiskBytes) {
    return absl::StrCat("disk full: ", *free,
                        " bytes free in the data directory (the node needs at "
                        "least ",
                        kMinFreeDiskBytes, ")");
  }
  if (store.Stats().write_stopped) {
    return "RocksDB stopped writes (too many files waiting for compaction)";
  }
  return "";
}

HealthMonitor::HealthMonitor(const Store* store, HealthState* state,
                             absl::Duration interval, Clock* clock)
    : store_(store),
      state_(state),
      task_(interval, clock, [this] { CheckNow(); }) {
  CheckNow();
}

void HealthMonitor::CheckNow() {
  state_->SetStoreProblem(CheckStoreHealth(*store_));
}

}  // namespace ibsm::broker
