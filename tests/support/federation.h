// What the federation tests share (tests/federation/): several ibsm-broker
// child processes on loopback, linked over their federation ports with the
// dev PKI's node certificates, and the probes a test needs to watch them:
//
//   Federation fed;                       // policy: FederationPolicyPath()
//   fed.AddLink("CIV", "INTERPOL");       // CIV dials INTERPOL
//   fed.AddLink("MLI", "CIV", /*proxied=*/true);  // through a TcpProxy
//   fed.StartAll();                       // dialled nodes first
//   REQUIRE(fed.WaitLinkUp("CIV", "INTERPOL"));
//   Collector desk(fed.address("MLI"), "agency-MLI_police", {"border.>"});
//   ... publish at CIV with fed.Connect("CIV", "police") ...
//   REQUIRE(desk.WaitFor({"a-1"}));
//   REQUIRE(fed.WaitDrained());           // every outbox empty
//
// Links: a node that dials lists its acceptor with the acceptor's federation
// address (or that of the TcpProxy in front of it); the acceptor lists the
// dialler without an address. So a dialled node starts first, and a node
// restarted by Restart comes back on its previous ports (client and
// federation), where its dialers and clients find it again.
//
// Probes use raw gRPC (tests/support/raw_client.h) with the node's auditor
// certificate "auditor-<NODE>_audit" (ROLE_AUDITOR at its own node in the
// test policies), so they depend on neither the client library nor the CLI.
//
// Not thread-safe: one test thread drives a Federation. A Collector and a
// BackgroundPublisher are safe for concurrent use.
#ifndef IBSM_TESTS_SUPPORT_FEDERATION_H_
#define IBSM_TESTS_SUPPORT_FEDERATION_H_

#include <atomic>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ibsm/client.h"
#include "ibsm/internal/v1/config.pb.h"
#include "ibsm/internal/v1/federation.grpc.pb.h"
#include "ibsm/publisher.h"
#include "ibsm/subscriber.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"

namespace grpc {
class Server;
}

namespace ibsm::testing {

// A policy file of tests/federation/ in the source tree, e.g.
// "federation-policy.textproto" (the default: five nodes, INTERPOL the hub,
// NER not cleared for SECRET) or "loop-policy.textproto".
std::string FederationPolicyPath(
    const std::string& name = "federation-policy.textproto");

class Federation {
 public:
  // Every node uses `policy_file` unless SetPolicy gives it another.
  explicit Federation(std::string policy_file = FederationPolicyPath());
  ~Federation();  // SIGKILLs the nodes still running, then stops the proxies
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  // Declares node `id` (idempotent; AddLink declares its nodes too).
  void AddNode(const std::string& id);
  // Declares a link: `dialer` dials `acceptor`'s federation port, through a
  // TcpProxy (proxy()) when `proxied`. Before either node starts.
  void AddLink(const std::string& dialer, const std::string& acceptor,
               bool proxied = false);
  // The config `node` starts with; change it before Start (peers get their
  // dial address at Start). Has node_id, ports, TLS files, policy_file and a
  // federation block with short heartbeats and reconnect pauses.
  internal::v1::NodeConfig& config(const std::string& node);
  // `node`'s PeerConfig for `peer` (declared by AddLink), to set bounds.
  internal::v1::PeerConfig& peer_config(const std::string& node,
                                        const std::string& peer);
  // Gives `node` its own policy file (before Start).
  void SetPolicy(const std::string& node, const std::string& policy_file);

  // Starts every declared node that has not started yet, each after the
  // nodes it dials. Fails the test when the links leave no such order.
  void StartAll();
  // Starts `node`; the nodes it dials must have started at least once.
  void Start(const std::string& node);
  // Sends `signal` and waits for the node to exit; returns the exit code
  // (128 + signal for a signal), -1 when it would not exit.
  int Stop(const std::string& node, int signal = SIGTERM);
  // Starts a stopped node again with the same data and on the same ports.
  void Restart(const std::string& node);
  bool running(const std::string& node) const;

  BrokerProcess& process(const std::string& node);
  int port(const std::string& node) const;             // the client port
  std::string address(const std::string& node) const;  // "127.0.0.1:port"
  int federation_port(const std::string& node) const;
  // The proxy of a proxied link (fails the test for another link).
  TcpProxy& proxy(const std::string& dialer, const std::string& acceptor);

  // A raw mTLS channel to `node` with its auditor's certificate.
  std::shared_ptr<grpc::Channel> AuditorChannel(const std::string& node);
  // A client of agency `agency` ("police") of `node`; fails the test when it
  // cannot connect.
  std::unique_ptr<Client> Connect(const std::string& node,
                                  const std::string& agency = "police");

  // Node.GetLinks at `node`; `*status` gets the call status (the test fails
  // on an error when `status` is null).
  v1::Links Links(const std::string& node, grpc::Status* status = nullptr);
  // `node`'s link to `peer`, if GetLinks lists one.
  std::optional<v1::LinkInfo> Link(const std::string& node,
                                   const std::string& peer);
  // Waits until `node` reports its link to `peer` UP.
  bool WaitLinkUp(const std::string& node, const std::string& peer,
                  absl::Duration deadline = kEventuallyDeadline);
  // Waits until every declared link is UP at both of its (running) ends.
  bool WaitAllLinksUp(absl::Duration deadline = kEventuallyDeadline);
  // Waits until every running node reports every link with an empty
  // backlog and nothing in flight: nothing more is on its way anywhere, so
  // what each node stored is final. Nodes not running are skipped, and so
  // are links towards them (their backlog waits, by design).
  bool WaitDrained(absl::Duration deadline = kEventuallyDeadline);

  // Audit records at `node` about alert `alert_id` (empty: any), of
  // `action` (unspecified: any) and `decision`.
  std::vector<v1::AuditRecord> Audit(
      const std::string& node, const std::string& alert_id,
      v1::AuditAction action = v1::AUDIT_ACTION_UNSPECIFIED,
      v1::AuditQuery::Decision decision = v1::AuditQuery::DECISION_ANY);
  // What `node`'s log holds, in sequence order (Auditor.ExportAlerts), the
  // absent sequences left out.
  std::vector<v1::StoredAlertDigest> StoredAlerts(const std::string& node);
  // The ids of StoredAlerts, in sequence order.
  std::vector<std::string> StoredAlertIds(const std::string& node);

 private:
  struct Node;
  struct LinkDecl {
    std::string dialer;
    std::string acceptor;
    bool proxied;
  };
  Node& node(const std::string& id);
  const Node& node(const std::string& id) const;
  void Launch(Node& n);

  const std::string policy_file_;
  TempDir dir_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::vector<LinkDecl> links_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<TcpProxy>>
      proxies_;
};

// How many times each id occurs in `ids`.
std::map<std::string, int> CountIds(const std::vector<std::string>& ids);

// One agency's client-library Subscriber (push style, acknowledging each
// delivery once the Collector has recorded it), collecting what the
// application is handed: ids, sequences and order.
class Collector {
 public:
  struct Received {
    uint64_t sequence;
    v1::Alert alert;
  };
  // Connects to `target` as PKI `entity` and starts a subscription on
  // `topics`; durable under `durable_name` when not empty, from the
  // earliest alert in the log. Fails the test when it cannot start.
  Collector(const std::string& target, const std::string& entity,
            std::vector<std::string> topics,
            const std::string& durable_name = "");
  ~Collector();  // stops the subscription
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  std::vector<Received> received() const;
  std::vector<std::string> ids() const;  // in the order handed over
  size_t count(const std::string& id) const;
  // The error that ended the subscription, if it ended.
  absl::Status error() const;
  uint64_t reconnects() const;
  // Waits until every one of `ids` has been handed over.
  bool WaitFor(const std::vector<std::string>& ids,
               absl::Duration deadline = kEventuallyDeadline) const;
  // Waits until at least `n` deliveries have been handed over in all.
  bool WaitForCount(size_t n,
                    absl::Duration deadline = kEventuallyDeadline) const;
  size_t size() const;

 private:
  std::unique_ptr<Client> client_;
  std::unique_ptr<Subscriber> subscriber_;
  mutable absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Publishes alerts "<prefix>-0", "<prefix>-1", ... (MakeAlert on `topic`)
// one after another from its own thread, with `pause` between them, until
// Stop or `max_alerts`; records which ones the node acknowledged.
class BackgroundPublisher {
 public:
  BackgroundPublisher(std::unique_ptr<Client> client, std::string prefix,
                      std::string topic = "border.incident",
                      absl::Duration pause = absl::Milliseconds(20),
                      int max_alerts = 2000);
  ~BackgroundPublisher();  // Stop()
  BackgroundPublisher(const BackgroundPublisher&) = delete;
  BackgroundPublisher& operator=(const BackgroundPublisher&) = delete;

  // Stops after the publish in progress and joins the thread. Idempotent.
  void Stop();
  // Ids the node acknowledged (stored), in order.
  std::vector<std::string> acknowledged() const;
  size_t acknowledged_count() const;
  // Publishes that failed, with their errors.
  std::vector<std::string> failures() const;
  // Waits until `n` more alerts than now are acknowledged.
  bool WaitForMore(size_t n,
                   absl::Duration deadline = kEventuallyDeadline) const;

 private:
  void Run();

  std::unique_ptr<Client> client_;
  std::unique_ptr<Publisher> publisher_;
  const std::string prefix_;
  const std::string topic_;
  const absl::Duration pause_;
  const int max_alerts_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// One FederationLink stream dialled by the test as a peer node would dial
// it, presenting any certificate: for what a node does with an impostor or
// a peer that sends forged alerts. Each call blocks for at most the
// stream's deadline.
class RawLink {
 public:
  RawLink(int federation_port, const TlsFiles& tls,
          absl::Duration deadline = absl::Seconds(60));
  ~RawLink();
  RawLink(const RawLink&) = delete;
  RawLink& operator=(const RawLink&) = delete;

  bool Write(const internal::v1::LinkFrame& frame);
  // The next frame; std::nullopt once the stream ended.
  std::optional<internal::v1::LinkFrame> Read();
  // Sends a LinkHello (versions 1..1) as `node_id` and reads until the
  // node's Hello; std::nullopt when the stream ended first (the Goodbye, if
  // one came, is in goodbye()).
  std::optional<internal::v1::LinkHello> Handshake(const std::string& node_id);
  // Sends one offer and reads until its ack (heartbeats skipped);
  // std::nullopt when the stream ended first.
  std::optional<internal::v1::LinkAck> Offer(
      const internal::v1::LinkOffer& offer);
  // Half-closes, drains and returns the call's final status.
  grpc::Status Finish();
  // The Goodbye the node sent, if any.
  const std::optional<internal::v1::LinkGoodbye>& goodbye() const {
    return goodbye_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<internal::v1::FederationLink::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<internal::v1::LinkFrame,
                                           internal::v1::LinkFrame>>
      stream_;
  std::optional<internal::v1::LinkGoodbye> goodbye_;
  bool ended_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

// A FederationLink server on 127.0.0.1:0 presenting `tls`'s certificate
// (and asking for a client certificate under the PKI root): an acceptor
// that is not the node a dialler expects. It answers each stream with a
// Hello naming `hello_node_id` and then reads until the dialler closes.
// Thread-safe.
class FakeLinkServer {
 public:
  FakeLinkServer(const TlsFiles& tls, std::string hello_node_id);
  ~FakeLinkServer();
  FakeLinkServer(const FakeLinkServer&) = delete;
  FakeLinkServer& operator=(const FakeLinkServer&) = delete;

  int port() const { return port_; }
  std::string address() const;
  // Link streams that reached the service (past TLS and HTTP/2).
  int streams() const { return streams_.load(); }

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<int> streams_{0};
};

// The DER certificates of a PEM chain file (leaf first), as an alert's
// signing_chain carries them.
std::vector<std::string> DerChain(const std::string& pem_chain_file);

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_FEDERATION_H_
