#include "spool.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cstdarg>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/spool.pb.h"
#include "publish_util.h"

namespace ibsm::internal {
namespace {

// Key layout (docs/client-library.md, "Spool format"): one byte of kind,
// then for alert records the seq as 8 bytes big-endian, so that bytewise
// key order is acceptance order.
constexpr char kWaitingPrefix = 'w';
constexpr char kRefusedPrefix = 'r';
constexpr const char* kFormatKey = "m:format";
constexpr const char* kMaxAlertsKey = "m:max_alerts";
constexpr const char* kMaxBytesKey = "m:max_bytes";
constexpr const char* kFormatVersion = "1";

std::string RecordKey(char prefix, uint64_t seq) {
  std::string key(9, '\0');
  key[0] = prefix;
  for (int i = 0; i < 8; ++i) {
    key[1 + i] = static_cast<char>((seq >> (8 * (7 - i))) & 0xff);
  }
  return key;
}

uint64_t SeqOfKey(const rocksdb::Slice& key) {
  uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) {
    seq = (seq << 8) | static_cast<unsigned char>(key[1 + i]);
  }
  return seq;
}

// RocksDB's info log is dropped: errors come back as statuses, and a LOG
// file in the spool is what a full disk breaks first (docs/storage.md has
// the broker's story of it).
class NullLogger : public rocksdb::Logger {
 public:
  NullLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::FATAL_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

rocksdb::Options SpoolOptions() {
  rocksdb::Options options;
  options.info_log = std::make_shared<NullLogger>();
  options.info_log_level = rocksdb::InfoLogLevel::FATAL_LEVEL;
  options.max_background_jobs = 1;
  options.keep_log_file_num = 1;
  // A small database: a small memtable (the waiting alerts are in memory
  // in the Publisher anyway).
  options.write_buffer_size = 4 << 20;
  return options;
}

absl::Status FromRocks(const rocksdb::Status& s, const std::string& dir,
                       absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string text = s.ToString();
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "spool ", dir, ": disk full while ", what, " (", text, ")"));
  }
  if (s.IsIOError() && (text.find("lock") != std::string::npos ||
                        text.find("LOCK") != std::string::npos)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "spool ", dir,
        " is in use by another process or Publisher (its LOCK is held): a "
        "spool directory serves one process at a time (",
        text, ")"));
  }
  if (s.IsCorruption()) {
    return absl::DataLossError(
        absl::StrCat("spool ", dir, ": ", what, ": ", text));
  }
  return absl::InternalError(
      absl::StrCat("spool ", dir, ": ", what, ": ", text));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

void ToTimestamp(absl::Time time, google::protobuf::Timestamp* t) {
  const int64_t secs = absl::ToUnixSeconds(time);
  t->set_seconds(secs);
  t->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(secs))));
}

struct Scanned {
  std::map<uint64_t, v1::SpooledAlert> waiting;
  std::map<uint64_t, uint64_t> waiting_bytes;
  std::map<uint64_t, v1::SpooledAlert> refused;
  bool has_format = false;
  SpoolBounds bounds;
};

// Reads every record; an unknown key or a record that does not parse is
// DATA_LOSS naming it (fail closed: never skipped as if absent).
absl::StatusOr<Scanned> Scan(rocksdb::DB& db, const std::string& dir) {
  Scanned out;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    const rocksdb::Slice value = it->value();
    if (key.size() == 9 &&
        (key[0] == kWaitingPrefix || key[0] == kRefusedPrefix)) {
      v1::SpooledAlert record;
      if (!record.ParseFromArray(value.data(),
                                 static_cast<int>(value.size()))) {
        return absl::DataLossError(absl::StrCat(
            "spool ", dir, ": the record of seq ", SeqOfKey(key),
            " does not parse; move the directory aside to start a new spool"));
      }
      const uint64_t seq = SeqOfKey(key);
      if (key[0] == kWaitingPrefix) {
        out.waiting_bytes[seq] = key.size() + value.size();
        out.waiting.emplace(seq, std::move(record));
      } else {
        out.refused.emplace(seq, std::move(record));
      }
      continue;
    }
    const std::string k = key.ToString();
    if (k == kFormatKey) {
      if (value.ToString() != kFormatVersion) {
        return absl::FailedPreconditionError(
            absl::StrCat("spool ", dir, " has format '", value.ToString(),
                         "', this library reads format ", kFormatVersion));
      }
      out.has_format = true;
    } else if (k == kMaxAlertsKey || k == kMaxBytesKey) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(value.ToString(), &n)) {
        return absl::DataLossError(
            absl::StrCat("spool ", dir, ": ", k, " is not a number"));
      }
      (k == kMaxAlertsKey ? out.bounds.max_alerts : out.bounds.max_bytes) = n;
    } else {
      return absl::DataLossError(
          absl::StrCat("spool ", dir, ": unknown key of ", key.size(),
                       " bytes (is this a spool of a newer library?)"));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), dir, "reading");
  return out;
}

SpoolRefusal RefusalOf(const v1::SpooledAlert& record) {
  SpoolRefusal r;
  r.alert_id = record.alert().id();
  r.status =
      StatusFromCode(record.refusal().code(), record.refusal().message());
  r.spooled_at = FromTimestamp(record.spooled_at());
  r.refused_at = FromTimestamp(record.refused_at());
  return r;
}

absl::Status CheckDirectory(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("the spool directory is empty");
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("no spool at ", dir, ": the directory does not exist"));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool ", dir, " is not a directory"));
  }
  if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat(
        "no spool at ", dir, ": the directory holds no spool database"));
  }
  return absl::OkStatus();
}

}  // namespace

Spool::Spool(std::string dir, SpoolBounds bounds,
             std::unique_ptr<rocksdb::DB> db)
    : dir_(std::move(dir)), bounds_(bounds), db_(std::move(db)) {}

Spool::~Spool() = default;

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const std::string& dir,
                                                   SpoolBounds bounds,
                                                   rocksdb::Env* env) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("the spool directory is empty");
  }
  std::error_code ec;
  const std::filesystem::path path(dir);
  bool created = false;
  if (!std::filesystem::exists(path, ec)) {
    if (!std::filesystem::create_directory(path, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create the spool directory ", dir, ": ",
                       ec ? ec.message() : "unknown error",
                       " (its parent directory must exist)"));
    }
    created = true;
  } else if (!std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("spool ", dir, " is not a directory"));
  } else if (!std::filesystem::exists(path / "CURRENT", ec) &&
             !std::filesystem::is_empty(path, ec)) {
    // Never scribble a database into a directory that holds something else.
    return absl::FailedPreconditionError(absl::StrCat(
        "spool ", dir,
        " exists and is not a spool: give an empty or new directory"));
  } else if (!std::filesystem::exists(path / "CURRENT", ec)) {
    created = true;
  }

  rocksdb::Options options = SpoolOptions();
  if (env != nullptr) options.env = env;
  options.create_if_missing = created;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return FromRocks(s, dir, "opening");
  std::unique_ptr<Spool> spool(
      new Spool(dir, bounds, std::unique_ptr<rocksdb::DB>(raw)));

  rocksdb::WriteBatch batch;
  batch.Put(kFormatKey, kFormatVersion);
  batch.Put(kMaxAlertsKey, std::to_string(bounds.max_alerts));
  batch.Put(kMaxBytesKey, std::to_string(bounds.max_bytes));
  // Load checks the format marker first, so an existing database of
  // something else is refused before anything is written to it.
  IBSM_RETURN_IF_ERROR(spool->Load());
  rocksdb::WriteOptions sync;
  sync.sync = true;
  IBSM_RETURN_IF_ERROR(
      FromRocks(spool->db_->Write(sync, &batch), dir, "writing its bounds"));
  return spool;
}

absl::Status Spool::Load() {
  IBSM_ASSIGN_OR_RETURN(Scanned scanned, Scan(*db_, dir_));
  const bool empty = scanned.waiting.empty() && scanned.refused.empty();
  if (!scanned.has_format && !empty) {
    return absl::FailedPreconditionError(absl::StrCat(
        "spool ", dir_, " holds a database that is not an ibsm spool"));
  }
  absl::MutexLock lock(&mu_);
  uint64_t last = 0;
  for (auto& [seq, record] : scanned.waiting) {
    waiting_[seq] =
        Waiting{scanned.waiting_bytes[seq], FromTimestamp(record.spooled_at())};
    waiting_bytes_ += scanned.waiting_bytes[seq];
    recovered_.push_back(SpooledEntry{seq, std::move(*record.mutable_alert())});
    last = std::max(last, seq);
  }
  for (auto& [seq, record] : scanned.refused) {
    refused_.push_back(Refused{seq, RefusalOf(record)});
    last = std::max(last, seq);
  }
  // The seq only orders the records present; nothing outside the spool
  // refers to it, so it may start over once the spool is empty.
  next_seq_ = last + 1;
  return absl::OkStatus();
}

absl::StatusOr<SpoolState> Spool::ReadState(const std::string& dir,
                                            absl::Time now) {
  IBSM_RETURN_IF_ERROR(CheckDirectory(dir));
  rocksdb::Options options = SpoolOptions();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, &raw);
  if (!s.ok()) return FromRocks(s, dir, "opening read-only");
  std::unique_ptr<rocksdb::DB> db(raw);
  IBSM_ASSIGN_OR_RETURN(Scanned scanned, Scan(*db, dir));
  if (!scanned.has_format) {
    return absl::NotFoundError(
        absl::StrCat("no spool at ", dir,
                     ": it holds a database that is not an ibsm "
                     "spool"));
  }
  SpoolState state;
  state.dir = dir;
  state.max_alerts = scanned.bounds.max_alerts;
  state.max_bytes = scanned.bounds.max_bytes;
  state.alerts = scanned.waiting.size();
  for (const auto& [seq, bytes] : scanned.waiting_bytes) state.bytes += bytes;
  for (const auto& [seq, record] : scanned.waiting) {
    absl::Time at = FromTimestamp(record.spooled_at());
    if (at < state.oldest_spooled_at ||
        state.oldest_spooled_at == absl::InfinitePast()) {
      state.oldest_spooled_at = at;
    }
  }
  if (state.alerts > 0) {
    state.oldest_age =
        std::max(absl::ZeroDuration(), now - state.oldest_spooled_at);
  }
  for (const auto& [seq, record] : scanned.refused) {
    state.refusals.push_back(RefusalOf(record));
  }
  return state;
}

std::vector<SpooledEntry> Spool::TakeRecovered() {
  absl::MutexLock lock(&mu_);
  return std::move(recovered_);
}

absl::StatusOr<uint64_t> Spool::Append(const v1::Alert& alert, absl::Time now) {
  v1::SpooledAlert record;
  *record.mutable_alert() = alert;
  ToTimestamp(now, record.mutable_spooled_at());
  const std::string value = record.SerializeAsString();
  const uint64_t bytes = 9 + value.size();
  uint64_t seq;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.size() + 1 > bounds_.max_alerts) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "spool ", dir_, " is full: ", waiting_.size(),
          " alerts wait for the node, the bound is spool_max_alerts = ",
          bounds_.max_alerts, "; alert '", alert.id(),
          "' was not accepted (nothing spooled was dropped)"));
    }
    if (waiting_bytes_ + bytes > bounds_.max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("spool ", dir_, " is full: ", waiting_bytes_,
                       " bytes wait and alert '", alert.id(), "' needs ", bytes,
                       ", the bound is spool_max_bytes = ", bounds_.max_bytes,
                       " (nothing spooled was dropped)"));
    }
    // Reserved before the write, so that concurrent Appends share one sync
    // (RocksDB groups them) without passing the bounds together.
    seq = next_seq_++;
    waiting_[seq] = Waiting{bytes, now};
    waiting_bytes_ += bytes;
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::Status s = db_->Put(sync, RecordKey(kWaitingPrefix, seq), value);
  if (!s.ok()) {
    // RocksDB refuses every write after a failed one until Resume; resume
    // now so that the next Append can succeed once there is space again.
    (void)db_->Resume();  // best effort: a failure shows in the next write
    absl::MutexLock lock(&mu_);
    waiting_.erase(seq);
    waiting_bytes_ -= bytes;
    return FromRocks(s, dir_,
                     absl::StrCat("spooling alert '", alert.id(), "'"));
  }
  return seq;
}

absl::Status Spool::Settle(absl::Span<const SpoolSettlement> settled,
                           absl::Time now) {
  if (settled.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> removed;
  for (const SpoolSettlement& s : settled) {
    auto it = waiting_.find(s.seq);
    if (it == waiting_.end()) continue;
    batch.Delete(RecordKey(kWaitingPrefix, s.seq));
    if (!s.refusal.ok()) {
      std::string value;
      rocksdb::Status read = db_->Get(rocksdb::ReadOptions(),
                                      RecordKey(kWaitingPrefix, s.seq), &value);
      v1::SpooledAlert record;
      if (!read.ok() || !record.ParseFromString(value)) {
        return FromRocks(
            read.ok() ? rocksdb::Status::Corruption("unparsable") : read, dir_,
            "reading a refused record");
      }
      record.mutable_refusal()->set_alert_id(record.alert().id());
      record.mutable_refusal()->set_code(
          static_cast<int32_t>(s.refusal.code()));
      record.mutable_refusal()->set_message(std::string(s.refusal.message()));
      ToTimestamp(now, record.mutable_refused_at());
      batch.Put(RecordKey(kRefusedPrefix, s.seq), record.SerializeAsString());
      refused_.push_back(Refused{s.seq, RefusalOf(record)});
    }
    removed.push_back(s.seq);
  }
  while (refused_.size() > kMaxSpoolRefusals) {
    batch.Delete(RecordKey(kRefusedPrefix, refused_.front().seq));
    refused_.pop_front();
  }
  rocksdb::WriteOptions options;  // not synced: see the header
  IBSM_RETURN_IF_ERROR(
      FromRocks(db_->Write(options, &batch), dir_, "settling answered alerts"));
  for (uint64_t seq : removed) {
    auto it = waiting_.find(seq);
    waiting_bytes_ -= it->second.bytes;
    waiting_.erase(it);
  }
  return absl::OkStatus();
}

SpoolState Spool::State(absl::Time now) const {
  SpoolState state;
  state.dir = dir_;
  state.max_alerts = bounds_.max_alerts;
  state.max_bytes = bounds_.max_bytes;
  absl::MutexLock lock(&mu_);
  state.alerts = waiting_.size();
  state.bytes = waiting_bytes_;
  if (!waiting_.empty()) {
    state.oldest_spooled_at = waiting_.begin()->second.spooled_at;
    state.oldest_age =
        std::max(absl::ZeroDuration(), now - state.oldest_spooled_at);
  }
  for (const Refused& r : refused_) state.refusals.push_back(r.refusal);
  return state;
}

}  // namespace ibsm::internal

namespace ibsm {

absl::StatusOr<SpoolState> ReadSpoolState(const std::string& dir) {
  return internal::Spool::ReadState(dir, absl::Now());
}

}  // namespace ibsm
