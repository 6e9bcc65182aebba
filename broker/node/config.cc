#include "node/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ibsm/alert_rules.h"
#include "ibsm/certificates.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/status_macros.h"
#include "logging/event_log.h"

namespace ibsm::broker {
namespace {

class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstErrorCollector(absl::string_view source) : source_(source) {}
  void AddError(int line, int column, const std::string& message) override {
    if (error_.empty()) {
      error_ =
          absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::string source_;
  std::string error_;
};

absl::Status Missing(absl::string_view source, absl::string_view field) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": required field '", field, "' is not set"));
}

// The published checkpoint must survive a restore of the data directory,
// so it lives next to it by default and never inside it.
absl::Status ApplyPublishedCheckpointFile(internal::v1::NodeConfig* config,
                                          absl::string_view source) {
  std::string data_dir = config->data_dir();
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  if (config->published_checkpoint_file().empty()) {
    config->set_published_checkpoint_file(
        absl::StrCat(data_dir, ".checkpoint"));
    return absl::OkStatus();
  }
  const std::filesystem::path dir =
      std::filesystem::path(data_dir).lexically_normal();
  const std::filesystem::path file =
      std::filesystem::path(config->published_checkpoint_file())
          .lexically_normal();
  auto [dir_end, file_it] =
      std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  if (dir_end == dir.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": published_checkpoint_file ",
        config->published_checkpoint_file(), " is inside data_dir ",
        config->data_dir(),
        "; put it outside (a restored data directory must not bring back "
        "an older one), or leave it unset for ",
        data_dir, ".checkpoint"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<internal::v1::NodeConfig> ParseConfig(absl::string_view text,
                                                     absl::string_view source) {
  internal::v1::NodeConfig config;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors(source);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        errors.error().empty() ? absl::StrCat(source, ": cannot be parsed")
                               : errors.error());
  }
  if (config.node_id().empty()) return Missing(source, "node_id");
  if (config.listen_address().empty()) return Missing(source, "listen_address");
  if (config.data_dir().empty()) return Missing(source, "data_dir");
  if (config.tls().cert_file().empty()) return Missing(source, "tls.cert_file");
  if (config.tls().key_file().empty()) return Missing(source, "tls.key_file");
  if (config.tls().ca_file().empty()) return Missing(source, "tls.ca_file");

  ApplyDefaults(&config);
  IBSM_RETURN_IF_ERROR(ApplyPublishedCheckpointFile(&config, source));
  IBSM_RETURN_IF_ERROR(CheckLimits(config.limits(), source));
  IBSM_RETURN_IF_ERROR(CheckTlsConfig(config.tls(), source));
  IBSM_RETURN_IF_ERROR(CheckFederationConfig(config, source));
  IBSM_RETURN_IF_ERROR(CheckEncryptionConfig(config, source));
  IBSM_RETURN_IF_ERROR(CheckObservabilityConfig(config, source));
  return config;
}

absl::Status CheckObservabilityConfig(const internal::v1::NodeConfig& config,
                                      absl::string_view source) {
  const internal::v1::LoggingConfig& logging = config.logging();
  absl::StatusOr<EventLogOptions> log =
      ParseEventLogOptions(logging.format(), logging.level(), logging.file());
  if (!log.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", log.status().message()));
  }
  const internal::v1::MetricsConfig& metrics = config.metrics();
  if (metrics.listen_address().empty() &&
      (!metrics.port_file().empty() || !metrics.client_ca_file().empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": metrics.port_file and metrics.client_ca_file need "
                     "metrics.listen_address (e.g. \"127.0.0.1:9464\")"));
  }
  return absl::OkStatus();
}

absl::Status CheckEncryptionConfig(const internal::v1::NodeConfig& config,
                                   absl::string_view source) {
  if (!config.has_encryption()) return absl::OkStatus();
  const internal::v1::EncryptionConfig& e = config.encryption();
  if (e.key_file().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": encryption.key_file is required when encryption is set "
                     "(make one with ibsm-broker keygen --out FILE)"));
  }
  for (int i = 0; i < e.old_key_files_size(); ++i) {
    if (e.old_key_files(i).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": encryption.old_key_files[", i, "] is empty"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLimits(const internal::v1::Limits& limits,
                         absl::string_view source) {
  auto in_mib_range = [&](absl::string_view field, uint32_t mib) {
    if (mib >= kMinRocksDbMib && mib <= kMaxRocksDbMib) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": limits.", field, " is ", mib, " MiB; it must be between ",
        kMinRocksDbMib, " and ", kMaxRocksDbMib, " MiB"));
  };
  IBSM_RETURN_IF_ERROR(in_mib_range("rocksdb_block_cache_mib",
                                    limits.rocksdb_block_cache_mib()));
  IBSM_RETURN_IF_ERROR(
      in_mib_range("rocksdb_memtable_mib", limits.rocksdb_memtable_mib()));
  auto at_most = [&](absl::string_view field, uint32_t value, uint32_t bound) {
    if (value <= bound) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": limits.", field, " is ", value,
                     "; it must be at most ", bound));
  };
  IBSM_RETURN_IF_ERROR(at_most("log_cache_mib", limits.log_cache_mib(), 65536));
  IBSM_RETURN_IF_ERROR(at_most("identity_max_inflight_mib",
                               limits.identity_max_inflight_mib(), 65536));
  const uint32_t request_mib = limits.max_request_memory_mib();
  if (request_mib < 16 || request_mib > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": limits.max_request_memory_mib is ", request_mib,
                     " MiB; it must be between 16 and 65536 MiB"));
  }
  return absl::OkStatus();
}

absl::Status CheckTlsConfig(const internal::v1::TlsConfig& tls,
                            absl::string_view source) {
  uint32_t timeout = tls.handshake_timeout_seconds();
  if (timeout < kMinHandshakeTimeoutSeconds ||
      timeout > kMaxHandshakeTimeoutSeconds) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": tls.handshake_timeout_seconds is ", timeout,
                     "; it must be between ", kMinHandshakeTimeoutSeconds,
                     " and ", kMaxHandshakeTimeoutSeconds,
                     " seconds (0: ", kDefaultHandshakeTimeoutSeconds, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckFederationConfig(const internal::v1::NodeConfig& config,
                                   absl::string_view source) {
  const internal::v1::FederationConfig& fed = config.federation();
  auto bad = [&](std::string why) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": federation: ", why));
  };
  if (fed.peers_size() > 0 && config.policy_file().empty()) {
    return bad(
        "peers need a policy_file: without a sharing policy nothing may be "
        "exchanged with other nodes");
  }
  if (fed.peers_size() > 256) return bad("at most 256 peers");
  if (fed.window() > 4096) return bad("window is at most 4096");
  std::vector<std::string> seen;
  for (const internal::v1::PeerConfig& peer : fed.peers()) {
    absl::StatusOr<Identity> id =
        ParseSpiffeId(absl::StrCat("spiffe://ibsm/", peer.node_id()));
    if (peer.node_id().empty() || !id.ok() || id->is_agency()) {
      return bad(
          absl::StrCat("peers: '", peer.node_id(), "' is not a node id"));
    }
    if (peer.node_id() == config.node_id()) {
      return bad(
          absl::StrCat("peers: ", peer.node_id(), " is this node itself"));
    }
    if (std::find(seen.begin(), seen.end(), peer.node_id()) != seen.end()) {
      return bad(absl::StrCat("peers: ", peer.node_id(), " is listed twice"));
    }
    seen.push_back(peer.node_id());
  }
  return absl::OkStatus();
}

void ApplyDefaults(internal::v1::NodeConfig* config) {
  internal::v1::Limits* limits = config->mutable_limits();
  auto set_default = [](uint32_t value, uint32_t fallback) {
    return value == 0 ? fallback : value;
  };
  limits->set_max_alert_bytes(
      set_default(limits->max_alert_bytes(), kDefaultMaxAlertBytes));
  limits->set_max_batch_alerts(set_default(limits->max_batch_alerts(), 1024));
  limits->set_max_inflight_per_stream(
      set_default(limits->max_inflight_per_stream(), 4096));
  limits->set_max_credit(set_default(limits->max_credit(), 4096));
  limits->set_max_commit_group(set_default(limits->max_commit_group(), 8192));
  limits->set_max_subscriptions(
      set_default(limits->max_subscriptions(), 10000));
  limits->set_log_cache_mib(set_default(limits->log_cache_mib(), 64));
  limits->set_max_subscribe_patterns(
      set_default(limits->max_subscribe_patterns(), 64));
  limits->set_rocksdb_block_cache_mib(
      set_default(limits->rocksdb_block_cache_mib(), 32));
  limits->set_rocksdb_memtable_mib(
      set_default(limits->rocksdb_memtable_mib(), 64));
  limits->set_identity_publish_rate(
      set_default(limits->identity_publish_rate(), 10000));
  limits->set_identity_publish_burst(set_default(
      limits->identity_publish_burst(), 2 * limits->identity_publish_rate()));
  limits->set_identity_max_inflight_alerts(
      set_default(limits->identity_max_inflight_alerts(), 16384));
  limits->set_identity_max_inflight_mib(
      set_default(limits->identity_max_inflight_mib(), 64));
  limits->set_identity_max_streams(
      set_default(limits->identity_max_streams(), 256));
  limits->set_identity_max_subscriptions(
      set_default(limits->identity_max_subscriptions(), 128));
  limits->set_max_request_memory_mib(
      set_default(limits->max_request_memory_mib(), 256));
  if (config->durability() == internal::v1::DURABILITY_UNSPECIFIED) {
    config->set_durability(internal::v1::DURABILITY_SYNC);
  }
  if (config->shutdown_grace_seconds() == 0)
    config->set_shutdown_grace_seconds(5);
  if (config->policy_check_seconds() == 0) config->set_policy_check_seconds(5);
  internal::v1::AuditConfig* audit = config->mutable_audit();
  if (audit->checkpoint_every_records() == 0) {
    audit->set_checkpoint_every_records(1000);
  }
  if (audit->checkpoint_every_seconds() == 0) {
    audit->set_checkpoint_every_seconds(10);
  }
  if (audit->verify_tail_alerts() == 0) audit->set_verify_tail_alerts(1000);
  if (config->retention_interval_seconds() == 0) {
    config->set_retention_interval_seconds(60);
  }
  if (config->tls().reload_interval_seconds() == 0) {
    config->mutable_tls()->set_reload_interval_seconds(60);
  }
  if (config->tls().handshake_timeout_seconds() == 0) {
    config->mutable_tls()->set_handshake_timeout_seconds(
        kDefaultHandshakeTimeoutSeconds);
  }
  internal::v1::FederationConfig* fed = config->mutable_federation();
  if (fed->window() == 0) fed->set_window(64);
  if (fed->heartbeat_seconds() == 0) fed->set_heartbeat_seconds(15);
  if (fed->reconnect_initial_ms() == 0) fed->set_reconnect_initial_ms(500);
  if (fed->reconnect_max_seconds() == 0) fed->set_reconnect_max_seconds(30);
  for (internal::v1::PeerConfig& peer : *fed->mutable_peers()) {
    if (peer.max_backlog_alerts() == 0) peer.set_max_backlog_alerts(100000);
    if (peer.max_backlog_mib() == 0) peer.set_max_backlog_mib(1024);
  }
}

absl::StatusOr<internal::v1::NodeConfig> LoadConfig(const std::string& path) {
  IBSM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseConfig(text, path);
}

}  // namespace ibsm::broker
