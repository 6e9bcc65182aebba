#include "node/node.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/codegen/service_type.h>
#include <grpcpp/resource_quota.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "audit/audit_trail.h"
#include "audit/log_integrity.h"
#include "audit/published_checkpoint.h"
#include "context/node_context.h"
#include "control/policy_watcher.h"
#include "control/retention.h"
#include "control/signing_key_watcher.h"
#include "control/tls_watcher.h"
#include "delivery/subscription_hub.h"
#include "delivery/worker_pool.h"
#include "federation/link_manager.h"
#include "ibsm/authorizer.h"
#include "ibsm/certificates.h"
#include "ibsm/policy.h"
#include "ibsm/status_macros.h"
#include "ibsm/v1/broker.pb.h"
#include "logging/event_log.h"
#include "metrics/health.h"
#include "metrics/metrics_server.h"
#include "metrics/node_metrics.h"
#include "metrics/rpc_latency.h"
#include "node/config.h"
#include "publish/committer.h"
#include "services/authenticate.h"
#include "services/federation_transport.h"
#include "services/peer_verifier.h"
#include "services/server_credentials.h"
#include "services/services.h"
#include "storage/key_ring.h"
#include "storage/log_cache.h"
#include "storage/outbox.h"
#include "storage/seal.h"
#include "storage/store.h"

namespace ibsm::broker {

// Members in construction order; destroyed in reverse.
struct Node::Parts {
  internal::v1::NodeConfig config;
  // What the metrics count and the health services report; first, so that
  // everything that counts or reports outlives neither.
  NodeCounters counters;
  HealthState health;
  Clock* clock = nullptr;             // not owned (NodeOptions::clock)
  rocksdb::Env* store_env = nullptr;  // not owned (NodeOptions::store_env)
  uint64_t accept_rollback_size = 0;  // NodeOptions::accept_rollback_size
  // Set when the start accepted a rolled-back trail; recorded at start.
  std::optional<AcceptedRollback> accepted_rollback;
  // Outlive the server and every call (see NodeContext::SetPeerSecurity).
  std::shared_ptr<PeerVerifier> verifier;
  std::unique_ptr<LiveCalls> live_calls;
  std::unique_ptr<Store> store;
  std::unique_ptr<LogCache> cache;
  std::unique_ptr<Outbox> outbox;  // when federation peers are configured
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
  // Memory gRPC may spend on requests read and not yet handled, shared by
  // both servers (limits.max_request_memory_mib).
  grpc::ResourceQuota request_memory{"ibsm-requests"};
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // Federation: the links (after the committer, which their callbacks
  // use), and the federation port's server.
  std::unique_ptr<LinkManager> links;
  std::unique_ptr<grpc::Service> federation_service;
  std::unique_ptr<grpc::Server> federation_server;
  int federation_port = 0;
  // Re-checks the store for the health services (after the servers).
  std::unique_ptr<HealthMonitor> health_monitor;
  // The metrics listener (config `metrics`): started early, so /healthz
  // says NOT_SERVING while the store opens; destroyed first, as its
  // scrapes read the parts above.
  std::unique_ptr<MetricsServer> metrics_server;
  int metrics_port = 0;
  bool shut_down = false;
};

Node::Node(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Node::~Node() { Shutdown(absl::ZeroDuration()); }

int Node::port() const { return parts_->port; }

int Node::federation_port() const { return parts_->federation_port; }

int Node::metrics_port() const { return parts_->metrics_port; }

bool Node::serving() const { return parts_->health.serving(); }

void Node::CheckHealthNow() {
  if (parts_->health_monitor) parts_->health_monitor->CheckNow();
}

size_t Node::open_subscriptions() const { return parts_->hub->size(); }

std::string Node::DescribeMemory() const {
  const StoreMemory store = parts_->store->MemoryUsage();
  auto mib = [](uint64_t bytes) {
    return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  };
  return absl::StrCat("memtables ", mib(store.memtables), ", block cache ",
                      mib(store.block_cache), " (pinned ",
                      mib(store.block_cache_pinned), "), table readers ",
                      mib(store.table_readers), ", log cache ",
                      mib(parts_->cache->charged_bytes()));
}

namespace {

TlsFiles NodeTlsFiles(const internal::v1::NodeConfig& config) {
  return {config.tls().cert_file(), config.tls().key_file(),
          config.tls().ca_file(), config.tls().crl_dir()};
}

absl::Status CreateDataDirectory(const internal::v1::NodeConfig& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir(), ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the data directory ", config.data_dir(),
                     ": ", ec.message()));
  }
  return absl::OkStatus();
}

// The node's policy file, or, without one, every authenticated agency of
// the node allowed everything (development only).
absl::StatusOr<std::shared_ptr<const Authorizer>> LoadPolicy(
    const internal::v1::NodeConfig& config) {
  if (config.policy_file().empty()) {
    LogEvent(
        "no policy_file configured: every authenticated agency of this "
        "node may publish and receive everything (development only)");
    return std::make_shared<AllowAuthenticated>(config.node_id());
  }
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      Policy::Load(config.policy_file(), config.node_id());
  if (!policy.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid policy: ", policy.status().message()));
  }
  return std::shared_ptr<const Authorizer>(*std::move(policy));
}

// Written through a temporary file, so a reader never sees half a number.
absl::Status WritePortFile(const std::string& path, int port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write the port file ", tmp));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write the port file ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

// How long each step of Start took, for one log line: an operator sees
// what a slow start spends its time on (docs/running-a-node.md).
class StartTimes {
 public:
  void Step(absl::string_view name) {
    const absl::Time now = absl::Now();
    absl::StrAppend(&steps_, steps_.empty() ? "" : ", ", name, " ",
                    absl::ToInt64Milliseconds(now - last_), " ms");
    last_ = now;
  }
  std::string Summary() const {
    return absl::StrCat("started in ",
                        absl::ToInt64Milliseconds(absl::Now() - start_),
                        " ms (", steps_, ")");
  }

 private:
  const absl::Time start_ = absl::Now();
  absl::Time last_ = start_;
  std::string steps_;
};

// gRPC server reflection on one ServerBuilder or not (config
// enable_reflection). Linking libgrpc++_reflection registers its plugin
// for every builder of the process at load time, so the option also takes
// it away where it is not wanted.
class ReflectionOption : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enabled) : enabled_(enabled) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    // The name ProtoServerReflectionPlugin::name() returns.
    std::erase_if(*plugins, [](const auto& plugin) {
      return plugin->name() == "proto_server_reflection";
    });
    if (enabled_) {
      plugins->push_back(
          std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  const bool enabled_;
};

// An accepted connection that has not finished its TLS handshake in
// tls.handshake_timeout_seconds is closed; gRPC's own default is 120 s,
// which lets idle sockets pile up.
void AddHandshakeTimeout(const internal::v1::NodeConfig& config,
                         grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(config.tls().handshake_timeout_seconds() * 1000));
}

}  // namespace

// Each step of Start, in the order Start runs them (see node.h).
struct Node::Steps {
  // Checks the node's TLS files; makes the peer verifier and returns the
  // server credentials that use it.
  static absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> SetUpSecurity(
      Parts* parts) {
    const internal::v1::NodeConfig& config = parts->config;
    TlsFiles files = NodeTlsFiles(config);
    IBSM_RETURN_IF_ERROR(CheckNodeTlsFiles(config.node_id(), files));
    IBSM_ASSIGN_OR_RETURN(parts->verifier,
                          PeerVerifier::Create(files.ca_file, files.crl_dir));
    return MakeServerCredentials(files, config.tls().reload_interval_seconds(),
                                 parts->verifier->HandshakeVerifier());
  }

  static absl::Status OpenStore(Parts* parts) {
    const internal::v1::NodeConfig& config = parts->config;
    StoreOptions store_options{config.data_dir(), config.node_id()};
    store_options.env = parts->store_env;
    store_options.block_cache_bytes =
        uint64_t{config.limits().rocksdb_block_cache_mib()} << 20;
    store_options.memtable_bytes =
        uint64_t{config.limits().rocksdb_memtable_mib()} << 20;
    if (config.has_encryption()) {
      const internal::v1::EncryptionConfig& e = config.encryption();
      IBSM_ASSIGN_OR_RETURN(
          store_options.keys,
          KeyRing::Load(e.key_file(),
                        {e.old_key_files().begin(), e.old_key_files().end()}));
    }
    IBSM_ASSIGN_OR_RETURN(parts->store, Store::Open(store_options));
    parts->cache = std::make_unique<LogCache>(
        size_t{config.limits().log_cache_mib()} << 20,
        parts->store->recovered_last_sequence() + 1);
    if (config.federation().peers_size() > 0) {
      absl::flat_hash_map<std::string, OutboxBounds> bounds;
      for (const internal::v1::PeerConfig& peer : config.federation().peers()) {
        bounds[peer.node_id()] = {peer.max_backlog_alerts(),
                                  peer.max_backlog_mib() << 20};
      }
      IBSM_ASSIGN_OR_RETURN(parts->outbox,
                            Outbox::Load(*parts->store, std::move(bounds)));
      for (const auto& [peer, count] : parts->outbox->Unconfigured()) {
        LogEvent(absl::StrCat("the outbox holds ", count, " alerts for ", peer,
                              ", which is no longer a federation peer; "
                              "they are kept and not sent"));
      }
    }
    return absl::OkStatus();
  }

  // Whether payloads are sealed, logged once the node serves: a start that
  // fails stays one line on stderr.
  static void LogEncryption(const Parts& parts) {
    if (const KeyRing* keys = parts.store->keys(); keys != nullptr) {
      LogEvent(absl::StrCat(
          "encryption at rest: alert payloads and attributes are sealed under "
          "key id ",
          seal::KeyIdHex(keys->current_key_id()), " (",
          parts.config.encryption().old_key_files_size(),
          " older keys kept for reading)"));
    } else {
      LogEvent(
          "WARNING: encryption at rest is off (no `encryption` in the "
          "config): alert payloads and attributes are stored in plaintext "
          "in the data directory; see docs/running-a-node.md");
    }
  }

  static void MakeDelivery(Parts* parts) {
    parts->hub = std::make_unique<SubscriptionHub>(
        parts->config.limits().max_subscriptions());
    parts->workers = std::make_unique<WorkerPool>(2);
  }

  static absl::Status OpenAuditTrail(Parts* parts) {
    const internal::v1::NodeConfig& config = parts->config;
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
    audit_options.clock = parts->clock;
    audit_options.published_checkpoint_file =
        config.published_checkpoint_file();
    IBSM_ASSIGN_OR_RETURN(
        parts->audit, AuditTrail::Open(parts->store.get(),
                                       std::move(signing_key), audit_options));
    // A restored (rolled-back) data directory is refused unless the
    // operator accepted it (docs/operations.md, "Backup and restore").
    if (!config.published_checkpoint_file().empty()) {
      IBSM_ASSIGN_OR_RETURN(parts->accepted_rollback,
                            CheckPublishedCheckpointAtStart(
                                *parts->store, parts->audit->size(),
                                config.published_checkpoint_file(),
                                config.node_id(), parts->accept_rollback_size));
    }
    // A data directory of a broker from before alerts were linked to their
    // audit records gets its links once, before anything checks them (the
    // trail is not the Committer's yet). A trail that cannot be read stops
    // the start.
    return MigrateAlertAuditLinks(parts->store.get(), parts->audit.get(),
                                  config.node_id())
        .status();
  }

  static void StartCommitter(Parts* parts) {
    CommitterOptions options;
    options.sync = parts->config.durability() != internal::v1::DURABILITY_ASYNC;
    options.max_group_alerts = parts->config.limits().max_commit_group();
    options.clock = parts->clock;
    options.outbox = parts->outbox.get();
    options.counters = &parts->counters;
    SubscriptionHub* hub = parts->hub.get();
    parts->committer = std::make_unique<Committer>(
        parts->store.get(), parts->cache.get(), parts->audit.get(), options,
        [hub](uint64_t last) { hub->OnCommitted(last); });
  }

  // The start record, then the newest stored alerts checked: tampering with
  // them is reported now, not only when a subscriber reaches them
  // (deliveries check every alert they read).
  static absl::Status RecordStartAndCheckLogTail(Parts* parts,
                                                 const Authorizer& authorizer) {
    const internal::v1::NodeConfig& config = parts->config;
    Committer* committer = parts->committer.get();
    committer->Audit(AuditEvent(
        v1::AUDIT_NODE_START, config.node_id(), true,
        absl::StrCat("node started, policy ", authorizer.version())));
    if (const auto& rollback = parts->accepted_rollback; rollback) {
      const std::string what = absl::StrCat(
          "started on a rolled-back data directory, as the operator "
          "accepted (--accept-rollback ",
          rollback->abandoned.checkpoint().tree_size(), "): ", rollback->why,
          "; the abandoned checkpoint is kept in ", rollback->kept_as);
      LogEvent(what);
      v1::AuditRecord record =
          AuditEvent(v1::AUDIT_ROLLBACK_ACCEPTED, config.node_id(), true, what);
      record.set_detail(rollback->abandoned.checkpoint().note());
      committer->Audit(std::move(record));
    }
    return CheckLogTail(*parts->store, committer->last_sequence(),
                        config.audit().verify_tail_alerts(),
                        [&](uint64_t sequence, const absl::Status& failure) {
                          LogEvent(failure.message());
                          committer->Audit(IntegrityFailureRecord(
                              config.node_id(), "", sequence, failure));
                        });
  }

  // What the services share, with peer security and the verifier's
  // refusals going to the audit trail.
  static void MakeContext(Parts* parts,
                          std::shared_ptr<const Authorizer> authorizer) {
    parts->context = std::make_unique<NodeContext>(
        parts->config, parts->store.get(), parts->cache.get(),
        parts->committer.get(), parts->hub.get(), parts->workers.get(),
        std::move(authorizer), parts->clock);
    parts->context->SetCounters(&parts->counters);
    parts->context->SetPeerSecurity(parts->verifier.get(),
                                    parts->live_calls.get());
    parts->context->SetAlertVerifier(parts->verifier.get());
    Committer* committer = parts->committer.get();
    parts->verifier->SetAuditSink([committer](v1::AuditRecord record) {
      committer->Audit(std::move(record));
    });
  }

  static void StartControlLoops(Parts* parts) {
    const internal::v1::NodeConfig& config = parts->config;
    NodeContext* context = parts->context.get();
    const absl::Duration tls_interval =
        absl::Seconds(config.tls().reload_interval_seconds());
    if (!config.policy_file().empty()) {
      parts->policy_watcher = std::make_unique<PolicyWatcher>(
          config.policy_file(), absl::Seconds(config.policy_check_seconds()),
          context, parts->clock);
    }
    parts->tls_watcher = std::make_unique<TlsWatcher>(
        NodeTlsFiles(config), tls_interval, context,
        [context] { ApplyCertificateChange(context); }, parts->clock);
    parts->signing_key_watcher = std::make_unique<SigningKeyWatcher>(
        config.tls().cert_file(), config.tls().key_file(), tls_interval,
        parts->audit->signer(), parts->committer.get(), parts->clock);
    parts->retention = std::make_unique<RetentionTask>(
        context, absl::Seconds(config.retention_interval_seconds()),
        parts->clock);
  }

  // The links to the configured peers and the federation port.
  static absl::Status StartFederation(Parts* parts) {
    const internal::v1::FederationConfig& fed = parts->config.federation();
    if (fed.peers_size() == 0) return absl::OkStatus();
    NodeContext* context = parts->context.get();
    parts->links = std::make_unique<LinkManager>(
        context, parts->outbox.get(), MakeFederationDialer(context),
        absl::StrCat("ibsm-broker ", IBSM_VERSION));
    LinkManager* links = parts->links.get();
    context->SetLinksSource([links] { return links->Snapshot(); });
    if (fed.listen_address().empty()) return absl::OkStatus();
    TlsFiles files = NodeTlsFiles(parts->config);
    IBSM_ASSIGN_OR_RETURN(
        std::shared_ptr<grpc::ServerCredentials> credentials,
        MakeServerCredentials(files,
                              parts->config.tls().reload_interval_seconds(),
                              parts->verifier->HandshakeVerifier()));
    parts->federation_service = MakeFederationService(context, links);
    grpc::ServerBuilder builder;
    builder.SetOption(std::make_unique<ReflectionOption>(false));
    builder.AddListeningPort(fed.listen_address(), credentials,
                             &parts->federation_port);
    builder.RegisterService(parts->federation_service.get());
    builder.SetMaxReceiveMessageSize(64 << 20);
    // gRPC sets SO_REUSEPORT by default, which lets a second broker bind
    // the same port and take half the connections: refuse it instead.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(
        GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    AddHandshakeTimeout(parts->config, &builder);
    builder.SetResourceQuota(parts->request_memory);
    parts->federation_server = builder.BuildAndStart();
    if (!parts->federation_server || parts->federation_port == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot listen on the federation address ", fed.listen_address(),
          " (address in use or not available)"));
    }
    if (!fed.port_file().empty()) {
      IBSM_RETURN_IF_ERROR(
          WritePortFile(fed.port_file(), parts->federation_port));
    }
    return absl::OkStatus();
  }

  static absl::Status StartServer(
      Parts* parts, std::shared_ptr<grpc::ServerCredentials> credentials) {
    NodeContext* context = parts->context.get();
    parts->services.push_back(MakePublisherService(context));
    parts->services.push_back(MakeSubscriberService(context));
    parts->services.push_back(MakeNodeService(context));
    parts->services.push_back(MakeAuditorService(context));

    // The standard health service (grpc.health.v1.Health), driven by
    // parts->health; and reflection only when asked for, on this builder
    // only (an option, not the global plugin, so that the federation port
    // and other nodes in the process stay without it).
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.SetOption(
        std::make_unique<ReflectionOption>(parts->config.enable_reflection()));
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(MakeRpcLatencyInterceptorFactory(&parts->counters));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    builder.AddListeningPort(parts->config.listen_address(), credentials,
                             &parts->port);
    for (auto& service : parts->services) {
      builder.RegisterService(service.get());
    }
    // An alert may be up to max_alert_bytes, a request up to
    // max_batch_alerts of them; the per-alert limit is enforced with a clear
    // message, so the transport limit only guards against absurd messages.
    builder.SetMaxReceiveMessageSize(64 << 20);
    // Receive window: publishers stream batches of hundreds of KiB; gRPC's
    // 64 KiB default makes every batch wait for window updates.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
    // gRPC sets SO_REUSEPORT by default, which lets a second broker bind
    // the same port and take half the connections: refuse it instead.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(
        GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    AddHandshakeTimeout(parts->config, &builder);
    builder.SetResourceQuota(parts->request_memory);
    parts->server = builder.BuildAndStart();
    if (!parts->server || parts->port == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot listen on ", parts->config.listen_address(),
                       " (address in use or not available)"));
    }
    grpc::HealthCheckServiceInterface* health =
        parts->server->GetHealthCheckService();
    if (health != nullptr) {
      // Each service by name too, so that probes may ask for one.
      for (const char* service : {"ibsm.v1.Publisher", "ibsm.v1.Subscriber",
                                  "ibsm.v1.Node", "ibsm.v1.Auditor"}) {
        health->SetServingStatus(service, parts->health.serving());
      }
      health->SetServingStatus(parts->health.serving());
      parts->health.OnChange(
          [health](bool serving) { health->SetServingStatus(serving); });
    }
    return absl::OkStatus();
  }

  // The metrics listener, before the store opens (health NOT_SERVING).
  static absl::Status StartMetricsListener(Parts* parts) {
    const internal::v1::MetricsConfig& metrics = parts->config.metrics();
    if (metrics.listen_address().empty()) return absl::OkStatus();
    MetricsServerOptions options;
    options.listen_address = metrics.listen_address();
    if (!metrics.client_ca_file().empty()) {
      options.cert_file = parts->config.tls().cert_file();
      options.key_file = parts->config.tls().key_file();
      options.client_ca_file = metrics.client_ca_file();
    }
    IBSM_ASSIGN_OR_RETURN(
        parts->metrics_server,
        MetricsServer::Start(options, nullptr, &parts->health));
    parts->metrics_port = parts->metrics_server->port();
    if (!metrics.port_file().empty()) {
      IBSM_RETURN_IF_ERROR(
          WritePortFile(metrics.port_file(), parts->metrics_port));
    }
    return absl::OkStatus();
  }

  // Serving: the health services say so, the store check runs and the
  // metrics listener exports.
  static void StartHealthAndMetrics(Parts* parts) {
    parts->health_monitor = std::make_unique<HealthMonitor>(
        parts->store.get(), &parts->health, absl::Seconds(1));
    parts->health.SetStarted();
    if (parts->metrics_server) {
      MetricsSources sources;
      sources.node = parts->context.get();
      sources.health = &parts->health;
      sources.policy = parts->policy_watcher.get();
      parts->metrics_server->SetMetrics(
          [sources] { return CollectNodeMetrics(sources, absl::Now()); });
    }
  }
};

absl::StatusOr<std::unique_ptr<Node>> Node::Start(
    const internal::v1::NodeConfig& given, const NodeOptions& options) {
  auto parts = std::make_unique<Parts>();
  parts->config = given;
  ApplyDefaults(&parts->config);
  parts->clock = options.clock;
  parts->store_env = options.store_env;
  parts->accept_rollback_size = options.accept_rollback_size;
  const internal::v1::NodeConfig& config = parts->config;
  IBSM_RETURN_IF_ERROR(CheckLimits(config.limits(), "config"));
  IBSM_RETURN_IF_ERROR(CheckTlsConfig(config.tls(), "config"));
  parts->request_memory.Resize(size_t{config.limits().max_request_memory_mib()}
                               << 20);
  IBSM_RETURN_IF_ERROR(CheckFederationConfig(config, "config"));
  IBSM_RETURN_IF_ERROR(CheckObservabilityConfig(config, "config"));
  if (config.has_logging()) {
    // Parsed above; the log's format and destination hold for the process.
    IBSM_ASSIGN_OR_RETURN(EventLogOptions log,
                          ParseEventLogOptions(config.logging().format(),
                                               config.logging().level(),
                                               config.logging().file()));
    IBSM_RETURN_IF_ERROR(ConfigureEventLog(log));
  }

  StartTimes times;
  IBSM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                        Steps::SetUpSecurity(parts.get()));
  IBSM_RETURN_IF_ERROR(Steps::StartMetricsListener(parts.get()));
  times.Step("security");
  IBSM_RETURN_IF_ERROR(CreateDataDirectory(config));
  parts->live_calls = std::make_unique<LiveCalls>();
  IBSM_RETURN_IF_ERROR(Steps::OpenStore(parts.get()));
  times.Step("store");
  Steps::MakeDelivery(parts.get());
  IBSM_RETURN_IF_ERROR(Steps::OpenAuditTrail(parts.get()));
  times.Step("audit trail");
  Steps::StartCommitter(parts.get());
  IBSM_ASSIGN_OR_RETURN(std::shared_ptr<const Authorizer> authorizer,
                        LoadPolicy(config));
  times.Step("policy");
  IBSM_RETURN_IF_ERROR(
      Steps::RecordStartAndCheckLogTail(parts.get(), *authorizer));
  times.Step("log tail check");
  Steps::MakeContext(parts.get(), std::move(authorizer));
  Steps::StartControlLoops(parts.get());
  IBSM_RETURN_IF_ERROR(Steps::StartServer(parts.get(), std::move(credentials)));
  IBSM_RETURN_IF_ERROR(Steps::StartFederation(parts.get()));
  if (!config.port_file().empty()) {
    IBSM_RETURN_IF_ERROR(WritePortFile(config.port_file(), parts->port));
  }
  Steps::StartHealthAndMetrics(parts.get());
  times.Step("servers");
  Steps::LogEncryption(*parts);
  LogEvent(times.Summary());
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
  // Probes see the drain before the ports close.
  parts_->health_monitor.reset();
  parts_->health.SetStopping();
  parts_->retention.reset();
  parts_->tls_watcher.reset();
  parts_->signing_key_watcher.reset();
  parts_->policy_watcher.reset();
  // Links and subscriptions are endless streams: end them first so the
  // servers' shutdown only waits for publishes, which finish once
  // committed.
  if (parts_->links) parts_->links->Shutdown();
  if (parts_->federation_server) {
    parts_->federation_server->Shutdown(std::chrono::system_clock::now() +
                                        absl::ToChronoNanoseconds(grace));
  }
  parts_->hub->Shutdown();
  parts_->server->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(grace));
  parts_->context->AfterCallsEnded();
  // Its scrapes read the committer and the store.
  if (parts_->metrics_server) parts_->metrics_server->Stop();
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
