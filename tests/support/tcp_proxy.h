// TcpProxy: a fault-injecting TCP proxy for tests. It listens on
// 127.0.0.1 (an ephemeral port, port()) and forwards each accepted
// connection to one target "127.0.0.1:PORT" given at construction, so a
// test can put it between a client and a node and break the link on cue:
//
//   auto proxy = TcpProxy::Start(absl::StrCat("127.0.0.1:", broker.port()));
//   REQUIRE(proxy.ok());
//   options.target = absl::StrCat("127.0.0.1:", (*proxy)->port());
//   ...
//   (*proxy)->ResetAll();  // every current connection is aborted with RST
//
// Threads: one, owned by the proxy, runs a poll(2) loop over the listener,
// a wake-up pipe and both sockets of every connection. The destructor stops
// and joins it and closes every socket. Every buffer is bounded
// (kBufferBytes per direction per connection); a full buffer stops reading
// from that side, so back-pressure reaches the sender as it would on a link.
// The connection to the target is made with a blocking connect(2) on
// loopback, which answers at once.
//
// Faults, switchable at any time from any thread, apply to current and new
// connections, and govern every byte sent and connection made after the
// setter returns:
//  - Pass(): bytes move both ways (the default).
//  - Stall(): no byte moves either way; bytes in flight stay in the proxy's
//    buffers and the kernels' socket buffers, the connections stay open, and
//    Pass() resumes with nothing lost.
//  - Drop(): a black hole: bytes are read and discarded both ways, including
//    those already buffered in the proxy; end-of-stream is not forwarded.
//  - ResetAll(): aborts every current connection, both sides, with RST
//    (SO_LINGER 0, then close); buffered bytes are lost. Returns once done.
//  - RefuseNew(true): new connections are accepted and reset at once.
//  - SetDelay(d): each chunk read is forwarded no sooner than d after it was
//    read (order kept). SetBandwidth(b): each direction of each connection
//    forwards at most b bytes per second (0 = unlimited). Neither loses or
//    alters a byte.
// Counters: resets are counted before the RST is sent; forwarded bytes just
// after each send(2), so a test that has read them waits for the count with
// Eventually.
// End-of-stream from one side is passed on (shutdown(SHUT_WR)) once the bytes
// before it are forwarded; an error on one side resets the other.
//
// A TcpProxy is safe for concurrent use: the setters and counters may be
// called from any thread.
#ifndef IBSM_TESTS_SUPPORT_TCP_PROXY_H_
#define IBSM_TESTS_SUPPORT_TCP_PROXY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ibsm::testing {

class TcpProxy {
 public:
  // The most bytes buffered per direction per connection.
  static constexpr size_t kBufferBytes = 256 * 1024;

  // Listens on 127.0.0.1:0 and starts the proxy's thread. `target` is
  // "127.0.0.1:PORT" (any IPv4 literal); nothing connects to it before a
  // client connects to the proxy.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(
      const std::string& target);
  ~TcpProxy();  // stops and joins the thread, closes every socket
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:port()", for a client's target.
  std::string address() const;

  void Pass();
  void Stall();
  void Drop();
  // Aborts every connection open when it is called; returns once they are.
  void ResetAll();
  void RefuseNew(bool refuse);
  void SetDelay(absl::Duration delay);
  void SetBandwidth(uint64_t bytes_per_second);

  // Bytes written to the target (client to target) and to clients.
  uint64_t bytes_to_target() const { return bytes_to_target_.load(); }
  uint64_t bytes_to_client() const { return bytes_to_client_.load(); }
  // Bytes read and discarded by Drop(), both ways.
  uint64_t bytes_dropped() const { return bytes_dropped_.load(); }
  // Connections accepted (refused ones included).
  uint64_t connections_accepted() const { return accepted_.load(); }
  // Connections aborted with RST: by ResetAll(), RefuseNew(), an
  // unreachable target, or an error on the other side.
  uint64_t resets() const { return resets_.load(); }

 private:
  enum class Mode { kPass, kStall, kDrop };
  struct Settings {
    Mode mode = Mode::kPass;
    bool refuse_new = false;
    absl::Duration delay = absl::ZeroDuration();
    uint64_t bytes_per_second = 0;
    uint64_t reset_requested = 0;
    bool stop = false;
  };
  struct Connection;

  TcpProxy(int listen_fd, int port, int wake_read_fd, int wake_write_fd,
           uint32_t target_ip, int target_port);
  void Wake();  // makes the thread re-read settings_
  void Run();   // the thread

  const int listen_fd_;
  const int port_;
  const int wake_read_fd_;
  const int wake_write_fd_;
  const uint32_t target_ip_;  // network byte order
  const int target_port_;

  absl::Mutex mu_;
  Settings settings_ ABSL_GUARDED_BY(mu_);
  uint64_t reset_done_ ABSL_GUARDED_BY(mu_) = 0;  // settings_.reset_requested
  absl::CondVar reset_done_changed_;              // seen by the thread

  std::atomic<uint64_t> bytes_to_target_{0};
  std::atomic<uint64_t> bytes_to_client_{0};
  std::atomic<uint64_t> bytes_dropped_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> resets_{0};

  std::thread thread_;
};

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_TCP_PROXY_H_
