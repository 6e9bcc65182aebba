#include "storage/outbox.h"

#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "storage/store.h"

namespace ibsm::broker {

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Load(
    const Store& store, absl::flat_hash_map<std::string, OutboxBounds> bounds) {
  // Built without the lock, then handed over: nothing else sees it yet.
  absl::flat_hash_map<std::string, PeerQueue> peers;
  for (auto& [peer, b] : bounds) {
    PeerQueue& q = peers[peer];
    q.bounds = b;
    q.configured = true;
  }
  absl::Status bad = absl::OkStatus();
  absl::Status scanned = store.Scan(
      Family::kOutbox, "", std::numeric_limits<size_t>::max(),
      [&](absl::string_view key, absl::string_view value) {
        std::optional<OutboxKey> k = DecodeOutboxKey(key);
        internal::v1::OutboxEntry entry;
        if (!k || !entry.ParseFromArray(value.data(),
                                        static_cast<int>(value.size()))) {
          bad = absl::DataLossError(absl::StrCat(
              "the outbox holds an entry that does not parse (key ",
              absl::CHexEscape(key.substr(0, 64)), ")"));
          return false;
        }
        PeerQueue& q = peers[k->peer];
        auto [it, inserted] = q.items.emplace(
            std::make_pair(static_cast<uint8_t>(k->priority), k->sequence),
            entry.bytes());
        if (inserted) {
          ++q.counts[static_cast<int>(k->priority)];
          q.bytes += entry.bytes();
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (!bad.ok()) return bad;
  auto outbox = std::make_unique<Outbox>();
  absl::MutexLock lock(&outbox->mu_);
  outbox->peers_ = std::move(peers);
  return outbox;
}

std::vector<std::pair<std::string, uint64_t>> Outbox::Unconfigured() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& [peer, q] : peers_) {
    if (!q.configured && !q.items.empty()) {
      out.emplace_back(peer, q.items.size());
    }
  }
  return out;
}

bool Outbox::Fits(const std::string& peer, uint64_t alerts,
                  uint64_t bytes) const {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.configured) return false;
  const PeerQueue& q = it->second;
  return q.items.size() + alerts <= q.bounds.max_alerts &&
         q.bytes + bytes <= q.bounds.max_bytes;
}

OutboxBounds Outbox::BoundsOf(const std::string& peer) const {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer);
  return it == peers_.end() ? OutboxBounds{} : it->second.bounds;
}

OutboxBacklog Outbox::Backlog(const std::string& peer) const {
  absl::MutexLock lock(&mu_);
  OutboxBacklog backlog;
  auto it = peers_.find(peer);
  if (it == peers_.end()) return backlog;
  backlog.alerts = it->second.counts;
  backlog.bytes = it->second.bytes;
  backlog.bounds = it->second.bounds;
  return backlog;
}

void Outbox::Added(const std::vector<OutboxKey>& keys,
                   const std::vector<uint64_t>& bytes) {
  std::vector<std::function<void()>> wake;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_set<std::string> woken;
    for (size_t i = 0; i < keys.size(); ++i) {
      PeerQueue& q = peers_[keys[i].peer];
      auto [it, inserted] =
          q.items.emplace(std::make_pair(static_cast<uint8_t>(keys[i].priority),
                                         keys[i].sequence),
                          bytes[i]);
      if (!inserted) continue;
      ++q.counts[static_cast<int>(keys[i].priority)];
      q.bytes += bytes[i];
      if (q.listener && woken.insert(keys[i].peer).second) {
        wake.push_back(q.listener);
      }
    }
  }
  for (auto& w : wake) w();
}

void Outbox::Removed(const std::vector<OutboxKey>& keys) {
  absl::MutexLock lock(&mu_);
  for (const OutboxKey& k : keys) {
    auto p = peers_.find(k.peer);
    if (p == peers_.end()) continue;
    PeerQueue& q = p->second;
    auto it = q.items.find(
        std::make_pair(static_cast<uint8_t>(k.priority), k.sequence));
    if (it == q.items.end()) continue;
    --q.counts[static_cast<int>(k.priority)];
    q.bytes -= it->second;
    q.items.erase(it);
  }
}

std::vector<OutboxItem> Outbox::Next(const std::string& peer,
                                     const absl::flat_hash_set<uint64_t>& skip,
                                     size_t max) const {
  std::vector<OutboxItem> out;
  absl::MutexLock lock(&mu_);
  auto p = peers_.find(peer);
  if (p == peers_.end()) return out;
  for (const auto& [key, bytes] : p->second.items) {
    if (out.size() >= max) break;
    if (skip.contains(key.second)) continue;
    out.push_back(
        OutboxItem{static_cast<OutboxPriority>(key.first), key.second, bytes});
  }
  return out;
}

bool Outbox::Holds(const std::string& peer, OutboxPriority priority,
                   uint64_t sequence) const {
  absl::MutexLock lock(&mu_);
  auto p = peers_.find(peer);
  return p != peers_.end() && p->second.items.contains(std::make_pair(
                                  static_cast<uint8_t>(priority), sequence));
}

void Outbox::SetListener(const std::string& peer,
                         std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  peers_[peer].listener = std::move(listener);
}

}  // namespace ibsm::broker
