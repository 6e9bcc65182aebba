#include "control/retention.h"

#include <google/protobuf/util/time_util.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "ibsm/authorizer.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "logging/event_log.h"
#include "publish/committer.h"
#include "storage/key_codec.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

constexpr size_t kChunk = 4096;

}  // namespace

bool IsExpired(const internal::v1::StoredAlert& stored,
               const Authorizer& policy, absl::Time now) {
  const v1::Alert& alert = stored.alert();
  if (alert.has_expires_at() && ToTime(alert.expires_at()) <= now) return true;
  absl::Duration keep = policy.RetentionFor(alert.topic());
  return keep > absl::ZeroDuration() &&
         ToTime(stored.received_at()) + keep <= now;
}

RetentionTask::RetentionTask(NodeContext* node, absl::Duration interval,
                             Clock* clock)
    : node_(node),
      clock_(clock),
      task_(interval, clock, [this] { RunAndLog(); }) {}

absl::StatusOr<size_t> RetentionTask::RunOnce(absl::Time now) {
  absl::MutexLock pass(&pass_mu_);
  std::shared_ptr<const Authorizer> policy = node_->authorizer();
  const uint64_t last = node_->committer()->last_sequence();
  size_t removed = 0;
  uint64_t from = 1;
  while (from <= last) {
    std::vector<uint64_t> sequences;
    std::vector<std::string> dedup_keys;
    std::vector<v1::AuditRecord> records;
    uint64_t next = last + 1;
    size_t seen = 0;
    absl::Status status = node_->store()->ScanLog(
        from, kChunk, [&](uint64_t seq, absl::string_view value) {
          if (seq > last) return false;
          next = seq + 1;
          ++seen;
          absl::StatusOr<internal::v1::StoredAlert> opened =
              node_->store()->DecodeAlert(seq, value);
          if (!opened.ok()) {
            return true;  // not ours to judge; delivery reports corruption
          }
          const internal::v1::StoredAlert& stored = *opened;
          if (IsExpired(stored, *policy, now)) {
            sequences.push_back(seq);
            dedup_keys.push_back(
                DedupKey(stored.alert().originator(), stored.alert().id()));
            v1::AuditRecord record =
                AuditEvent(v1::AUDIT_RETENTION_REMOVE, "retention", true,
                           "past its expiry or its topic's retention");
            DescribeAlert(stored.alert(), &record);
            record.set_sequence(seq);
            record.set_policy_version(policy->version());
            records.push_back(std::move(record));
          }
          return true;
        });
    if (!status.ok()) return status;
    removed += sequences.size();
    if (!sequences.empty()) {
      node_->committer()->RemoveExpired(
          std::move(sequences), std::move(dedup_keys), std::move(records));
    }
    if (seen < kChunk) break;
    from = next;
  }
  return removed;
}

void RetentionTask::RunAndLog() {
  absl::StatusOr<size_t> removed = RunOnce(clock_->Now());
  if (!removed.ok()) {
    LogEvent(
        absl::StrCat("retention pass failed: ", removed.status().message()));
  } else if (*removed > 0) {
    LogEvent(absl::StrCat("retention removed ", *removed, " expired alerts"));
  }
}

}  // namespace ibsm::broker
