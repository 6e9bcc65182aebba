#include "delivery/subscription_hub.h"

#include "absl/strings/str_cat.h"
#include "delivery/subscription.h"

namespace ibsm::broker {

SubscriptionHub::SubscriptionHub(size_t max_subscriptions)
    : max_subscriptions_(max_subscriptions) {}

absl::Status SubscriptionHub::Register(
    const std::shared_ptr<Subscription>& sub) {
  // Held, not borrowed: once mu_ is released the superseded stream may
  // finish and unregister itself, and only this reference keeps it alive
  // for the End() below.
  std::shared_ptr<Subscription> superseded;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      return absl::UnavailableError("node is shutting down; retry later");
    }
    if (all_.size() >= max_subscriptions_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("this node serves at most ", max_subscriptions_,
                       " subscriptions; close unused ones or retry later"));
    }
    all_.emplace(sub.get(), sub);
    if (!sub->durable_key().empty()) {
      Subscription*& slot = durable_[sub->durable_key()];
      if (slot != nullptr) {
        // Every durable_ entry is also in all_ (both change under mu_).
        auto it = all_.find(slot);
        if (it != all_.end()) superseded = it->second;
      }
      slot = sub.get();
    }
  }
  if (superseded != nullptr) {
    superseded->End(absl::AbortedError(
        "this durable subscription was taken over by a newer connection"));
  }
  return absl::OkStatus();
}

void SubscriptionHub::Unregister(Subscription* sub) {
  std::shared_ptr<Subscription> keep;  // released outside the lock
  absl::MutexLock lock(&mu_);
  if (!sub->durable_key().empty()) {
    auto it = durable_.find(sub->durable_key());
    if (it != durable_.end() && it->second == sub) durable_.erase(it);
  }
  if (auto it = all_.find(sub); it != all_.end()) {
    keep = std::move(it->second);
    all_.erase(it);
  }
}

void SubscriptionHub::OnCommitted(uint64_t) {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [raw, sub] : all_) subs.push_back(sub);
  }
  for (const auto& sub : subs) sub->Wake();
}

void SubscriptionHub::Shutdown() {
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (const auto& [raw, sub] : all_) subs.push_back(sub);
  }
  for (const auto& sub : subs) {
    sub->End(absl::UnavailableError(
        "node is shutting down; reconnect to resume from your cursor"));
  }
}

size_t SubscriptionHub::size() const {
  absl::MutexLock lock(&mu_);
  return all_.size();
}

std::vector<std::string> SubscriptionHub::DurableKeys() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> keys;
  keys.reserve(durable_.size());
  for (const auto& [key, sub] : durable_) keys.push_back(key);
  return keys;
}

}  // namespace ibsm::broker
