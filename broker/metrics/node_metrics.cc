#include "metrics/node_metrics.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "audit/audit_trail.h"
#include "context/node_context.h"
#include "control/policy_watcher.h"
#include "delivery/subscription_hub.h"
#include "ibsm/certificates.h"
#include "ibsm/v1/broker.pb.h"
#include "metrics/exposition.h"
#include "metrics/health.h"
#include "publish/committer.h"
#include "services/peer_verifier.h"
#include "storage/key_codec.h"
#include "storage/store.h"

namespace ibsm::broker {
namespace {

using metrics::HistogramData;
using metrics::Labels;
using metrics::MetricsText;

// The per-identity limits (context/identity_limits.h), exported at 0 until
// hit, so that a rate() over them exists from the start.
constexpr const char* kLimitNames[] = {
    "identity_publish_rate",        "identity_publish_burst",
    "identity_max_inflight_alerts", "identity_max_inflight_mib",
    "identity_max_streams",         "identity_max_subscriptions"};

void Gauge(MetricsText* out, absl::string_view name, absl::string_view help,
           double value) {
  out->Family(name, "gauge", help);
  out->Sample(name, {}, value);
}

void Counter(MetricsText* out, absl::string_view name, absl::string_view help,
             double value) {
  out->Family(name, "counter", help);
  out->Sample(name, {}, value);
}

double UnixSeconds(const google::protobuf::Timestamp& t) {
  return static_cast<double>(t.seconds()) + t.nanos() / 1e9;
}

void WriteCounters(const NodeContext& node, MetricsText* out) {
  NodeCounters* counters = node.counters();
  out->Family("ibsm_publishes_total", "counter",
              "Alerts answered by the publish path, by outcome (accepted, "
              "duplicate, refused) and reason (gRPC status code name).");
  for (const auto& [key, count] : counters->Publishes()) {
    out->Sample("ibsm_publishes_total",
                {{"outcome", key.first}, {"reason", key.second}},
                static_cast<double>(count));
  }
  Counter(out, "ibsm_deliveries_total",
          "Alerts sent to local subscribers (redeliveries included).",
          static_cast<double>(counters->deliveries()));
  out->Family("ibsm_calls_refused_total", "counter",
              "Calls refused before they did anything (identity, role, bad "
              "request, limits), by gRPC status code name.");
  for (const auto& [reason, count] : counters->CallsRefused()) {
    out->Sample("ibsm_calls_refused_total", {{"reason", reason}},
                static_cast<double>(count));
  }
  if (const PeerVerifier* verifier = node.peer_verifier();
      verifier != nullptr) {
    Counter(out, "ibsm_tls_handshakes_refused_total",
            "TLS handshakes whose certificate chain was refused (CA, "
            "revocation, expiry).",
            static_cast<double>(verifier->handshakes_refused()));
  }
  out->Family("ibsm_limits_hit_total", "counter",
              "Refusals by a per-identity limit, by the limit's config field "
              "(limits.<limit>).");
  auto hits = node.identity_limits()->Hits();
  for (const char* limit : kLimitNames) {
    auto it = hits.find(limit);
    out->Sample("ibsm_limits_hit_total", {{"limit", limit}},
                it == hits.end() ? 0.0 : static_cast<double>(it->second));
  }
  out->Family("ibsm_rpc_duration_seconds", "histogram",
              "Time from a unary call's arrival to its status, by method.");
  for (const auto& [method, latency] : counters->Latencies()) {
    HistogramData data;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < NodeCounters::kLatencyBounds.size(); ++i) {
      cumulative += latency.buckets[i];
      data.upper_bounds.push_back(NodeCounters::kLatencyBounds[i]);
      data.cumulative_counts.push_back(cumulative);
    }
    data.count = latency.count;
    data.sum = latency.sum_seconds;
    out->Histogram("ibsm_rpc_duration_seconds", {{"method", method}}, data);
  }
}

void WriteSubscriptions(const NodeContext& node, MetricsText* out) {
  const uint64_t last = node.committer()->last_sequence();
  Gauge(out, "ibsm_last_sequence", "The newest sequence of the node's log.",
        static_cast<double>(last));
  Gauge(out, "ibsm_subscriptions", "Subscriptions open now.",
        static_cast<double>(node.hub()->size()));
  out->Family("ibsm_subscriber_lag_alerts", "gauge",
              "Sequences between the log's end and the acknowledged position "
              "of each connected durable subscription.");
  std::vector<std::string> keys = node.hub()->DurableKeys();
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    absl::StatusOr<std::optional<uint64_t>> cursor =
        node.store()->GetCursorByKey(key);
    if (!cursor.ok()) continue;  // a failed read is not a lag figure
    const uint64_t at = cursor->value_or(0);
    const size_t zero = key.find('\0');
    const std::string agency = key.substr(0, zero);
    const std::string name =
        zero == std::string::npos ? "" : key.substr(zero + 1);
    out->Sample("ibsm_subscriber_lag_alerts",
                {{"agency", agency}, {"subscription", name}},
                static_cast<double>(last > at ? last - at : 0));
  }
}

void WriteLinks(const NodeContext& node, MetricsText* out) {
  if (!node.links_source()) return;
  const v1::Links links = node.links_source()();
  out->Family("ibsm_federation_link_state", "gauge",
              "1 for the current state of each federation link (connecting, "
              "up, down, refused), 0 for the others.");
  static constexpr std::pair<v1::LinkInfo::State, const char*> kStates[] = {
      {v1::LinkInfo::CONNECTING, "connecting"},
      {v1::LinkInfo::UP, "up"},
      {v1::LinkInfo::DOWN, "down"},
      {v1::LinkInfo::REFUSED, "refused"}};
  for (const v1::LinkInfo& link : links.links()) {
    for (const auto& [state, name] : kStates) {
      out->Sample("ibsm_federation_link_state",
                  {{"peer", link.peer()}, {"state", name}},
                  link.state() == state ? 1 : 0);
    }
  }
  out->Family("ibsm_federation_outbox_alerts", "gauge",
              "Alerts waiting in the outbox for each peer, by priority.");
  for (const v1::LinkInfo& link : links.links()) {
    out->Sample("ibsm_federation_outbox_alerts",
                {{"peer", link.peer()}, {"priority", "critical"}},
                static_cast<double>(link.backlog_critical()));
    out->Sample("ibsm_federation_outbox_alerts",
                {{"peer", link.peer()}, {"priority", "high"}},
                static_cast<double>(link.backlog_high()));
    out->Sample("ibsm_federation_outbox_alerts",
                {{"peer", link.peer()}, {"priority", "other"}},
                static_cast<double>(link.backlog_other()));
  }
  out->Family("ibsm_federation_outbox_bytes", "gauge",
              "Bytes waiting in the outbox for each peer.");
  for (const v1::LinkInfo& link : links.links()) {
    out->Sample("ibsm_federation_outbox_bytes", {{"peer", link.peer()}},
                static_cast<double>(link.backlog_bytes()));
  }
  out->Family("ibsm_federation_alerts_sent_total", "counter",
              "Alerts each peer acknowledged as stored (this link's life).");
  for (const v1::LinkInfo& link : links.links()) {
    out->Sample("ibsm_federation_alerts_sent_total", {{"peer", link.peer()}},
                static_cast<double>(link.alerts_sent()));
  }
}

void WriteAudit(const NodeContext& node, absl::Time now, MetricsText* out) {
  if (absl::StatusOr<uint64_t> size = AuditSize(*node.store()); size.ok()) {
    Gauge(out, "ibsm_audit_tree_size", "Records in the audit trail.",
          static_cast<double>(*size));
  }
  absl::StatusOr<v1::SignedCheckpoint> checkpoint =
      LatestCheckpoint(*node.store());
  if (checkpoint.ok()) {
    const double at = UnixSeconds(checkpoint->time());
    Gauge(out, "ibsm_audit_last_checkpoint_timestamp_seconds",
          "When the latest signed checkpoint was made (Unix time).", at);
    Gauge(out, "ibsm_audit_last_checkpoint_age_seconds",
          "Seconds since the latest signed checkpoint.",
          std::max(0.0, absl::ToDoubleSeconds(now - absl::UnixEpoch()) - at));
    Gauge(out, "ibsm_audit_last_checkpoint_tree_size",
          "Records the latest signed checkpoint covers.",
          static_cast<double>(checkpoint->tree_size()));
  }
}

void WritePolicy(const NodeContext& node, const PolicyWatcher* policy,
                 MetricsText* out) {
  out->Family("ibsm_policy_info", "gauge",
              "1, labelled with the version of the policy in force.");
  out->Sample("ibsm_policy_info", {{"version", node.authorizer()->version()}},
              1);
  Counter(
      out, "ibsm_policy_reload_failures_total",
      "Policy files refused at reload (each distinct problem once).",
      policy == nullptr ? 0.0 : static_cast<double>(policy->reload_failures()));
  Gauge(out, "ibsm_policy_reload_failing",
        "1 while the policy file's content is refused (an older policy is "
        "in force).",
        policy != nullptr && policy->reload_failing() ? 1 : 0);
}

void WriteCertificates(const NodeContext& node, MetricsText* out) {
  out->Family("ibsm_certificate_expiry_timestamp_seconds", "gauge",
              "When each certificate of the node's certificate file and CA "
              "file expires (Unix time).");
  const std::pair<const char*, std::string> files[] = {
      {"cert_file", node.config().tls().cert_file()},
      {"ca_file", node.config().tls().ca_file()}};
  for (const auto& [which, path] : files) {
    for (const CertificateExpiry& cert : ReadCertificateExpiries(path)) {
      out->Sample("ibsm_certificate_expiry_timestamp_seconds",
                  {{"file", which}, {"subject", cert.subject}},
                  static_cast<double>(cert.not_after_unix));
    }
  }
}

void WriteStore(const NodeContext& node, MetricsText* out) {
  const StoreStats stats = node.store()->Stats();
  Gauge(out, "ibsm_rocksdb_sst_bytes", "Bytes of RocksDB's table files.",
        static_cast<double>(stats.sst_bytes));
  Gauge(out, "ibsm_rocksdb_live_data_bytes",
        "RocksDB's estimate of its live data.",
        static_cast<double>(stats.live_data_bytes));
  Gauge(out, "ibsm_rocksdb_memtable_bytes", "Bytes in RocksDB's memtables.",
        static_cast<double>(stats.memtable_bytes));
  Gauge(out, "ibsm_rocksdb_pending_compaction_bytes",
        "RocksDB's estimate of the bytes compaction must rewrite.",
        static_cast<double>(stats.pending_compaction_bytes));
  Gauge(out, "ibsm_rocksdb_write_stopped", "1 while RocksDB stops writes.",
        stats.write_stopped ? 1 : 0);
  Gauge(out, "ibsm_rocksdb_delayed_write_rate_bytes",
        "The rate RocksDB slows writes to (0: not slowed).",
        static_cast<double>(stats.delayed_write_rate));
  Counter(out, "ibsm_rocksdb_write_stops_total",
          "Times RocksDB stopped writes since the node started.",
          static_cast<double>(stats.stall_stops));
  Counter(out, "ibsm_rocksdb_write_slowdowns_total",
          "Times RocksDB slowed writes since the node started.",
          static_cast<double>(stats.stall_slowdowns));
  if (absl::StatusOr<uint64_t> free = node.store()->FreeBytes(); free.ok()) {
    Gauge(out, "ibsm_data_dir_free_bytes",
          "Bytes free for the node in the data directory's file system.",
          static_cast<double>(*free));
  }
}

}  // namespace

std::vector<CertificateExpiry> ReadCertificateExpiries(
    const std::string& path) {
  std::vector<CertificateExpiry> out;
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return out;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), BIO_free);
  if (!bio) return out;
  // A file holds a handful of certificates; bounded anyway.
  for (int i = 0; i < 64; ++i) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) break;
    CertificateExpiry expiry;
    char subject[512];
    X509_NAME_oneline(X509_get_subject_name(cert.get()), subject,
                      sizeof(subject));
    expiry.subject = subject;
    struct tm tm {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) continue;
    expiry.not_after_unix = static_cast<int64_t>(timegm(&tm));
    out.push_back(std::move(expiry));
  }
  return out;
}

std::string CollectNodeMetrics(const MetricsSources& sources, absl::Time now) {
  const NodeContext& node = *sources.node;
  MetricsText out;
  out.Family("ibsm_node_info", "gauge",
             "1, labelled with the node id and the broker's version.");
  out.Sample("ibsm_node_info",
             {{"node", node.config().node_id()}, {"version", IBSM_VERSION}}, 1);
  Gauge(&out, "ibsm_serving",
        "1 while the node serves (the gRPC health status), 0 otherwise.",
        sources.health == nullptr || sources.health->serving() ? 1 : 0);
  Gauge(&out, "ibsm_start_time_seconds", "When the node started (Unix time).",
        absl::ToDoubleSeconds(node.started_at() - absl::UnixEpoch()));
  WriteCounters(node, &out);
  WriteSubscriptions(node, &out);
  WriteLinks(node, &out);
  WriteAudit(node, now, &out);
  WritePolicy(node, sources.policy, &out);
  WriteCertificates(node, &out);
  WriteStore(node, &out);
  return out.text();
}

}  // namespace ibsm::broker
