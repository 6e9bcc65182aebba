// The entry point of the IBSM Exchange client library: a Client is one
// mutual-TLS connection (gRPC channel) to the agency's own broker node, from
// which Publishers and Subscribers are made.
//
//   ibsm::ClientOptions options;
//   options.target = "ibsm.civ.example:7443";
//   options.ca_file = "ca.pem";
//   options.cert_file = "agency-CIV_police-chain.pem";
//   options.key_file = "agency-CIV_police.key";
//   IBSM_ASSIGN_OR_RETURN(std::unique_ptr<ibsm::Client> client,
//                    ibsm::Client::Connect(options));
//   std::unique_ptr<ibsm::Publisher> publisher = client->NewPublisher();
//
// The agency's identity is its certificate (URI SAN
// spiffe://ibsm/<NODE>/<AGENCY>); nothing in a request names the caller.
// Message types (v1::Alert, v1::Delivery, v1::NodeInfo) come from
// "ibsm/v1/broker.pb.h"; "ibsm/ibsm.h" includes everything at once.
//
// A Client is safe for concurrent use by multiple threads.
#ifndef IBSM_CLIENT_H_
#define IBSM_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ibsm/clock.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace ibsm {

namespace v1 {
class NodeInfo;
}  // namespace v1
namespace internal {
struct AlertSigning;
}  // namespace internal

class Publisher;
class Subscriber;
struct PublisherOptions;
struct SubscribeOptions;

// Exponential backoff with jitter between reconnection or retry attempts:
// the n-th wait is min(max, initial * multiplier^n), randomised by
// +/- jitter (a fraction, 0.2 = 20%).
struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(200);
  absl::Duration max = absl::Seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;
  // Measures the waits (tests pass a FakeClock); must outlive every Client,
  // Publisher and Subscriber using these options.
  Clock* clock = RealClock();
};

struct ClientOptions {
  // "host:port" of the agency's broker node (any gRPC target URI works).
  std::string target;
  // PEM files: the IBSM root CA, the agency certificate (with its chain) and
  // its private key.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Name expected in the node's certificate when it differs from the host in
  // `target` (e.g. connecting by IP to a certificate for "node-civ").
  std::string tls_server_name;
  // The node this client expects to reach, e.g. "CIV": the server's
  // certificate must carry spiffe://ibsm/CIV, issued by CIV's intermediate
  // CA. Empty accepts any node identity bound to its issuer (never an
  // agency's certificate); agencies should set it.
  std::string server_node;

  // How long Connect waits for the first connection; zero connects lazily
  // (Connect then never fails for network reasons).
  absl::Duration connect_timeout = absl::Seconds(10);
  // Deadline of one unary call attempt (Publish, NodeInfo).
  absl::Duration call_timeout = absl::Seconds(10);
  // Total time a blocking call may spend, retries included.
  absl::Duration retry_timeout = absl::Seconds(60);
  BackoffOptions backoff;
  // HTTP/2 keepalive ping interval while a call (e.g. a subscription) is
  // open: a connection whose pings go unanswered for 20 s is closed and the
  // call fails, so a subscription on a dead link (node gone without closing
  // the connection, satellite and NAT links) is reopened instead of waiting
  // forever. IBSM nodes accept pings every 10 s or more; plain gRPC servers
  // refuse them more often than every 5 minutes unless configured to allow
  // it. Zero disables keepalive.
  absl::Duration keepalive_time = absl::Seconds(30);
  // Sign every published alert as its originator (docs/signature-format.md)
  // with the key in key_file and the chain in cert_file, both read once by
  // Connect: a key that cannot sign (not EC or RSA, or not the certificate's
  // key) or a certificate without a spiffe://ibsm/NODE/agency identity is a
  // Connect error. A federated node refuses unsigned alerts; turn this off
  // only for a single development node, or for a client that never
  // publishes.
  bool sign_alerts = true;
};

class Client {
 public:
  // Checks the TLS files (clear error when a file is missing, unreadable or
  // the key does not match the certificate), opens the channel and, unless
  // options.connect_timeout is zero, waits until the node answers.
  // UNAVAILABLE with gRPC's reason when it cannot be reached in time.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // The node's description, including the identity it read from our
  // certificate. Retried on UNAVAILABLE/DEADLINE_EXCEEDED within
  // options.retry_timeout.
  absl::StatusOr<v1::NodeInfo> NodeInfo();

  // A new Publisher on this connection. The Publisher shares the channel, so
  // it may outlive the Client. When options.spool_dir cannot be opened, the
  // Publisher refuses every alert with that error; OpenPublisher reports it
  // at once instead.
  std::unique_ptr<Publisher> NewPublisher();
  std::unique_ptr<Publisher> NewPublisher(const PublisherOptions& options);
  // The same, failing when the spool cannot be opened: FAILED_PRECONDITION
  // when another process (or Publisher) has the directory, or it exists and
  // is not a spool; DATA_LOSS for an unreadable record; the file system's
  // error otherwise. Alerts found in the spool are queued for sending.
  absl::StatusOr<std::unique_ptr<Publisher>> OpenPublisher(
      const PublisherOptions& options);

  // A new Subscriber on this connection; INVALID_ARGUMENT when a topic
  // pattern or an option is invalid. Nothing is sent until the Subscriber is
  // started (Subscriber::Start or Subscriber::Next). It shares the channel,
  // so it may outlive the Client.
  absl::StatusOr<std::unique_ptr<Subscriber>> NewSubscriber(
      const SubscribeOptions& options);

  const ClientOptions& options() const { return options_; }
  // The agency id read from our certificate, e.g. "CIV/police" (empty when
  // the certificate has no spiffe://ibsm/ URI).
  const std::string& identity() const { return identity_; }
  // The underlying channel, for calling other IBSM services directly.
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  Client(ClientOptions options, std::string identity,
         std::shared_ptr<grpc::Channel> channel,
         std::shared_ptr<const internal::AlertSigning> signing);

  const ClientOptions options_;
  const std::string identity_;
  const std::shared_ptr<grpc::Channel> channel_;
  // The key and chain publishers sign with; null without sign_alerts.
  const std::shared_ptr<const internal::AlertSigning> signing_;
};

}  // namespace ibsm

#endif  // IBSM_CLIENT_H_
