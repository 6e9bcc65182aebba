// The Committer is the node's single writer: it gathers publishes (and cursor
// updates, retention removals and audit records) from every caller into one
// storage::Batch, writes it with one fsync (group commit), then answers every
// caller. It assigns log sequences, which is why they are gap-free and in
// commit order. The audit trail adds its records to the same batch, so an
// alert and everything that belongs to it share one fate.
//
// CommitOnce builds the batch in steps, one per concern (AddLogWrites,
// AddDedupWrites, AddAuditWrites, AddOutboxWrites, AddRemovals,
// AddCursorWrites). A new concern is one more step there. Encryption at
// rest is inside AddLogWrites: storage::Batch::PutAlert seals each fresh
// alert under its sequence (storage/key_ring.h).
//
// Two threads share the work, so that the fsync of one batch overlaps the
// building and writing of the next. The committer thread builds each batch
// and writes it to RocksDB without a sync; the completion thread then syncs
// the write-ahead log once for every batch written meanwhile (group sync),
// and only after that makes their alerts visible (log cache, last_sequence,
// outbox, subscribers) and answers their callers, batch by batch in write
// order. Nothing is acknowledged or shown before it is durable. A sync that
// fails stops the process (docs/storage.md): after a failed fsync the
// kernel may have dropped the unsynced pages, so whether a written batch is
// on disk is unknown, and a restart recovers exactly what is. A write that
// fails for room while earlier batches wait for their sync is the one
// exception (Store::SyncLog): those batches become durable when the store
// resumes, which needs room. Meanwhile their callers are told UNAVAILABLE,
// the outcome unknown, and the batches become visible, in order, once
// durable; a retry with the same id is acknowledged only then.
//
// Submit() and UpdateCursor() are safe to call from any thread; completion
// callbacks run on the completion thread, in commit order, and must not
// block.
#ifndef IBSM_BROKER_PUBLISH_COMMITTER_H_
#define IBSM_BROKER_PUBLISH_COMMITTER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/clock.h"
#include "ibsm/v1/audit.pb.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/outbox.h"
#include "storage/write_batch.h"

namespace ibsm::broker {

class NodeCounters;

class AuditTrail;
class Outbox;
class Store;

struct PublishEntry {
  // In: the alert to store (originator set), with `record->stored` already
  // serialized into `value`. The sequence is filled in on commit.
  std::shared_ptr<LogRecord> record;
  std::string value;
  // For the audit record that goes into the same batch: who published, the
  // policy decision that admitted (or refused) the alert, the payload hash.
  std::string actor;
  std::string decision_rule;
  std::string policy_version;
  std::string payload_sha256;
  // SHA-256 of the alert's content as the caller sent it
  // (AlertContentSha256 in publish_path.h), kept with the idempotency entry
  // so that a reused id with other content is told apart from a retry.
  // Empty: the Committer computes it from `record`.
  std::string content_sha256;
  // Federation: the peers that get an outbox entry for the alert, in the
  // same batch (RoutePeers, publish/route.h). A publish that would take a
  // peer's backlog past its bound is refused RESOURCE_EXHAUSTED instead.
  std::vector<std::string> outbox_peers;
  // The audit record's action and extra detail: AUDIT_PUBLISH for local
  // publishes, AUDIT_FEDERATION_RECEIVE for alerts stored from a link.
  v1::AuditAction audit_action = v1::AUDIT_PUBLISH;
  std::string audit_detail;
  // Out.
  absl::Status status;
  uint64_t sequence = 0;
  bool duplicate = false;
};

struct PublishGroup {
  std::vector<PublishEntry> entries;
  // Synced before `done` even on a node with DURABILITY_ASYNC: a peer
  // acknowledges an alert over a link only once it is on disk.
  bool require_sync = false;
  // Called once, on the completion thread, after the group's batch is
  // durable (or failed). Owns the group from then on.
  absl::AnyInvocable<void(std::unique_ptr<PublishGroup>)> done;
};

struct CommitterOptions {
  bool sync = true;  // fsync every batch
  size_t max_group_alerts = 8192;
  // Audit records waiting to be written (e.g. while the disk fails). They
  // are never dropped; at this many, publishes are refused UNAVAILABLE
  // until the backlog is written (docs/audit.md).
  size_t max_pending_audit_records = 100000;
  // Tells when a time-based audit checkpoint is due (the AuditTrail's
  // clock); must outlive the Committer.
  Clock* clock = RealClock();
  // Sync and answer on the completion thread (see the class comment). Off:
  // the committer thread writes each batch synced and answers it itself,
  // one batch at a time (tests that stop the committer thread in a
  // callback to line up batches; and measuring what the pipeline gains).
  bool pipelined = true;
  // The outbox index (federation); null for a node without peers. Must
  // outlive the Committer, which alone updates it.
  Outbox* outbox = nullptr;
  // Counts every alert answered (stored, duplicate, refused) for the
  // node's metrics; null: not counted. Must outlive the Committer.
  NodeCounters* counters = nullptr;
};

// Where an alert of `severity` waits in an outbox.
OutboxPriority PriorityOf(v1::Severity severity);

class Committer {
 public:
  // `store`, `cache` and `audit` (null: no audit trail) must outlive the
  // Committer. `on_commit(last)` is called on the completion thread after
  // each batch that added alerts is durable.
  Committer(Store* store, LogCache* cache, AuditTrail* audit,
            CommitterOptions options, std::function<void(uint64_t)> on_commit);
  ~Committer();  // Stop()s

  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Every publish and every audit record is ordered by the moment it was
  // submitted: records are indexed in that order, so a record queued before
  // a publish (a policy reload before the publishes decided under the new
  // policy) is indexed before the publish's own record.
  void Submit(std::unique_ptr<PublishGroup> group);

  // Records `sequence` as the durable cursor under `cursor_key` with the next
  // batch; a later update of the same key replaces an unwritten one.
  void UpdateCursor(std::string cursor_key, uint64_t sequence);

  // Creates the durable cursor `cursor_key` at `sequence` unless one is
  // stored already, with the next batch. `done(status, cursor, created)` runs
  // on the committer thread once the batch is durable: OK with the cursor in
  // force (the stored one when it existed, `sequence` when `created`), or the
  // error that kept it from being stored. Concurrent creations of one key
  // are ordered by the committer, so exactly one of them creates it.
  using CursorCreated =
      absl::AnyInvocable<void(absl::Status, uint64_t cursor, bool created)>;
  void CreateCursor(std::string cursor_key, uint64_t sequence,
                    CursorCreated done);

  // Adds audit records (deliveries, acknowledgements, subscriptions, policy
  // reloads, refusals, ...) to the next batch. Their caller-controlled
  // fields are bounded first (BoundAuditRecord). A record is never dropped:
  // when a batch fails, its records stay queued for the next one.
  void Audit(v1::AuditRecord record);
  void Audit(std::vector<v1::AuditRecord> records);

  // Removes log records (and their idempotency entries) with the next batch,
  // which also carries their audit records; used by retention.
  void RemoveExpired(std::vector<uint64_t> sequences,
                     std::vector<std::string> dedup_keys,
                     std::vector<v1::AuditRecord> records);

  // Deletes outbox entries (sent and acknowledged by the peer, refused by
  // it, or no longer sendable) with the next batch, which also carries
  // `records` (their AUDIT_FEDERATION_SEND records). `done` runs on the
  // committer thread once that batch is durable; after a failed batch the
  // removal waits for the next one.
  void RemoveOutbox(std::vector<OutboxKey> keys,
                    std::vector<v1::AuditRecord> records,
                    absl::AnyInvocable<void()> done);

  // True while so many audit records wait to be written that new work
  // which needs a record should be refused (publishes are, by Submit).
  bool audit_backlogged() const {
    return audit_backlogged_.load(std::memory_order_relaxed);
  }

  // Highest committed (durable) sequence; subscribers may read up to it.
  uint64_t last_sequence() const {
    return last_sequence_.load(std::memory_order_acquire);
  }

  // Commits everything submitted so far, then stops the thread. Later
  // Submit()s are answered UNAVAILABLE at once.
  void Stop();

 private:
  void Run();
  // A publish group or an audit record with its submission ticket.
  struct QueuedGroup {
    uint64_t ticket;
    std::unique_ptr<PublishGroup> group;
  };
  struct QueuedRecord {
    uint64_t ticket;
    v1::AuditRecord record;
  };
  struct OutboxRemoval {
    std::vector<OutboxKey> keys;
    absl::AnyInvocable<void()> done;
  };
  struct CursorCreation {
    std::string key;
    uint64_t sequence;
    CursorCreated done;
  };
  // The answer to one CreateCursor, given once the batch is durable (the
  // cursor in force and whether it was created) or failed.
  struct CursorAnswer {
    CursorCreated done;
    absl::Status status;
    uint64_t cursor = 0;
    bool created = false;
  };
  // What one batch carries besides publishes.
  struct Housekeeping {
    absl::flat_hash_map<std::string, uint64_t> cursors;
    std::vector<uint64_t> removals;
    std::vector<std::string> removed_dedup_keys;
    std::vector<QueuedRecord> audit_records;  // in ticket order
    std::vector<CursorCreation> cursor_creations;
    std::vector<OutboxRemoval> outbox_removals;
  };
  // Run's steps. What the thread does after taking its work: commit it,
  // sign a checkpoint that fell due, or stop (after a last checkpoint, or
  // at once when a failing store still holds what it could not write).
  enum class Next { kCommit, kCheckpoint, kStop, kGiveUp };
  // Waits for work (after a failed batch, first the retry pause) and takes
  // it from the queues into `*groups` and `*housekeeping` for kCommit.
  Next TakeWork(std::vector<QueuedGroup>* groups, Housekeeping* housekeeping)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool HasQueuedWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pause after a failed batch; false when the node stops meanwhile
  // and nothing new came to carry the failed batch's work.
  bool PauseAfterFailureLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // False when a time-based checkpoint fell due before any work came.
  bool AwaitWorkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<QueuedGroup> TakeGroupsLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Housekeeping TakeHousekeepingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a batch: the next retry pause (reset, or doubled up to a second).
  void SetRetryPause(bool committed) ABSL_LOCKS_EXCLUDED(mu_);
  // The batch CommitOnce's steps build, and what they found out that is
  // needed to answer once it is written (or not).
  struct PendingCommit {
    PendingCommit(storage::Batch batch, uint64_t last)
        : batch(std::move(batch)), first_new(last + 1), last_sequence(last) {}
    storage::Batch batch;
    const uint64_t first_new;  // the first sequence this batch may assign
    uint64_t last_sequence;    // the highest assigned (or before) so far
    // Dedup key -> (sequence, content hash) of alerts new in this batch.
    absl::flat_hash_map<std::string, std::pair<uint64_t, std::string>>
        new_dedup;
    std::vector<PublishEntry*> fresh;  // the entries this batch stores
    std::vector<std::shared_ptr<const LogRecord>> committed;  // their records
    std::vector<std::pair<std::string, uint64_t>> cursors_written;
    // Cursor updates whose stored value could not be read; they wait.
    absl::flat_hash_map<std::string, uint64_t> cursors_unread;
    std::vector<CursorAnswer> cursor_answers;
    // What cursor creations that were fine are told: an error until the
    // batch is written.
    absl::Status cursor_status = absl::UnavailableError(
        "the durable subscription's position could not be stored; retry");
    // Outbox entries this batch adds (with their bytes), and what the
    // publishes of this batch reserved of each peer's bound.
    std::vector<OutboxKey> outbox_added;
    std::vector<uint64_t> outbox_added_bytes;
    absl::flat_hash_map<std::string, std::pair<uint64_t, uint64_t>>
        outbox_reserved;
    bool sync = false;
  };
  // What the completion thread does for one batch the committer thread
  // wrote (or failed to write): in write order, after one sync for all of
  // them that need it, it makes the batch's alerts visible and answers.
  struct WrittenBatch {
    bool needs_sync = false;
    std::vector<QueuedGroup> groups;
    std::vector<std::shared_ptr<const LogRecord>> committed;
    uint64_t last_sequence = 0;
    std::vector<OutboxRemoval> outbox_removals;
    std::vector<OutboxKey> outbox_added;
    std::vector<uint64_t> outbox_added_bytes;
    // What this batch holds of each peer's bound (outbox_in_flight_).
    absl::flat_hash_map<std::string, std::pair<uint64_t, uint64_t>>
        outbox_reserved;
    std::vector<CursorAnswer> cursor_answers;
    absl::Status cursor_status;
  };
  // Batches written but not yet synced and answered, at most: the
  // committer thread waits rather than run further ahead of the disk.
  static constexpr size_t kMaxUnsyncedBatches = 4;
  // False when the batch failed (its housekeeping was queued again).
  bool CommitOnce(std::vector<QueuedGroup> groups, Housekeeping housekeeping);
  // Queues `batch` for the completion thread (waiting while
  // kMaxUnsyncedBatches are queued); completes it at once when not
  // pipelined.
  void HandOver(WrittenBatch batch) ABSL_LOCKS_EXCLUDED(completion_mu_);
  // The completion thread: until StopCompletions() and the queue is empty.
  void RunCompletions() ABSL_LOCKS_EXCLUDED(completion_mu_);
  void StopCompletions() ABSL_LOCKS_EXCLUDED(completion_mu_);
  // Makes `batch` visible and answers its callers (completion thread).
  void Complete(WrittenBatch* batch);
  // The completion thread's answers to the callers of a batch written
  // before a write failed for room, which cannot be made durable until
  // there is room (`not_synced`, from Store::SyncLog): UNAVAILABLE, the
  // outcome unknown. Leaves what Complete() still has to make visible.
  void AnswerUndurable(const absl::Status& not_synced,
                       WrittenBatch* batch) const;
  // Whether Complete() has anything left to do for a batch already answered.
  static bool HasEffects(const WrittenBatch& batch);
  // How often the completion thread tries again to make such batches
  // durable, when nothing else comes.
  static constexpr absl::Duration kUndurableRetryMin = absl::Milliseconds(100);
  static constexpr absl::Duration kUndurableRetryMax = absl::Seconds(1);
  // The steps of CommitOnce, in order; each adds its writes to
  // `commit->batch`.
  void AddCursorCreations(std::vector<CursorCreation> creations,
                          PendingCommit* commit);
  // Decides, by the idempotency index, which entries are new (and gives
  // them sequences), duplicates or conflicts; writes nothing.
  void AssignSequences(std::vector<QueuedGroup>* groups, PendingCommit* commit);
  void AssignSequence(PublishEntry* e, PendingCommit* commit);
  // Fails only when sealing an alert fails (OpenSSL).
  absl::Status AddLogWrites(PendingCommit* commit);
  void AddDedupWrites(PendingCommit* commit);
  // The records of the publishes and the queued ones, in submission order,
  // and the alerts' links to them. Fails when the trail cannot append.
  absl::Status AddAuditWrites(const std::vector<QueuedGroup>& groups,
                              const std::vector<QueuedRecord>& queued_records,
                              PendingCommit* commit);
  void AddRemovals(const Housekeeping& housekeeping, PendingCommit* commit);
  void AddCursorWrites(
      const absl::flat_hash_map<std::string, uint64_t>& cursors,
      PendingCommit* commit);
  // The outbox entries of the fresh alerts, and the removals asked for.
  void AddOutboxWrites(const Housekeeping& housekeeping, PendingCommit* commit);
  // RESOURCE_EXHAUSTED when `e` would take a peer past its bound.
  absl::Status ReserveOutbox(const PublishEntry& e, PendingCommit* commit);
  // After the batch was written, or not (AuditFailed: before it was, as
  // the audit trail could not append its records).
  // Each returns what the completion thread is to do for the batch.
  WrittenBatch CommitSucceeded(Housekeeping* housekeeping,
                               std::vector<QueuedGroup>* groups,
                               PendingCommit* commit);
  WrittenBatch CommitFailed(const absl::Status& written,
                            Housekeeping housekeeping,
                            std::vector<QueuedGroup>* groups,
                            PendingCommit* commit);
  WrittenBatch AuditFailed(const absl::Status& appended,
                           Housekeeping housekeeping,
                           std::vector<QueuedGroup>* groups,
                           PendingCommit* commit);
  static void AnswerCursorCreations(WrittenBatch* batch);
  // Gives the sequences of a batch that was not written back and tells
  // every caller whose alert was in it (by the returned WrittenBatch).
  static WrittenBatch FailBatch(std::vector<QueuedGroup>* groups,
                                const std::vector<PublishEntry*>& fresh,
                                uint64_t first_new, const absl::Status& failed,
                                PendingCommit* commit);
  // Puts the housekeeping of a failed batch back in front of what was
  // queued since, so that nothing is lost and the order is kept.
  void Requeue(Housekeeping housekeeping);
  // Is the alert of `e` the one stored under `dedup` (legacy entries carry
  // no content hash: the stored alert is compared)?
  absl::StatusOr<bool> SameContent(const PublishEntry& e,
                                   const DedupEntry& dedup) const;
  void AddRecordsLocked(std::vector<v1::AuditRecord> records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Answer(std::vector<QueuedGroup>* groups) const;
  // Counts the answers of `group` in options_.counters.
  void CountAnswers(const PublishGroup& group) const;
  void CheckpointIfDue(bool force);

  Store* const store_;
  LogCache* const cache_;
  AuditTrail* const audit_;
  const CommitterOptions options_;
  const std::function<void(uint64_t)> on_commit_;
  std::atomic<uint64_t> last_sequence_;  // durable and visible
  // Highest sequence written to the store (perhaps not yet synced): where
  // the next batch's sequences continue. Committer thread only.
  uint64_t written_sequence_;
  std::atomic<bool> audit_backlogged_{false};
  // Highest cursor stored per key, so that a late, lower acknowledgement
  // (from a superseded connection) never moves a cursor back. Committer
  // thread only.
  absl::flat_hash_map<std::string, uint64_t> stored_cursors_;
  // After a failed checkpoint (e.g. on a full disk) the next try waits until
  // then. Committer thread only.
  static constexpr absl::Duration kCheckpointRetry = absl::Seconds(1);
  absl::Time checkpoint_retry_at_ = absl::InfinitePast();
  bool checkpoint_failing_ = false;

  absl::Mutex mu_;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<QueuedGroup> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_alerts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> cursors_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> removals_ ABSL_GUARDED_BY(mu_);
  // Sequences queued for removal and not yet written, so that a retention
  // pass that runs while a removal waits does not queue it (and its audit
  // record) twice.
  absl::flat_hash_set<uint64_t> removing_ ABSL_GUARDED_BY(mu_);
  std::deque<QueuedRecord> audit_records_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> removed_dedup_keys_ ABSL_GUARDED_BY(mu_);
  std::vector<CursorCreation> cursor_creations_ ABSL_GUARDED_BY(mu_);
  std::vector<OutboxRemoval> outbox_removals_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set after a failed batch: housekeeping alone is retried only after
  // `retry_backoff_`, not in a busy loop.
  bool last_failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration retry_backoff_ ABSL_GUARDED_BY(mu_);

  // Per peer, the outbox entries (alerts, bytes) of batches written but
  // not yet in the outbox index, which learns of them only once they are
  // synced: a peer's bound counts them too, so it holds while batches are
  // in the pipeline. The committer thread adds, the completion thread
  // subtracts.
  absl::Mutex outbox_in_flight_mu_;
  absl::flat_hash_map<std::string, std::pair<uint64_t, uint64_t>>
      outbox_in_flight_ ABSL_GUARDED_BY(outbox_in_flight_mu_);

  // The completion thread's queue, in write order.
  absl::Mutex completion_mu_;
  std::deque<WrittenBatch> written_ ABSL_GUARDED_BY(completion_mu_);
  bool completions_stopping_ ABSL_GUARDED_BY(completion_mu_) = false;

  std::thread thread_;
  std::thread completion_thread_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_PUBLISH_COMMITTER_H_
