#include "storage/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace ibsm::broker {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

bool WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir);
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return ErrnoError("sync", dir);
  return absl::OkStatus();
}

namespace {

absl::Status WriteAndSync(const std::string& path, absl::string_view bytes,
                          int flags) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
  if (fd < 0) return ErrnoError("create", path);
  const bool ok = WriteAll(fd, bytes) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    errno = saved;
    return ErrnoError("write", path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteNewFile(const std::string& path, absl::string_view bytes) {
  return WriteAndSync(path, bytes, O_EXCL);
}

absl::Status ReplaceFileDurably(const std::string& path,
                                absl::string_view bytes) {
  const std::string temp = path + ".tmp";
  if (absl::Status s = WriteAndSync(temp, bytes, O_TRUNC); !s.ok()) return s;
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError("rename", temp);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return SyncDirectory(dir);
}

}  // namespace ibsm::broker
