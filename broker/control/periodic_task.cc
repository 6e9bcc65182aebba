#include "control/periodic_task.h"

#include <utility>

namespace ibsm::broker {

PeriodicTask::PeriodicTask(absl::Duration interval, Clock* clock,
                           absl::AnyInvocable<void()> callback)
    : interval_(interval),
      clock_(clock),
      callback_(std::move(callback)),
      next_run_(clock->Now() + interval) {
  thread_ = std::thread([this] { Loop(); });
}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::RunNow() {
  absl::MutexLock lock(&mu_);
  run_now_ = true;
}

void PeriodicTask::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int PeriodicTask::runs() const {
  absl::MutexLock lock(&mu_);
  return runs_;
}

void PeriodicTask::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || run_now_;
      };
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&woken), next_run_);
      if (stopping_) return;
      run_now_ = false;
    }
    callback_();
    next_run_ = clock_->Now() + interval_;
    absl::MutexLock lock(&mu_);
    ++runs_;
  }
}

}  // namespace ibsm::broker
