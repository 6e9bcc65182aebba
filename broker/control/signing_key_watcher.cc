#include "control/signing_key_watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "logging/event_log.h"
#include "publish/committer.h"

namespace ibsm::broker {

SigningKeyWatcher::SigningKeyWatcher(std::string cert_file,
                                     std::string key_file,
                                     absl::Duration interval,
                                     std::shared_ptr<CheckpointSigner> signer,
                                     Committer* committer, Clock* clock)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      signer_(std::move(signer)),
      committer_(committer),
      task_(interval, clock, [this] { CheckOnce(); }) {}

void SigningKeyWatcher::CheckOnce() {
  // Unreadable or unparseable files are transient while an operator
  // replaces them; the previous key stays in use meanwhile.
  absl::StatusOr<std::string> key_pem = ReadFileToString(key_file_);
  absl::StatusOr<std::string> cert_pem = ReadFileToString(cert_file_);
  if (!key_pem.ok() || !cert_pem.ok()) return;
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(*key_pem);
  absl::StatusOr<VerifyingKey> cert =
      VerifyingKey::FromCertificatePem(*cert_pem);
  if (!key.ok() || !cert.ok()) return;
  if (key->spki_der() == signer_->spki_der()) return;  // unchanged
  const std::string fingerprint = CertificateSha256(*cert_pem);
  if (key->spki_der() != cert->spki_der()) {
    if (reported_mismatch_ == fingerprint) return;
    reported_mismatch_ = fingerprint;
    std::string reason = absl::StrCat(
        "the node's key file ", key_file_, " does not match its certificate ",
        cert_file_, " (SHA-256 ", fingerprint,
        "); audit checkpoints stay signed with the previous key");
    LogEvent(reason);
    v1::AuditRecord record =
        AuditEvent(v1::AUDIT_CERT_RELOAD, "operator", false, reason);
    record.set_detail(absl::StrCat("certificate sha256 ", fingerprint));
    committer_->Audit(std::move(record));
    return;
  }
  signer_->Replace(*std::move(key));
  reported_mismatch_.clear();
  std::string reason = absl::StrCat(
      "audit checkpoints are now signed with the key of the node certificate "
      "with SHA-256 ",
      fingerprint, " (", cert_file_, ")");
  LogEvent(reason);
  v1::AuditRecord record =
      AuditEvent(v1::AUDIT_CERT_RELOAD, "operator", true, reason);
  record.set_detail(
      absl::StrCat("checkpoint key: certificate sha256 ", fingerprint));
  committer_->Audit(std::move(record));
}

}  // namespace ibsm::broker
