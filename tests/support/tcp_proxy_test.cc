// TcpProxy between a client socket and a tiny echo server on loopback: the
// bytes each fault lets through, what it does to connections, the counters.
// No assertion about elapsed time; every wait has a deadline.
#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/support/eventually.h"

namespace ibsm::testing {
namespace {

// Echoes every byte back on each connection, one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address),
                 sizeof address) == 0);
    REQUIRE(listen(listen_fd_, 16) == 0);
    REQUIRE(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address),
                        &length) == 0);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~EchoServer() {
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept(2)
    acceptor_.join();
    {
      absl::MutexLock lock(&mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);  // wakes recv(2)
    }
    for (auto& t : echoers_) t.join();
    close(listen_fd_);
    for (int fd : fds_) close(fd);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  void Accept() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      absl::MutexLock lock(&mu_);
      fds_.push_back(fd);
      echoers_.emplace_back([fd] {
        char buffer[16 * 1024];
        for (;;) {
          ssize_t n = recv(fd, buffer, sizeof buffer, 0);
          if (n <= 0) return;
          if (send(fd, buffer, n, MSG_NOSIGNAL) != n) return;
        }
      });
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> echoers_;  // joined after acceptor_
};

std::unique_ptr<TcpProxy> StartProxy(const std::string& target) {
  auto proxy = TcpProxy::Start(target);
  INFO(proxy.status().ToString());
  REQUIRE(proxy.ok());
  return *std::move(proxy);
}

// A blocking client socket, closed when it goes.
class ClientSocket {
 public:
  explicit ClientSocket(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&address),
                    sizeof address) == 0);
  }
  ~ClientSocket() { close(fd_); }
  ClientSocket(const ClientSocket&) = delete;
  ClientSocket& operator=(const ClientSocket&) = delete;

  bool SendAll(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n =
          send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += n;
    }
    return true;
  }
  // Whether a byte (or end-of-stream, or an error) can be read within
  // `wait`.
  bool Readable(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) == 1;
  }
  // Reads until `n` bytes, end-of-stream, an error or the deadline.
  std::string Read(size_t n, absl::Duration deadline = kEventuallyDeadline) {
    std::string bytes;
    const absl::Time until = absl::Now() + deadline;
    char buffer[16 * 1024];
    while (bytes.size() < n && absl::Now() < until) {
      if (!Readable(std::min(until - absl::Now(), absl::Seconds(1)))) continue;
      ssize_t got =
          recv(fd_, buffer, std::min(sizeof buffer, n - bytes.size()), 0);
      if (got <= 0) break;
      bytes.append(buffer, got);
    }
    return bytes;
  }
  // Sends `bytes` from another thread while reading as many back.
  std::string RoundTrip(const std::string& bytes) {
    auto sent = std::async(std::launch::async, [&] { return SendAll(bytes); });
    std::string echoed = Read(bytes.size());
    CHECK(sent.get());
    return echoed;
  }
  // The outcome of the next recv(2) (waited for up to the deadline): 0 for
  // end-of-stream, -errno for an error, or the count of bytes read.
  int NextRead() {
    if (!Readable(kEventuallyDeadline)) return -ETIMEDOUT;
    char byte;
    ssize_t n = recv(fd_, &byte, 1, 0);
    return n < 0 ? -errno : static_cast<int>(n);
  }

 private:
  int fd_ = -1;
};

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// The client sees the connection ended: reset, or (if the RST raced with
// nothing to read) end-of-stream.
bool Ended(int next_read) { return next_read == -ECONNRESET || next_read == 0; }

TEST_CASE("TcpProxy: Pass forwards every byte both ways, intact") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  ClientSocket client(proxy->port());
  const std::string bytes = RandomBytes(2 * 1024 * 1024, 1);
  CHECK(client.RoundTrip(bytes) == bytes);
  CHECK(proxy->bytes_to_target() == bytes.size());
  // Counted just after the send, so perhaps after the client read it.
  CHECK(Eventually([&] { return proxy->bytes_to_client() == bytes.size(); }));
  CHECK(proxy->connections_accepted() == 1);
  CHECK(proxy->resets() == 0);
}

TEST_CASE("TcpProxy: Stall holds bytes, Pass delivers them all") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  ClientSocket client(proxy->port());
  CHECK(client.RoundTrip("warm") == "warm");

  proxy->Stall();
  const std::string bytes = RandomBytes(32 * 1024, 2);
  REQUIRE(client.SendAll(bytes));
  // Nothing comes back while stalled (a short look, not a timing claim).
  CHECK_FALSE(client.Readable(absl::Milliseconds(200)));
  CHECK(proxy->bytes_to_target() == 4);
  CHECK(proxy->bytes_to_client() == 4);

  proxy->Pass();
  CHECK(client.Read(bytes.size()) == bytes);
  CHECK(proxy->bytes_to_target() == 4 + bytes.size());
  CHECK(proxy->resets() == 0);
}

TEST_CASE("TcpProxy: Drop discards bytes, Pass forwards what comes after") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  ClientSocket client(proxy->port());
  CHECK(client.RoundTrip("warm") == "warm");

  proxy->Drop();
  REQUIRE(client.SendAll(std::string(1000, 'x')));
  REQUIRE(Eventually([&] { return proxy->bytes_dropped() >= 1000; }));
  CHECK(proxy->bytes_dropped() == 1000);
  CHECK(proxy->bytes_to_target() == 4);

  proxy->Pass();
  CHECK(client.RoundTrip("after") == "after");  // no 'x' before it
  CHECK(proxy->bytes_to_target() == 4 + 5);
}

TEST_CASE("TcpProxy: ResetAll aborts current connections, new ones work") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  ClientSocket first(proxy->port());
  ClientSocket second(proxy->port());
  CHECK(first.RoundTrip("one") == "one");
  CHECK(second.RoundTrip("two") == "two");

  proxy->ResetAll();
  CHECK(proxy->resets() == 2);
  const int first_read = first.NextRead();
  INFO("first read " << first_read);
  CHECK(Ended(first_read));
  CHECK(Ended(second.NextRead()));

  ClientSocket third(proxy->port());
  CHECK(third.RoundTrip("three") == "three");
  CHECK(proxy->connections_accepted() == 3);
}

TEST_CASE("TcpProxy: RefuseNew resets new connections, not current ones") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  ClientSocket current(proxy->port());
  CHECK(current.RoundTrip("before") == "before");

  proxy->RefuseNew(true);
  {
    ClientSocket refused(proxy->port());  // the kernel completes the handshake
    const int next_read = refused.NextRead();
    INFO("next read " << next_read);
    CHECK(Ended(next_read));
  }
  CHECK(proxy->connections_accepted() == 2);
  CHECK(proxy->resets() == 1);
  CHECK(current.RoundTrip("still") == "still");

  proxy->RefuseNew(false);
  ClientSocket later(proxy->port());
  CHECK(later.RoundTrip("later") == "later");
}

TEST_CASE("TcpProxy: an unreachable target resets the client") {
  int port;
  {
    EchoServer gone;  // a port that nothing listens on afterwards
    port = std::stoi(gone.address().substr(gone.address().rfind(':') + 1));
  }
  auto proxy = StartProxy(absl::StrCat("127.0.0.1:", port));
  ClientSocket client(proxy->port());
  CHECK(Ended(client.NextRead()));
  CHECK(proxy->resets() == 1);
}

TEST_CASE("TcpProxy: delay and bandwidth limits deliver every byte intact") {
  EchoServer echo;
  auto proxy = StartProxy(echo.address());
  proxy->SetDelay(absl::Milliseconds(2));
  proxy->SetBandwidth(512 * 1024);
  ClientSocket client(proxy->port());
  const std::string bytes = RandomBytes(192 * 1024, 3);
  CHECK(client.RoundTrip(bytes) == bytes);
  CHECK(proxy->bytes_to_target() == bytes.size());
  // Counted just after the send, so perhaps after the client read it.
  CHECK(Eventually([&] { return proxy->bytes_to_client() == bytes.size(); }));

  // Lifted while bytes are in flight: still all of them, in order.
  const std::string more = RandomBytes(64 * 1024, 4);
  auto echoed =
      std::async(std::launch::async, [&] { return client.RoundTrip(more); });
  proxy->SetBandwidth(0);
  proxy->SetDelay(absl::ZeroDuration());
  CHECK(echoed.get() == more);
}

TEST_CASE("TcpProxy: a target that is not IPv4:PORT is refused") {
  CHECK(TcpProxy::Start("localhost:80").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(TcpProxy::Start("127.0.0.1").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ibsm::testing
