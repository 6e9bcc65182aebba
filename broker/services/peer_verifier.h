// The broker's check of a peer certificate chain, beyond gRPC's own chain
// verification: the whole chain (leaf, intermediate and root) against CRLs
// that this class loads from crl_dir and reloads on request, failing closed
// when a CA of the chain has no current CRL there, and the binding of the
// leaf's spiffe://ibsm/NODE/... id to NODE's own intermediate CA. It runs at
// every TLS handshake (HandshakeVerifier) and at every call
// (AuthenticateCall), so a replaced CRL applies to connections that were
// opened before it. It is also the node's AlertVerifier: originator
// signatures (ibsm/alert_signature.h) are checked against the same roots and
// CRLs, on the same fail-closed terms. A PeerVerifier is safe for concurrent
// use; shared_ptr because gRPC's credentials keep the handshake verifier
// alive.
#ifndef IBSM_BROKER_SERVICES_PEER_VERIFIER_H_
#define IBSM_BROKER_SERVICES_PEER_VERIFIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "context/node_context.h"
#include "ibsm/certificates.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/v1/audit.pb.h"

namespace grpc::experimental {
class CertificateVerifier;
}

namespace ibsm {
struct VerifiedSigningChain;
}

namespace ibsm::broker {

class PeerVerifier final : public std::enable_shared_from_this<PeerVerifier>,
                           public AlertVerifier {
 public:
  // Loads `ca_file` (trusted roots) and, when `crl_dir` is not empty, every
  // PEM CRL in it. FAILED_PRECONDITION naming the file when the CA file
  // cannot be read; unreadable CRL files are skipped and logged, which
  // leaves their CA without a CRL, so its certificates are refused.
  static absl::StatusOr<std::shared_ptr<PeerVerifier>> Create(
      std::string ca_file, std::string crl_dir);
  ~PeerVerifier();
  PeerVerifier(const PeerVerifier&) = delete;
  PeerVerifier& operator=(const PeerVerifier&) = delete;

  // Re-reads the CA file and the CRLs; later checks use them. On error the
  // previous set stays in force and the error is returned.
  absl::Status Reload();
  // Incremented by every successful Reload.
  uint64_t generation() const;

  // Verifies `leaf_pem` with the certificates of `chain_pem` (may repeat the
  // leaf) as untrusted intermediates against the roots and, with a crl_dir,
  // the CRL of every certificate in the chain. UNAUTHENTICATED with the
  // reason and the certificate at fault otherwise.
  absl::Status CheckChain(absl::string_view leaf_pem,
                          absl::string_view chain_pem) const;

  // CheckChain, then BoundSpiffeId and ParseSpiffeId: the identity of a
  // peer. The binding failure is PERMISSION_DENIED naming the certificate's
  // id and its issuer. Results are cached per chain for up to a minute and
  // until the next Reload.
  absl::StatusOr<Identity> Authenticate(absl::string_view leaf_pem,
                                        absl::string_view chain_pem);

  // AlertVerifier: VerifyAlertSignature against the current roots and, with
  // a crl_dir, the CRL of every certificate of the signing chain (a CA
  // without one refuses). A verified chain is cached by its exact bytes
  // for up to a minute (never past its notAfter) and until the next Reload,
  // so that a further alert with the same chain costs the signature check
  // only. Refusals are not cached.
  absl::Status VerifyAlert(const v1::Alert& alert) const override;

  // A gRPC handshake verifier that refuses the connection when CheckChain
  // fails, logs it and passes it to the audit sink. Keeps this object alive.
  std::shared_ptr<grpc::experimental::CertificateVerifier> HandshakeVerifier();

  // Where handshake refusals are recorded; empty (the default) drops them
  // after logging. `sink` is called on gRPC threads and must stay valid
  // until it is replaced.
  void SetAuditSink(std::function<void(v1::AuditRecord)> sink);
  void Audit(v1::AuditRecord record) const;
  // Whether a handshake refusal of the chain with `key` should be recorded
  // now: at most once per chain every 10 s, because a client library retries
  // a refused connection on its own and would fill the trail.
  bool ShouldAuditHandshake(const std::string& key);

  // TLS handshakes whose presented chain was refused (metrics).
  void CountHandshakeRefused() { ++handshakes_refused_; }
  uint64_t handshakes_refused() const { return handshakes_refused_; }

 private:
  std::atomic<uint64_t> handshakes_refused_{0};
  struct Snapshot;
  PeerVerifier(std::string ca_file, std::string crl_dir);
  absl::StatusOr<std::shared_ptr<const Snapshot>> Load() const;
  std::shared_ptr<const Snapshot> snapshot() const;

  const std::string ca_file_;
  const std::string crl_dir_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  struct Cached {
    absl::StatusOr<Identity> result;
    absl::Time at;
  };
  // Keyed by the SHA-256 of leaf and chain; bounded, cleared on Reload.
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  struct CachedSigningChain {
    std::shared_ptr<const VerifiedSigningChain> chain;
    absl::Time at;
  };
  // Verified signing chains by the exact bytes of the chain (bounded by
  // CheckSignatureBounds: at most 4 x 16 KiB); at most kMaxCached, cleared
  // on Reload, and when the keys would take more than 8 MiB. Filled by the
  // const VerifyAlert, hence mutable.
  mutable absl::flat_hash_map<std::string, CachedSigningChain> signing_chains_
      ABSL_GUARDED_BY(mu_);
  mutable size_t signing_chain_key_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void(v1::AuditRecord)> sink_ ABSL_GUARDED_BY(mu_);
  // When each refused chain was last recorded; bounded.
  absl::flat_hash_map<std::string, absl::Time> audited_ ABSL_GUARDED_BY(mu_);
};

// Refuses a node's own files at start (FAILED_PRECONDITION, one line): a
// private key file that group or others may access, and a certificate whose
// spiffe id is not spiffe://ibsm/<node_id> bound to its issuer.
absl::Status CheckNodeTlsFiles(const std::string& node_id,
                               const TlsFiles& files);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_PEER_VERIFIER_H_
