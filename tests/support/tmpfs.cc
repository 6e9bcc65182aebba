#include "tests/support/tmpfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ibsm::testing {

TmpfsMount::TmpfsMount(const std::string& path, int mib) : path_(path) {
  std::filesystem::create_directories(path_);
  std::string data = absl::StrCat("size=", mib, "m,mode=0700");
  if (mount("tmpfs", path_.c_str(), "tmpfs", 0, data.c_str()) == 0) {
    mounted_ = true;
  } else {
    error_ = std::strerror(errno);
  }
}

TmpfsMount::~TmpfsMount() {
  if (mounted_) umount2(path_.c_str(), MNT_DETACH);
}

size_t FillDisk(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  REQUIRE(fd >= 0);
  size_t total = 0;
  std::vector<char> chunk(1 << 20, 'x');
  for (size_t size = chunk.size(); size >= 1; size /= 16) {
    while (true) {
      ssize_t n = write(fd, chunk.data(), size);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
  }
  REQUIRE(errno == ENOSPC);
  close(fd);
  return total;
}

}  // namespace ibsm::testing
