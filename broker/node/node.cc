#include "node/node.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "context/node_context.h"
#include "control/policy_watcher.h"
#include "control/retention.h"
#include "control/signing_key_watcher.h"
#include "control/tls_watcher.h"
#include "delivery/subscription_hub.h"
#include "delivery/worker_pool.h"
#include "ibsm/authorizer.h"
#include "ibsm/certificates.h"
#include "ibsm/policy.h"
#include "ibsm/status_macros.h"
#include "logging/event_log.h"
#include "node/config.h"
#include "publish/committer.h"
#include "services/authenticate.h"
#include "services/peer_verifier.h"
#include "services/server_credentials.h"
#include "services/services.h"
#include "storage/log_cache.h"
#include "storage/store.h"

namespace ibsm::broker {

// Members in construction order; destroyed in reverse.
struct Node::Parts {
  v1::NodeConfig config;
  // Outlive the server and every call (see NodeContext::SetPeerSecurity).
  std::shared_ptr<PeerVerifier> verifier;
  std::unique_ptr<LiveCalls> live_calls;
  std::unique_ptr<Store> store;
  std::unique_ptr<LogCache> cache;
  std::unique_ptr<AuditTrail> audit;
  std::unique_ptr<SubscriptionHub> hub;
  std::unique_ptr<WorkerPool> workers;
  std::unique_ptr<Committer> committer;
  std::unique_ptr<NodeContext> context;
  std::unique_ptr<PolicyWatcher> policy_watcher;  // when a policy file is set
  std::unique_ptr<RetentionTask> retention;
  std::unique_ptr<TlsWatcher> tls_watcher;
  std::unique_ptr<SigningKeyWatcher> signing_key_watcher;
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool shut_down = false;
};

Node::Node(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Node::~Node() { Shutdown(absl::ZeroDuration()); }

int Node::port() const { return parts_->port; }

size_t Node::open_subscriptions() const { return parts_->hub->size(); }

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const v1::NodeConfig& given) {
  v1::NodeConfig config = given;
  ApplyDefaults(&config);
  TlsFiles files{config.tls().cert_file(), config.tls().key_file(),
                 config.tls().ca_file(), config.tls().crl_dir()};
  IBSM_RETURN_IF_ERROR(CheckNodeTlsFiles(config.node_id(), files));
  IBSM_ASSIGN_OR_RETURN(std::shared_ptr<PeerVerifier> verifier,
                        PeerVerifier::Create(files.ca_file, files.crl_dir));
  IBSM_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::ServerCredentials> credentials,
      MakeServerCredentials(files, config.tls().reload_interval_seconds(),
                            verifier->HandshakeVerifier()));

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir(), ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the data directory ", config.data_dir(),
                     ": ", ec.message()));
  }

  auto parts = std::make_unique<Parts>();
  parts->config = config;
  parts->verifier = std::move(verifier);
  parts->live_calls = std::make_unique<LiveCalls>();
  IBSM_ASSIGN_OR_RETURN(parts->store,
                        Store::Open({config.data_dir(), config.node_id()}));
  const v1::Limits& limits = config.limits();
  parts->cache =
      std::make_unique<LogCache>(size_t{limits.log_cache_mib()} << 20,
                                 parts->store->recovered_last_sequence() + 1);
  parts->hub = std::make_unique<SubscriptionHub>(limits.max_subscriptions());
  parts->workers = std::make_unique<WorkerPool>(2);
  CommitterOptions commit_options;
  commit_options.sync = config.durability() != v1::DURABILITY_ASYNC;
  commit_options.max_group_alerts = limits.max_commit_group();
  // Checkpoints of the audit trail are signed with the node's TLS key, so
  // auditors verify them with the node's certificate alone.
  IBSM_ASSIGN_OR_RETURN(std::string key_pem,
                        ReadFileToString(config.tls().key_file()));
  IBSM_ASSIGN_OR_RETURN(SigningKey signing_key, SigningKey::FromPem(key_pem));
  AuditOptions audit_options;
  audit_options.node_id = config.node_id();
  audit_options.checkpoint_every_records =
      config.audit().checkpoint_every_records();
  audit_options.checkpoint_every =
      absl::Seconds(config.audit().checkpoint_every_seconds());
  IBSM_ASSIGN_OR_RETURN(
      parts->audit, AuditTrail::Open(parts->store.get(), std::move(signing_key),
                                     audit_options));
  // A data directory of a broker from before alerts were linked to their
  // audit records gets its links once, before anything checks them (the
  // trail is not the Committer's yet). A trail that cannot be read stops
  // the start.
  IBSM_RETURN_IF_ERROR(MigrateAlertAuditLinks(parts->store.get(),
                                              parts->audit.get(),
                                              config.node_id())
                           .status());
  SubscriptionHub* hub = parts->hub.get();
  parts->committer = std::make_unique<Committer>(
      parts->store.get(), parts->cache.get(), parts->audit.get(),
      commit_options, [hub](uint64_t last) { hub->OnCommitted(last); });
  std::shared_ptr<const Authorizer> authorizer;
  if (config.policy_file().empty()) {
    LogEvent(
        "no policy_file configured: every authenticated agency of this "
        "node may publish and receive everything (development only)");
    authorizer = std::make_shared<AllowAuthenticated>(config.node_id());
  } else {
    absl::StatusOr<std::shared_ptr<const Policy>> policy =
        Policy::Load(config.policy_file(), config.node_id());
    if (!policy.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("invalid policy: ", policy.status().message()));
    }
    authorizer = *std::move(policy);
  }
  parts->committer->Audit(
      AuditEvent(v1::AUDIT_NODE_START, config.node_id(), true,
                 absl::StrCat("node started, policy ", authorizer->version())));
  // Tampering with the newest stored alerts is reported now, not only when
  // a subscriber reaches them (deliveries check every alert they read).
  IBSM_RETURN_IF_ERROR(
      CheckLogTail(*parts->store, parts->committer->last_sequence(),
                   config.audit().verify_tail_alerts(),
                   [&](uint64_t sequence, const absl::Status& failure) {
                     LogEvent(failure.message());
                     parts->committer->Audit(IntegrityFailureRecord(
                         config.node_id(), "", sequence, failure));
                   }));
  parts->context = std::make_unique<NodeContext>(
      config, parts->store.get(), parts->cache.get(), parts->committer.get(),
      parts->hub.get(), parts->workers.get(), std::move(authorizer));
  parts->context->SetPeerSecurity(parts->verifier.get(),
                                  parts->live_calls.get());
  Committer* committer = parts->committer.get();
  parts->verifier->SetAuditSink([committer](v1::AuditRecord record) {
    committer->Audit(std::move(record));
  });
  if (!config.policy_file().empty()) {
    parts->policy_watcher = std::make_unique<PolicyWatcher>(
        config.policy_file(), absl::Seconds(config.policy_check_seconds()),
        parts->context.get());
  }
  NodeContext* context = parts->context.get();
  parts->tls_watcher = std::make_unique<TlsWatcher>(
      files, absl::Seconds(config.tls().reload_interval_seconds()),
      parts->context.get(), [context] { ApplyCertificateChange(context); });
  parts->signing_key_watcher = std::make_unique<SigningKeyWatcher>(
      config.tls().cert_file(), config.tls().key_file(),
      absl::Seconds(config.tls().reload_interval_seconds()),
      parts->audit->signer(), parts->committer.get());
  parts->retention = std::make_unique<RetentionTask>(
      parts->context.get(), absl::Seconds(config.retention_interval_seconds()));

  parts->services.push_back(MakePublisherService(parts->context.get()));
  parts->services.push_back(MakeSubscriberService(parts->context.get()));
  parts->services.push_back(MakeNodeService(parts->context.get()));
  parts->services.push_back(MakeAuditorService(parts->context.get()));

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address(), credentials, &parts->port);
  for (auto& service : parts->services) builder.RegisterService(service.get());
  // An alert may be up to max_alert_bytes, a request up to max_batch_alerts
  // of them; the per-alert limit is enforced with a clear message, so the
  // transport limit only guards against absurd messages.
  builder.SetMaxReceiveMessageSize(64 << 20);
  // Receive window: publishers stream batches of hundreds of KiB; gRPC's
  // 64 KiB default makes every batch wait for window updates.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  parts->server = builder.BuildAndStart();
  if (!parts->server || parts->port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", config.listen_address(),
                     " (address in use or not available)"));
  }
  if (!config.port_file().empty()) {
    std::string tmp = config.port_file() + ".tmp";
    {
      std::ofstream out(tmp);
      out << parts->port << "\n";
      if (!out) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot write the port file ", tmp));
      }
    }
    std::filesystem::rename(tmp, config.port_file(), ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write the port file ", config.port_file(), ": ",
                       ec.message()));
    }
  }
  return std::unique_ptr<Node>(new Node(std::move(parts)));
}

absl::Status Node::ReloadPolicy() {
  if (!parts_->policy_watcher) {
    return absl::FailedPreconditionError(
        "this node has no policy_file configured");
  }
  return parts_->policy_watcher->Reload();
}

void Node::ReloadCertificates() {
  LogEvent("reloading the CA file and CRLs");
  ApplyCertificateChange(parts_->context.get());
}

absl::StatusOr<size_t> Node::RunRetention(absl::Time now) {
  return parts_->retention->RunOnce(now);
}

void Node::Shutdown(absl::Duration grace) {
  if (!parts_ || parts_->shut_down) return;
  parts_->shut_down = true;
  parts_->retention.reset();
  parts_->tls_watcher.reset();
  parts_->signing_key_watcher.reset();
  parts_->policy_watcher.reset();
  // Subscriptions are endless streams: end them first so the server's
  // shutdown only waits for publishes, which finish once committed.
  parts_->hub->Shutdown();
  parts_->server->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(grace));
  // No handshake refusal may reach the committer once it stops.
  parts_->verifier->SetAuditSink(nullptr);
  parts_->committer->Audit(AuditEvent(
      v1::AUDIT_NODE_STOP, parts_->config.node_id(), true, "node stopped"));
  parts_->committer->Stop();
  parts_->workers->Stop();
  // A failed flush only means a longer WAL replay at the next start.
  (void)parts_->store->Flush();
}

}  // namespace ibsm::broker
