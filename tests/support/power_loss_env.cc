#include "tests/support/power_loss_env.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace ibsm::testing {

struct PowerLossEnv::State {
  struct File {
    uint64_t size = 0;           // bytes appended
    uint64_t synced = 0;         // bytes made durable by Sync/Fsync
    bool entry_durable = false;  // the directory entry survives
  };

  absl::Mutex mu;
  bool cut ABSL_GUARDED_BY(mu) = false;
  std::map<std::string, File> files ABSL_GUARDED_BY(mu);
  Dropped dropped ABSL_GUARDED_BY(mu);

  bool Cut() {
    absl::MutexLock lock(&mu);
    return cut;
  }
};

namespace {

using State = PowerLossEnv::State;

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// A file opened after the power went: it accepts everything and keeps
// nothing, and exists nowhere.
class DroppedFile final : public rocksdb::FSWritableFile {
 public:
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions&,
                           rocksdb::IODebugContext*) override {
    size_ += data.size();
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo&,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&,
                         rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  uint64_t GetFileSize(const rocksdb::IOOptions&,
                       rocksdb::IODebugContext*) override {
    return size_;
  }
  // As a real file: RocksDB's SyncWAL refuses ("Not implemented") a log
  // that may not be synced from another thread, and the node then stops.
  bool IsSyncThreadSafe() const override { return true; }

 private:
  uint64_t size_ = 0;
};

// A file written while the power is on: every append is counted, a sync
// marks what is durable, and after the cut nothing more reaches the disk.
class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> file,
              std::shared_ptr<State> state, std::string path)
      : FSWritableFileOwnerWrapper(std::move(file)),
        state_(std::move(state)),
        path_(std::move(path)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (!Count(data.size())) return rocksdb::IOStatus::OK();
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (!Count(data.size())) return rocksdb::IOStatus::OK();
    return target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (!Count(data.size())) return rocksdb::IOStatus::OK();
    return target()->PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (!Count(data.size())) return rocksdb::IOStatus::OK();
    return target()->PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->cut) return rocksdb::IOStatus::OK();
      State::File& f = state_->files[path_];
      f.size = size;
      if (f.synced > size) f.synced = size;
    }
    return target()->Truncate(size, options, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->Close(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Sync(options, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Fsync(options, dbg); });
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    // sync_file_range starts write-back but makes nothing durable.
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  // Counts an append; false when the power is cut (the append is dropped).
  bool Count(size_t bytes) {
    absl::MutexLock lock(&state_->mu);
    if (state_->cut) return false;
    state_->files[path_].size += bytes;
    return true;
  }
  template <typename SyncFn>
  rocksdb::IOStatus SyncWith(SyncFn sync) {
    uint64_t size;
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->cut) return rocksdb::IOStatus::OK();
      size = state_->files[path_].size;
    }
    rocksdb::IOStatus s = sync();
    if (!s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    // A sync that finished after the cut made nothing durable that the
    // test may count on: the cut is the instant the power went.
    if (!state_->cut) {
      State::File& f = state_->files[path_];
      if (size > f.synced) f.synced = size;
    }
    return s;
  }

  const std::shared_ptr<State> state_;
  const std::string path_;
};

class TrackedDirectory final : public rocksdb::FSDirectory {
 public:
  TrackedDirectory(std::unique_ptr<rocksdb::FSDirectory> dir,
                   std::shared_ptr<State> state, std::string path)
      : dir_(std::move(dir)), state_(std::move(state)), path_(std::move(path)) {
    while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = dir_->Fsync(options, dbg);
    if (s.ok()) MarkEntriesDurable();
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(
      const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg,
      const rocksdb::DirFsyncOptions& dir_options) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = dir_->FsyncWithDirOptions(options, dbg, dir_options);
    if (s.ok()) MarkEntriesDurable();
    return s;
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return dir_->Close(options, dbg);
  }
  size_t GetUniqueId(char* id, size_t max_size) const override {
    return dir_->GetUniqueId(id, max_size);
  }

 private:
  void MarkEntriesDurable() {
    absl::MutexLock lock(&state_->mu);
    if (state_->cut) return;
    for (auto& [path, file] : state_->files) {
      if (ParentOf(path) == path_) file.entry_durable = true;
    }
  }

  std::unique_ptr<rocksdb::FSDirectory> dir_;
  const std::shared_ptr<State> state_;
  std::string path_;
};

class PowerLossFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit PowerLossFileSystem(std::shared_ptr<State> state)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        state_(std::move(state)) {}
  const char* Name() const override { return "IbsmTestPowerLossFileSystem"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    bool entry_durable;
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->cut) {
        *result = std::make_unique<DroppedFile>();
        return rocksdb::IOStatus::OK();
      }
      // Truncating an existing file keeps its directory entry, if that was
      // durable.
      auto known = state_->files.find(name);
      std::error_code ec;
      entry_durable = known != state_->files.end()
                          ? known->second.entry_durable
                          : std::filesystem::exists(name, ec);
    }
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (!s.ok()) return s;
    {
      absl::MutexLock lock(&state_->mu);
      state_->files[name] = State::File{0, 0, entry_durable};
    }
    *result = std::make_unique<TrackedFile>(std::move(*result), state_, name);
    return s;
  }

  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->cut) {
        *result = std::make_unique<DroppedFile>();
        return rocksdb::IOStatus::OK();
      }
    }
    rocksdb::IOStatus s =
        target()->ReopenWritableFile(name, options, result, dbg);
    if (!s.ok()) return s;
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->files.count(name) == 0) {
        std::error_code ec;
        const uintmax_t size = std::filesystem::file_size(name, ec);
        const uint64_t on_disk = ec ? 0 : size;
        state_->files[name] = State::File{on_disk, on_disk, true};
      }
    }
    *result = std::make_unique<TrackedFile>(std::move(*result), state_, name);
    return s;
  }

  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    // Log recycling is off in the store; refuse rather than mis-track.
    return rocksdb::IOStatus::NotSupported(
        "PowerLossEnv does not model recycled files");
  }

  rocksdb::IOStatus NewDirectory(const std::string& name,
                                 const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, options, result, dbg);
    if (s.ok()) {
      *result =
          std::make_unique<TrackedDirectory>(std::move(*result), state_, name);
    }
    return s;
  }

  rocksdb::IOStatus DeleteFile(const std::string& name,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->cut) return rocksdb::IOStatus::OK();
      state_->files.erase(name);
    }
    return target()->DeleteFile(name, options, dbg);
  }

  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    absl::MutexLock lock(&state_->mu);
    if (state_->cut) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = target()->RenameFile(src, dst, options, dbg);
    if (!s.ok()) return s;
    auto moved = state_->files.find(src);
    if (moved != state_->files.end()) {
      State::File file = moved->second;
      state_->files.erase(moved);
      // Durable at once (see the header): RocksDB syncs the directory right
      // after each rename it relies on.
      file.entry_durable = true;
      state_->files[dst] = file;
    } else {
      state_->files.erase(dst);
    }
    return s;
  }

  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->LinkFile(src, dst, options, dbg);
  }

  rocksdb::IOStatus CreateDir(const std::string& name,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->CreateDir(name, options, dbg);
  }
  rocksdb::IOStatus CreateDirIfMissing(const std::string& name,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->CreateDirIfMissing(name, options, dbg);
  }
  rocksdb::IOStatus DeleteDir(const std::string& name,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (state_->Cut()) return rocksdb::IOStatus::OK();
    return target()->DeleteDir(name, options, dbg);
  }

 private:
  const std::shared_ptr<State> state_;
};

}  // namespace

PowerLossEnv::PowerLossEnv()
    : state_(std::make_shared<State>()),
      env_(rocksdb::NewCompositeEnv(
          std::make_shared<PowerLossFileSystem>(state_))) {}

PowerLossEnv::~PowerLossEnv() = default;

void PowerLossEnv::CutPower() {
  absl::MutexLock lock(&state_->mu);
  state_->cut = true;
}

absl::Status PowerLossEnv::RestorePower() {
  absl::MutexLock lock(&state_->mu);
  Dropped dropped;
  for (const auto& [path, file] : state_->files) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("power loss: cannot stat ", path, ": ", ec.message()));
    }
    if (!file.entry_durable) {
      std::filesystem::remove(path, ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("power loss: cannot remove ",
                                                path, ": ", ec.message()));
      }
      ++dropped.files_removed;
      dropped.bytes += size;
    } else if (size > file.synced) {
      std::filesystem::resize_file(path, file.synced, ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("power loss: cannot truncate ",
                                                path, ": ", ec.message()));
      }
      ++dropped.files_truncated;
      dropped.bytes += size - file.synced;
    }
  }
  state_->files.clear();
  state_->dropped = dropped;
  state_->cut = false;
  return absl::OkStatus();
}

PowerLossEnv::Dropped PowerLossEnv::last_dropped() const {
  absl::MutexLock lock(&state_->mu);
  return state_->dropped;
}

}  // namespace ibsm::testing
