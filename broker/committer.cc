#include "broker/committer.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "broker/audit_trail.h"
#include "broker/event_log.h"
#include "broker/key_codec.h"
#include "broker/log_integrity.h"
#include "broker/store.h"

namespace ibsm::broker {
namespace {

// The audit record of one publish, accepted (with its sequence) or refused.
v1::AuditRecord PublishRecord(const PublishEntry& e) {
  v1::AuditRecord r = AuditEvent(
      v1::AUDIT_PUBLISH, e.actor, e.status.ok(),
      e.status.ok() ? (e.duplicate ? "duplicate of an alert already stored; "
                                     "nothing written"
                                   : "stored")
                    : e.status.message());
  DescribeAlert(e.record->stored.alert(), &r);
  r.set_rule(e.decision_rule);
  r.set_policy_version(e.policy_version);
  r.set_sequence(e.sequence);
  r.set_payload_sha256(e.payload_sha256);
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

Committer::Committer(Store* store, LogCache* cache, AuditTrail* audit,
                     CommitterOptions options,
                     std::function<void(uint64_t)> on_commit)
    : store_(store),
      cache_(cache),
      audit_(audit),
      options_(options),
      on_commit_(std::move(on_commit)),
      last_sequence_(store->recovered_last_sequence()) {
  thread_ = std::thread([this] { Run(); });
}

Committer::~Committer() { Stop(); }

void Committer::Submit(std::unique_ptr<PublishGroup> group) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queued_alerts_ += group->entries.size();
      queue_.push_back(std::move(group));
      return;
    }
  }
  for (PublishEntry& e : group->entries) {
    e.status = absl::UnavailableError("node is shutting down; retry later");
  }
  auto done = std::move(group->done);
  done(std::move(group));
}

void Committer::UpdateCursor(std::string cursor_key, uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  uint64_t& slot = cursors_[cursor_key];
  if (sequence > slot) slot = sequence;
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
  absl::MutexLock lock(&mu_);
  audit_records_.push_back(std::move(record));
}

void Committer::Audit(std::vector<v1::AuditRecord> records) {
  if (audit_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  audit_records_.insert(audit_records_.end(),
                        std::make_move_iterator(records.begin()),
                        std::make_move_iterator(records.end()));
}

void Committer::RemoveExpired(std::vector<uint64_t> sequences,
                              std::vector<std::string> dedup_keys,
                              std::vector<v1::AuditRecord> records) {
  absl::MutexLock lock(&mu_);
  if (audit_ != nullptr) {
    audit_records_.insert(audit_records_.end(),
                          std::make_move_iterator(records.begin()),
                          std::make_move_iterator(records.end()));
  }
  removals_.insert(removals_.end(), sequences.begin(), sequences.end());
  removed_dedup_keys_.insert(removed_dedup_keys_.end(),
                             std::make_move_iterator(dedup_keys.begin()),
                             std::make_move_iterator(dedup_keys.end()));
}

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Run() {
  enum class Next { kCommit, kCheckpoint, kStop };
  while (true) {
    std::vector<std::unique_ptr<PublishGroup>> groups;
    Housekeeping housekeeping;
    Next next = Next::kCommit;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || !cursors_.empty() || !removals_.empty() ||
               !audit_records_.empty() || !cursor_creations_.empty() ||
               stopping_;
      };
      // Wake for work, or when a time-based checkpoint falls due.
      absl::Time due =
          audit_ != nullptr
              ? std::max(audit_->next_checkpoint_due(), checkpoint_retry_at_)
              : absl::InfiniteFuture();
      if (!mu_.AwaitWithDeadline(absl::Condition(&has_work), due)) {
        next = Next::kCheckpoint;
      } else if (queue_.empty() && cursors_.empty() && removals_.empty() &&
                 audit_records_.empty() && cursor_creations_.empty()) {
        next = Next::kStop;  // stopping, drained
      } else {
        // Take whole groups up to the size limit; a single oversized group
        // is still taken alone.
        size_t taken_alerts = 0;
        size_t n = 0;
        while (n < queue_.size() &&
               (n == 0 || taken_alerts + queue_[n]->entries.size() <=
                              options_.max_group_alerts)) {
          taken_alerts += queue_[n]->entries.size();
          ++n;
        }
        groups.assign(std::make_move_iterator(queue_.begin()),
                      std::make_move_iterator(queue_.begin() + n));
        queue_.erase(queue_.begin(), queue_.begin() + n);
        queued_alerts_ -= taken_alerts;
        housekeeping.cursors.swap(cursors_);
        housekeeping.removals.swap(removals_);
        housekeeping.removed_dedup_keys.swap(removed_dedup_keys_);
        housekeeping.audit_records.swap(audit_records_);
        housekeeping.cursor_creations.swap(cursor_creations_);
      }
    }
    switch (next) {
      case Next::kCheckpoint:
        CheckpointIfDue(/*force=*/false);
        break;
      case Next::kStop:
        CheckpointIfDue(/*force=*/true);  // the last records are covered
        return;
      case Next::kCommit:
        CommitOnce(std::move(groups), std::move(housekeeping));
        CheckpointIfDue(/*force=*/false);
        break;
    }
  }
}

void Committer::CheckpointIfDue(bool force) {
  if (audit_ == nullptr) return;
  const absl::Time now = absl::Now();
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

void Committer::CommitOnce(std::vector<std::unique_ptr<PublishGroup>> groups,
                           Housekeeping housekeeping) {
  rocksdb::WriteBatch batch;
  std::vector<std::pair<std::string, uint64_t>> cursors_written;
  // Answered when this function returns: after the batch is durable, or
  // with the reason it is not.
  std::vector<CursorAnswer> cursor_answers = PrepareCursorCreations(
      std::move(housekeeping.cursor_creations), &batch, &cursors_written);
  absl::Status batch_status = absl::UnavailableError(
      "the durable subscription's position could not be stored; retry");
  absl::Cleanup answer_cursors = [&cursor_answers, &batch_status] {
    for (CursorAnswer& a : cursor_answers) {
      if (a.status.ok() && !batch_status.ok()) a.status = batch_status;
      a.done(a.status, a.cursor, a.created);
    }
  };
  uint64_t next = last_sequence_.load(std::memory_order_relaxed);
  const uint64_t first_new = next + 1;
  absl::flat_hash_map<std::string, uint64_t> in_batch;
  std::vector<std::shared_ptr<const LogRecord>> committed;
  std::vector<PublishEntry*> fresh;

  for (auto& group : groups) {
    for (PublishEntry& e : group->entries) {
      if (!e.status.ok()) continue;  // refused before submission
      const v1::Alert& alert = e.record->stored.alert();
      std::string key = DedupKey(alert.originator(), alert.id());
      if (auto it = in_batch.find(key); it != in_batch.end()) {
        e.sequence = it->second;
        e.duplicate = true;
        continue;
      }
      absl::StatusOr<std::optional<uint64_t>> existing =
          store_->FindDuplicate(alert.originator(), alert.id());
      if (!existing.ok()) {
        e.status = existing.status();
        continue;
      }
      if (existing->has_value()) {
        e.sequence = **existing;
        e.duplicate = true;
        continue;
      }
      e.sequence = ++next;
      e.record->sequence = e.sequence;
      std::string seq_key = EncodeSequence(e.sequence);
      batch.Put(store_->handle(Family::kLog), seq_key, e.value);
      batch.Put(store_->handle(Family::kDedup), key, seq_key);
      in_batch.emplace(std::move(key), e.sequence);
      committed.push_back(e.record);
      fresh.push_back(&e);
    }
  }
  std::vector<v1::AuditRecord> records;
  if (audit_ != nullptr) {
    for (auto& group : groups) {
      for (const PublishEntry& e : group->entries) {
        records.push_back(PublishRecord(e));
      }
    }
    records.insert(records.end(),
                   std::make_move_iterator(housekeeping.audit_records.begin()),
                   std::make_move_iterator(housekeeping.audit_records.end()));
    absl::Status appended = audit_->Append(&records, &batch);
    if (!appended.ok()) {
      // Without its audit record nothing may be stored.
      FailBatch(&groups, fresh, first_new,
                absl::UnavailableError(absl::StrCat(
                    "the audit trail cannot be written (", appended.message(),
                    "); retry with the same id")));
      return;
    }
    PutAlertAuditLinks(*store_, records, first_new, &batch);
  }
  for (uint64_t seq : housekeeping.removals) {
    batch.Delete(store_->handle(Family::kLog), EncodeSequence(seq));
  }
  for (const std::string& key : housekeeping.removed_dedup_keys) {
    batch.Delete(store_->handle(Family::kDedup), key);
  }
  for (auto& [key, seq] : housekeeping.cursors) {
    auto stored = stored_cursors_.find(key);
    if (stored == stored_cursors_.end()) {
      absl::StatusOr<std::optional<uint64_t>> on_disk =
          store_->GetCursorByKey(key);
      uint64_t known = on_disk.ok() && on_disk->has_value() ? **on_disk : 0;
      stored = stored_cursors_.emplace(key, known).first;
    }
    if (seq <= stored->second) continue;
    batch.Put(store_->handle(Family::kCursor), key, EncodeSequence(seq));
    cursors_written.emplace_back(key, seq);
  }

  absl::Status written = absl::OkStatus();
  if (batch.Count() > 0) written = store_->Write(&batch, options_.sync);
  if (!written.ok()) {
    if (audit_ != nullptr) audit_->Aborted();
    // Cursors are rewritten by the next acknowledgement (losing one only
    // means redelivery, which subscribers handle) and retention finds the
    // expired records again at its next pass.
    // A full disk is RESOURCE_EXHAUSTED for a new subscription too.
    batch_status = absl::Status(
        StoreFailure(written).code(),
        absl::StrCat("the durable subscription's position could not be "
                     "stored (",
                     written.message(), "); retry"));
    FailBatch(&groups, fresh, first_new, StoreFailure(written));
    return;
  }
  if (audit_ != nullptr) audit_->Committed();
  batch_status = absl::OkStatus();
  for (const auto& [key, seq] : cursors_written) stored_cursors_[key] = seq;
  if (!committed.empty()) {
    cache_->Append(committed);
    last_sequence_.store(next, std::memory_order_release);
    on_commit_(next);
  }
  Answer(&groups);
}

std::vector<Committer::CursorAnswer> Committer::PrepareCursorCreations(
    std::vector<CursorCreation> creations, rocksdb::WriteBatch* batch,
    std::vector<std::pair<std::string, uint64_t>>* cursors_written) {
  std::vector<CursorAnswer> answers;
  absl::flat_hash_map<std::string, uint64_t> created_here;
  for (CursorCreation& c : creations) {
    CursorAnswer& answer = answers.emplace_back();
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
    batch->Put(store_->handle(Family::kCursor), c.key,
               EncodeSequence(c.sequence));
    cursors_written->emplace_back(c.key, c.sequence);
    created_here.emplace(c.key, c.sequence);
    answer.cursor = c.sequence;
    answer.created = true;
  }
  return answers;
}

void Committer::FailBatch(std::vector<std::unique_ptr<PublishGroup>>* groups,
                          const std::vector<PublishEntry*>& fresh,
                          uint64_t first_new, const absl::Status& failed) {
  // Nothing of the batch was applied: the sequences are given back and
  // every caller whose alert was in it is told; they may retry with the
  // same id. Duplicates found within the failed batch were not stored
  // either.
  for (PublishEntry* e : fresh) {
    e->status = failed;
    e->sequence = 0;
  }
  for (auto& group : *groups) {
    for (PublishEntry& e : group->entries) {
      if (e.duplicate && e.sequence >= first_new) {
        e.status = failed;
        e.sequence = 0;
        e.duplicate = false;
      }
    }
  }
  Answer(groups);
}

void Committer::Answer(std::vector<std::unique_ptr<PublishGroup>>* groups) {
  for (auto& group : *groups) {
    auto done = std::move(group->done);
    done(std::move(group));
  }
}

}  // namespace ibsm::broker
