#include "publish/committer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "context/node_counters.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/status_macros.h"
#include "logging/event_log.h"
#include "publish/publish_path.h"
#include "storage/key_codec.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

// The audit record of one publish, accepted (with its sequence) or refused.
v1::AuditRecord PublishRecord(const PublishEntry& e) {
  v1::AuditRecord r = AuditEvent(
      e.audit_action, e.actor, e.status.ok(),
      e.status.ok() ? (e.duplicate ? "duplicate of an alert already stored; "
                                     "nothing written"
                                   : "stored")
                    : e.status.message());
  DescribeAlert(e.record->stored.alert(), &r);
  r.set_rule(e.decision_rule);
  r.set_policy_version(e.policy_version);
  r.set_sequence(e.sequence);
  r.set_payload_sha256(e.payload_sha256);
  std::string detail = e.audit_detail;
  if (e.status.ok() && !e.duplicate && !e.outbox_peers.empty()) {
    absl::StrAppend(&detail, detail.empty() ? "" : "; ",
                    e.audit_action == v1::AUDIT_FEDERATION_RECEIVE
                        ? "relayed to: "
                        : "queued for: ",
                    absl::StrJoin(e.outbox_peers, ", "));
  }
  r.set_detail(std::move(detail));
  return r;
}

// What the callers of a batch that could not be written are told.
absl::Status StoreFailure(const absl::Status& written) {
  if (absl::IsResourceExhausted(written)) {
    // A full disk (the store's message names node, directory and free
    // space): the publisher can only wait, so it gets a code that says so
    // rather than UNAVAILABLE, which clients retry at once.
    return absl::ResourceExhaustedError(absl::StrCat(
        written.message(), "; alert not stored, retry later with the same id"));
  }
  return absl::UnavailableError(absl::StrCat("the alert could not be stored (",
                                             written.message(),
                                             "); retry with the same id"));
}

}  // namespace

OutboxPriority PriorityOf(v1::Severity severity) {
  switch (severity) {
    case v1::SEVERITY_CRITICAL:
      return OutboxPriority::kCritical;
    case v1::SEVERITY_HIGH:
      return OutboxPriority::kHigh;
    default:
      return OutboxPriority::kOther;
  }
}

Committer::Committer(Store* store, LogCache* cache, AuditTrail* audit,
                     CommitterOptions options,
                     std::function<void(uint64_t)> on_commit)
    : store_(store),
      cache_(cache),
      audit_(audit),
      options_(options),
      on_commit_(std::move(on_commit)),
      last_sequence_(store->recovered_last_sequence()),
      written_sequence_(store->recovered_last_sequence()) {
  if (options_.pipelined) {
    completion_thread_ = std::thread([this] { RunCompletions(); });
  }
  thread_ = std::thread([this] { Run(); });
}

Committer::~Committer() { Stop(); }

void Committer::Submit(std::unique_ptr<PublishGroup> group) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("node is shutting down; retry later");
    } else if (audit_ != nullptr &&
               audit_records_.size() >= options_.max_pending_audit_records) {
      // Fail closed: a publish needs its audit record, and the records
      // already waiting are not written yet.
      refused = absl::UnavailableError(absl::StrCat(
          "the audit trail cannot be written now (", audit_records_.size(),
          " records wait); retry with the same id"));
    } else {
      queued_alerts_ += group->entries.size();
      queue_.push_back({next_ticket_++, std::move(group)});
      return;
    }
  }
  for (PublishEntry& e : group->entries) e.status = refused;
  CountAnswers(*group);
  auto done = std::move(group->done);
  done(std::move(group));
}

void Committer::UpdateCursor(std::string cursor_key, uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  uint64_t& slot = cursors_[cursor_key];
  if (sequence > slot) slot = sequence;
}

void Committer::AddRecordsLocked(std::vector<v1::AuditRecord> records) {
  for (v1::AuditRecord& record : records) {
    BoundAuditRecord(&record);
    audit_records_.push_back({next_ticket_++, std::move(record)});
  }
  const bool backlogged =
      audit_records_.size() >= options_.max_pending_audit_records;
  if (backlogged != audit_backlogged_.load(std::memory_order_relaxed)) {
    audit_backlogged_.store(backlogged, std::memory_order_relaxed);
    if (backlogged) {
      LogEvent(absl::StrCat(audit_records_.size(),
                            " audit records wait to be written; publishes "
                            "are refused until they are"));
    }
  }
}

void Committer::CreateCursor(std::string cursor_key, uint64_t sequence,
                             CursorCreated done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      cursor_creations_.push_back(
          {std::move(cursor_key), sequence, std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("node is shutting down; retry later"), 0, false);
}

void Committer::Audit(v1::AuditRecord record) {
  if (audit_ == nullptr) return;
  std::vector<v1::AuditRecord> records;
  records.push_back(std::move(record));
  absl::MutexLock lock(&mu_);
  AddRecordsLocked(std::move(records));
}

void Committer::Audit(std::vector<v1::AuditRecord> records) {
  if (audit_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  AddRecordsLocked(std::move(records));
}

void Committer::RemoveExpired(std::vector<uint64_t> sequences,
                              std::vector<std::string> dedup_keys,
                              std::vector<v1::AuditRecord> records) {
  absl::MutexLock lock(&mu_);
  // A removal still waiting from an earlier pass is not queued again, nor
  // is its record.
  std::vector<v1::AuditRecord> fresh_records;
  for (v1::AuditRecord& record : records) {
    if (record.sequence() == 0 || !removing_.contains(record.sequence())) {
      fresh_records.push_back(std::move(record));
    }
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (!removing_.insert(sequences[i]).second) continue;
    removals_.push_back(sequences[i]);
    if (i < dedup_keys.size()) {
      removed_dedup_keys_.push_back(std::move(dedup_keys[i]));
    }
  }
  for (size_t i = sequences.size(); i < dedup_keys.size(); ++i) {
    removed_dedup_keys_.push_back(std::move(dedup_keys[i]));
  }
  if (audit_ != nullptr) AddRecordsLocked(std::move(fresh_records));
}

void Committer::RemoveOutbox(std::vector<OutboxKey> keys,
                             std::vector<v1::AuditRecord> records,
                             absl::AnyInvocable<void()> done) {
  absl::MutexLock lock(&mu_);
  outbox_removals_.push_back(OutboxRemoval{std::move(keys), std::move(done)});
  if (audit_ != nullptr) AddRecordsLocked(std::move(records));
}

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // The committer thread has handed over its last batch.
  StopCompletions();
  if (completion_thread_.joinable()) completion_thread_.join();
}

void Committer::HandOver(WrittenBatch batch) {
  if (!options_.pipelined) {
    Complete(&batch);
    return;
  }
  absl::MutexLock lock(&completion_mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(completion_mu_) {
    return written_.size() < kMaxUnsyncedBatches;
  };
  completion_mu_.Await(absl::Condition(&room));
  written_.push_back(std::move(batch));
}

void Committer::StopCompletions() {
  absl::MutexLock lock(&completion_mu_);
  completions_stopping_ = true;
}

void Committer::RunCompletions() {
  // Batches written before a write failed for room, whose callers were
  // told that the outcome is unknown (AnswerUndurable). They become durable
  // when the store resumes, and visible then, before anything later.
  std::deque<WrittenBatch> undurable;
  absl::Duration retry = kUndurableRetryMin;
  while (true) {
    std::deque<WrittenBatch> batches;
    bool stopping = false;
    {
      absl::MutexLock lock(&completion_mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(completion_mu_) {
        return !written_.empty() || completions_stopping_;
      };
      if (undurable.empty()) {
        completion_mu_.Await(absl::Condition(&has_work));
      } else {
        // Nothing may come while the disk is full: retry by itself, so
        // that the waiting alerts appear once there is room.
        completion_mu_.AwaitWithTimeout(absl::Condition(&has_work), retry);
      }
      stopping = completions_stopping_;
      if (written_.empty() && stopping && undurable.empty()) return;
      batches.swap(written_);
    }
    // One sync covers every batch written so far, these and any later.
    const bool needs_sync =
        !undurable.empty() ||
        std::any_of(batches.begin(), batches.end(),
                    [](const WrittenBatch& b) { return b.needs_sync; });
    if (needs_sync) {
      absl::Status synced = store_->SyncLog();
      if (absl::IsResourceExhausted(synced)) {
        // A write failed for room after these batches were written, and
        // the store cannot resume (which would make them durable) until
        // there is room. Their callers are told at once that the outcome
        // is unknown; a retry with the same id is answered once it is
        // decided (a duplicate of an alert not yet durable is not
        // acknowledged either).
        if (undurable.empty()) {
          LogEvent(absl::StrCat(
              synced.message(), "; ", batches.size(),
              " written batches wait for room to become durable; their "
              "publishers are told the outcome is unknown"));
        }
        for (WrittenBatch& batch : batches) {
          AnswerUndurable(synced, &batch);
          if (HasEffects(batch)) undurable.push_back(std::move(batch));
        }
        if (stopping) {
          // Committer::Stop() on a full disk: nothing more can make them
          // durable in this process. They are in the log's file unsynced;
          // a restart recovers what the disk holds.
          LogEvent(absl::StrCat("stopping with ", undurable.size(),
                                " written batches not yet durable (",
                                synced.message(),
                                "); a restart recovers what the disk holds"));
          return;
        }
        retry = std::min(retry * 2, kUndurableRetryMax);
        continue;
      }
      if (!synced.ok()) {
        // Fail-stop: the batches are in RocksDB's memtables, readable by
        // the next batch's idempotency checks, yet perhaps not on disk, and
        // after a failed fsync the kernel may have dropped their pages.
        // Answering them would be a lie, failing them would let a retry be
        // told "duplicate" of an alert that a power loss removes. A restart
        // recovers what the disk holds; nothing was acknowledged.
        LogEvent(absl::StrCat(
            "stopping the node: ", synced.message(), "; ",
            batches.size() + undurable.size(),
            " written batches are unacknowledged, and a restart recovers "
            "what the disk holds"));
        std::abort();
      }
    }
    retry = kUndurableRetryMin;
    if (!undurable.empty()) {
      LogEvent(absl::StrCat(undurable.size(),
                            " batches written before the disk filled are "
                            "durable now; a retry of their alerts is "
                            "acknowledged"));
    }
    for (WrittenBatch& batch : undurable) Complete(&batch);
    undurable.clear();
    for (WrittenBatch& batch : batches) Complete(&batch);
  }
}

bool Committer::HasEffects(const WrittenBatch& batch) {
  return !batch.committed.empty() || !batch.outbox_removals.empty() ||
         !batch.outbox_added.empty() || !batch.outbox_reserved.empty();
}

void Committer::AnswerUndurable(const absl::Status& not_synced,
                                WrittenBatch* batch) const {
  const absl::Status unknown = absl::UnavailableError(absl::StrCat(
      not_synced.message(),
      "; the alert was written but is not yet durable: it is stored once "
      "the node has room again, unless the node loses power first; outcome "
      "unknown, retry later with the same id"));
  // Alerts at or below the durable sequence (duplicates of them) are
  // answered as they are; any other answer would claim what is not on disk.
  const uint64_t durable = last_sequence();
  for (QueuedGroup& queued : batch->groups) {
    for (PublishEntry& e : queued.group->entries) {
      if (!e.status.ok() || e.sequence <= durable) continue;
      e.status = unknown;
      e.sequence = 0;
      e.duplicate = false;
    }
  }
  if (batch->cursor_status.ok()) {
    batch->cursor_status = absl::UnavailableError(
        absl::StrCat("the durable subscription's position is not yet durable (",
                     not_synced.message(), "); retry"));
  }
  AnswerCursorCreations(batch);
  batch->cursor_answers.clear();
  Answer(&batch->groups);
  batch->groups.clear();
}

void Committer::Complete(WrittenBatch* batch) {
  if (!batch->committed.empty()) {
    cache_->Append(batch->committed);
    last_sequence_.store(batch->last_sequence, std::memory_order_release);
    on_commit_(batch->last_sequence);
  }
  if (options_.outbox != nullptr) {
    for (OutboxRemoval& removal : batch->outbox_removals) {
      options_.outbox->Removed(removal.keys);
    }
    // After the cache holds the alerts, so a woken sender finds them.
    if (!batch->outbox_added.empty()) {
      options_.outbox->Added(batch->outbox_added, batch->outbox_added_bytes);
    }
    if (!batch->outbox_reserved.empty()) {
      absl::MutexLock lock(&outbox_in_flight_mu_);
      for (const auto& [peer, reserved] : batch->outbox_reserved) {
        // Always there: CommitSucceeded added at least this much.
        auto in_flight = outbox_in_flight_.find(peer);
        if (in_flight == outbox_in_flight_.end()) continue;
        in_flight->second.first -= reserved.first;
        in_flight->second.second -= reserved.second;
        if (in_flight->second.first == 0) outbox_in_flight_.erase(in_flight);
      }
    }
  }
  for (OutboxRemoval& removal : batch->outbox_removals) {
    if (removal.done) removal.done();
  }
  AnswerCursorCreations(batch);
  Answer(&batch->groups);
}

void Committer::Run() {
  while (true) {
    std::vector<QueuedGroup> groups;
    Housekeeping housekeeping;
    switch (TakeWork(&groups, &housekeeping)) {
      case Next::kCheckpoint:
        CheckpointIfDue(/*force=*/false);
        break;
      case Next::kStop:
        CheckpointIfDue(/*force=*/true);  // the last records are covered
        return;
      case Next::kGiveUp:
        return;
      case Next::kCommit: {
        const bool ok = CommitOnce(std::move(groups), std::move(housekeeping));
        SetRetryPause(ok);
        if (ok) CheckpointIfDue(/*force=*/false);
        break;
      }
    }
  }
}

Committer::Next Committer::TakeWork(std::vector<QueuedGroup>* groups,
                                    Housekeeping* housekeeping) {
  absl::MutexLock lock(&mu_);
  if (last_failed_ && !PauseAfterFailureLocked()) return Next::kGiveUp;
  if (!AwaitWorkLocked()) return Next::kCheckpoint;
  if (!HasQueuedWorkLocked()) return Next::kStop;  // stopping, drained
  *groups = TakeGroupsLocked();
  *housekeeping = TakeHousekeepingLocked();
  return Next::kCommit;
}

bool Committer::HasQueuedWorkLocked() const {
  return !queue_.empty() || !cursors_.empty() || !removals_.empty() ||
         !audit_records_.empty() || !cursor_creations_.empty() ||
         !outbox_removals_.empty();
}

bool Committer::PauseAfterFailureLocked() {
  // After a failed batch, what it carried is retried with the next
  // publish, or after a pause; not in a busy loop against a store
  // that keeps failing.
  auto new_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&new_work), retry_backoff_);
  if (stopping_ && queue_.empty()) {
    // The store still fails and the node stops: say what could not
    // be written rather than retry for ever.
    LogEvent(absl::StrCat("stopping with ", audit_records_.size(),
                          " audit records and ", cursors_.size(),
                          " cursor updates that could not be written"));
    return false;
  }
  return true;
}

bool Committer::AwaitWorkLocked() {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return HasQueuedWorkLocked() || stopping_;
  };
  // Wake for work, or when a time-based checkpoint falls due.
  absl::Time due = audit_ != nullptr ? std::max(audit_->next_checkpoint_due(),
                                                checkpoint_retry_at_)
                                     : absl::InfiniteFuture();
  return options_.clock->AwaitWithDeadline(&mu_, absl::Condition(&has_work),
                                           due);
}

std::vector<Committer::QueuedGroup> Committer::TakeGroupsLocked() {
  // Take whole groups up to the size limit; a single oversized group
  // is still taken alone.
  size_t taken_alerts = 0;
  size_t n = 0;
  while (n < queue_.size() &&
         (n == 0 || taken_alerts + queue_[n].group->entries.size() <=
                        options_.max_group_alerts)) {
    taken_alerts += queue_[n].group->entries.size();
    ++n;
  }
  std::vector<QueuedGroup> groups(std::make_move_iterator(queue_.begin()),
                                  std::make_move_iterator(queue_.begin() + n));
  queue_.erase(queue_.begin(), queue_.begin() + n);
  queued_alerts_ -= taken_alerts;
  return groups;
}

Committer::Housekeeping Committer::TakeHousekeepingLocked() {
  Housekeeping housekeeping;
  // Records submitted after a group that stays queued wait for it, so
  // that the trail's order is the order of submission.
  const uint64_t cutoff = queue_.empty() ? UINT64_MAX : queue_.front().ticket;
  while (!audit_records_.empty() && audit_records_.front().ticket < cutoff) {
    housekeeping.audit_records.push_back(std::move(audit_records_.front()));
    audit_records_.pop_front();
  }
  housekeeping.cursors.swap(cursors_);
  housekeeping.removals.swap(removals_);
  housekeeping.removed_dedup_keys.swap(removed_dedup_keys_);
  housekeeping.cursor_creations.swap(cursor_creations_);
  housekeeping.outbox_removals.swap(outbox_removals_);
  return housekeeping;
}

void Committer::SetRetryPause(bool committed) {
  absl::MutexLock lock(&mu_);
  last_failed_ = !committed;
  retry_backoff_ =
      committed ? absl::Milliseconds(20)
                : std::min(absl::Seconds(1), std::max(absl::Milliseconds(20),
                                                      retry_backoff_ * 2));
}

void Committer::CheckpointIfDue(bool force) {
  if (audit_ == nullptr) return;
  const absl::Time now = options_.clock->Now();
  if (!force && now < checkpoint_retry_at_) return;
  absl::Status signed_checkpoint = audit_->MaybeCheckpoint(now, force);
  if (!signed_checkpoint.ok()) {
    // The checkpoint stays due, so without a pause the thread would retry
    // (and log) in a busy loop for as long as, say, the disk is full.
    checkpoint_retry_at_ = now + kCheckpointRetry;
    if (!checkpoint_failing_ || force) {
      LogEvent(absl::StrCat(
          "signing an audit checkpoint failed: ", signed_checkpoint.message(),
          force ? "" : "; retrying every second"));
    }
    checkpoint_failing_ = true;
    return;
  }
  checkpoint_retry_at_ = absl::InfinitePast();
  if (checkpoint_failing_) {
    LogEvent("signing audit checkpoints works again");
    checkpoint_failing_ = false;
  }
}

absl::StatusOr<bool> Committer::SameContent(const PublishEntry& e,
                                            const DedupEntry& dedup) const {
  if (!dedup.content_sha256.empty()) {
    return dedup.content_sha256 == e.content_sha256;
  }
  // An entry written before content hashes were kept: compare with the
  // stored alert itself.
  IBSM_ASSIGN_OR_RETURN(std::optional<internal::v1::StoredAlert> stored,
                        store_->GetAlert(dedup.sequence));
  if (!stored) {
    return absl::DataLossError(absl::StrCat(
        "the idempotency entry of alert '", e.record->stored.alert().id(),
        "' points at sequence ", dedup.sequence, ", which is not in the log"));
  }
  return AlertContentSha256(stored->alert()) == e.content_sha256;
}

namespace {

absl::Status ConflictError(const v1::Alert& alert, uint64_t sequence) {
  return absl::AlreadyExistsError(absl::StrCat(
      "alert '", alert.id(), "' from ", alert.originator(),
      " was already stored", sequence > 0 ? " as sequence " : "",
      sequence > 0 ? absl::StrCat(sequence) : "",
      " and this one's content differs; publish changed content under a "
      "new id"));
}

}  // namespace

// CommitOnce builds one batch in steps, one per concern, each adding its
// writes to `commit.batch`; then it writes the batch (unsynced) and hands
// it to the completion thread, which syncs and answers everyone.
bool Committer::CommitOnce(std::vector<QueuedGroup> groups,
                           Housekeeping housekeeping) {
  PendingCommit commit(store_->NewBatch(), written_sequence_);
  AddCursorCreations(std::move(housekeeping.cursor_creations), &commit);
  AssignSequences(&groups, &commit);
  if (absl::Status sealed = AddLogWrites(&commit); !sealed.ok()) {
    HandOver(CommitFailed(sealed, std::move(housekeeping), &groups, &commit));
    return false;
  }
  AddDedupWrites(&commit);
  absl::Status audited =
      AddAuditWrites(groups, housekeeping.audit_records, &commit);
  if (!audited.ok()) {
    HandOver(AuditFailed(audited, std::move(housekeeping), &groups, &commit));
    return false;
  }
  AddOutboxWrites(housekeeping, &commit);
  AddRemovals(housekeeping, &commit);
  AddCursorWrites(housekeeping.cursors, &commit);

  absl::Status written = absl::OkStatus();
  const bool wrote = !commit.batch.empty();
  const bool needs_sync = wrote && (options_.sync || commit.sync);
  if (wrote) {
    // Pipelined, the completion thread syncs it, with what follows.
    written = store_->Commit(std::move(commit.batch),
                             needs_sync && !options_.pipelined
                                 ? Durability::kSynced
                                 : Durability::kBuffered);
  }
  if (!written.ok()) {
    HandOver(CommitFailed(written, std::move(housekeeping), &groups, &commit));
    return false;
  }
  WrittenBatch done = CommitSucceeded(&housekeeping, &groups, &commit);
  done.needs_sync = needs_sync;
  HandOver(std::move(done));
  // A cursor that could not be read is retried after the pause that
  // follows a failure.
  return commit.cursors_unread.empty();
}

void Committer::AddCursorCreations(std::vector<CursorCreation> creations,
                                   PendingCommit* commit) {
  absl::flat_hash_map<std::string, uint64_t> created_here;
  for (CursorCreation& c : creations) {
    CursorAnswer& answer = commit->cursor_answers.emplace_back();
    answer.done = std::move(c.done);
    if (auto it = created_here.find(c.key); it != created_here.end()) {
      answer.cursor = it->second;
      continue;
    }
    if (auto it = stored_cursors_.find(c.key); it != stored_cursors_.end()) {
      answer.cursor = it->second;
      continue;
    }
    absl::StatusOr<std::optional<uint64_t>> on_disk =
        store_->GetCursorByKey(c.key);
    if (!on_disk.ok()) {
      // Fail closed: a cursor that cannot be read must not be replaced by a
      // new start position.
      answer.status = absl::UnavailableError(
          absl::StrCat("the durable cursor cannot be read (",
                       on_disk.status().message(), "); retry"));
      continue;
    }
    if (on_disk->has_value()) {
      answer.cursor = **on_disk;
      stored_cursors_.emplace(c.key, answer.cursor);
      continue;
    }
    commit->batch.PutCursor(c.key, c.sequence);
    commit->cursors_written.emplace_back(c.key, c.sequence);
    created_here.emplace(c.key, c.sequence);
    answer.cursor = c.sequence;
    answer.created = true;
  }
}

void Committer::AnswerCursorCreations(WrittenBatch* batch) {
  for (CursorAnswer& a : batch->cursor_answers) {
    if (a.status.ok() && !batch->cursor_status.ok()) {
      a.status = batch->cursor_status;
    }
    a.done(a.status, a.cursor, a.created);
  }
}

void Committer::AssignSequences(std::vector<QueuedGroup>* groups,
                                PendingCommit* commit) {
  for (QueuedGroup& queued : *groups) {
    if (queued.group->require_sync) commit->sync = true;
    for (PublishEntry& e : queued.group->entries) {
      if (!e.status.ok()) continue;  // refused before submission
      AssignSequence(&e, commit);
    }
  }
}

void Committer::AssignSequence(PublishEntry* e, PendingCommit* commit) {
  const v1::Alert& alert = e->record->stored.alert();
  if (e->content_sha256.empty()) e->content_sha256 = AlertContentSha256(alert);
  std::string key = DedupKey(alert.originator(), alert.id());
  if (auto it = commit->new_dedup.find(key); it != commit->new_dedup.end()) {
    if (it->second.second != e->content_sha256) {
      e->status = ConflictError(alert, 0);
      return;
    }
    e->sequence = it->second.first;
    e->duplicate = true;
    return;
  }
  absl::StatusOr<std::optional<DedupEntry>> existing =
      store_->FindDedupEntry(alert.originator(), alert.id());
  if (!existing.ok()) {
    e->status = existing.status();
    return;
  }
  if (existing->has_value()) {
    absl::StatusOr<bool> same = SameContent(*e, **existing);
    if (!same.ok()) {
      e->status = same.status();
    } else if (!*same) {
      e->status = ConflictError(alert, (*existing)->sequence);
    } else {
      e->sequence = (*existing)->sequence;
      e->duplicate = true;
    }
    return;
  }
  if (absl::Status reserved = ReserveOutbox(*e, commit); !reserved.ok()) {
    e->status = std::move(reserved);
    return;
  }
  e->sequence = ++commit->last_sequence;
  e->record->sequence = e->sequence;
  commit->new_dedup.emplace(std::move(key),
                            std::make_pair(e->sequence, e->content_sha256));
  commit->committed.push_back(e->record);
  commit->fresh.push_back(e);
}

absl::Status Committer::AddLogWrites(PendingCommit* commit) {
  for (const PublishEntry* e : commit->fresh) {
    // The one step that seals (encryption at rest): the sequence, part of
    // what the seal authenticates, is known only here.
    IBSM_RETURN_IF_ERROR(
        commit->batch.PutAlert(e->sequence, e->record->stored));
  }
  if (!commit->fresh.empty()) {
    // The high-water mark, so that retention emptying the end of the log
    // can never make a restarted node hand out these sequences again.
    commit->batch.PutLastSequence(commit->last_sequence);
  }
  return absl::OkStatus();
}

void Committer::AddDedupWrites(PendingCommit* commit) {
  for (const auto& [key, entry] : commit->new_dedup) {
    commit->batch.PutDedup(key, entry.first, entry.second);
  }
}

absl::Status Committer::AddAuditWrites(
    const std::vector<QueuedGroup>& groups,
    const std::vector<QueuedRecord>& queued_records, PendingCommit* commit) {
  if (audit_ == nullptr) return absl::OkStatus();
  // One list in submission order: each group's publish records at its
  // ticket, between the queued records before and after it. The queued
  // records are copied: a failed batch queues them again.
  std::vector<v1::AuditRecord> records;
  size_t r = 0;
  for (const QueuedGroup& queued : groups) {
    while (r < queued_records.size() &&
           queued_records[r].ticket < queued.ticket) {
      records.push_back(queued_records[r++].record);
    }
    for (const PublishEntry& e : queued.group->entries) {
      records.push_back(PublishRecord(e));
    }
  }
  for (; r < queued_records.size(); ++r) {
    records.push_back(queued_records[r].record);
  }
  IBSM_RETURN_IF_ERROR(audit_->Append(&records, &commit->batch));
  PutAlertAuditLinks(records, commit->first_new, &commit->batch);
  return absl::OkStatus();
}

absl::Status Committer::ReserveOutbox(const PublishEntry& e,
                                      PendingCommit* commit) {
  if (e.outbox_peers.empty()) return absl::OkStatus();
  if (options_.outbox == nullptr) {
    return absl::FailedPreconditionError(
        "this node has no federation outbox; the alert was not stored");
  }
  const uint64_t bytes = e.value.size();
  absl::MutexLock lock(&outbox_in_flight_mu_);
  for (const std::string& peer : e.outbox_peers) {
    // Looked up, not inserted: a refused alert reserves nothing.
    const auto reserved_here = commit->outbox_reserved.find(peer);
    const std::pair<uint64_t, uint64_t> reserved =
        reserved_here == commit->outbox_reserved.end()
            ? std::pair<uint64_t, uint64_t>{0, 0}
            : reserved_here->second;
    const auto in_flight = outbox_in_flight_.find(peer);
    const uint64_t alerts =
        in_flight == outbox_in_flight_.end() ? 0 : in_flight->second.first;
    const uint64_t held_bytes =
        in_flight == outbox_in_flight_.end() ? 0 : in_flight->second.second;
    if (!options_.outbox->Fits(peer, alerts + reserved.first + 1,
                               held_bytes + reserved.second + bytes)) {
      OutboxBacklog backlog = options_.outbox->Backlog(peer);
      return absl::ResourceExhaustedError(absl::StrCat(
          "the backlog for peer ", peer, " is full (", backlog.total(),
          " alerts, ", backlog.bytes >> 20, " MiB waiting; bounds ",
          backlog.bounds.max_alerts, " alerts, ",
          backlog.bounds.max_bytes >> 20,
          " MiB: federation.peers max_backlog_alerts / max_backlog_mib); "
          "the alert was not stored: retry later with the same id"));
    }
  }
  for (const std::string& peer : e.outbox_peers) {
    auto& reserved = commit->outbox_reserved[peer];
    reserved.first += 1;
    reserved.second += bytes;
  }
  return absl::OkStatus();
}

void Committer::AddOutboxWrites(const Housekeeping& housekeeping,
                                PendingCommit* commit) {
  std::string value;
  for (const PublishEntry* e : commit->fresh) {
    if (e->outbox_peers.empty()) continue;
    internal::v1::OutboxEntry entry;
    entry.set_bytes(e->value.size());
    *entry.mutable_queued_at() = e->record->stored.received_at();
    entry.SerializeToString(&value);
    const OutboxPriority priority =
        PriorityOf(e->record->stored.alert().severity());
    for (const std::string& peer : e->outbox_peers) {
      OutboxKey key{peer, priority, e->sequence};
      commit->batch.PutOutbox(key, value);
      commit->outbox_added.push_back(std::move(key));
      commit->outbox_added_bytes.push_back(e->value.size());
    }
  }
  for (const OutboxRemoval& removal : housekeeping.outbox_removals) {
    for (const OutboxKey& key : removal.keys) commit->batch.RemoveOutbox(key);
  }
}

void Committer::AddRemovals(const Housekeeping& housekeeping,
                            PendingCommit* commit) {
  for (uint64_t seq : housekeeping.removals) commit->batch.RemoveAlert(seq);
  for (const std::string& key : housekeeping.removed_dedup_keys) {
    commit->batch.RemoveDedup(key);
  }
}

void Committer::AddCursorWrites(
    const absl::flat_hash_map<std::string, uint64_t>& cursors,
    PendingCommit* commit) {
  for (const auto& [key, seq] : cursors) {
    auto stored = stored_cursors_.find(key);
    if (stored == stored_cursors_.end()) {
      absl::StatusOr<std::optional<uint64_t>> on_disk =
          store_->GetCursorByKey(key);
      if (!on_disk.ok()) {
        // Not knowing the stored cursor, writing this one could move it
        // back; it waits for a batch that can read it.
        LogEvent(absl::StrCat("reading a subscription cursor failed (",
                              on_disk.status().message(),
                              "); its update waits for the next batch"));
        commit->cursors_unread.emplace(key, seq);
        continue;
      }
      stored = stored_cursors_.emplace(key, on_disk->value_or(0)).first;
    }
    if (seq <= stored->second) continue;
    commit->batch.PutCursor(key, seq);
    commit->cursors_written.emplace_back(key, seq);
  }
}

Committer::WrittenBatch Committer::AuditFailed(const absl::Status& appended,
                                               Housekeeping housekeeping,
                                               std::vector<QueuedGroup>* groups,
                                               PendingCommit* commit) {
  // Without its audit record nothing may be stored.
  audit_->Aborted();
  LogEvent(absl::StrCat("the audit trail cannot be written: ",
                        appended.message(), "; will retry"));
  Requeue(std::move(housekeeping));
  return FailBatch(groups, commit->fresh, commit->first_new,
                   absl::UnavailableError(absl::StrCat(
                       "the audit trail cannot be written (",
                       appended.message(), "); retry with the same id")),
                   commit);
}

Committer::WrittenBatch Committer::CommitFailed(
    const absl::Status& written, Housekeeping housekeeping,
    std::vector<QueuedGroup>* groups, PendingCommit* commit) {
  if (audit_ != nullptr) audit_->Aborted();
  LogEvent(
      absl::StrCat("a commit failed: ", written.message(), "; will retry"));
  for (auto& [key, seq] : commit->cursors_unread) {
    housekeeping.cursors[key] = seq;
  }
  Requeue(std::move(housekeeping));
  // A full disk is RESOURCE_EXHAUSTED for a new subscription too.
  commit->cursor_status = absl::Status(
      StoreFailure(written).code(),
      absl::StrCat("the durable subscription's position could not be "
                   "stored (",
                   written.message(), "); retry"));
  return FailBatch(groups, commit->fresh, commit->first_new,
                   StoreFailure(written), commit);
}

Committer::WrittenBatch Committer::CommitSucceeded(
    Housekeeping* housekeeping, std::vector<QueuedGroup>* groups,
    PendingCommit* commit) {
  const std::vector<uint64_t>& removals = housekeeping->removals;
  if (audit_ != nullptr) audit_->Committed();
  commit->cursor_status = absl::OkStatus();
  for (const auto& [key, seq] : commit->cursors_written) {
    stored_cursors_[key] = seq;
  }
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t seq : removals) removing_.erase(seq);
    for (auto& [key, seq] : commit->cursors_unread) {
      uint64_t& slot = cursors_[key];
      slot = std::max(slot, seq);
    }
    audit_backlogged_.store(
        audit_records_.size() >= options_.max_pending_audit_records,
        std::memory_order_relaxed);
  }
  written_sequence_ = commit->last_sequence;
  WrittenBatch done;
  done.groups = std::move(*groups);
  done.committed = std::move(commit->committed);
  done.last_sequence = commit->last_sequence;
  done.outbox_removals = std::move(housekeeping->outbox_removals);
  done.outbox_added = std::move(commit->outbox_added);
  done.outbox_added_bytes = std::move(commit->outbox_added_bytes);
  if (!commit->outbox_reserved.empty()) {
    absl::MutexLock lock(&outbox_in_flight_mu_);
    for (const auto& [peer, reserved] : commit->outbox_reserved) {
      auto& in_flight = outbox_in_flight_[peer];
      in_flight.first += reserved.first;
      in_flight.second += reserved.second;
    }
    done.outbox_reserved = std::move(commit->outbox_reserved);
  }
  done.cursor_answers = std::move(commit->cursor_answers);
  done.cursor_status = commit->cursor_status;
  return done;
}

void Committer::Requeue(Housekeeping housekeeping) {
  absl::MutexLock lock(&mu_);
  // Records keep their tickets, which are lower than those queued since.
  for (auto it = housekeeping.audit_records.rbegin();
       it != housekeeping.audit_records.rend(); ++it) {
    audit_records_.push_front(std::move(*it));
  }
  for (auto& [key, seq] : housekeeping.cursors) {
    uint64_t& slot = cursors_[key];
    slot = std::max(slot, seq);
  }
  removals_.insert(removals_.begin(), housekeeping.removals.begin(),
                   housekeeping.removals.end());
  removed_dedup_keys_.insert(
      removed_dedup_keys_.begin(),
      std::make_move_iterator(housekeeping.removed_dedup_keys.begin()),
      std::make_move_iterator(housekeeping.removed_dedup_keys.end()));
  outbox_removals_.insert(
      outbox_removals_.begin(),
      std::make_move_iterator(housekeeping.outbox_removals.begin()),
      std::make_move_iterator(housekeeping.outbox_removals.end()));
}

Committer::WrittenBatch Committer::FailBatch(
    std::vector<QueuedGroup>* groups, const std::vector<PublishEntry*>& fresh,
    uint64_t first_new, const absl::Status& failed, PendingCommit* commit) {
  // Nothing of the batch was applied: the sequences are given back and
  // every caller whose alert was in it is told; they may retry with the
  // same id. Duplicates found within the failed batch were not stored
  // either. (The queued audit records were put back by Requeue.)
  for (PublishEntry* e : fresh) {
    e->status = failed;
    e->sequence = 0;
  }
  for (QueuedGroup& queued : *groups) {
    for (PublishEntry& e : queued.group->entries) {
      if (e.duplicate && e.sequence >= first_new) {
        e.status = failed;
        e.sequence = 0;
        e.duplicate = false;
      }
    }
  }
  WrittenBatch done;
  done.groups = std::move(*groups);
  done.cursor_answers = std::move(commit->cursor_answers);
  done.cursor_status = commit->cursor_status;
  return done;
}

void Committer::CountAnswers(const PublishGroup& group) const {
  if (options_.counters == nullptr) return;
  for (const PublishEntry& e : group.entries) {
    options_.counters->CountPublish(e.status, e.duplicate);
  }
}

void Committer::Answer(std::vector<QueuedGroup>* groups) const {
  for (QueuedGroup& queued : *groups) {
    CountAnswers(*queued.group);
    auto done = std::move(queued.group->done);
    done(std::move(queued.group));
  }
}

}  // namespace ibsm::broker
