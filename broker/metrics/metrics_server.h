// The node's metrics listener (config `metrics`): a small HTTP/1.1 server
// (cpp-httplib, Debian's libcpp-httplib-dev) on its own address, loopback by
// default, with optional mutual TLS. Two paths, GET only:
//   /metrics  the Prometheus text format (version 0.0.4) that `metrics`
//             returns at each scrape;
//   /healthz  200 "SERVING" or 503 "NOT_SERVING: reason" from `health`,
//             for probes that cannot present a client certificate to the
//             client port.
// Anything else is 404. Requests are bounded (no body, 5 s to send one,
// two worker threads), so a slow or hostile client cannot hold the node's
// memory or threads. Start/Stop are for one controlling thread; the
// handlers run on the server's threads.
#ifndef IBSM_BROKER_METRICS_METRICS_SERVER_H_
#define IBSM_BROKER_METRICS_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace ibsm::broker {

class HealthState;

struct MetricsServerOptions {
  std::string listen_address;  // "host:port"; port 0 picks one
  // Mutual TLS: all three set, or none (plain HTTP).
  std::string cert_file;  // the node's certificate chain
  std::string key_file;
  std::string client_ca_file;  // client certificates must chain to it
};

class MetricsServer {
 public:
  // Binds and starts serving. `metrics` is called per scrape on a server
  // thread; `health` (may be null) must outlive the server. FAILED_PRECONDITION
  // naming the address (or the TLS files) when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsServerOptions& options, std::function<std::string()> metrics,
      const HealthState* health);
  ~MetricsServer();  // Stop()s
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  // Lets the request in progress end and stops. Idempotent.
  void Stop();

  // Until set, /metrics answers 503 (the node is still starting).
  void SetMetrics(std::function<std::string()> metrics);

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  struct Handlers;
  std::shared_ptr<Handlers> handlers_;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_METRICS_METRICS_SERVER_H_
