// Health, reflection, metrics and logs of a real node (docs/operations.md):
// the standard gRPC health service called through a stub generated from
// grpc/health/v1/health.proto over real mutual TLS, /healthz and /metrics
// scraped over HTTP (and HTTPS with a client certificate), the values
// checked against what the test did, reflection on and off, and the JSON
// event log of an ibsm-broker process with refusals parsed line by line.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ibsm/certificates.h"
#include "node/node.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"
#include "tests/support/tmpfs.h"

namespace ibsm::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

const char kPolicy[] = "/policies/ibsm-west-africa.textproto";

internal::v1::NodeConfig ObservedConfig(const std::string& data_dir) {
  internal::v1::NodeConfig config = NodeConfigFor(data_dir);
  config.set_policy_file(SourceDir() + kPolicy);
  config.mutable_metrics()->set_listen_address("127.0.0.1:0");
  return config;
}

std::unique_ptr<broker::Node> StartOrFail(
    const internal::v1::NodeConfig& config) {
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  return *std::move(node);
}

// Check(service) through the standard stub; the status in `*status`.
HealthCheckResponse::ServingStatus Check(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
    grpc::Status* status = nullptr) {
  std::unique_ptr<Health::Stub> stub = Health::NewStub(channel);
  grpc::ClientContext context;
  SetTestDeadline(context, absl::Seconds(10));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status result = stub->Check(&context, request, &response);
  if (status != nullptr) *status = result;
  return result.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

httplib::Result Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(10, 0);
  client.set_read_timeout(10, 0);
  return client.Get(path.c_str());
}

// "name{labels}" -> value, for every sample line of a scrape; fails the
// test on a line that is neither a comment nor "series value".
std::map<std::string, double> ParseScrape(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    INFO(std::string(line));
    REQUIRE(space != absl::string_view::npos);
    double value = 0;
    absl::string_view number = line.substr(space + 1);
    if (number == "+Inf") {
      value = std::numeric_limits<double>::infinity();
    } else {
      REQUIRE(absl::SimpleAtod(number, &value));
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

double Sample(const std::map<std::string, double>& samples,
              const std::string& series) {
  auto it = samples.find(series);
  INFO("series " << series);
  REQUIRE(it != samples.end());
  return it->second;
}

std::map<std::string, double> Scrape(int port) {
  httplib::Result result = Get(port, "/metrics");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  CHECK(result->get_header_value("Content-Type") ==
        "text/plain; version=0.0.4; charset=utf-8");
  return ParseScrape(result->body);
}

TEST_CASE(
    "health: the standard health service answers SERVING over mutual TLS "
    "for the node and each service; a probe without a client certificate "
    "cannot reach it, /healthz on the metrics listener can",
    "[health]") {
  TempDir dir;
  std::unique_ptr<broker::Node> node =
      StartOrFail(ObservedConfig(dir.File("data")));
  auto channel = Channel(node->port(), Tls("agency-CIV_police"));
  CHECK(Check(channel, "") == HealthCheckResponse::SERVING);
  CHECK(Check(channel, "ibsm.v1.Publisher") == HealthCheckResponse::SERVING);
  grpc::Status unknown;
  Check(channel, "no.such.Service", &unknown);
  CHECK(unknown.error_code() == grpc::StatusCode::NOT_FOUND);

  // Only the CA: the handshake needs a client certificate.
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = *ReadFileToString(Tls("agency-CIV_police").ca_file);
  auto anonymous = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node->port()),
                                       grpc::SslCredentials(no_cert));
  grpc::Status refused;
  CHECK(Check(anonymous, "", &refused) == HealthCheckResponse::UNKNOWN);
  CHECK(refused.error_code() == grpc::StatusCode::UNAVAILABLE);

  httplib::Result healthz = Get(node->metrics_port(), "/healthz");
  REQUIRE(healthz);
  CHECK(healthz->status == 200);
  CHECK(healthz->body == "SERVING\n");
  CHECK(Get(node->metrics_port(), "/other")->status == 404);
}

TEST_CASE(
    "health: a full disk makes the node NOT_SERVING with the reason, and "
    "freeing space makes it SERVING again without a restart",
    "[health]") {
  TempDir dir;
  TmpfsMount mount(dir.File("small"), 48);
  if (!mount.mounted()) {
    WARN("skipped: cannot mount a tmpfs (" << mount.error() << ")");
    return;
  }
  std::unique_ptr<broker::Node> node =
      StartOrFail(ObservedConfig(dir.File("small") + "/data"));
  auto channel = Channel(node->port(), Tls("agency-CIV_police"));
  REQUIRE(Check(channel, "") == HealthCheckResponse::SERVING);

  FillDisk(dir.File("small") + "/filler");
  node->CheckHealthNow();
  CHECK_FALSE(node->serving());
  CHECK(Check(channel, "") == HealthCheckResponse::NOT_SERVING);
  CHECK(Check(channel, "ibsm.v1.Subscriber") ==
        HealthCheckResponse::NOT_SERVING);
  httplib::Result healthz = Get(node->metrics_port(), "/healthz");
  REQUIRE(healthz);
  CHECK(healthz->status == 503);
  CHECK(healthz->body.find("NOT_SERVING: disk full") == 0);
  CHECK(Sample(Scrape(node->metrics_port()), "ibsm_serving") == 0);

  std::filesystem::remove(dir.File("small") + "/filler");
  node->CheckHealthNow();
  CHECK(Check(channel, "") == HealthCheckResponse::SERVING);
  CHECK(Get(node->metrics_port(), "/healthz")->status == 200);
  node.reset();  // before the tmpfs goes
}

TEST_CASE(
    "metrics: a scrape counts what the test did (publishes accepted, "
    "duplicate and refused by reason, refused calls, RPC latencies, "
    "subscriber lag) and exports the node's state",
    "[metrics]") {
  TempDir dir;
  std::unique_ptr<broker::Node> node =
      StartOrFail(ObservedConfig(dir.File("data")));
  const int port = node->port();
  auto police = Channel(port, Tls("agency-CIV_police"));

  // A durable subscription that acknowledges nothing.
  v1::SubscribeRequest::Open open;
  open.add_topics(">");
  open.set_durable_name("lagging");
  open.set_credit(1);
  RawSubscription subscription(Channel(port, Tls("agency-CIV_customs")), open);
  REQUIRE(subscription.WaitOpened());

  // 3 accepted, then 1 duplicate of the first, then 2 refused alerts
  // claiming another originator.
  v1::PublishResponse response;
  REQUIRE(
      RawPublish(police, {MakeAlert("m-1"), MakeAlert("m-2")}, &response).ok());
  REQUIRE(
      RawPublish(police, {MakeAlert("m-3"), MakeAlert("m-1")}, &response).ok());
  CHECK(response.results(1).duplicate());
  std::vector<v1::Alert> forged = {MakeAlert("f-1"), MakeAlert("f-2")};
  for (v1::Alert& alert : forged) {
    alert.set_originator("CIV/customs");
  }
  // A request whose alerts are all refused is answered with the refusal.
  grpc::Status forged_status = RawPublish(police, forged, &response);
  CHECK(forged_status.error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // A call refused: a certificate issued under another node's intermediate.
  v1::NodeInfo info;
  grpc::Status foreign =
      RawNodeInfo(Channel(port, Tls("sibling-CIV_police")), &info);
  CHECK_FALSE(foreign.ok());

  std::map<std::string, double> m = Scrape(node->metrics_port());
  CHECK(Sample(m, R"(ibsm_publishes_total{outcome="accepted",reason="ok"})") ==
        3);
  CHECK(Sample(m, R"(ibsm_publishes_total{outcome="duplicate",reason="ok"})") ==
        1);
  CHECK(
      Sample(
          m,
          R"(ibsm_publishes_total{outcome="refused",reason="permission_denied"})") ==
      2);
  CHECK(Sample(m, R"(ibsm_calls_refused_total{reason="permission_denied"})") >=
        1);
  CHECK(Sample(m, R"(ibsm_limits_hit_total{limit="identity_publish_rate"})") ==
        0);
  // Three unary publishes, each with its +Inf bucket and count.
  const std::string publish = R"(method="/ibsm.v1.Publisher/Publish")";
  CHECK(Sample(m, "ibsm_rpc_duration_seconds_count{" + publish + "}") == 3);
  CHECK(Sample(m, "ibsm_rpc_duration_seconds_bucket{" + publish +
                      R"(,le="+Inf"})") == 3);
  CHECK(Sample(m, "ibsm_rpc_duration_seconds_sum{" + publish + "}") > 0);
  CHECK(Sample(m, "ibsm_last_sequence") == 3);
  CHECK(Sample(m, "ibsm_serving") == 1);
  CHECK(Sample(m, "ibsm_audit_tree_size") > 0);
  CHECK(Sample(m, "ibsm_rocksdb_write_stopped") == 0);
  CHECK(m.count("ibsm_rocksdb_sst_bytes") == 1);
  CHECK(m.count("ibsm_rocksdb_write_stops_total") == 1);
  CHECK(Sample(m, "ibsm_policy_reload_failures_total") == 0);
  bool policy_info = false;
  bool cert_expiry = false;
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  for (const auto& [series, value] : m) {
    if (series.rfind("ibsm_policy_info{version=", 0) == 0) policy_info = true;
    if (series.rfind(
            R"(ibsm_certificate_expiry_timestamp_seconds{file="cert_file")",
            0) == 0) {
      cert_expiry = true;
      CHECK(value > now);
    }
  }
  CHECK(policy_info);
  CHECK(cert_expiry);

  // The subscription holds a window of one and acknowledges nothing: all
  // three stored alerts are behind its cursor.
  const std::string lag =
      R"(ibsm_subscriber_lag_alerts{agency="CIV/customs",subscription="lagging"})";
  std::map<std::string, double> last;
  const bool lagging = Eventually(
      [&] {
        last = Scrape(node->metrics_port());
        auto it = last.find(lag);
        return it != last.end() && it->second == 3;
      },
      absl::Seconds(20));
  for (const auto& [series, value] : last) {
    if (series.rfind("ibsm_subscriber_lag", 0) == 0) {
      UNSCOPED_INFO(series << " " << value);
    }
  }
  CHECK(lagging);
}

TEST_CASE(
    "metrics: every refusal by a per-identity limit is counted under the "
    "limit's name, though the trail records one a minute",
    "[metrics]") {
  TempDir dir;
  internal::v1::NodeConfig config = ObservedConfig(dir.File("data"));
  config.mutable_limits()->set_identity_publish_rate(1);
  config.mutable_limits()->set_identity_publish_burst(1);
  std::unique_ptr<broker::Node> node = StartOrFail(config);
  auto police = Channel(node->port(), Tls("agency-CIV_police"));
  int refused = 0;
  for (int i = 0; i < 5; ++i) {
    grpc::Status status =
        RawPublish(police, {MakeAlert(absl::StrCat("rate-", i))});
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
  }
  REQUIRE(refused >= 1);
  std::map<std::string, double> m = Scrape(node->metrics_port());
  CHECK(Sample(m, R"(ibsm_limits_hit_total{limit="identity_publish_rate"})") ==
        refused);
  CHECK(Sample(m, R"(ibsm_calls_refused_total{reason="resource_exhausted"})") ==
        refused);
}

TEST_CASE(
    "metrics over mutual TLS: a scraper with a certificate of the client CA "
    "gets the metrics, one without a certificate is refused",
    "[metrics]") {
  TempDir dir;
  internal::v1::NodeConfig config = ObservedConfig(dir.File("data"));
  const TlsFiles scraper = Tls("agency-CIV_police");
  // cpp-httplib's client sends its leaf only: the scrapers' CA file holds
  // the root and the intermediate that issued them.
  {
    std::ofstream bundle(dir.File("scraper-ca.pem"));
    bundle << *ReadFileToString(scraper.ca_file)
           << *ReadFileToString(scraper.cert_file);
  }
  config.mutable_metrics()->set_client_ca_file(dir.File("scraper-ca.pem"));
  std::unique_ptr<broker::Node> node = StartOrFail(config);

  httplib::SSLClient with_cert("127.0.0.1", node->metrics_port(),
                               scraper.cert_file, scraper.key_file);
  with_cert.set_ca_cert_path(scraper.ca_file.c_str());
  with_cert.enable_server_certificate_verification(true);
  with_cert.set_connection_timeout(10, 0);
  httplib::Result scraped = with_cert.Get("/metrics");
  INFO(httplib::to_string(scraped.error())
       << " verify " << with_cert.get_openssl_verify_result());
  REQUIRE(scraped);
  CHECK(scraped->status == 200);
  CHECK(scraped->body.find("ibsm_serving 1\n") != std::string::npos);

  httplib::SSLClient without_cert("127.0.0.1", node->metrics_port());
  without_cert.set_ca_cert_path(scraper.ca_file.c_str());
  without_cert.set_connection_timeout(10, 0);
  httplib::Result refused = without_cert.Get("/metrics");
  CHECK_FALSE(refused);

  // Plain HTTP to the TLS listener gets nothing either.
  CHECK_FALSE(Get(node->metrics_port(), "/metrics"));
}

// One reflection request listing the services (grpc.reflection.v1alpha,
// field 7 list_services = ""), sent as raw bytes; the first response's
// bytes, or the call's error.
grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel,
                          std::string* response_bytes) {
  grpc::ClientContext context;
  SetTestDeadline(context, absl::Seconds(10));
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream(grpc::internal::ClientReaderWriterFactory<
             grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel.get(), method,
                                                         &context));
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer buffer(&slice, 1);
  stream->Write(buffer);
  stream->WritesDone();
  grpc::ByteBuffer reply;
  if (stream->Read(&reply)) {
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    for (const grpc::Slice& s : slices) {
      response_bytes->append(reinterpret_cast<const char*>(s.begin()),
                             s.size());
    }
  }
  return stream->Finish();
}

TEST_CASE(
    "reflection is off by default and lists the node's services when "
    "enable_reflection is set",
    "[reflection]") {
  TempDir dir;
  {
    std::unique_ptr<broker::Node> node =
        StartOrFail(ObservedConfig(dir.File("off")));
    std::string bytes;
    grpc::Status off =
        ListServices(Channel(node->port(), Tls("agency-CIV_police")), &bytes);
    CHECK(off.error_code() == grpc::StatusCode::UNIMPLEMENTED);
  }
  internal::v1::NodeConfig config = ObservedConfig(dir.File("on"));
  config.set_enable_reflection(true);
  std::unique_ptr<broker::Node> node = StartOrFail(config);
  std::string bytes;
  grpc::Status on =
      ListServices(Channel(node->port(), Tls("agency-CIV_police")), &bytes);
  INFO(on.error_message());
  CHECK(on.ok());
  CHECK(bytes.find("ibsm.v1.Publisher") != std::string::npos);
  CHECK(bytes.find("ibsm.v1.Auditor") != std::string::npos);
  CHECK(bytes.find("grpc.health.v1.Health") != std::string::npos);
}

TEST_CASE(
    "logs: every line of a JSON-logging broker run with refused handshakes "
    "and calls parses, the refusals name peer and reason, and no payload or "
    "attribute appears",
    "[logging]") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + kPolicy);
  config.mutable_logging()->set_format("json");
  config.mutable_logging()->set_file(dir.File("broker.log"));
  const std::string payload_marker = "PAYLOAD-MARKER-5d1c";
  const std::string attribute_marker = "ATTRIBUTE-MARKER-9e27";
  {
    BrokerProcess broker(config);
    auto police = Channel(broker.port(), Tls("agency-CIV_police"));
    v1::Alert alert = MakeAlert("logged-1");
    alert.set_payload(payload_marker);
    (*alert.mutable_attributes())["case"] = attribute_marker;
    REQUIRE(RawPublish(police, {alert}).ok());
    v1::Alert forged = MakeAlert("logged-2");
    forged.set_payload(payload_marker);
    forged.set_originator("CIV/customs");
    CHECK_FALSE(RawPublish(police, {forged}).ok());
    for (int i = 0; i < 50; ++i) {
      (void)RawNodeInfo(Channel(broker.port(), Tls("sibling-CIV_police")));
      (void)RawNodeInfo(Channel(broker.port(), Tls("revoked")));
    }
    broker.Kill(SIGTERM);
    REQUIRE(broker.Wait() == 0);
  }
  std::ifstream in(dir.File("broker.log"));
  int lines = 0;
  int call_refusals = 0;
  int handshake_refusals = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    INFO(line);
    google::protobuf::Struct object;
    REQUIRE(google::protobuf::util::JsonStringToMessage(line, &object).ok());
    REQUIRE(object.fields().contains("time"));
    REQUIRE(object.fields().contains("level"));
    REQUIRE(object.fields().contains("msg"));
    CHECK(line.find(payload_marker) == std::string::npos);
    CHECK(line.find(attribute_marker) == std::string::npos);
    if (!object.fields().contains("event")) continue;
    const std::string event = object.fields().at("event").string_value();
    CHECK_FALSE(object.fields().at("peer").string_value().empty());
    CHECK_FALSE(object.fields().at("reason").string_value().empty());
    if (event == "call refused") ++call_refusals;
    if (event == "TLS handshake refused") ++handshake_refusals;
  }
  CHECK(lines > 3);
  // 50 of each, bounded per peer: at least one line, at most a few bursts.
  CHECK(call_refusals >= 1);
  CHECK(call_refusals <= 50);
  CHECK(handshake_refusals >= 1);
  CHECK(handshake_refusals < 50);
}

}  // namespace
}  // namespace ibsm::testing
