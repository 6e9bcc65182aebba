#include "tests/support/fault_env.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <chrono>
#include <string>
#include <thread>

namespace ibsm::testing {
namespace {

bool IsTableFile(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
}

bool IsLogFile(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
}

rocksdb::IOStatus Injected() {
  return rocksdb::IOStatus::IOError("injected read failure (test FaultEnv)");
}

rocksdb::IOStatus InjectedWrite(bool no_space) {
  if (no_space) {
    return rocksdb::IOStatus::NoSpace(
        "injected: no space left (test FaultEnv)");
  }
  return rocksdb::IOStatus::IOError("injected write failure (test FaultEnv)");
}

class FailingFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FailingFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file,
              std::shared_ptr<std::atomic<bool>> fail)
      : FSRandomAccessFileOwnerWrapper(std::move(file)),
        fail_(std::move(fail)) {}

  rocksdb::IOStatus Read(uint64_t offset, size_t n,
                         const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    if (fail_->load()) return Injected();
    return target()->Read(offset, n, options, result, scratch, dbg);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) {
      for (size_t i = 0; i < num_reqs; ++i) reqs[i].status = Injected();
      return Injected();
    }
    return target()->MultiRead(reqs, num_reqs, options, dbg);
  }

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
};

// What the switches of one FaultEnv are, shared with its files.
struct Switches {
  std::shared_ptr<std::atomic<bool>> fail_reads;
  std::shared_ptr<std::atomic<bool>> fail_writes;
  std::shared_ptr<std::atomic<bool>> fail_syncs;
  std::shared_ptr<std::atomic<bool>> hold_syncs;
  std::shared_ptr<std::atomic<bool>> writes_no_space;
  std::shared_ptr<std::atomic<uint64_t>> failed_appends;
};

class FailingWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FailingWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                      Switches switches)
      : FSWritableFileOwnerWrapper(std::move(file)),
        fail_(switches.fail_writes),
        switches_(std::move(switches)) {}

  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = BeforeSync(); !s.ok()) return s;
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = BeforeSync(); !s.ok()) return s;
    return target()->Fsync(options, dbg);
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return FailAppend();
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return FailAppend();
    return target()->Append(data, options, info, dbg);
  }

 private:
  rocksdb::IOStatus FailAppend() {
    switches_.failed_appends->fetch_add(1);
    return InjectedWrite(switches_.writes_no_space->load());
  }
  rocksdb::IOStatus BeforeSync() {
    while (switches_.hold_syncs->load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (switches_.fail_syncs->load()) {
      return rocksdb::IOStatus::IOError(
          "injected sync failure (test FaultEnv)");
    }
    return rocksdb::IOStatus::OK();
  }

  std::shared_ptr<std::atomic<bool>> fail_;
  Switches switches_;
};

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> base, Switches switches)
      : FileSystemWrapper(std::move(base)),
        fail_(switches.fail_reads),
        switches_(std::move(switches)) {}
  const char* Name() const override { return "IbsmTestFaultFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s =
        target()->NewRandomAccessFile(name, options, result, dbg);
    if (s.ok() && IsTableFile(name)) {
      *result = std::make_unique<FailingFile>(std::move(*result), fail_);
    }
    return s;
  }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok() && IsLogFile(name)) {
      *result =
          std::make_unique<FailingWritableFile>(std::move(*result), switches_);
    }
    return s;
  }

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
  Switches switches_;
};

}  // namespace

FaultEnv::FaultEnv() : FaultEnv(nullptr) {}

FaultEnv::FaultEnv(rocksdb::Env* base)
    : fail_reads_(std::make_shared<std::atomic<bool>>(false)),
      fail_writes_(std::make_shared<std::atomic<bool>>(false)),
      fail_syncs_(std::make_shared<std::atomic<bool>>(false)),
      hold_syncs_(std::make_shared<std::atomic<bool>>(false)),
      writes_no_space_(std::make_shared<std::atomic<bool>>(false)),
      failed_appends_(std::make_shared<std::atomic<uint64_t>>(0)),
      env_(rocksdb::NewCompositeEnv(std::make_shared<FaultFileSystem>(
          base != nullptr ? base->GetFileSystem()
                          : rocksdb::FileSystem::Default(),
          Switches{fail_reads_, fail_writes_, fail_syncs_, hold_syncs_,
                   writes_no_space_, failed_appends_}))) {}

FaultEnv::~FaultEnv() = default;

}  // namespace ibsm::testing
