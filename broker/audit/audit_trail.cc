#include "audit/audit_trail.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/published_checkpoint.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/alert.pb.h"
#include "storage/key_codec.h"
#include "storage/store.h"
#include "storage/write_batch.h"

namespace ibsm::broker {
v1::AuditRecord AuditEvent(v1::AuditAction action, absl::string_view actor,
                           bool allowed, absl::string_view reason) {
  v1::AuditRecord record;
  record.set_action(action);
  record.set_actor(std::string(actor));
  record.set_allowed(allowed);
  record.set_reason(std::string(reason));
  return record;
}

void DescribeAlert(const v1::Alert& alert, v1::AuditRecord* record) {
  record->set_alert_id(alert.id());
  record->set_originator(alert.originator());
  record->set_topic(alert.topic());
  record->set_classification(alert.classification());
}

std::optional<Hash> StoredMerkleTree::Get(int level, uint64_t index) const {
  absl::StatusOr<std::optional<Hash>> hash = Read(level, index);
  if (!hash.ok()) return std::nullopt;
  return *hash;
}

absl::StatusOr<std::optional<Hash>> StoredMerkleTree::Read(
    int level, uint64_t index) const {
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> value,
                        store_->Get(Family::kMerkle, MerkleKey(level, index)));
  if (!value.has_value()) return std::optional<Hash>();
  if (value->size() != 32) {
    return absl::DataLossError(absl::StrCat("merkle node (level ", level,
                                            ", index ", index, ") has ",
                                            value->size(), " bytes, not 32"));
  }
  Hash hash;
  std::copy(value->begin(), value->end(), hash.begin());
  return std::optional<Hash>(hash);
}

void BoundAuditText(std::string* s, size_t limit, size_t original) {
  // Room for the marker, so that a bounded string is never cut again (the
  // Committer bounds records when they are queued and again at Append).
  constexpr size_t kMarkerRoom = 48;
  original = std::max(original, s->size());
  if (original <= limit + kMarkerRoom) return;
  size_t cut = std::min(limit, s->size());
  while (cut > 0 && cut < s->size() &&
         (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  s->resize(cut);
  absl::StrAppend(s, "\xe2\x80\xa6[truncated, ", original, " bytes]");
}

namespace {

void Bound(std::string* s, size_t limit) { BoundAuditText(s, limit, 0); }

}  // namespace

void BoundAuditRecord(v1::AuditRecord* r) {
  for (std::string* field :
       {r->mutable_node(), r->mutable_actor(), r->mutable_rule(),
        r->mutable_policy_version(), r->mutable_alert_id(),
        r->mutable_originator(), r->mutable_topic(),
        r->mutable_classification(), r->mutable_payload_sha256(),
        r->mutable_recipient()}) {
    Bound(field, kMaxAuditFieldBytes);
  }
  Bound(r->mutable_reason(), kMaxAuditDetailBytes);
  Bound(r->mutable_detail(), kMaxAuditDetailBytes);
  if (r->alerts_size() > kMaxAuditedAlerts) {
    const int original = r->alerts_size();
    r->mutable_alerts()->DeleteSubrange(kMaxAuditedAlerts,
                                        original - kMaxAuditedAlerts);
    absl::StrAppend(r->mutable_detail(), " [alerts truncated, ", original,
                    " in all]");
  }
  for (v1::AuditedAlert& a : *r->mutable_alerts()) {
    for (std::string* field : {a.mutable_alert_id(), a.mutable_originator(),
                               a.mutable_topic(), a.mutable_classification()}) {
      Bound(field, kMaxAuditFieldBytes);
    }
  }
}

AuditTrail::AuditTrail(Store* store, SigningKey key, AuditOptions options)
    : store_(store),
      signer_(std::make_shared<CheckpointSigner>(std::move(key))),
      options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<AuditTrail>> AuditTrail::Open(
    Store* store, SigningKey key, AuditOptions options) {
  auto trail = std::unique_ptr<AuditTrail>(
      new AuditTrail(store, std::move(key), std::move(options)));
  IBSM_ASSIGN_OR_RETURN(trail->size_, AuditSize(*store));
  absl::StatusOr<v1::SignedCheckpoint> latest = LatestCheckpoint(*store);
  if (latest.ok()) {
    trail->checkpointed_size_ = latest->tree_size();
  } else if (!absl::IsNotFound(latest.status())) {
    return latest.status();
  }
  // Records are committed before any checkpoint covering them is signed, and
  // a synced write makes every earlier write durable, so no crash can leave
  // fewer records than the last checkpoint: records were removed. Appending
  // would overwrite the evidence, so the node refuses to start.
  if (trail->size_ < trail->checkpointed_size_) {
    return absl::DataLossError(absl::StrCat(
        "the audit trail holds ", trail->size_, " records but a checkpoint of ",
        trail->checkpointed_size_,
        " records was signed: records were removed from the data directory; "
        "restore it from a backup and have the auditors verify it"));
  }
  if (trail->size_ > trail->checkpointed_size_) {
    trail->first_uncheckpointed_ = trail->options_.clock->Now();
  }
  return trail;
}

absl::Status AuditTrail::Append(std::vector<v1::AuditRecord>* records,
                                storage::Batch* batch) {
  if (records->empty()) return absl::OkStatus();
  const uint64_t first = size_ + pending_;
  const google::protobuf::Timestamp now =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  std::vector<Hash> leaves;
  leaves.reserve(records->size());
  std::string bytes;
  for (size_t i = 0; i < records->size(); ++i) {
    v1::AuditRecord& record = (*records)[i];
    BoundAuditRecord(&record);
    record.set_index(first + i);
    record.set_node(options_.node_id);
    if (!record.has_time()) *record.mutable_time() = now;
    bytes.clear();
    record.SerializeToString(&bytes);
    leaves.push_back(LeafHash(bytes));
    batch->AppendAuditRecord(first + i, bytes);
  }
  // Nodes of earlier batches are in the store; this batch's own new nodes
  // are computed in memory by AppendLeaves (hence one Append per batch).
  IBSM_ASSIGN_OR_RETURN(std::vector<MerkleWrite> writes,
                        AppendLeaves(StoredMerkleTree(store_), first, leaves));
  for (const MerkleWrite& w : writes) {
    batch->PutMerkleNode(w.level, w.index, crypto::HashView(w.hash));
  }
  pending_ += records->size();
  return absl::OkStatus();
}

void AuditTrail::Committed() {
  if (pending_ > 0 && size_ == checkpointed_size_) {
    first_uncheckpointed_ = options_.clock->Now();
  }
  size_ += pending_;
  pending_ = 0;
}

void AuditTrail::Aborted() { pending_ = 0; }

absl::Time AuditTrail::next_checkpoint_due() const {
  if (size_ == checkpointed_size_) return absl::InfiniteFuture();
  return first_uncheckpointed_ + options_.checkpoint_every;
}

absl::Status AuditTrail::MaybeCheckpoint(absl::Time now, bool force) {
  if (size_ == checkpointed_size_) return absl::OkStatus();
  bool due = force ||
             size_ - checkpointed_size_ >= options_.checkpoint_every_records ||
             now >= next_checkpoint_due();
  if (!due) return absl::OkStatus();
  IBSM_ASSIGN_OR_RETURN(Hash root, RootHash(StoredMerkleTree(store_), size_));
  Checkpoint checkpoint{absl::StrCat("ibsm/", options_.node_id), size_, root,
                        absl::ToUnixSeconds(now)};
  IBSM_ASSIGN_OR_RETURN(std::string note, signer_->Sign(checkpoint));
  v1::SignedCheckpoint signed_checkpoint;
  signed_checkpoint.set_note(note);
  signed_checkpoint.set_tree_size(size_);
  signed_checkpoint.set_root_hash(
      std::string(reinterpret_cast<const char*>(root.data()), root.size()));
  signed_checkpoint.mutable_time()->set_seconds(checkpoint.time_unix);
  std::string bytes = signed_checkpoint.SerializeAsString();
  // Recorded outside the data directory first: once stored, auditors may
  // fetch it, and a restored data directory must then be noticed.
  if (!options_.published_checkpoint_file.empty()) {
    internal::v1::PublishedCheckpoint published;
    published.set_node_id(options_.node_id);
    *published.mutable_checkpoint() = signed_checkpoint;
    IBSM_ASSIGN_OR_RETURN(std::optional<std::string> mark,
                          store_->Get(Family::kMeta, kLastSequenceKey));
    if (mark) {
      if (std::optional<uint64_t> last = DecodeSequence(*mark)) {
        published.set_last_sequence(*last);
      }
    }
    IBSM_RETURN_IF_ERROR(WritePublishedCheckpoint(
        options_.published_checkpoint_file, published));
  }
  storage::Batch batch = store_->NewBatch();
  batch.PutCheckpoint(size_, bytes);
  IBSM_RETURN_IF_ERROR(store_->Commit(std::move(batch), Durability::kSynced));
  checkpointed_size_ = size_;
  first_uncheckpointed_ = absl::InfiniteFuture();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditSize(const Store& store) {
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> last,
                        store.LastKey(Family::kAudit));
  if (!last) return uint64_t{0};
  std::optional<uint64_t> index = DecodeSequence(*last);
  if (!index) return absl::DataLossError("audit key of unexpected size");
  return *index + 1;
}

absl::StatusOr<v1::SignedCheckpoint> LatestCheckpoint(const Store& store) {
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> value,
                        store.Get(Family::kMeta, kLatestCheckpointKey));
  if (!value) {
    return absl::NotFoundError("no checkpoint has been signed yet");
  }
  v1::SignedCheckpoint checkpoint;
  if (!checkpoint.ParseFromString(*value)) {
    return absl::DataLossError("the stored checkpoint is corrupt");
  }
  return checkpoint;
}

absl::StatusOr<v1::SignedCheckpoint> CheckpointAt(const Store& store,
                                                  uint64_t tree_size) {
  IBSM_ASSIGN_OR_RETURN(std::optional<std::string> value,
                        store.Get(Family::kMeta, CheckpointKey(tree_size)));
  if (!value) {
    return absl::NotFoundError(
        absl::StrCat("no checkpoint was signed at tree size ", tree_size));
  }
  v1::SignedCheckpoint checkpoint;
  if (!checkpoint.ParseFromString(*value)) {
    return absl::DataLossError("a stored checkpoint is corrupt");
  }
  return checkpoint;
}

absl::Status ScanAudit(
    const Store& store, uint64_t from_index, size_t max_records,
    const std::function<bool(uint64_t, absl::string_view)>& fn) {
  absl::Status decode = absl::OkStatus();
  IBSM_RETURN_IF_ERROR(store.Scan(
      Family::kAudit, AuditKey(from_index), max_records,
      [&](absl::string_view key, absl::string_view value) {
        std::optional<uint64_t> index = DecodeSequence(key);
        if (!index) {
          decode = absl::DataLossError("audit key of unexpected size");
          return false;
        }
        return fn(*index, value);
      }));
  return decode;
}

}  // namespace ibsm::broker
