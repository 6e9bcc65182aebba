#include "broker/store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "broker/key_codec.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/storage.pb.h"

namespace ibsm::broker {
namespace {

constexpr uint32_t kSchemaVersion = 1;
constexpr const char* kFamilyNames[kFamilyCount] = {
    "log", "dedup", "cursor", "meta", "audit", "merkle", "outbox"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

rocksdb::ColumnFamilyOptions FamilyOptions(int family) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  if (family == static_cast<int>(Family::kDedup) ||
      family == static_cast<int>(Family::kCursor)) {
    // Point lookups on every publish: a bloom filter saves the disk read for
    // the common case of a new alert id.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.OptimizeForPointLookup(64);
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.write_buffer_size = 64 << 20;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Many concurrent writers are funnelled through one Committer thread, so
  // RocksDB's own write grouping is not needed; pipelining helps the WAL.
  db_options.enable_pipelined_write = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           rocksdb::ColumnFamilyOptions());
  for (int i = 0; i < kFamilyCount; ++i) {
    descriptors.emplace_back(kFamilyNames[i], FamilyOptions(i));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open the data directory ", options.path, ": ", s.ToString()));
  }
  auto store = std::unique_ptr<Store>(new Store());
  store->db_.reset(raw);
  // handles[0] is the default family, which we keep only to close it.
  store->handles_.assign(handles.begin() + 1, handles.end());
  store->handles_.push_back(handles[0]);

  // Node identity of the data directory: set once, checked ever after.
  std::string value;
  rocksdb::ColumnFamilyHandle* meta = store->handle(Family::kMeta);
  s = raw->Get(rocksdb::ReadOptions(), meta, "node", &value);
  if (s.IsNotFound()) {
    v1::NodeMeta node_meta;
    node_meta.set_schema_version(kSchemaVersion);
    node_meta.set_node_id(options.node_id);
    rocksdb::WriteOptions w;
    w.sync = true;
    RETURN_IF_ERROR(FromRocks(
        raw->Put(w, meta, "node", node_meta.SerializeAsString()),
        absl::StrCat("cannot write to the data directory ", options.path)));
  } else if (s.ok()) {
    v1::NodeMeta node_meta;
    if (!node_meta.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat(options.path, ": node metadata is corrupt"));
    }
    if (node_meta.node_id() != options.node_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", options.path, " belongs to node ",
                       node_meta.node_id(), ", not ", options.node_id));
    }
    if (node_meta.schema_version() > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", options.path, " has schema version ",
                       node_meta.schema_version(), "; this broker reads up to ",
                       kSchemaVersion));
    }
  } else {
    return FromRocks(s, absl::StrCat("cannot read ", options.path));
  }

  std::unique_ptr<rocksdb::Iterator> it(
      raw->NewIterator(rocksdb::ReadOptions(), store->handle(Family::kLog)));
  it->SeekToLast();
  if (it->Valid()) {
    std::optional<uint64_t> last =
        DecodeSequence(absl::string_view(it->key().data(), it->key().size()));
    if (!last) {
      return absl::DataLossError(
          absl::StrCat(options.path, ": log key of unexpected size"));
    }
    store->recovered_last_sequence_ = *last;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the log"));
  return store;
}

Store::~Store() {
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Closing handles cannot fail in a way we could act on at destruction.
    (void)db_->DestroyColumnFamilyHandle(h);
  }
  (void)db_->Close();
}

rocksdb::ColumnFamilyHandle* Store::handle(Family family) const {
  return handles_[static_cast<int>(family)];
}

absl::Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, batch), "writing to the log");
}

absl::StatusOr<std::optional<uint64_t>> Store::FindDuplicate(
    absl::string_view originator, absl::string_view alert_id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kDedup),
                               DedupKey(originator, alert_id), &value);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  RETURN_IF_ERROR(FromRocks(s, "reading the idempotency index"));
  std::optional<uint64_t> seq = DecodeSequence(value);
  if (!seq) return absl::DataLossError("corrupt idempotency index entry");
  return seq;
}

absl::StatusOr<std::optional<uint64_t>> Store::GetCursor(
    absl::string_view agency, absl::string_view name) const {
  return GetCursorByKey(CursorKey(agency, name));
}

absl::StatusOr<std::optional<uint64_t>> Store::GetCursorByKey(
    absl::string_view cursor_key) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handle(Family::kCursor),
               rocksdb::Slice(cursor_key.data(), cursor_key.size()), &value);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  RETURN_IF_ERROR(FromRocks(s, "reading a subscription cursor"));
  std::optional<uint64_t> seq = DecodeSequence(value);
  if (!seq) return absl::DataLossError("corrupt subscription cursor");
  return seq;
}

absl::Status Store::ScanLog(
    uint64_t from, size_t max_records,
    const std::function<bool(uint64_t, absl::string_view)>& fn) const {
  absl::Status decode = absl::OkStatus();
  RETURN_IF_ERROR(Scan(Family::kLog, EncodeSequence(from), max_records,
                       [&](absl::string_view key, absl::string_view value) {
                         std::optional<uint64_t> seq = DecodeSequence(key);
                         if (!seq) {
                           decode = absl::DataLossError(
                               "log key of unexpected size");
                           return false;
                         }
                         return fn(*seq, value);
                       }));
  return decode;
}

absl::StatusOr<std::optional<std::string>> Store::Get(
    Family family, absl::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(family),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "reading the store"));
  return std::optional<std::string>(std::move(value));
}

absl::Status Store::Scan(
    Family family, absl::string_view from_key, size_t max_records,
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  rocksdb::ReadOptions options;
  options.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(options, handle(family)));
  size_t visited = 0;
  for (it->Seek(rocksdb::Slice(from_key.data(), from_key.size()));
       it->Valid() && visited < max_records; it->Next(), ++visited) {
    if (!fn(absl::string_view(it->key().data(), it->key().size()),
            absl::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "reading the store");
}

absl::StatusOr<std::optional<std::string>> Store::LastKey(Family family) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handle(family)));
  it->SeekToLast();
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the store"));
  if (!it->Valid()) return std::optional<std::string>();
  return std::optional<std::string>(it->key().ToString());
}

absl::Status Store::Flush() {
  rocksdb::FlushOptions options;
  std::vector<rocksdb::ColumnFamilyHandle*> families(handles_.begin(),
                                                     handles_.end());
  return FromRocks(db_->Flush(options, families), "flushing");
}

}  // namespace ibsm::broker
