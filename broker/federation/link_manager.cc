#include "federation/link_manager.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "federation/ingress.h"
#include "ibsm/alert_signature.h"
#include "ibsm/internal/v1/config.pb.h"
#include "ibsm/internal/v1/federation.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "logging/event_log.h"
#include "publish/committer.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/outbox.h"
#include "storage/store.h"

namespace ibsm::broker {

using google::protobuf::util::TimeUtil;
using internal::v1::LinkAck;
using internal::v1::LinkFrame;
using internal::v1::LinkGoodbye;
using internal::v1::LinkHello;

namespace {

// A peer that connects and never says Hello does not hold a thread.
constexpr absl::Duration kHandshakeTimeout = absl::Seconds(10);
// Offers put into one frame, by their serialized size.
constexpr size_t kMaxOfferFrameBytes = 1 << 20;
// Offers a peer may have sent us that we have not acknowledged yet; a
// well-behaved peer stays within its window, far below.
constexpr size_t kMaxPendingOffers = 4096;
// How long an alert the peer answered RETRY_LATER waits before it is
// offered again.
constexpr absl::Duration kRetryLaterPause = absl::Seconds(2);
// How often a writer with nothing to do looks at the clock (heartbeats,
// deferred offers, an idle peer).
constexpr absl::Duration kWriterTick = absl::Milliseconds(200);

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

LinkFrame Goodbye(LinkGoodbye::Reason reason, std::string message) {
  LinkFrame frame;
  frame.mutable_goodbye()->set_reason(reason);
  frame.mutable_goodbye()->set_message(std::move(message));
  return frame;
}

// The alert at `sequence` of the log, or nullopt when it is not there.
absl::StatusOr<std::optional<internal::v1::StoredAlert>> ReadStoredAlert(
    const NodeContext& node, uint64_t sequence) {
  std::vector<std::shared_ptr<const LogRecord>> cached;
  if (node.cache()->Read(sequence, 1, &cached) && !cached.empty() &&
      cached[0]->sequence == sequence) {
    return std::optional<internal::v1::StoredAlert>(cached[0]->stored);
  }
  return node.store()->GetAlert(sequence);
}

}  // namespace

// One offer sent and not yet acknowledged, with what its audit record
// needs.
struct InFlight {
  OutboxKey key;
  std::string alert_id;
  std::string originator;
  std::string topic;
  std::string classification;
  std::string chain;  // fingerprint, to resend the chain on CHAIN_UNKNOWN
};

// The state of one stream; shared with the Committer's callbacks, which
// may run after the session ended. Guarded by the PeerLink's mutex.
struct Session {
  LinkStream* stream = nullptr;
  bool closing = false;
  bool wake = false;
  absl::CondVar cv;
  std::vector<LinkAck> acks_out;
  size_t pending_in = 0;
  absl::flat_hash_map<uint64_t, InFlight> in_flight;
  absl::flat_hash_set<std::string> sent_chains;
  absl::Time last_received;
};

class PeerLink {
 public:
  PeerLink(const internal::v1::PeerConfig& config, NodeContext* node,
           Outbox* outbox, std::string software)
      : config_(config),
        node_(node),
        outbox_(outbox),
        ingress_(node),
        software_(std::move(software)),
        self_(node->config().node_id()),
        window_(node->config().federation().window()),
        heartbeat_(
            absl::Seconds(node->config().federation().heartbeat_seconds())) {}

  const internal::v1::PeerConfig& config() const { return config_; }
  const std::string& peer() const { return config_.node_id(); }

  bool up() const {
    absl::MutexLock lock(&mu_);
    return active_ != nullptr;
  }

  void Wake() {
    absl::MutexLock lock(&mu_);
    if (active_ == nullptr) return;
    active_->wake = true;
    active_->cv.Signal();
  }

  void SetConnecting() {
    absl::MutexLock lock(&mu_);
    if (active_ == nullptr) state_ = v1::LinkInfo::CONNECTING;
  }

  void SetFailed(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (active_ != nullptr) return;
    state_ =
        absl::IsPermissionDenied(status) || absl::IsFailedPrecondition(status)
            ? v1::LinkInfo::REFUSED
            : v1::LinkInfo::DOWN;
    last_error_ = std::string(status.message());
  }

  // Ends the live session and any handshake in progress.
  void CancelAll() {
    absl::MutexLock lock(&mu_);
    for (LinkStream* stream : streams_) stream->Cancel();
  }

  // Runs one session on `stream`; true when the handshake succeeded.
  bool RunSession(LinkStream* stream, bool dialled,
                  const std::atomic<bool>& stopping);

  v1::LinkInfo Info() const;

 private:
  absl::StatusOr<LinkHello> Handshake(LinkStream* stream, bool dialled);
  bool WriteFrame(LinkStream* stream, const LinkFrame& frame) {
    bytes_sent_.fetch_add(frame.ByteSizeLong(), std::memory_order_relaxed);
    return stream->Write(frame);
  }
  void WriterLoop(const std::shared_ptr<Session>& s);
  // Turns outbox items into offers; items whose alert is gone are removed.
  std::vector<internal::v1::LinkOffer> BuildOffers(
      const std::shared_ptr<Session>& s, const std::vector<OutboxItem>& items);
  void HandleAcks(const std::shared_ptr<Session>& s,
                  const internal::v1::LinkAcks& acks);
  // Deletes outbox entries with their SEND records.
  void Remove(std::vector<OutboxKey> keys,
              std::vector<v1::AuditRecord> records);
  v1::AuditRecord SendRecord(const InFlight& f, bool allowed,
                             absl::string_view reason) const;
  void AuditLink(v1::AuditAction action, std::string reason,
                 bool allowed = true) const;
  // A link refused at the handshake (certificate, version, not a peer), as
  // AUDIT_FEDERATION_LINK_DOWN allowed=false: once per reason per minute,
  // because a dialling side retries a refused link on its own.
  void AuditRefusal(const absl::Status& status);

  const internal::v1::PeerConfig config_;
  NodeContext* const node_;
  Outbox* const outbox_;
  const Ingress ingress_;
  const std::string software_;
  const std::string self_;
  const size_t window_;
  const absl::Duration heartbeat_;

  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> alerts_sent_{0};
  std::atomic<uint64_t> alerts_received_{0};
  std::atomic<uint64_t> alerts_refused_{0};

  mutable absl::Mutex mu_;
  std::shared_ptr<Session> active_ ABSL_GUARDED_BY(mu_);
  std::vector<LinkStream*> streams_ ABSL_GUARDED_BY(mu_);
  v1::LinkInfo::State state_ ABSL_GUARDED_BY(mu_) = v1::LinkInfo::CONNECTING;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_contact_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time up_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint32_t protocol_version_ ABSL_GUARDED_BY(mu_) = 0;
  std::string peer_software_ ABSL_GUARDED_BY(mu_);
  std::string peer_policy_version_ ABSL_GUARDED_BY(mu_);
  // Sequences acknowledged (or gone) whose outbox entry is being deleted:
  // never offered again meanwhile, whichever session is live.
  absl::flat_hash_set<uint64_t> removing_ ABSL_GUARDED_BY(mu_);
  std::string last_refusal_ ABSL_GUARDED_BY(mu_);
  absl::Time last_refusal_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Sequences the peer answered RETRY_LATER, and when to offer them again.
  absl::flat_hash_map<uint64_t, absl::Time> deferred_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<LinkHello> PeerLink::Handshake(LinkStream* stream,
                                              bool dialled) {
  LinkFrame mine;
  LinkHello* hello = mine.mutable_hello();
  hello->set_min_version(kLinkProtocolMinVersion);
  hello->set_max_version(kLinkProtocolMaxVersion);
  hello->set_node_id(self_);
  hello->set_software_version(software_);
  hello->set_policy_version(node_->authorizer()->version());
  if (dialled && !WriteFrame(stream, mine)) {
    return absl::UnavailableError(
        absl::StrCat(peer(), " closed the stream before the handshake"));
  }
  LinkFrame theirs;
  if (!stream->Read(&theirs)) {
    return absl::UnavailableError(
        absl::StrCat("the stream to ", peer(),
                     " ended (or timed out) during the handshake"));
  }
  bytes_received_.fetch_add(theirs.ByteSizeLong(), std::memory_order_relaxed);
  if (theirs.has_goodbye()) {
    return absl::PermissionDeniedError(absl::StrCat(
        peer(), " refused the link: ", theirs.goodbye().message()));
  }
  if (!theirs.has_hello()) {
    WriteFrame(stream, Goodbye(LinkGoodbye::PROTOCOL_ERROR,
                               "the first frame must be a Hello"));
    return absl::InvalidArgumentError(
        absl::StrCat(peer(), " did not start with a Hello"));
  }
  if (dialled) {
    if (absl::Status checked = stream->CheckPeer(peer()); !checked.ok()) {
      return checked;
    }
  }
  const LinkHello& h = theirs.hello();
  if (h.node_id() != peer()) {
    WriteFrame(stream,
               Goodbye(LinkGoodbye::PROTOCOL_ERROR,
                       absl::StrCat("your certificate says ", peer(),
                                    " but your Hello says ", h.node_id())));
    return absl::PermissionDeniedError(
        absl::StrCat("the Hello of ", peer(), " names node ", h.node_id()));
  }
  const uint32_t version = std::min(kLinkProtocolMaxVersion, h.max_version());
  if (version < std::max(kLinkProtocolMinVersion, h.min_version())) {
    std::string why =
        absl::StrCat("no common link protocol version: ", self_, " speaks ",
                     kLinkProtocolMinVersion, "..", kLinkProtocolMaxVersion,
                     ", ", peer(), " speaks ", h.min_version(), "..",
                     h.max_version(), "; upgrade the older node");
    WriteFrame(stream, Goodbye(LinkGoodbye::INCOMPATIBLE_VERSION, why));
    return absl::FailedPreconditionError(why);
  }
  if (!dialled && !WriteFrame(stream, mine)) {
    return absl::UnavailableError(
        absl::StrCat(peer(), " closed the stream during the handshake"));
  }
  LinkHello agreed = h;
  agreed.set_max_version(version);  // the version in use
  return agreed;
}

bool PeerLink::RunSession(LinkStream* stream, bool dialled,
                          const std::atomic<bool>& stopping) {
  {
    absl::MutexLock lock(&mu_);
    streams_.push_back(stream);
  }
  auto forget_stream = [&] {
    absl::MutexLock lock(&mu_);
    streams_.erase(std::find(streams_.begin(), streams_.end(), stream));
  };
  absl::Notification handshake_done;
  std::thread watchdog([&] {
    if (!handshake_done.WaitForNotificationWithTimeout(kHandshakeTimeout)) {
      stream->Cancel();
    }
  });
  absl::StatusOr<LinkHello> hello = Handshake(stream, dialled);
  handshake_done.Notify();
  watchdog.join();
  if (!hello.ok()) {
    LogEvent(absl::StrCat("federation link to ", peer(),
                          " not established: ", hello.status().message()));
    SetFailed(hello.status());
    AuditRefusal(hello.status());
    forget_stream();
    return false;
  }
  auto s = std::make_shared<Session>();
  s->stream = stream;
  s->last_received = absl::Now();
  s->wake = true;  // offer what the outbox holds at once, not after a tick
  {
    absl::MutexLock lock(&mu_);
    if (active_ != nullptr) {
      // A newer stream of the same peer (it reconnected before this node
      // saw the old one break) takes over.
      active_->closing = true;
      active_->cv.SignalAll();
      active_->stream->Cancel();
    }
    active_ = s;
    state_ = v1::LinkInfo::UP;
    up_since_ = last_contact_ = absl::Now();
    protocol_version_ = hello->max_version();
    peer_software_ = hello->software_version().substr(0, 128);
    peer_policy_version_ = hello->policy_version().substr(0, 128);
    last_error_.clear();
  }
  LogEvent(absl::StrCat("federation link to ", peer(), " up (",
                        dialled ? "dialled" : "accepted", ", protocol ",
                        hello->max_version(), ")"));
  AuditLink(
      v1::AUDIT_FEDERATION_LINK_UP,
      absl::StrCat("link to ", peer(), " up: protocol ", hello->max_version(),
                   ", ", dialled ? "dialled by " : "accepted by ", self_,
                   ", peer software ", hello->software_version().substr(0, 128),
                   ", peer certificate SHA-256 ",
                   stream->PeerCertificateSha256()));
  std::thread writer([this, s] { WriterLoop(s); });

  ChainCache chains;
  LinkFrame frame;
  std::string ended = "the stream ended";
  while (!stopping.load() && stream->Read(&frame)) {
    bytes_received_.fetch_add(frame.ByteSizeLong(), std::memory_order_relaxed);
    {
      absl::MutexLock lock(&mu_);
      s->last_received = absl::Now();
      if (active_ == s) last_contact_ = s->last_received;
    }
    if (frame.has_offers()) {
      const size_t n = frame.offers().offers_size();
      {
        absl::MutexLock lock(&mu_);
        if (s->pending_in + n > kMaxPendingOffers) {
          ended = absl::StrCat(peer(), " sent more than ", kMaxPendingOffers,
                               " offers without waiting for acknowledgements");
          break;
        }
        s->pending_in += n;
      }
      ingress_.Receive(
          peer(), std::move(*frame.mutable_offers()), &chains,
          [this, s, n](std::vector<LinkAck> acks) {
            uint64_t stored = 0, refused = 0;
            for (const LinkAck& a : acks) {
              if (a.result() == LinkAck::STORED) ++stored;
              if (a.result() == LinkAck::REFUSED) ++refused;
            }
            alerts_received_.fetch_add(stored, std::memory_order_relaxed);
            alerts_refused_.fetch_add(refused, std::memory_order_relaxed);
            absl::MutexLock lock(&mu_);
            s->pending_in -= n;
            for (LinkAck& a : acks) s->acks_out.push_back(std::move(a));
            s->cv.Signal();
          });
    } else if (frame.has_acks()) {
      HandleAcks(s, frame.acks());
    } else if (frame.has_heartbeat()) {
      // last_received was updated above.
    } else if (frame.has_goodbye()) {
      ended = absl::StrCat(peer(), " ended the link: ",
                           frame.goodbye().message().substr(0, 256));
      break;
    } else {
      ended = absl::StrCat(peer(), " sent an unexpected frame");
      break;
    }
  }
  if (stopping.load()) ended = absl::StrCat(self_, " is shutting down");
  bool replaced = false;
  {
    absl::MutexLock lock(&mu_);
    s->closing = true;
    s->cv.SignalAll();
    if (active_ == s) {
      active_ = nullptr;
      state_ = v1::LinkInfo::DOWN;
      if (last_error_.empty()) last_error_ = ended;
    } else {
      replaced = true;
    }
  }
  stream->Cancel();
  writer.join();
  forget_stream();
  {
    absl::MutexLock lock(&mu_);
    if (!replaced && !last_error_.empty()) ended = last_error_;
  }
  if (replaced) ended = "replaced by a newer stream from the same peer";
  LogEvent(absl::StrCat("federation link to ", peer(), " down: ", ended));
  AuditLink(v1::AUDIT_FEDERATION_LINK_DOWN,
            absl::StrCat("link to ", peer(), " down: ", ended));
  return true;
}

void PeerLink::WriterLoop(const std::shared_ptr<Session>& s) {
  LinkStream* stream = s->stream;
  absl::Time next_heartbeat = absl::Now() + heartbeat_;
  for (;;) {
    std::vector<LinkAck> acks;
    std::vector<OutboxItem> items;
    {
      absl::MutexLock lock(&mu_);
      if (!s->closing && s->acks_out.empty() && !s->wake) {
        s->cv.WaitWithTimeout(&mu_, kWriterTick);
      }
      if (s->closing) return;
      s->wake = false;
      acks.swap(s->acks_out);
      const absl::Time now = absl::Now();
      if (now - s->last_received > 4 * heartbeat_) {
        last_error_ = absl::StrCat("nothing received from ", peer(), " for ",
                                   absl::FormatDuration(now - s->last_received),
                                   "; reconnecting");
        stream->Cancel();
        return;
      }
      if (s->in_flight.size() < window_) {
        absl::flat_hash_set<uint64_t> skip = removing_;
        for (const auto& [seq, f] : s->in_flight) skip.insert(seq);
        for (auto it = deferred_.begin(); it != deferred_.end();) {
          if (it->second <= now) {
            deferred_.erase(it++);
          } else {
            skip.insert(it->first);
            ++it;
          }
        }
        items = outbox_->Next(peer(), skip, window_ - s->in_flight.size());
        for (const OutboxItem& item : items) {
          s->in_flight[item.sequence].key =
              OutboxKey{peer(), item.priority, item.sequence};
        }
      }
    }
    bool wrote = false;
    if (!acks.empty()) {
      LinkFrame frame;
      for (LinkAck& a : acks) *frame.mutable_acks()->add_acks() = std::move(a);
      if (!WriteFrame(stream, frame)) break;
      wrote = true;
    }
    if (!items.empty()) {
      std::vector<internal::v1::LinkOffer> offers = BuildOffers(s, items);
      LinkFrame frame;
      size_t frame_bytes = 0;
      bool failed = false;
      for (size_t i = 0; i < offers.size(); ++i) {
        const size_t bytes = offers[i].ByteSizeLong();
        if (frame_bytes > 0 && frame_bytes + bytes > kMaxOfferFrameBytes) {
          if (!WriteFrame(stream, frame)) {
            failed = true;
            break;
          }
          frame.Clear();
          frame_bytes = 0;
        }
        *frame.mutable_offers()->add_offers() = std::move(offers[i]);
        frame_bytes += bytes;
      }
      if (failed) break;
      if (frame_bytes > 0) {
        if (!WriteFrame(stream, frame)) break;
        wrote = true;
      }
    }
    const absl::Time now = absl::Now();
    if (!wrote && now >= next_heartbeat) {
      LinkFrame frame;
      frame.mutable_heartbeat();
      if (!WriteFrame(stream, frame)) break;
      wrote = true;
    }
    if (wrote) next_heartbeat = now + heartbeat_;
  }
  stream->Cancel();
}

std::vector<internal::v1::LinkOffer> PeerLink::BuildOffers(
    const std::shared_ptr<Session>& s, const std::vector<OutboxItem>& items) {
  std::vector<internal::v1::LinkOffer> offers;
  std::vector<OutboxKey> gone;
  std::vector<v1::AuditRecord> gone_records;
  for (const OutboxItem& item : items) {
    absl::StatusOr<std::optional<internal::v1::StoredAlert>> stored =
        ReadStoredAlert(*node_, item.sequence);
    absl::MutexLock lock(&mu_);
    auto f = s->in_flight.find(item.sequence);
    if (f == s->in_flight.end()) continue;
    if (!stored.ok()) {
      // Not sent now; offered again later.
      last_error_ =
          absl::StrCat("reading alert ", item.sequence,
                       " to send it failed: ", stored.status().message());
      s->in_flight.erase(f);
      deferred_[item.sequence] = absl::Now() + kRetryLaterPause;
      continue;
    }
    if (!stored->has_value()) {
      InFlight expired = f->second;
      s->in_flight.erase(f);
      removing_.insert(item.sequence);
      gone.push_back(expired.key);
      gone_records.push_back(SendRecord(
          expired, false,
          absl::StrCat("not sent to ", peer(),
                       ": the alert expired (removed from the log) before "
                       "it could be sent")));
      continue;
    }
    const v1::Alert& alert = (*stored)->alert();
    InFlight& facts = f->second;
    facts.alert_id = alert.id();
    facts.originator = alert.originator();
    facts.topic = alert.topic();
    facts.classification = alert.classification();
    internal::v1::LinkOffer& offer = offers.emplace_back();
    offer.set_id(item.sequence);
    *offer.mutable_alert() = alert;
    facts.chain = SigningChainSha256(alert);
    offer.set_chain_sha256(facts.chain);
    if (!s->sent_chains.insert(facts.chain).second) {
      offer.mutable_alert()->clear_signing_chain();
    }
    *offer.mutable_hops() = (*stored)->hops();
    offer.add_hops(self_);
  }
  if (!gone.empty()) Remove(std::move(gone), std::move(gone_records));
  return offers;
}

void PeerLink::HandleAcks(const std::shared_ptr<Session>& s,
                          const internal::v1::LinkAcks& acks) {
  std::vector<OutboxKey> keys;
  std::vector<v1::AuditRecord> records;
  {
    absl::MutexLock lock(&mu_);
    for (const LinkAck& ack : acks.acks()) {
      auto it = s->in_flight.find(ack.id());
      if (it == s->in_flight.end()) continue;  // stale: not ours any more
      InFlight f = std::move(it->second);
      s->in_flight.erase(it);
      const std::string reason(absl::string_view(ack.reason()).substr(0, 512));
      switch (ack.result()) {
        case LinkAck::STORED:
        case LinkAck::DUPLICATE:
          alerts_sent_.fetch_add(1, std::memory_order_relaxed);
          removing_.insert(f.key.sequence);
          records.push_back(
              SendRecord(f, true,
                         ack.result() == LinkAck::STORED
                             ? absl::StrCat("stored by ", peer())
                             : absl::StrCat(peer(), " held it already")));
          keys.push_back(f.key);
          break;
        case LinkAck::REFUSED:
          alerts_refused_.fetch_add(1, std::memory_order_relaxed);
          removing_.insert(f.key.sequence);
          records.push_back(SendRecord(
              f, false, absl::StrCat("refused by ", peer(), ": ", reason)));
          keys.push_back(f.key);
          break;
        case LinkAck::CHAIN_UNKNOWN:
          s->sent_chains.erase(f.chain);
          break;
        default:  // RETRY_LATER, or a result of a newer release
          deferred_[f.key.sequence] = absl::Now() + kRetryLaterPause;
          last_error_ = absl::StrCat(peer(), " asked to retry later: ", reason);
          break;
      }
    }
    s->wake = true;
    s->cv.Signal();
  }
  if (!keys.empty()) Remove(std::move(keys), std::move(records));
}

void PeerLink::Remove(std::vector<OutboxKey> keys,
                      std::vector<v1::AuditRecord> records) {
  std::vector<uint64_t> sequences;
  for (const OutboxKey& k : keys) sequences.push_back(k.sequence);
  node_->committer()->RemoveOutbox(std::move(keys), std::move(records),
                                   [this, sequences = std::move(sequences)] {
                                     absl::MutexLock lock(&mu_);
                                     for (uint64_t seq : sequences)
                                       removing_.erase(seq);
                                   });
}

v1::AuditRecord PeerLink::SendRecord(const InFlight& f, bool allowed,
                                     absl::string_view reason) const {
  v1::AuditRecord r =
      AuditEvent(v1::AUDIT_FEDERATION_SEND, self_, allowed, reason);
  r.set_alert_id(f.alert_id);
  r.set_originator(f.originator);
  r.set_topic(f.topic);
  r.set_classification(f.classification);
  r.set_sequence(f.key.sequence);
  r.set_recipient(peer());
  return r;
}

void PeerLink::AuditRefusal(const absl::Status& status) {
  if (!absl::IsPermissionDenied(status) &&
      !absl::IsFailedPrecondition(status) && !absl::IsInvalidArgument(status)) {
    return;  // the stream broke: not a refusal
  }
  const std::string reason =
      absl::StrCat("link to ", peer(), " refused: ", status.message());
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (reason == last_refusal_ && now - last_refusal_at_ < absl::Minutes(1)) {
      return;
    }
    last_refusal_ = reason;
    last_refusal_at_ = now;
  }
  AuditLink(v1::AUDIT_FEDERATION_LINK_DOWN, reason, /*allowed=*/false);
}

void PeerLink::AuditLink(v1::AuditAction action, std::string reason,
                         bool allowed) const {
  v1::AuditRecord r = AuditEvent(action, self_, allowed, reason);
  r.set_recipient(peer());
  node_->committer()->Audit(std::move(r));
}

v1::LinkInfo PeerLink::Info() const {
  v1::LinkInfo info;
  info.set_peer(peer());
  info.set_address(config_.address());
  OutboxBacklog backlog = outbox_->Backlog(peer());
  info.set_backlog_critical(backlog.alerts[0]);
  info.set_backlog_high(backlog.alerts[1]);
  info.set_backlog_other(backlog.alerts[2]);
  info.set_backlog_bytes(backlog.bytes);
  info.set_max_backlog_alerts(backlog.bounds.max_alerts);
  info.set_max_backlog_bytes(backlog.bounds.max_bytes);
  info.set_bytes_sent(bytes_sent_.load(std::memory_order_relaxed));
  info.set_bytes_received(bytes_received_.load(std::memory_order_relaxed));
  info.set_alerts_sent(alerts_sent_.load(std::memory_order_relaxed));
  info.set_alerts_received(alerts_received_.load(std::memory_order_relaxed));
  info.set_alerts_refused(alerts_refused_.load(std::memory_order_relaxed));
  absl::MutexLock lock(&mu_);
  info.set_state(state_);
  if (last_contact_ != absl::InfinitePast()) {
    *info.mutable_last_contact() = ToProto(last_contact_);
  }
  if (active_ != nullptr) {
    *info.mutable_up_since() = ToProto(up_since_);
    info.set_protocol_version(protocol_version_);
    info.set_in_flight(active_->in_flight.size());
  }
  info.set_last_error(last_error_);
  info.set_peer_software(peer_software_);
  info.set_peer_policy_version(peer_policy_version_);
  return info;
}

LinkManager::LinkManager(NodeContext* node, Outbox* outbox, Dialer dialer,
                         std::string software_version)
    : node_(node),
      outbox_(outbox),
      dialer_(std::move(dialer)),
      software_version_(std::move(software_version)) {
  for (const internal::v1::PeerConfig& peer :
       node->config().federation().peers()) {
    links_.push_back(
        std::make_unique<PeerLink>(peer, node, outbox, software_version_));
    PeerLink* link = links_.back().get();
    outbox_->SetListener(peer.node_id(), [link] { link->Wake(); });
  }
  for (const auto& link : links_) {
    if (link->config().address().empty()) continue;
    PeerLink* l = link.get();
    dialers_.emplace_back([this, l] { DialLoop(l); });
  }
}

LinkManager::~LinkManager() { Shutdown(); }

absl::Status LinkManager::Serve(const std::string& peer, LinkStream* stream) {
  const std::string& self = node_->config().node_id();
  auto refuse = [&](std::string why) {
    LinkFrame bye = Goodbye(LinkGoodbye::NOT_A_PEER, why);
    stream->Write(bye);
    return absl::PermissionDeniedError(std::move(why));
  };
  if (stopping_.load()) {
    stream->Write(Goodbye(LinkGoodbye::SHUTTING_DOWN,
                          absl::StrCat(self, " is shutting down")));
    return absl::UnavailableError(absl::StrCat(self, " is shutting down"));
  }
  PeerLink* link = nullptr;
  for (const auto& l : links_) {
    if (l->peer() == peer) link = l.get();
  }
  if (link == nullptr) {
    return refuse(absl::StrCat(peer, " is not a federation peer of ", self,
                               " (federation.peers in its config)"));
  }
  if (!link->config().address().empty() && self < peer) {
    return refuse(absl::StrCat(self, " dials ", peer,
                               " itself: both list each other's address, "
                               "and the node with the lower id dials"));
  }
  link->RunSession(stream, /*dialled=*/false, stopping_);
  return absl::OkStatus();
}

void LinkManager::DialLoop(PeerLink* link) {
  const internal::v1::FederationConfig& fed = node_->config().federation();
  const absl::Duration initial = absl::Milliseconds(fed.reconnect_initial_ms());
  const absl::Duration max = absl::Seconds(fed.reconnect_max_seconds());
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = initial;
  while (!stopping_.load()) {
    if (link->up()) {
      // The peer dialled in; this node's own dial waits.
      stop_.WaitForNotificationWithTimeout(absl::Seconds(1));
      continue;
    }
    link->SetConnecting();
    absl::StatusOr<std::unique_ptr<LinkStream>> stream =
        dialer_(link->config());
    bool was_up = false;
    if (!stream.ok()) {
      link->SetFailed(stream.status());
    } else {
      was_up = link->RunSession(stream->get(), /*dialled=*/true, stopping_);
      stream->reset();
    }
    if (was_up) backoff = initial;
    std::uniform_int_distribution<int64_t> jitter(
        0, absl::ToInt64Milliseconds(backoff));
    stop_.WaitForNotificationWithTimeout(absl::Milliseconds(jitter(random)));
    backoff = std::min(max, backoff * 2);
  }
}

v1::Links LinkManager::Snapshot() const {
  v1::Links links;
  links.set_node_id(node_->config().node_id());
  for (const auto& link : links_) *links.add_links() = link->Info();
  return links;
}

void LinkManager::Shutdown() {
  if (stopping_.exchange(true)) return;
  stop_.Notify();
  for (const auto& link : links_) {
    outbox_->SetListener(link->peer(), nullptr);
    link->CancelAll();
  }
  for (std::thread& t : dialers_) t.join();
  dialers_.clear();
}

}  // namespace ibsm::broker
