#include "tests/support/federation.h"

#include <grpcpp/grpcpp.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ibsm/certificates.h"
#include "ibsm/crypto.h"
#include "ibsm/v1/audit.grpc.pb.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "tests/support/raw_client.h"

namespace ibsm::testing {

namespace {

using internal::v1::LinkFrame;

// Short pauses, so that tests that break links recover in seconds.
constexpr uint32_t kHeartbeatSeconds = 2;
constexpr uint32_t kReconnectInitialMs = 100;
constexpr uint32_t kReconnectMaxSeconds = 2;

uint64_t Backlog(const v1::LinkInfo& link) {
  return link.backlog_critical() + link.backlog_high() + link.backlog_other();
}

}  // namespace

std::string FederationPolicyPath(const std::string& name) {
  return absl::StrCat(SourceDir(), "/tests/federation/", name);
}

struct Federation::Node {
  std::string id;
  internal::v1::NodeConfig config;
  std::unique_ptr<BrokerProcess> process;
  bool started_once = false;
  int port = 0;
  int federation_port = 0;
  std::shared_ptr<grpc::Channel> auditor_channel;
};

Federation::Federation(std::string policy_file)
    : policy_file_(std::move(policy_file)) {}

Federation::~Federation() {
  // Nodes first (their destructors SIGKILL), so no node dials a proxy that
  // is going away.
  nodes_.clear();
  proxies_.clear();
}

Federation::Node& Federation::node(const std::string& id) {
  auto it = nodes_.find(id);
  INFO("node " << id << " is not declared");
  REQUIRE(it != nodes_.end());
  return *it->second;
}

const Federation::Node& Federation::node(const std::string& id) const {
  auto it = nodes_.find(id);
  INFO("node " << id << " is not declared");
  REQUIRE(it != nodes_.end());
  return *it->second;
}

void Federation::AddNode(const std::string& id) {
  if (nodes_.count(id) > 0) return;
  auto n = std::make_unique<Node>();
  n->id = id;
  n->config = NodeConfigFor(dir_.File(id), id);
  n->config.set_policy_file(policy_file_);
  n->config.set_policy_check_seconds(3600);  // tests never edit policies
  internal::v1::FederationConfig* federation = n->config.mutable_federation();
  federation->set_listen_address("127.0.0.1:0");
  federation->set_heartbeat_seconds(kHeartbeatSeconds);
  federation->set_reconnect_initial_ms(kReconnectInitialMs);
  federation->set_reconnect_max_seconds(kReconnectMaxSeconds);
  nodes_[id] = std::move(n);
}

void Federation::AddLink(const std::string& dialer, const std::string& acceptor,
                         bool proxied) {
  AddNode(dialer);
  AddNode(acceptor);
  REQUIRE(!node(dialer).started_once);
  REQUIRE(!node(acceptor).started_once);
  node(dialer).config.mutable_federation()->add_peers()->set_node_id(acceptor);
  node(acceptor).config.mutable_federation()->add_peers()->set_node_id(dialer);
  links_.push_back({dialer, acceptor, proxied});
}

internal::v1::NodeConfig& Federation::config(const std::string& id) {
  return node(id).config;
}

internal::v1::PeerConfig& Federation::peer_config(const std::string& id,
                                                  const std::string& peer) {
  internal::v1::PeerConfig* found = nullptr;
  for (internal::v1::PeerConfig& p :
       *node(id).config.mutable_federation()->mutable_peers()) {
    if (p.node_id() == peer) found = &p;
  }
  INFO("node " << id << " has no peer " << peer);
  REQUIRE(found != nullptr);
  return *found;
}

void Federation::SetPolicy(const std::string& id,
                           const std::string& policy_file) {
  node(id).config.set_policy_file(policy_file);
}

void Federation::StartAll() {
  while (true) {
    Node* next = nullptr;
    bool any_left = false;
    for (auto& [id, n] : nodes_) {
      if (n->started_once) continue;
      any_left = true;
      bool ready = true;
      for (const LinkDecl& link : links_) {
        if (link.dialer == id && !node(link.acceptor).started_once) {
          ready = false;
        }
      }
      if (ready) {
        next = n.get();
        break;
      }
    }
    if (!any_left) return;
    if (next == nullptr) {
      FAIL(
          "the declared links leave no start order: every node left dials "
          "one that has not started");
    }
    Launch(*next);
  }
}

void Federation::Start(const std::string& id) { Launch(node(id)); }

void Federation::Restart(const std::string& id) {
  REQUIRE(node(id).started_once);
  Launch(node(id));
}

void Federation::Launch(Node& n) {
  INFO("starting node " << n.id);
  REQUIRE(!running(n.id));
  // Dial addresses: the acceptor's federation port, or the proxy before it.
  for (const LinkDecl& link : links_) {
    if (link.dialer != n.id) continue;
    const Node& acceptor = node(link.acceptor);
    REQUIRE(acceptor.started_once);
    std::string address = absl::StrCat("127.0.0.1:", acceptor.federation_port);
    if (link.proxied) {
      auto key = std::make_pair(link.dialer, link.acceptor);
      if (proxies_.count(key) == 0) {
        auto proxy = TcpProxy::Start(address);
        INFO(proxy.status().ToString());
        REQUIRE(proxy.ok());
        proxies_[key] = *std::move(proxy);
      }
      address = proxies_[key]->address();
    }
    peer_config(n.id, link.acceptor).set_address(address);
  }
  n.auditor_channel.reset();  // a fresh channel: no reconnect backoff left
  n.process = std::make_unique<BrokerProcess>(n.config);
  if (!n.started_once) {
    // From now on the node comes back on the same ports, where its dialers
    // (and the tests' clients) find it again after a restart.
    n.started_once = true;
    n.port = n.process->port();
    n.federation_port = n.process->federation_port();
    n.config.set_listen_address(absl::StrCat("127.0.0.1:", n.port));
    if (n.federation_port > 0) {
      n.config.mutable_federation()->set_listen_address(
          absl::StrCat("127.0.0.1:", n.federation_port));
    }
  }
  REQUIRE(n.process->port() == n.port);
  REQUIRE(n.process->federation_port() == n.federation_port);
}

int Federation::Stop(const std::string& id, int signal) {
  Node& n = node(id);
  REQUIRE(running(id));
  n.process->Kill(signal);
  const int code = n.process->Wait();
  n.process.reset();
  n.auditor_channel.reset();
  return code;
}

bool Federation::running(const std::string& id) const {
  const Node& n = node(id);
  return n.process != nullptr && n.process->pid() > 0;
}

BrokerProcess& Federation::process(const std::string& id) {
  REQUIRE(running(id));
  return *node(id).process;
}

int Federation::port(const std::string& id) const {
  REQUIRE(node(id).started_once);
  return node(id).port;
}

std::string Federation::address(const std::string& id) const {
  return absl::StrCat("127.0.0.1:", port(id));
}

int Federation::federation_port(const std::string& id) const {
  REQUIRE(node(id).started_once);
  return node(id).federation_port;
}

TcpProxy& Federation::proxy(const std::string& dialer,
                            const std::string& acceptor) {
  auto it = proxies_.find(std::make_pair(dialer, acceptor));
  INFO("no proxied link " << dialer << " -> " << acceptor << " has started");
  REQUIRE(it != proxies_.end());
  return *it->second;
}

std::shared_ptr<grpc::Channel> Federation::AuditorChannel(
    const std::string& id) {
  Node& n = node(id);
  if (n.auditor_channel == nullptr) {
    n.auditor_channel = Channel(port(id), Tls("auditor-" + id + "_audit"));
  }
  return n.auditor_channel;
}

std::unique_ptr<Client> Federation::Connect(const std::string& id,
                                            const std::string& agency) {
  return ConnectOrFail(address(id), absl::StrCat("agency-", id, "_", agency));
}

v1::Links Federation::Links(const std::string& id, grpc::Status* status) {
  auto stub = v1::Node::NewStub(AuditorChannel(id));
  grpc::ClientContext context;
  SetTestDeadline(context, absl::Seconds(10));
  v1::Links links;
  grpc::Status s = stub->GetLinks(&context, v1::LinksRequest(), &links);
  if (status != nullptr) {
    *status = s;
  } else {
    INFO("Node.GetLinks at " << id << ": " << s.error_message());
    REQUIRE(s.ok());
  }
  return links;
}

std::optional<v1::LinkInfo> Federation::Link(const std::string& id,
                                             const std::string& peer) {
  grpc::Status status;
  v1::Links links = Links(id, &status);
  if (!status.ok()) return std::nullopt;
  for (const v1::LinkInfo& link : links.links()) {
    if (link.peer() == peer) return link;
  }
  return std::nullopt;
}

bool Federation::WaitLinkUp(const std::string& id, const std::string& peer,
                            absl::Duration deadline) {
  return Eventually(
      [&] {
        std::optional<v1::LinkInfo> link = Link(id, peer);
        return link.has_value() && link->state() == v1::LinkInfo::UP;
      },
      deadline);
}

bool Federation::WaitAllLinksUp(absl::Duration deadline) {
  const absl::Time until = absl::Now() + deadline;
  for (const LinkDecl& link : links_) {
    if (!running(link.dialer) || !running(link.acceptor)) continue;
    if (!WaitLinkUp(link.dialer, link.acceptor, until - absl::Now()) ||
        !WaitLinkUp(link.acceptor, link.dialer, until - absl::Now())) {
      UNSCOPED_INFO("link " << link.dialer << " -> " << link.acceptor
                            << " is not UP at both ends");
      return false;
    }
  }
  return true;
}

bool Federation::WaitDrained(absl::Duration deadline) {
  // Nodes are asked one after another, so one pass with every backlog empty
  // could miss an alert that a node asked later acknowledged (and relayed)
  // after an earlier node was asked. Two passes in a row, both empty and
  // with the same counts of alerts sent, received and refused, cannot.
  std::vector<uint64_t> previous;
  std::string last_busy;
  const bool drained = Eventually(
      [&] {
        std::vector<uint64_t> counts;
        for (auto& [id, n] : nodes_) {
          if (!running(id)) continue;
          grpc::Status status;
          v1::Links links = Links(id, &status);
          if (!status.ok()) {
            last_busy = absl::StrCat(id, ": GetLinks ", status.error_message());
            previous.clear();
            return false;
          }
          for (const v1::LinkInfo& link : links.links()) {
            const bool peer_running =
                nodes_.count(link.peer()) > 0 && running(link.peer());
            if (!peer_running) continue;
            if (Backlog(link) != 0 || link.in_flight() != 0) {
              last_busy =
                  absl::StrCat(id, " -> ", link.peer(), ": backlog ",
                               Backlog(link), ", in flight ", link.in_flight());
              previous.clear();
              return false;
            }
            counts.push_back(link.alerts_sent());
            counts.push_back(link.alerts_received());
            counts.push_back(link.alerts_refused());
          }
        }
        const bool stable = !previous.empty() && counts == previous;
        previous = counts;
        if (counts.empty()) return true;  // no link between running nodes
        return stable;
      },
      deadline);
  if (!drained) UNSCOPED_INFO("not drained; last seen " << last_busy);
  return drained;
}

std::vector<v1::AuditRecord> Federation::Audit(
    const std::string& id, const std::string& alert_id, v1::AuditAction action,
    v1::AuditQuery::Decision decision) {
  v1::AuditQuery query;
  query.set_alert_id(alert_id);
  query.set_action(action);
  query.set_decision(decision);
  query.set_limit(100000);
  grpc::Status status;
  std::vector<v1::AuditRecord> records =
      RawAuditQuery(AuditorChannel(id), query, &status);
  INFO("Auditor.Query at " << id << ": " << status.error_message());
  REQUIRE(status.ok());
  return records;
}

std::vector<v1::StoredAlertDigest> Federation::StoredAlerts(
    const std::string& id) {
  INFO("the stored alerts of " << id);
  return RawStoredAlerts(AuditorChannel(id));
}

std::vector<std::string> Federation::StoredAlertIds(const std::string& id) {
  std::vector<std::string> ids;
  for (const v1::StoredAlertDigest& digest : StoredAlerts(id)) {
    ids.push_back(digest.alert_id());
  }
  return ids;
}

std::map<std::string, int> CountIds(const std::vector<std::string>& ids) {
  std::map<std::string, int> counts;
  for (const std::string& id : ids) ++counts[id];
  return counts;
}

// ---- Collector --------------------------------------------------------------

Collector::Collector(const std::string& target, const std::string& entity,
                     std::vector<std::string> topics,
                     const std::string& durable_name)
    : client_(ConnectOrFail(target, entity)) {
  SubscribeOptions options;
  options.topics = std::move(topics);
  options.durable_name = durable_name;
  options.start = SubscribeOptions::Start::kEarliest;
  options.auto_ack = true;
  options.ack_interval = absl::Milliseconds(50);
  auto subscriber = client_->NewSubscriber(options);
  INFO(subscriber.status().ToString());
  REQUIRE(subscriber.ok());
  subscriber_ = *std::move(subscriber);
  absl::Status started = subscriber_->Start(
      [this](const v1::Delivery& delivery) {
        absl::MutexLock lock(&mu_);
        received_.push_back({delivery.sequence(), delivery.alert()});
      },
      [this](const absl::Status& error) {
        absl::MutexLock lock(&mu_);
        error_ = error;
      });
  INFO("subscribing as " << entity << " at " << target << ": "
                         << started.ToString());
  REQUIRE(started.ok());
}

Collector::~Collector() { subscriber_->Stop(); }

std::vector<Collector::Received> Collector::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::vector<std::string> Collector::ids() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Received& r : received_) ids.push_back(r.alert.id());
  return ids;
}

size_t Collector::count(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const Received& r : received_) n += r.alert.id() == id ? 1 : 0;
  return n;
}

absl::Status Collector::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

uint64_t Collector::reconnects() const { return subscriber_->reconnects(); }

bool Collector::WaitFor(const std::vector<std::string>& ids,
                        absl::Duration deadline) const {
  const std::set<std::string> wanted(ids.begin(), ids.end());
  std::set<std::string> missing;
  const bool all = Eventually(
      [&] {
        missing = wanted;
        for (const std::string& id : this->ids()) missing.erase(id);
        return missing.empty();
      },
      deadline);
  if (!all) {
    UNSCOPED_INFO(missing.size()
                  << " of " << wanted.size() << " alerts never arrived, e.g. "
                  << *missing.begin());
  }
  return all;
}

bool Collector::WaitForCount(size_t n, absl::Duration deadline) const {
  const bool reached = Eventually([&] { return size() >= n; }, deadline);
  if (!reached) UNSCOPED_INFO("only " << size() << " of " << n << " arrived");
  return reached;
}

size_t Collector::size() const {
  absl::MutexLock lock(&mu_);
  return received_.size();
}

// ---- BackgroundPublisher
// -----------------------------------------------------

BackgroundPublisher::BackgroundPublisher(std::unique_ptr<Client> client,
                                         std::string prefix, std::string topic,
                                         absl::Duration pause, int max_alerts)
    : client_(std::move(client)),
      publisher_(client_->NewPublisher()),
      prefix_(std::move(prefix)),
      topic_(std::move(topic)),
      pause_(pause),
      max_alerts_(max_alerts) {
  thread_ = std::thread([this] { Run(); });
}

BackgroundPublisher::~BackgroundPublisher() { Stop(); }

void BackgroundPublisher::Run() {
  for (int i = 0; i < max_alerts_ && !stop_.load(); ++i) {
    const std::string id = absl::StrCat(prefix_, "-", i);
    absl::StatusOr<PublishReceipt> receipt =
        publisher_->Publish(MakeAlert(id, topic_));
    {
      absl::MutexLock lock(&mu_);
      if (receipt.ok()) {
        acknowledged_.push_back(id);
      } else {
        failures_.push_back(
            absl::StrCat(id, ": ", receipt.status().ToString()));
      }
    }
    absl::SleepFor(pause_);  // pacing, not a wait for anything
  }
}

void BackgroundPublisher::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> BackgroundPublisher::acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

size_t BackgroundPublisher::acknowledged_count() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_.size();
}

std::vector<std::string> BackgroundPublisher::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

bool BackgroundPublisher::WaitForMore(size_t n, absl::Duration deadline) const {
  const size_t target = acknowledged_count() + n;
  return Eventually([&] { return acknowledged_count() >= target; }, deadline);
}

// ---- RawLink
// -----------------------------------------------------------------

RawLink::RawLink(int federation_port, const TlsFiles& tls,
                 absl::Duration deadline)
    : stub_(internal::v1::FederationLink::NewStub(
          Channel(federation_port, tls))) {
  SetTestDeadline(context_, deadline);
  stream_ = stub_->Link(&context_);
}

RawLink::~RawLink() {
  if (!finished_) {
    context_.TryCancel();
    (void)Finish();  // cancelled; the status no longer matters
  }
}

bool RawLink::Write(const LinkFrame& frame) {
  return !ended_ && stream_->Write(frame);
}

std::optional<LinkFrame> RawLink::Read() {
  if (ended_) return std::nullopt;
  LinkFrame frame;
  if (!stream_->Read(&frame)) {
    ended_ = true;
    return std::nullopt;
  }
  if (frame.has_goodbye()) goodbye_ = frame.goodbye();
  return frame;
}

std::optional<internal::v1::LinkHello> RawLink::Handshake(
    const std::string& node_id) {
  LinkFrame hello;
  hello.mutable_hello()->set_min_version(1);
  hello.mutable_hello()->set_max_version(1);
  hello.mutable_hello()->set_node_id(node_id);
  hello.mutable_hello()->set_software_version("federation test RawLink");
  if (!Write(hello)) return std::nullopt;
  while (std::optional<LinkFrame> frame = Read()) {
    if (frame->has_hello()) return frame->hello();
  }
  return std::nullopt;
}

std::optional<internal::v1::LinkAck> RawLink::Offer(
    const internal::v1::LinkOffer& offer) {
  LinkFrame frame;
  *frame.mutable_offers()->add_offers() = offer;
  if (!Write(frame)) return std::nullopt;
  while (std::optional<LinkFrame> reply = Read()) {
    if (!reply->has_acks()) continue;
    for (const internal::v1::LinkAck& ack : reply->acks().acks()) {
      if (ack.id() == offer.id()) return ack;
    }
  }
  return std::nullopt;
}

grpc::Status RawLink::Finish() {
  if (finished_) return status_;
  stream_->WritesDone();
  while (Read().has_value()) {
  }
  status_ = stream_->Finish();
  finished_ = true;
  return status_;
}

// ---- FakeLinkServer
// ------------------------------------------------------------

class FakeLinkServer::Service final
    : public internal::v1::FederationLink::Service {
 public:
  Service(std::string hello_node_id, std::atomic<int>* streams)
      : hello_node_id_(std::move(hello_node_id)), streams_(streams) {}

  grpc::Status Link(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<LinkFrame, LinkFrame>* stream) override {
    streams_->fetch_add(1);
    LinkFrame hello;
    hello.mutable_hello()->set_min_version(1);
    hello.mutable_hello()->set_max_version(1);
    hello.mutable_hello()->set_node_id(hello_node_id_);
    hello.mutable_hello()->set_software_version("federation test impostor");
    stream->Write(hello);
    LinkFrame frame;
    while (stream->Read(&frame)) {
    }
    return grpc::Status::OK;
  }

 private:
  const std::string hello_node_id_;
  std::atomic<int>* const streams_;
};

FakeLinkServer::FakeLinkServer(const TlsFiles& tls, std::string hello_node_id)
    : service_(std::make_unique<Service>(std::move(hello_node_id), &streams_)) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ReadFileToString(tls.ca_file);
  options.pem_key_cert_pairs.push_back(
      {*ReadFileToString(tls.key_file), *ReadFileToString(tls.cert_file)});
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options),
                           &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  REQUIRE(server_ != nullptr);
  REQUIRE(port_ > 0);
}

FakeLinkServer::~FakeLinkServer() {
  // Streams still open are cancelled at the deadline.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server_->Wait();
}

std::string FakeLinkServer::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::vector<std::string> DerChain(const std::string& pem_chain_file) {
  absl::StatusOr<std::string> pem = ReadFileToString(pem_chain_file);
  INFO(pem.status().ToString());
  REQUIRE(pem.ok());
  std::vector<std::string> der;
  for (const crypto::X509Ptr& cert : crypto::ParseCertificates(*pem)) {
    unsigned char* out = nullptr;
    const int len = i2d_X509(cert.get(), &out);
    REQUIRE(len > 0);
    der.emplace_back(reinterpret_cast<const char*>(out), len);
    OPENSSL_free(out);
  }
  REQUIRE(!der.empty());
  return der;
}

}  // namespace ibsm::testing
