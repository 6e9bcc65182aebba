// Notices when the node's certificate, key, CA file or CRL directory change
// on disk, records it in the audit trail (AUDIT_CERT_RELOAD) and the log, and
// runs `on_change` (the node reloads its PeerVerifier's CA and CRLs there and
// ends live calls of peers now refused). gRPC's file-watcher provider
// re-reads certificate, key and CA on its own schedule; gRPC 1.51 gives no
// hook for it, so this watcher compares the files' size and modification
// time every `interval`: a replaced CRL applies within one interval. Own
// thread; construction and destruction only.
#ifndef IBSM_BROKER_CONTROL_TLS_WATCHER_H_
#define IBSM_BROKER_CONTROL_TLS_WATCHER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/certificates.h"

namespace ibsm::broker {

class NodeContext;

class TlsWatcher {
 public:
  // `node` must outlive the watcher; `on_change` runs on the watcher's
  // thread.
  TlsWatcher(TlsFiles files, absl::Duration interval, NodeContext* node,
             std::function<void()> on_change = nullptr);
  ~TlsWatcher();

 private:
  void Run(std::string seen);  // `seen`: the files' fingerprint at start
  // Size and modification time of every watched file, as one string.
  std::string Fingerprint() const;

  const TlsFiles files_;
  const absl::Duration interval_;
  NodeContext* const node_;
  const std::function<void()> on_change_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_TLS_WATCHER_H_
