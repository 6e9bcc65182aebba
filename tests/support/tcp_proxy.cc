#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ibsm::testing {
namespace {

// The most bytes one recv(2) takes.
constexpr size_t kReadBytes = 64 * 1024;

absl::Status ErrnoStatus(const char* what) {
  return absl::InternalError(
      absl::StrCat("TcpProxy: ", what, ": ", strerror(errno)));
}

void SetNoDelay(int fd) {
  int one = 1;
  // Best effort: Nagle only adds latency to a test, never changes bytes.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// RST instead of FIN: a zero linger time makes close(2) abort.
void CloseWithReset(int fd) {
  linger no_linger{1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger);
  close(fd);
}

bool WouldBlock(int error) {
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

struct Chunk {
  std::string bytes;
  size_t sent = 0;
  absl::Time ready;  // not forwarded before (SetDelay)
};

// One direction of a connection: bytes read from `from`, written to `to`.
struct Direction {
  int from = -1;
  int to = -1;
  std::atomic<uint64_t>* forwarded = nullptr;
  std::deque<Chunk> chunks;
  size_t buffered = 0;  // unsent bytes in `chunks`
  bool read_eof = false;
  bool write_shut = false;
  absl::Time next_send = absl::InfinitePast();  // SetBandwidth

  void Clear() {
    chunks.clear();
    buffered = 0;
  }
  // When the front chunk may be sent, or InfiniteFuture if nothing is queued.
  absl::Time SendableAt() const {
    if (chunks.empty()) return absl::InfiniteFuture();
    return std::max(chunks.front().ready, next_send);
  }
};

}  // namespace

struct TcpProxy::Connection {
  int client_fd;
  int target_fd;
  Direction to_target;
  Direction to_client;
  bool failed = false;
};

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(
    const std::string& target) {
  const size_t colon = target.rfind(':');
  in_addr target_ip{};
  int target_port = 0;
  if (colon == std::string::npos ||
      inet_pton(AF_INET, target.substr(0, colon).c_str(), &target_ip) != 1 ||
      !absl::SimpleAtoi(target.substr(colon + 1), &target_port) ||
      target_port <= 0 || target_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("TcpProxy: target is not IPv4:PORT: ", target));
  }
  int listen_fd =
      socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return ErrnoStatus("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) !=
          0 ||
      listen(listen_fd, 128) != 0 ||
      getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length) !=
          0) {
    absl::Status status = ErrnoStatus("listen on 127.0.0.1:0");
    close(listen_fd);
    return status;
  }
  int wake[2];
  if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    absl::Status status = ErrnoStatus("pipe2");
    close(listen_fd);
    return status;
  }
  std::unique_ptr<TcpProxy> proxy(
      new TcpProxy(listen_fd, ntohs(address.sin_port), wake[0], wake[1],
                   target_ip.s_addr, target_port));
  proxy->thread_ = std::thread(&TcpProxy::Run, proxy.get());
  return proxy;
}

TcpProxy::TcpProxy(int listen_fd, int port, int wake_read_fd, int wake_write_fd,
                   uint32_t target_ip, int target_port)
    : listen_fd_(listen_fd),
      port_(port),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      target_ip_(target_ip),
      target_port_(target_port) {}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    settings_.stop = true;
  }
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
}

std::string TcpProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void TcpProxy::Wake() {
  // A full pipe already holds a wake-up, so EAGAIN loses nothing.
  (void)!write(wake_write_fd_, "w", 1);
}

void TcpProxy::Pass() {
  {
    absl::MutexLock lock(&mu_);
    settings_.mode = Mode::kPass;
  }
  Wake();
}

void TcpProxy::Stall() {
  {
    absl::MutexLock lock(&mu_);
    settings_.mode = Mode::kStall;
  }
  Wake();
}

void TcpProxy::Drop() {
  {
    absl::MutexLock lock(&mu_);
    settings_.mode = Mode::kDrop;
  }
  Wake();
}

void TcpProxy::RefuseNew(bool refuse) {
  {
    absl::MutexLock lock(&mu_);
    settings_.refuse_new = refuse;
  }
  Wake();
}

void TcpProxy::SetDelay(absl::Duration delay) {
  {
    absl::MutexLock lock(&mu_);
    settings_.delay = std::max(delay, absl::ZeroDuration());
  }
  Wake();
}

void TcpProxy::SetBandwidth(uint64_t bytes_per_second) {
  {
    absl::MutexLock lock(&mu_);
    settings_.bytes_per_second = bytes_per_second;
  }
  Wake();
}

void TcpProxy::ResetAll() {
  absl::MutexLock lock(&mu_);
  const uint64_t request = ++settings_.reset_requested;
  Wake();
  while (reset_done_ < request) reset_done_changed_.Wait(&mu_);
}

void TcpProxy::Run() {
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<pollfd> fds;
  std::vector<char> buffer(kReadBytes);

  auto reset = [&](Connection& c) {
    resets_.fetch_add(1);  // before the RST, which a test may be waiting for
    CloseWithReset(c.client_fd);
    CloseWithReset(c.target_fd);
  };
  auto read_into = [&](Direction& d, const Settings& s, absl::Time now,
                       Connection& c) {
    const size_t room =
        s.mode == Mode::kDrop
            ? buffer.size()
            : std::min(buffer.size(), kBufferBytes - d.buffered);
    if (room == 0) return;
    ssize_t n = recv(d.from, buffer.data(), room, 0);
    if (n > 0) {
      if (s.mode == Mode::kDrop) {
        bytes_dropped_.fetch_add(n);
      } else {
        d.chunks.push_back(
            Chunk{std::string(buffer.data(), n), 0, now + s.delay});
        d.buffered += n;
      }
    } else if (n == 0) {
      d.read_eof = true;
    } else if (!WouldBlock(errno)) {
      c.failed = true;
    }
  };
  auto write_from = [&](Direction& d, const Settings& s, absl::Time now,
                        Connection& c) {
    if (d.SendableAt() > now) return;
    Chunk& chunk = d.chunks.front();
    size_t length = chunk.bytes.size() - chunk.sent;
    if (s.bytes_per_second > 0) {
      // Sends in slices of a twentieth of a second's worth.
      length = std::min<uint64_t>(
          length, std::max<uint64_t>(1, s.bytes_per_second / 20));
    }
    ssize_t n =
        send(d.to, chunk.bytes.data() + chunk.sent, length, MSG_NOSIGNAL);
    if (n > 0) {
      chunk.sent += n;
      d.buffered -= n;
      d.forwarded->fetch_add(n);
      if (chunk.sent == chunk.bytes.size()) d.chunks.pop_front();
      if (s.bytes_per_second > 0) {
        d.next_send =
            std::max(d.next_send, now) +
            absl::Seconds(static_cast<double>(n) / s.bytes_per_second);
      }
    } else if (n < 0 && !WouldBlock(errno)) {
      c.failed = true;
    }
  };
  auto wants_read = [](const Direction& d, const Settings& s) {
    return s.mode != Mode::kStall && !d.read_eof &&
           (s.mode == Mode::kDrop || d.buffered < kBufferBytes);
  };

  for (;;) {
    Settings s;
    uint64_t reset_done;
    {
      absl::MutexLock lock(&mu_);
      s = settings_;
      reset_done = reset_done_;
    }
    if (s.stop) break;
    if (s.reset_requested > reset_done) {
      for (auto& c : connections) reset(*c);
      connections.clear();
      absl::MutexLock lock(&mu_);
      reset_done_ = s.reset_requested;
      reset_done_changed_.SignalAll();
    }

    // What to wait for.
    absl::Time now = absl::Now();
    absl::Time wake_at = absl::InfiniteFuture();
    fds.clear();
    fds.push_back({wake_read_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : connections) {
      if (s.mode == Mode::kDrop) {
        c->to_target.Clear();
        c->to_client.Clear();
      }
      short client_events = 0;
      short target_events = 0;
      if (wants_read(c->to_target, s)) client_events |= POLLIN;
      if (wants_read(c->to_client, s)) target_events |= POLLIN;
      if (s.mode == Mode::kPass) {
        for (Direction* d : {&c->to_target, &c->to_client}) {
          const absl::Time at = d->SendableAt();
          if (at <= now) {
            (d == &c->to_target ? target_events : client_events) |= POLLOUT;
          } else {
            wake_at = std::min(wake_at, at);
          }
        }
      }
      // A negative fd is skipped by poll(2): a socket we wait nothing from
      // must not wake us with POLLHUP over and over.
      fds.push_back({client_events ? c->client_fd : -1, client_events, 0});
      fds.push_back({target_events ? c->target_fd : -1, target_events, 0});
    }
    int timeout_ms = -1;
    if (wake_at != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(wake_at - now) + 1, 1, 1000));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      // Cannot happen with valid fds; never spin on it.
      absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (read(wake_read_fd_, drain, sizeof drain) > 0) {
      }
    }

    // The settings again: a setter that returned while we polled must
    // govern what happens next (a test sends right after Stall(), or
    // connects right after RefuseNew(true)). Whatever the poll reported is
    // acted on only if the fresh settings still allow it.
    {
      absl::MutexLock lock(&mu_);
      s = settings_;
    }
    if (s.stop) break;

    // Move bytes on the connections polled above (new ones come after).
    now = absl::Now();
    const short kReadable = POLLIN | POLLHUP | POLLERR;
    const short kWritable = POLLOUT | POLLHUP | POLLERR;
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = *connections[i];
      if (s.mode == Mode::kDrop) {
        c.to_target.Clear();
        c.to_client.Clear();
      }
      const pollfd& client = fds[2 + 2 * i];
      const pollfd& target = fds[3 + 2 * i];
      if ((client.revents & kReadable) && (client.events & POLLIN) &&
          wants_read(c.to_target, s))
        read_into(c.to_target, s, now, c);
      if ((target.revents & kReadable) && (target.events & POLLIN) &&
          wants_read(c.to_client, s))
        read_into(c.to_client, s, now, c);
      if ((target.revents & kWritable) && (target.events & POLLOUT) &&
          s.mode == Mode::kPass)
        write_from(c.to_target, s, now, c);
      if ((client.revents & kWritable) && (client.events & POLLOUT) &&
          s.mode == Mode::kPass)
        write_from(c.to_client, s, now, c);
      if (s.mode == Mode::kPass) {
        for (Direction* d : {&c.to_target, &c.to_client}) {
          if (d->read_eof && d->buffered == 0 && !d->write_shut) {
            (void)shutdown(d->to, SHUT_WR);
            d->write_shut = true;
          }
        }
      }
    }
    std::erase_if(connections, [&](const std::unique_ptr<Connection>& c) {
      if (c->failed) {
        reset(*c);
        return true;
      }
      if (c->to_target.write_shut && c->to_client.write_shut) {
        close(c->client_fd);
        close(c->target_fd);
        return true;
      }
      return false;
    });

    if (fds[1].revents & POLLIN) {
      for (;;) {
        int client_fd =
            accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client_fd < 0) break;  // EAGAIN: no more; anything else: next poll
        accepted_.fetch_add(1);
        bool refuse;  // read now: the connection may postdate RefuseNew(true)
        {
          absl::MutexLock lock(&mu_);
          refuse = settings_.refuse_new;
        }
        if (refuse) {
          resets_.fetch_add(1);
          CloseWithReset(client_fd);
          continue;
        }
        int target_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = target_ip_;
        address.sin_port = htons(target_port_);
        if (target_fd < 0 ||
            connect(target_fd, reinterpret_cast<sockaddr*>(&address),
                    sizeof address) != 0 ||
            fcntl(target_fd, F_SETFL, O_NONBLOCK) != 0) {
          resets_.fetch_add(1);
          CloseWithReset(client_fd);
          if (target_fd >= 0) close(target_fd);
          continue;
        }
        SetNoDelay(client_fd);
        SetNoDelay(target_fd);
        auto c = std::make_unique<Connection>();
        c->client_fd = client_fd;
        c->target_fd = target_fd;
        c->to_target.from = client_fd;
        c->to_target.to = target_fd;
        c->to_target.forwarded = &bytes_to_target_;
        c->to_client.from = target_fd;
        c->to_client.to = client_fd;
        c->to_client.forwarded = &bytes_to_client_;
        connections.push_back(std::move(c));
      }
    }
  }
  for (auto& c : connections) {
    close(c->client_fd);
    close(c->target_fd);
  }
}

}  // namespace ibsm::testing
