#include "tests/support/fault_env.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <string>

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

rocksdb::IOStatus InjectedWrite() {
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

class FailingWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FailingWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file,
                      std::shared_ptr<std::atomic<bool>> fail)
      : FSWritableFileOwnerWrapper(std::move(file)), fail_(std::move(fail)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return InjectedWrite();
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (fail_->load()) return InjectedWrite();
    return target()->Append(data, options, info, dbg);
  }

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
};

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(std::shared_ptr<std::atomic<bool>> fail,
                  std::shared_ptr<std::atomic<bool>> fail_writes)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        fail_(std::move(fail)),
        fail_writes_(std::move(fail_writes)) {}
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
      *result = std::make_unique<FailingWritableFile>(std::move(*result),
                                                      fail_writes_);
    }
    return s;
  }

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
  std::shared_ptr<std::atomic<bool>> fail_writes_;
};

}  // namespace

FaultEnv::FaultEnv()
    : fail_reads_(std::make_shared<std::atomic<bool>>(false)),
      fail_writes_(std::make_shared<std::atomic<bool>>(false)),
      env_(rocksdb::NewCompositeEnv(
          std::make_shared<FaultFileSystem>(fail_reads_, fail_writes_))) {}

FaultEnv::~FaultEnv() = default;

}  // namespace ibsm::testing
