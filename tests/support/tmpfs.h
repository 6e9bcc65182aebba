// A small tmpfs of its own for full-disk tests, and a way to fill it. Mounting
// needs root (CI runs as root); a test checks mounted() and skips with a
// warning otherwise. Not thread-safe.
#ifndef IBSM_TESTS_SUPPORT_TMPFS_H_
#define IBSM_TESTS_SUPPORT_TMPFS_H_

#include <cstddef>
#include <string>

namespace ibsm::testing {

// A tmpfs of `mib` MiB at `path` (created when missing), unmounted (and so
// emptied) on destruction.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, int mib);
  ~TmpfsMount();
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Writes the file `path` until the file system refuses more (ENOSPC), in
// shrinking chunks so that the last free page is taken too. Returns the
// bytes written; fails the test if the refusal is not ENOSPC.
size_t FillDisk(const std::string& path);

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_TMPFS_H_
