#include "federation/ingress.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "context/node_context.h"
#include "delivery/worker_pool.h"
#include "ibsm/alert_rules.h"
#include "ibsm/alert_signature.h"
#include "ibsm/crypto.h"
#include "publish/committer.h"
#include "publish/publish_path.h"
#include "publish/route.h"
#include "storage/log_cache.h"

namespace ibsm::broker {

using internal::v1::LinkAck;
using internal::v1::LinkOffer;

bool ChainCache::Resolve(LinkOffer* offer, std::string* error) {
  v1::Alert* alert = offer->mutable_alert();
  if (alert->signing_chain_size() > 0) {
    // Bounded before it is remembered (the same bounds as verification).
    if (absl::Status bounded = CheckSignatureBounds(*alert); !bounded.ok()) {
      *error = std::string(bounded.message());
      return true;
    }
    std::string fingerprint = SigningChainSha256(*alert);
    if (!offer->chain_sha256().empty() &&
        offer->chain_sha256() != fingerprint) {
      *error = "chain_sha256 does not match the signing chain it came with";
      return true;
    }
    if (!chains_.contains(fingerprint)) {
      if (chains_.size() >= kMaxChains) chains_.clear();
      chains_.emplace(std::move(fingerprint),
                      std::vector<std::string>(alert->signing_chain().begin(),
                                               alert->signing_chain().end()));
    }
    return true;
  }
  if (offer->chain_sha256().empty()) return true;  // unsigned: refused later
  auto it = chains_.find(offer->chain_sha256());
  if (it == chains_.end()) return false;
  for (const std::string& der : it->second) alert->add_signing_chain(der);
  return true;
}

namespace {

bool ValidNodeId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_';
  });
}

// What to do with one offer before anything is written.
struct Verdict {
  enum Kind { kStore, kRefuse, kAckNow } kind = kStore;
  LinkAck::Result ack = LinkAck::STORED;  // for kAckNow
  std::string reason;                     // for kRefuse and kAckNow
  Decision decision;                      // for kStore
};

Verdict Refuse(std::string reason) {
  Verdict v;
  v.kind = Verdict::kRefuse;
  v.reason = std::move(reason);
  return v;
}

Verdict AckNow(LinkAck::Result result, std::string reason) {
  Verdict v;
  v.kind = Verdict::kAckNow;
  v.ack = result;
  v.reason = std::move(reason);
  return v;
}

// The ingress checks, in the order docs/federation.md gives, up to the
// signature check: nullopt when the offer gets that far. The signatures of
// a batch are then checked together (VerifySignatures), and
// CheckAfterSignature does the rest.
std::optional<Verdict> CheckBeforeSignature(const NodeContext& node,
                                            const Authorizer& authorizer,
                                            const std::string& peer,
                                            LinkOffer* offer,
                                            ChainCache* chains) {
  const std::string& self = node.config().node_id();
  const auto& hops = offer->hops();
  if (hops.empty() || hops.size() > kMaxHops) {
    return Refuse(absl::StrCat("the offer lists ", hops.size(), " hops; 1 to ",
                               kMaxHops, " are accepted"));
  }
  for (const std::string& hop : hops) {
    if (!ValidNodeId(hop)) {
      return Refuse("the offer's hops contain a malformed node id");
    }
  }
  if (hops[hops.size() - 1] != peer) {
    return Refuse(absl::StrCat("the offer's last hop is ",
                               hops[hops.size() - 1], " but it came from ",
                               peer));
  }
  if (std::find(hops.begin(), hops.end(), self) != hops.end()) {
    return AckNow(LinkAck::DUPLICATE,
                  absl::StrCat("the alert already passed through ", self,
                               " (hops ", absl::StrJoin(hops, ">"), ")"));
  }
  std::string chain_error;
  if (!chains->Resolve(offer, &chain_error)) {
    return AckNow(LinkAck::CHAIN_UNKNOWN,
                  "chain_sha256 names a chain this stream has not carried");
  }
  if (!chain_error.empty()) return Refuse(chain_error);
  const v1::Alert& alert = offer->alert();
  AlertLimits limits;
  limits.max_alert_bytes = node.config().limits().max_alert_bytes();
  limits.classification_levels = &authorizer.classification_levels();
  if (absl::Status valid = ValidateAlert(alert, limits); !valid.ok()) {
    return Refuse(std::string(valid.message()));
  }
  if (alert.signature().empty()) {
    return Refuse(absl::StrCat("alert '", alert.id(),
                               "' is not signed; unsigned alerts never cross "
                               "a link"));
  }
  if (node.alert_verifier() == nullptr) {
    return AckNow(LinkAck::RETRY_LATER,
                  "this node cannot verify signatures yet");
  }
  return std::nullopt;
}

// The verification of the signatures of a batch, shared by the link's
// thread and one task on the node's worker pool: each claims the next
// unclaimed alert until none is left. The link's thread never waits for an
// alert nobody claimed, so a busy or stopped pool only means it verifies
// them all itself.
struct SignatureWork {
  std::vector<const v1::Alert*> alerts;
  std::vector<absl::Status> results;
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  size_t finished ABSL_GUARDED_BY(mu) = 0;

  bool AllFinished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return finished == alerts.size();
  }
  // Verifies the alerts this thread claims, until none is left to claim.
  void Work(const AlertVerifier& verifier) {
    for (size_t i = next.fetch_add(1); i < alerts.size();
         i = next.fetch_add(1)) {
      absl::Status verified = verifier.VerifyAlert(*alerts[i]);
      absl::MutexLock lock(&mu);
      results[i] = std::move(verified);
      ++finished;
    }
  }
};

// VerifyAlert for each alert, on two threads when there are several:
// verification is most of the CPU an offer costs at ingress (about 70 us
// for ECDSA P-256).
std::vector<absl::Status> VerifySignatures(
    const NodeContext& node, std::vector<const v1::Alert*> alerts) {
  const AlertVerifier& verifier = *node.alert_verifier();
  auto work = std::make_shared<SignatureWork>();
  work->alerts = std::move(alerts);
  work->results.resize(work->alerts.size());
  if (work->alerts.size() > 1 && node.workers() != nullptr) {
    // The task touches the alerts only while it has claimed one, and this
    // thread waits for every claimed alert below.
    node.workers()->Schedule([work, &verifier] { work->Work(verifier); });
  }
  work->Work(verifier);
  absl::MutexLock lock(&work->mu);
  work->mu.Await(absl::Condition(work.get(), &SignatureWork::AllFinished));
  return std::move(work->results);
}

// The ingress checks after the signature, in the order docs/federation.md
// gives.
Verdict CheckAfterSignature(const NodeContext& node,
                            const Authorizer& authorizer,
                            const std::string& peer, const LinkOffer& offer) {
  const std::string& self = node.config().node_id();
  const auto& hops = offer.hops();
  const v1::Alert& alert = offer.alert();
  const std::string& origin = hops[0];
  if (peer != origin) {
    Decision relay = authorizer.MayForward(alert, peer, true);
    if (!relay.allowed) {
      return Refuse(absl::StrCat(peer, " may not relay alerts from ", origin,
                                 ": ", relay.reason));
    }
  }
  Decision originated = authorizer.MayHaveOriginated(alert, origin);
  if (!originated.allowed) {
    return Refuse(absl::StrCat("under this node's policy ", alert.originator(),
                               " may not publish this alert at ", origin, ": ",
                               originated.reason));
  }
  Decision hold = authorizer.MayForward(alert, self, false);
  if (!hold.allowed) {
    return Refuse(absl::StrCat("this node's policy does not let ", self,
                               " receive it: ", hold.reason));
  }
  for (const v1::AlertReference& ref : alert.references()) {
    if ((ref.kind() == v1::AlertReference::KIND_UPDATE ||
         ref.kind() == v1::AlertReference::KIND_RETRACTION) &&
        ref.originator() != alert.originator()) {
      return Refuse(absl::StrCat(
          "alert '", alert.id(), "' updates or retracts an alert of ",
          ref.originator(), "; only an alert's originator may"));
    }
  }
  Verdict v;
  v.decision = std::move(hold);
  return v;
}

LinkAck AckFor(const PublishEntry& e, uint64_t id) {
  LinkAck ack;
  ack.set_id(id);
  if (e.status.ok()) {
    ack.set_result(e.duplicate ? LinkAck::DUPLICATE : LinkAck::STORED);
    return ack;
  }
  switch (e.status.code()) {
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
      ack.set_result(LinkAck::RETRY_LATER);
      break;
    default:
      ack.set_result(LinkAck::REFUSED);
  }
  ack.set_reason(std::string(e.status.message()));
  return ack;
}

}  // namespace

void Ingress::Receive(
    const std::string& peer, internal::v1::LinkOffers offers,
    ChainCache* chains,
    absl::AnyInvocable<void(std::vector<LinkAck>)> done) const {
  std::shared_ptr<const Authorizer> authorizer = node_->authorizer();
  const std::string& self = node_->config().node_id();
  const google::protobuf::Timestamp now =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  std::vector<LinkAck> acks(offers.offers_size());
  // Offer index -> entry index in the group, or -1 when acked at once.
  std::vector<int> entry_of(offers.offers_size(), -1);
  // The checks before the signature in offer order (the chain cache is
  // filled in that order), the signatures together, then the rest.
  std::vector<std::optional<Verdict>> verdicts(offers.offers_size());
  std::vector<const v1::Alert*> to_verify;
  for (int i = 0; i < offers.offers_size(); ++i) {
    verdicts[i] = CheckBeforeSignature(*node_, *authorizer, peer,
                                       offers.mutable_offers(i), chains);
    if (!verdicts[i].has_value()) {
      to_verify.push_back(&offers.offers(i).alert());
    }
  }
  if (!to_verify.empty()) {
    std::vector<absl::Status> signatures =
        VerifySignatures(*node_, std::move(to_verify));
    size_t next = 0;
    for (int i = 0; i < offers.offers_size(); ++i) {
      if (verdicts[i].has_value()) continue;
      const absl::Status& signed_ok = signatures[next++];
      verdicts[i] = signed_ok.ok() ? CheckAfterSignature(*node_, *authorizer,
                                                         peer, offers.offers(i))
                                   : Refuse(std::string(signed_ok.message()));
    }
  }
  auto group = std::make_unique<PublishGroup>();
  group->require_sync = true;
  for (int i = 0; i < offers.offers_size(); ++i) {
    LinkOffer* offer = offers.mutable_offers(i);
    acks[i].set_id(offer->id());
    Verdict verdict = *std::move(verdicts[i]);
    if (verdict.kind == Verdict::kAckNow) {
      acks[i].set_result(verdict.ack);
      acks[i].set_reason(verdict.reason);
      continue;
    }
    entry_of[i] = static_cast<int>(group->entries.size());
    PublishEntry& entry = group->entries.emplace_back();
    entry.actor = peer;
    entry.audit_action = v1::AUDIT_FEDERATION_RECEIVE;
    entry.audit_detail =
        absl::StrCat("hops ", absl::StrJoin(offer->hops(), ">"));
    entry.record = std::make_shared<LogRecord>();
    internal::v1::StoredAlert& stored = entry.record->stored;
    *stored.mutable_hops() = offer->hops();
    stored.mutable_alert()->Swap(offer->mutable_alert());
    const v1::Alert& alert = stored.alert();
    entry.payload_sha256 =
        std::string(crypto::HashView(crypto::Sha256(alert.payload())));
    if (verdict.kind == Verdict::kRefuse) {
      entry.status = absl::PermissionDeniedError(verdict.reason);
      continue;
    }
    entry.decision_rule = verdict.decision.rule;
    entry.policy_version = verdict.decision.policy_version;
    entry.content_sha256 = AlertContentSha256InPlace(stored.mutable_alert());
    std::vector<std::string> hops(stored.hops().begin(), stored.hops().end());
    entry.outbox_peers =
        RoutePeers(*authorizer, alert, hops, self, node_->peer_ids());
    *stored.mutable_received_at() = now;
    stored.set_received_from(peer);
    entry.value = stored.SerializeAsString();
    entry.record->bytes = entry.value.size();
    entry.record->charge = LogCache::Charge(*entry.record);
  }
  if (group->entries.empty()) {
    done(std::move(acks));
    return;
  }
  group->done =
      [acks = std::move(acks), entry_of = std::move(entry_of),
       done = std::move(done)](std::unique_ptr<PublishGroup> finished) mutable {
        for (size_t i = 0; i < acks.size(); ++i) {
          if (entry_of[i] < 0) continue;
          acks[i] = AckFor(finished->entries[entry_of[i]], acks[i].id());
        }
        done(std::move(acks));
      };
  node_->committer()->Submit(std::move(group));
}

}  // namespace ibsm::broker
