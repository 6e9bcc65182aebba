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
                       NodeContext* node, std::function<void()> on_change,
                       Clock* clock)
    : files_(std::move(files)),
      interval_(interval),
      node_(node),
      on_change_(std::move(on_change)),
      seen_(Fingerprint()),
      task_(interval, clock, [this] { CheckOnce(); }) {}

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

void TlsWatcher::CheckOnce() {
  std::string now = Fingerprint();
  if (now == seen_) return;
  seen_ = std::move(now);
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

}  // namespace ibsm::broker
