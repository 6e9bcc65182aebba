#include "control/tls_watcher.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "logging/event_log.h"
#include "publish/committer.h"

namespace ibsm::broker {
namespace {

void AppendFile(const std::filesystem::path& path, std::string* out) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  auto time = std::filesystem::last_write_time(path, ec);
  absl::StrAppend(out, path.string(), ":", ec ? 0 : size, ":",
                  ec ? 0 : time.time_since_epoch().count(), ";");
}

}  // namespace

TlsWatcher::TlsWatcher(TlsFiles files, absl::Duration interval,
                       NodeContext* node, std::function<void()> on_change)
    : files_(std::move(files)),
      interval_(interval),
      node_(node),
      on_change_(std::move(on_change)) {
  // The files as they are when the node starts, taken here rather than on
  // the thread: a change made right after the start must not be missed
  // because the thread ran late.
  std::string seen = Fingerprint();
  thread_ = std::thread(
      [this, seen = std::move(seen)]() mutable { Run(std::move(seen)); });
}

TlsWatcher::~TlsWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

std::string TlsWatcher::Fingerprint() const {
  std::string out;
  for (const std::string& file :
       {files_.cert_file, files_.key_file, files_.ca_file}) {
    AppendFile(file, &out);
  }
  if (!files_.crl_dir.empty()) {
    std::error_code ec;
    std::vector<std::filesystem::path> entries;
    for (const auto& entry :
         std::filesystem::directory_iterator(files_.crl_dir, ec)) {
      entries.push_back(entry.path());
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) AppendFile(path, &out);
  }
  return out;
}

void TlsWatcher::Run(std::string seen) {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) return;
    }
    std::string now = Fingerprint();
    if (now == seen) continue;
    seen = now;
    std::string reason = absl::StrCat(
        "certificate, key, CA or CRL files changed on disk; the CA file and "
        "CRLs apply now to new handshakes, new calls and live streams, the "
        "node's own certificate and key within ",
        absl::FormatDuration(interval_));
    LogEvent(reason);
    v1::AuditRecord record =
        AuditEvent(v1::AUDIT_CERT_RELOAD, "operator", true, reason);
    record.set_detail(absl::StrCat(files_.cert_file, " ", files_.crl_dir));
    node_->committer()->Audit(std::move(record));
    if (on_change_) on_change_();
  }
}

}  // namespace ibsm::broker
