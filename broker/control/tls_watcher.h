// Notices when the node's certificate, key, CA file or CRL directory change
// on disk, records it in the audit trail (AUDIT_CERT_RELOAD) and the log, and
// runs `on_change` (the node reloads its PeerVerifier's CA and CRLs there and
// ends live calls of peers now refused). gRPC's file-watcher provider
// re-reads certificate, key and CA on its own schedule; gRPC 1.51 gives no
// hook for it, so this watcher compares the files' size and modification
// time every `interval`: a replaced CRL applies within one interval. The
// check runs on its own thread (a PeriodicTask); construction and
// destruction only.
#ifndef IBSM_BROKER_TLS_WATCHER_H_
#define IBSM_BROKER_TLS_WATCHER_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "control/periodic_task.h"
#include "ibsm/certificates.h"
#include "ibsm/clock.h"

namespace ibsm::broker {

class NodeContext;

class TlsWatcher {
 public:
  // `node` and `clock` must outlive the watcher; `on_change` runs on the
  // watcher's thread.
  TlsWatcher(TlsFiles files, absl::Duration interval, NodeContext* node,
             std::function<void()> on_change = nullptr,
             Clock* clock = RealClock());
  ~TlsWatcher() = default;  // stops the check (task_ first)

 private:
  // Compares the files with `seen_`; records and applies a change.
  void CheckOnce();
  // Size and modification time of every watched file, as one string.
  std::string Fingerprint() const;

  const TlsFiles files_;
  const absl::Duration interval_;
  NodeContext* const node_;
  const std::function<void()> on_change_;
  // The files' fingerprint at the last check. Taken at construction rather
  // than on the thread: a change made right after the start must not be
  // missed because the thread ran late. The task's thread only.
  std::string seen_;
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_TLS_WATCHER_H_
