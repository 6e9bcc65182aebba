#include "metrics/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "metrics/health.h"

namespace ibsm::broker {

struct MetricsServer::Handlers {
  absl::Mutex mu;
  std::function<std::string()> metrics ABSL_GUARDED_BY(mu);
  const HealthState* health = nullptr;
};

namespace {

// "host:port", "[v6]:port"; the port may be 0.
absl::Status SplitAddress(const std::string& address, std::string* host,
                          int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen_address '", address,
                     "' must be host:port, e.g. 127.0.0.1:9464"));
  }
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.listen_address '", address, "' has no valid port"));
  }
  return absl::OkStatus();
}

// httplib sets SO_REUSEPORT too, which would let a second broker bind the
// same port and take half the scrapes; the node's gRPC ports refuse that
// as well.
void ReuseAddressOnly(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsServerOptions& options, std::function<std::string()> metrics,
    const HealthState* health) {
  std::string host;
  int port = 0;
  if (absl::Status split = SplitAddress(options.listen_address, &host, &port);
      !split.ok()) {
    return absl::FailedPreconditionError(split.message());
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  if (!options.client_ca_file.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(
        options.cert_file.c_str(), options.key_file.c_str(),
        options.client_ca_file.c_str());
    if (!tls->is_valid()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "metrics: cannot set up TLS with ", options.cert_file, ", ",
          options.key_file, " and client CA file ", options.client_ca_file));
    }
    server->server_ = std::move(tls);
  } else {
    server->server_ = std::make_unique<httplib::Server>();
  }
  auto handlers = std::make_shared<Handlers>();
  {
    absl::MutexLock lock(&handlers->mu);
    handlers->metrics = std::move(metrics);
  }
  handlers->health = health;
  server->handlers_ = handlers;

  httplib::Server& http = *server->server_;
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.set_socket_options(ReuseAddressOnly);
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_max_count(100);
  http.set_payload_max_length(1024);
  http.Get("/metrics", [handlers](const httplib::Request&,
                                  httplib::Response& response) {
    std::function<std::string()> collect;
    {
      absl::MutexLock lock(&handlers->mu);
      collect = handlers->metrics;
    }
    if (!collect) {
      response.status = 503;
      response.set_content("the node is starting\n", "text/plain");
      return;
    }
    response.set_content(collect(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [handlers](const httplib::Request&,
                                  httplib::Response& response) {
    const std::string reason = handlers->health == nullptr
                                   ? std::string("no health state")
                                   : handlers->health->NotServingReason();
    if (reason.empty()) {
      response.set_content("SERVING\n", "text/plain");
    } else {
      response.status = 503;
      response.set_content(absl::StrCat("NOT_SERVING: ", reason, "\n"),
                           "text/plain");
    }
  });

  if (port == 0) {
    server->port_ = http.bind_to_any_port(host);
  } else if (http.bind_to_port(host, port)) {
    server->port_ = port;
  }
  if (server->port_ <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on the metrics address ", options.listen_address,
        " (address in use or not available)"));
  }
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() before the loop runs would be lost and Stop() would wait forever.
  while (!http.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

void MetricsServer::SetMetrics(std::function<std::string()> metrics) {
  absl::MutexLock lock(&handlers_->mu);
  handlers_->metrics = std::move(metrics);
}

void MetricsServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

MetricsServer::~MetricsServer() { Stop(); }

}  // namespace ibsm::broker
