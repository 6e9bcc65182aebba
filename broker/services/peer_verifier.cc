#include "services/peer_verifier.h"

#include <grpcpp/security/tls_certificate_verifier.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "ibsm/alert_signature.h"
#include "ibsm/crypto.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/alert.pb.h"
#include "logging/event_log.h"

namespace ibsm::broker {
namespace {

constexpr size_t kMaxChainBytes = 64 << 10;
constexpr size_t kMaxChainCerts = 8;
constexpr size_t kMaxCached = 4096;
constexpr absl::Duration kCacheFor = absl::Minutes(1);
// The keys of the verified signing chains (whole chains, about 1 KiB each
// with the dev PKI) take at most this much.
constexpr size_t kMaxSigningChainKeyBytes = 8 << 20;

using crypto::X509Ptr;
using CrlPtr = crypto::X509CrlPtr;

// Untrusted PEM, bounded: at most kMaxChainCerts + 1 certificates.
std::vector<X509Ptr> ParseCerts(absl::string_view pem) {
  return crypto::ParseCertificates(pem, kMaxChainCerts + 1);
}

std::string ChainKey(absl::string_view leaf, absl::string_view chain) {
  return std::string(crypto::HashView(crypto::Sha256({leaf, "|", chain})));
}

// The exact bytes of alert.signing_chain, each certificate after its 4-byte
// length (so no two chains give the same key): the key of the verified
// signing chains. Cheaper than SigningChainSha256 (a copy, not a hash over
// the chain for every alert), which VerifySigningChain computes once per
// chain.
std::string SigningChainKey(const v1::Alert& alert) {
  size_t size = 0;
  for (const std::string& der : alert.signing_chain()) size += 4 + der.size();
  std::string key;
  key.reserve(size);
  for (const std::string& der : alert.signing_chain()) {
    const uint32_t n = static_cast<uint32_t>(der.size());
    const char length[4] = {static_cast<char>(n >> 24),
                            static_cast<char>(n >> 16),
                            static_cast<char>(n >> 8), static_cast<char>(n)};
    key.append(length, 4);
    key.append(der);
  }
  return key;
}

// The peer's leaf, for logs and audit records: its URI SAN when it parses
// (the chain already passed gRPC's check against our root), bounded.
std::string PeerName(absl::string_view leaf_pem, absl::string_view chain_pem) {
  absl::StatusOr<std::string> uri =
      BoundSpiffeId(absl::StrCat(leaf_pem, "\n", chain_pem));
  if (uri.ok()) return uri->substr(0, 160);
  std::vector<X509Ptr> certs = ParseCerts(leaf_pem);
  return certs.empty() ? "unreadable certificate"
                       : crypto::SubjectLine(certs[0].get()).substr(0, 160);
}

class Handshake final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit Handshake(std::shared_ptr<PeerVerifier> verifier)
      : verifier_(std::move(verifier)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    grpc::string_ref leaf = request->peer_cert();
    grpc::string_ref chain = request->peer_cert_full_chain();
    absl::string_view leaf_pem(leaf.data(), leaf.size());
    absl::string_view chain_pem(chain.data(), chain.size());
    absl::Status checked = verifier_->CheckChain(leaf_pem, chain_pem);
    if (checked.ok()) {
      *sync_status = grpc::Status::OK;
      return true;
    }
    verifier_->CountHandshakeRefused();
    const std::string who = PeerName(leaf_pem, chain_pem);
    // Every refusal is logged (the log bounds repeats); the trail gets one
    // record per chain every 10 s.
    LogRefusal("TLS handshake refused", who, checked.message());
    if (verifier_->ShouldAuditHandshake(ChainKey(leaf_pem, chain_pem))) {
      v1::AuditRecord record =
          AuditEvent(v1::AUDIT_CALL_REFUSED, who, false, checked.message());
      record.set_detail("tls handshake");
      verifier_->Audit(std::move(record));
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                std::string(checked.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  const std::shared_ptr<PeerVerifier> verifier_;
};

}  // namespace

// Roots and CRLs of one generation; immutable once built, so checks share
// it without a lock (OpenSSL locks an X509_STORE internally).
struct PeerVerifier::Snapshot {
  crypto::X509StorePtr store;
  size_t crls = 0;
  // With a crl_dir: every certificate of a chain needs a CRL (fail closed).
  bool crl_check_all = false;
};

PeerVerifier::PeerVerifier(std::string ca_file, std::string crl_dir)
    : ca_file_(std::move(ca_file)), crl_dir_(std::move(crl_dir)) {}

PeerVerifier::~PeerVerifier() = default;

absl::StatusOr<std::shared_ptr<PeerVerifier>> PeerVerifier::Create(
    std::string ca_file, std::string crl_dir) {
  std::shared_ptr<PeerVerifier> verifier(
      new PeerVerifier(std::move(ca_file), std::move(crl_dir)));
  IBSM_RETURN_IF_ERROR(verifier->Reload());
  return verifier;
}

absl::StatusOr<std::shared_ptr<const PeerVerifier::Snapshot>>
PeerVerifier::Load() const {
  auto snapshot = std::make_shared<Snapshot>();
  IBSM_ASSIGN_OR_RETURN(std::string roots, ReadFileToString(ca_file_));
  std::vector<X509Ptr> certs = ParseCerts(roots);
  if (certs.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ca_file_, ": no PEM certificate could be read"));
  }
  if (crl_dir_.empty()) {
    snapshot->store = crypto::MakeTrustStore(certs, {});
    return snapshot;
  }

  IBSM_ASSIGN_OR_RETURN(CrlDirContents crl_dir, ReadCrlDir(crl_dir_));
  for (const std::string& skipped : crl_dir.skipped) {
    LogEvent(
        absl::StrCat("CRL file ignored (its CA's certificates are "
                     "refused): ",
                     skipped));
  }
  std::vector<CrlPtr>& crls = crl_dir.crls;
  snapshot->store = crypto::MakeTrustStore(certs, crls);
  snapshot->crls = crls.size();
  snapshot->crl_check_all = true;
  return snapshot;
}

absl::Status PeerVerifier::Reload() {
  IBSM_ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snapshot, Load());
  absl::MutexLock lock(&mu_);
  snapshot_ = std::move(snapshot);
  ++generation_;
  cache_.clear();
  signing_chains_.clear();
  signing_chain_key_bytes_ = 0;
  return absl::OkStatus();
}

uint64_t PeerVerifier::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

std::shared_ptr<const PeerVerifier::Snapshot> PeerVerifier::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

absl::Status PeerVerifier::CheckChain(absl::string_view leaf_pem,
                                      absl::string_view chain_pem) const {
  if (leaf_pem.size() > kMaxChainBytes || chain_pem.size() > kMaxChainBytes) {
    return absl::UnauthenticatedError(
        "the peer certificate chain is longer than 64 KiB");
  }
  std::vector<X509Ptr> leaf = ParseCerts(leaf_pem);
  std::vector<X509Ptr> rest = ParseCerts(chain_pem);
  if (leaf.empty() && !rest.empty()) {
    leaf.push_back(std::move(rest.front()));
    rest.erase(rest.begin());
  }
  if (leaf.empty()) {
    return absl::UnauthenticatedError("the peer presented no certificate");
  }
  std::shared_ptr<const Snapshot> snap = snapshot();
  crypto::ChainOptions options;
  options.crl_check_all = snap->crl_check_all;
  options.purpose = X509_PURPOSE_SSL_CLIENT;
  crypto::ChainRejection rejected;
  absl::StatusOr<std::vector<X509Ptr>> verified =
      crypto::VerifyChain(*leaf[0], rest, *snap->store, options, &rejected);
  if (verified.ok()) return absl::OkStatus();
  // Fail closed: a check that cannot run refuses.
  if (!absl::IsPermissionDenied(verified.status())) {
    return absl::UnauthenticatedError(verified.status().message());
  }
  if (rejected.missing_crl()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "no CRL in ", crl_dir_, " for the CA that issued '", rejected.subject,
        "' (chain depth ", rejected.depth,
        "): with a crl_dir, every CA of the chain needs a current CRL"));
  }
  // VerifyChain's message: "certificate '<subject>' (chain depth <d>)
  // refused: <reason>".
  return absl::UnauthenticatedError(verified.status().message());
}

absl::StatusOr<Identity> PeerVerifier::Authenticate(
    absl::string_view leaf_pem, absl::string_view chain_pem) {
  std::string key = ChainKey(leaf_pem, chain_pem);
  uint64_t generation;
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.at < kCacheFor) {
      return it->second.result;
    }
    generation = generation_;
  }
  absl::StatusOr<Identity> result = [&]() -> absl::StatusOr<Identity> {
    IBSM_RETURN_IF_ERROR(CheckChain(leaf_pem, chain_pem));
    IBSM_ASSIGN_OR_RETURN(std::string uri, BoundSpiffeId(absl::StrCat(
                                               leaf_pem, "\n", chain_pem)));
    return ParseSpiffeId(uri);
  }();
  absl::MutexLock lock(&mu_);
  // A result computed against an older generation is not kept.
  if (generation == generation_) {
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[key] = Cached{result, now};
  }
  return result;
}

absl::Status PeerVerifier::VerifyAlert(const v1::Alert& alert) const {
  IBSM_RETURN_IF_ERROR(CheckSignatureBounds(alert));
  const std::string key = SigningChainKey(alert);
  const absl::Time now = absl::Now();
  std::shared_ptr<const VerifiedSigningChain> chain;
  std::shared_ptr<const Snapshot> snap;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    auto it = signing_chains_.find(key);
    if (it != signing_chains_.end() && now - it->second.at < kCacheFor &&
        absl::ToUnixSeconds(now) < it->second.chain->signer.not_after_unix) {
      chain = it->second.chain;
    }
    snap = snapshot_;
    generation = generation_;
  }
  if (chain == nullptr) {
    crypto::ChainOptions options;
    options.crl_check_all = snap->crl_check_all;
    IBSM_ASSIGN_OR_RETURN(VerifiedSigningChain verified,
                          VerifySigningChain(alert, *snap->store, options));
    chain = std::make_shared<const VerifiedSigningChain>(std::move(verified));
    absl::MutexLock lock(&mu_);
    // A chain verified against an older generation is not kept.
    if (generation == generation_) {
      if (signing_chains_.size() >= kMaxCached ||
          signing_chain_key_bytes_ + key.size() > kMaxSigningChainKeyBytes) {
        signing_chains_.clear();
        signing_chain_key_bytes_ = 0;
      }
      auto [it, added] =
          signing_chains_.insert_or_assign(key, CachedSigningChain{chain, now});
      if (added) signing_chain_key_bytes_ += it->first.size();
    }
  }
  return CheckSignedBy(alert, *chain).status();
}

std::shared_ptr<grpc::experimental::CertificateVerifier>
PeerVerifier::HandshakeVerifier() {
  return grpc::experimental::ExternalCertificateVerifier::Create<Handshake>(
      shared_from_this());
}

void PeerVerifier::SetAuditSink(std::function<void(v1::AuditRecord)> sink) {
  absl::MutexLock lock(&mu_);
  sink_ = std::move(sink);
}

void PeerVerifier::Audit(v1::AuditRecord record) const {
  std::function<void(v1::AuditRecord)> sink;
  {
    absl::MutexLock lock(&mu_);
    sink = sink_;
  }
  if (sink) sink(std::move(record));
}

bool PeerVerifier::ShouldAuditHandshake(const std::string& key) {
  absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  auto it = audited_.find(key);
  if (it != audited_.end() && now - it->second < absl::Seconds(10)) {
    return false;
  }
  if (audited_.size() >= kMaxCached) audited_.clear();
  audited_[key] = now;
  return true;
}

absl::Status CheckNodeTlsFiles(const std::string& node_id,
                               const TlsFiles& files) {
  struct stat st;
  if (stat(files.key_file.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(files.key_file, ": private key file cannot be read"));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return absl::FailedPreconditionError(
        absl::StrCat(files.key_file,
                     ": private key file is accessible by group or others "
                     "(mode ",
                     mode, "); make it 0600 or 0400"));
  }
  IBSM_ASSIGN_OR_RETURN(std::string chain, ReadFileToString(files.cert_file));
  absl::StatusOr<std::string> uri = BoundSpiffeId(chain);
  if (!uri.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(files.cert_file, ": ", uri.status().message()));
  }
  std::string want = absl::StrCat("spiffe://ibsm/", node_id);
  if (*uri != want) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node_id '", node_id,
        "' does not match the node "
        "certificate ",
        files.cert_file, ", which is '", *uri, "' (expected ", want, ")"));
  }
  return absl::OkStatus();
}

}  // namespace ibsm::broker
