// Keeps the key that signs audit checkpoints equal to the node's TLS key
// on disk. When the node's certificate and key files change (renewal, key
// rotation), the watcher reads both, and once the key matches the
// certificate it replaces the CheckpointSigner's key and records the
// rotation in the trail (AUDIT_CERT_RELOAD whose detail names the new
// certificate's SHA-256), so an auditor knows which certificate verifies
// the checkpoints after it. A key that does not match its certificate (files
// caught mid-replacement, or a wrong pair) is not used: checkpoints stay
// signed with the previous key, and the mismatch is logged and recorded once.
// The check runs on its own thread (a PeriodicTask); construction and
// destruction only.
#ifndef IBSM_BROKER_SIGNING_KEY_WATCHER_H_
#define IBSM_BROKER_SIGNING_KEY_WATCHER_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "control/periodic_task.h"
#include "ibsm/clock.h"

namespace ibsm {
class CheckpointSigner;
}  // namespace ibsm

namespace ibsm::broker {

class Committer;

class SigningKeyWatcher {
 public:
  // Checks `cert_file` and `key_file` every `interval` of `clock`'s time.
  // `committer` and `clock` must outlive the watcher.
  SigningKeyWatcher(std::string cert_file, std::string key_file,
                    absl::Duration interval,
                    std::shared_ptr<CheckpointSigner> signer,
                    Committer* committer, Clock* clock = RealClock());
  ~SigningKeyWatcher() = default;  // stops the check (task_ first)
  SigningKeyWatcher(const SigningKeyWatcher&) = delete;
  SigningKeyWatcher& operator=(const SigningKeyWatcher&) = delete;

 private:
  // Replaces the key if the files hold a new, matching pair.
  void CheckOnce();

  const std::string cert_file_;
  const std::string key_file_;
  const std::shared_ptr<CheckpointSigner> signer_;
  Committer* const committer_;
  std::string reported_mismatch_;  // the task's thread only
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_CONTROL_SIGNING_KEY_WATCHER_H_
