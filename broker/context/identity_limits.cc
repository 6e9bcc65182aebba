#include "context/identity_limits.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/internal/v1/config.pb.h"

namespace ibsm::broker {
namespace {

// An idle identity's entry (nothing held, its bucket full again) is kept
// this long after it was last seen, then forgotten.
constexpr absl::Duration kIdleKept = absl::Minutes(5);
constexpr absl::Duration kAuditEvery = absl::Minutes(1);

absl::Status Refusal(absl::string_view identity, absl::string_view field,
                     absl::string_view what) {
  return absl::ResourceExhaustedError(
      absl::StrCat("identity ", identity, " exceeded limits.", field, " (",
                   what, "); slow down or ask the node's operator"));
}

// The config field a refusal names (the text after "limits.").
std::string LimitOf(const absl::Status& refused) {
  absl::string_view message = refused.message();
  const size_t at = message.find("limits.");
  if (at == absl::string_view::npos) return "other";
  absl::string_view rest = message.substr(at + 7);
  return std::string(rest.substr(0, rest.find(' ')));
}

}  // namespace

TokenBucket::TokenBucket(double rate, double burst, absl::Time now)
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now <= last_) return;
  tokens_ =
      std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
  last_ = now;
}

bool TokenBucket::TryTake(double n, absl::Time now) {
  Refill(now);
  if (tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

absl::Duration TokenBucket::TimeUntil(double n, absl::Time now) {
  Refill(now);
  const double missing = std::min(n, burst_) - tokens_;
  if (missing <= 0) return absl::ZeroDuration();
  return absl::Seconds(missing / rate_);
}

IdentityLimits::Bounds IdentityLimits::FromConfig(
    const internal::v1::Limits& limits) {
  // 0 keeps the default, as ApplyDefaults does (a config that did not go
  // through it must not mean "refuse everything").
  Bounds b;
  auto set = [](auto* field, uint64_t value) {
    if (value != 0) *field = static_cast<std::decay_t<decltype(*field)>>(value);
  };
  set(&b.publish_rate, limits.identity_publish_rate());
  b.publish_burst = 2 * b.publish_rate;
  set(&b.publish_burst, limits.identity_publish_burst());
  set(&b.max_inflight_alerts, limits.identity_max_inflight_alerts());
  set(&b.max_inflight_bytes,
      uint64_t{limits.identity_max_inflight_mib()} << 20);
  set(&b.max_streams, limits.identity_max_streams());
  set(&b.max_subscriptions, limits.identity_max_subscriptions());
  return b;
}

IdentityLimits::IdentityLimits(Bounds bounds, Clock* clock)
    : bounds_(bounds), clock_(clock) {}

IdentityLimits::~IdentityLimits() = default;

IdentityLimits::Lease::Lease(IdentityLimits* limits, std::string identity,
                             bool stream, bool subscription, uint64_t alerts,
                             uint64_t bytes)
    : limits_(limits),
      identity_(std::move(identity)),
      stream_(stream),
      subscription_(subscription),
      alerts_(alerts),
      bytes_(bytes) {}

IdentityLimits::Lease::~Lease() { limits_->Release(*this); }

IdentityLimits::Usage& IdentityLimits::UsageOf(absl::string_view identity,
                                               absl::Time now) {
  auto it = usage_.find(identity);
  if (it == usage_.end()) {
    if (usage_.size() >= kMaxIdentities) ForgetIdle(now);
    it = usage_.emplace(std::string(identity), Usage(bounds_, now)).first;
  }
  it->second.last_seen = now;
  return it->second;
}

void IdentityLimits::ForgetIdle(absl::Time now) {
  // Only entries that hold nothing: a lease refers to its entry by name and
  // must find it again. Every identity can hold only so much, and identities
  // come from certificates the node's CA issued, so this stays small.
  std::vector<std::string> idle;
  for (const auto& [id, u] : usage_) {
    if (u.inflight_alerts == 0 && u.streams == 0 &&
        now - u.last_seen > kIdleKept) {
      idle.push_back(id);
    }
  }
  for (const std::string& id : idle) usage_.erase(id);
  if (audits_.size() > kMaxIdentities) audits_.clear();
}

absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>>
IdentityLimits::AdmitPublish(absl::string_view identity, uint64_t alerts,
                             uint64_t bytes) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Usage& u = UsageOf(identity, now);
  if (u.inflight_alerts + alerts > bounds_.max_inflight_alerts) {
    return Refusal(identity, "identity_max_inflight_alerts",
                   absl::StrCat(bounds_.max_inflight_alerts,
                                " alerts accepted and not yet answered"));
  }
  if (u.inflight_bytes + bytes > bounds_.max_inflight_bytes) {
    return Refusal(identity, "identity_max_inflight_mib",
                   absl::StrCat(bounds_.max_inflight_bytes >> 20,
                                " MiB accepted and not yet answered"));
  }
  if (alerts > bounds_.publish_burst) {
    return Refusal(identity, "identity_publish_burst",
                   absl::StrCat("a request of ", alerts,
                                " alerts is more than the burst of ",
                                bounds_.publish_burst, "; send smaller ones"));
  }
  if (!u.bucket.TryTake(static_cast<double>(alerts), now)) {
    return Refusal(identity, "identity_publish_rate",
                   absl::StrCat(bounds_.publish_rate, " alerts/s, bursts of ",
                                bounds_.publish_burst));
  }
  u.inflight_alerts += alerts;
  u.inflight_bytes += bytes;
  return std::unique_ptr<Lease>(
      new Lease(this, std::string(identity), false, false, alerts, bytes));
}

absl::Duration IdentityLimits::PublishWait(absl::string_view identity,
                                           uint64_t alerts) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  return UsageOf(identity, now)
      .bucket.TimeUntil(static_cast<double>(alerts), now);
}

absl::StatusOr<std::unique_ptr<IdentityLimits::Lease>>
IdentityLimits::AdmitStream(absl::string_view identity, bool subscription) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Usage& u = UsageOf(identity, now);
  if (u.streams >= bounds_.max_streams) {
    return Refusal(identity, "identity_max_streams",
                   absl::StrCat(bounds_.max_streams,
                                " open publish streams and subscriptions"));
  }
  if (subscription && u.subscriptions >= bounds_.max_subscriptions) {
    return Refusal(
        identity, "identity_max_subscriptions",
        absl::StrCat(bounds_.max_subscriptions, " open subscriptions"));
  }
  ++u.streams;
  if (subscription) ++u.subscriptions;
  return std::unique_ptr<Lease>(
      new Lease(this, std::string(identity), true, subscription, 0, 0));
}

void IdentityLimits::Release(const Lease& lease) {
  absl::MutexLock lock(&mu_);
  auto it = usage_.find(lease.identity_);
  if (it == usage_.end()) return;  // cannot happen: held entries are kept
  Usage& u = it->second;
  u.inflight_alerts -= std::min(u.inflight_alerts, lease.alerts_);
  u.inflight_bytes -= std::min(u.inflight_bytes, lease.bytes_);
  if (lease.stream_ && u.streams > 0) --u.streams;
  if (lease.subscription_ && u.subscriptions > 0) --u.subscriptions;
}

bool IdentityLimits::ShouldAudit(absl::string_view identity,
                                 const absl::Status& refused,
                                 std::string* note) {
  const absl::Time now = clock_->Now();
  const std::string limit = LimitOf(refused);
  absl::MutexLock lock(&mu_);
  ++hits_[limit];
  AuditState& a = audits_[absl::StrCat(identity, std::string(1, '\0'), limit)];
  if (now - a.last_recorded < kAuditEvery) {
    ++a.suppressed;
    return false;
  }
  note->clear();
  if (a.suppressed > 0) {
    *note = absl::StrCat("; ", a.suppressed,
                         " more refusals of this limit since the last record");
  }
  a.last_recorded = now;
  a.suppressed = 0;
  return true;
}

absl::flat_hash_map<std::string, uint64_t> IdentityLimits::Hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

}  // namespace ibsm::broker
