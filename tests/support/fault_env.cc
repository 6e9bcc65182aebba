#include "tests/support/fault_env.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <string>

namespace ibsm::testing {
namespace {

bool IsTableFile(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
}

rocksdb::IOStatus Injected() {
  return rocksdb::IOStatus::IOError("injected read failure (test FaultEnv)");
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

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFileSystem(std::shared_ptr<std::atomic<bool>> fail)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        fail_(std::move(fail)) {}
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

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
};

}  // namespace

FaultEnv::FaultEnv()
    : fail_reads_(std::make_shared<std::atomic<bool>>(false)),
      env_(rocksdb::NewCompositeEnv(
          std::make_shared<FaultFileSystem>(fail_reads_))) {}

FaultEnv::~FaultEnv() = default;

}  // namespace ibsm::testing
