// ibsm-bench: throughput, latency and memory of an IBSM Exchange node.
//
//   ibsm-bench --workload=W1|W2|W3|W4|W5|W6|W7 [--messages=N] [--size=BYTES]
//              [--subscribers=K] [--rate=PER_SEC] [--seconds=T]
//              [--durability=sync|async] [--sign] [--payload=repeated|random]
//              [--mode=client|wire] [--policy=FILE] [--credit=C]
//              [--rss-every=K] [--rss-every-seconds=S]
//              [--topology=single|link] [--link-kbps=K] [--link-delay-ms=D]
//              [--link-window=W] [--encryption=off|on]
//              [--noisy-streams=N] [--identity-rate=R]
//              [--target=HOST:PORT --ca=FILE --cert=FILE --key=FILE]
//
// Without --target it makes a development PKI, starts its own ibsm-broker
// (child process, temp dir, default config plus the policy below) and stops
// it afterwards. It prints exactly one JSON line (keys that do not apply are
// null; keys are only ever added, never renamed or removed):
//   {"workload":"W1","messages":N,"size":S,"msgs_per_sec":X,"p50_us":..,
//    "p99_us":..,"p999_us":..,"broker_rss_kib":..,"signed":false,
//    "topology":"single","payload":"repeated","delivered":..,
//    "peer_rss_kib":..,"link_kbps":..,"link_delay_ms":..,"drain_ms":..,
//    "wire_bytes_per_alert":..,"wire_bytes_single_alert":..,
//    "overhead_bytes_per_alert":..,"signature_bytes":..,"chain_bytes":..,
//    "crossing_first_ms":..,"crossing_ms":..,"crossing_after_reset_ms":..,
//    "relink_ms":..,"mode":"client","policy":"ibsm-west-africa.textproto",
//    "rss_samples_kib":..,"encryption":false,"broker_cpu_us_per_alert":..,
//    "noisy_streams":0,"identity_rate":..,"noisy_accepted":..,
//    "noisy_refused":..}
// broker_rss_kib is the broker's peak resident set (VmHWM) at the end.
// --encryption=on gives the node(s) it starts a key made with ibsm-broker
// keygen (encryption at rest, docs/security.md); broker_cpu_us_per_alert is
// the node's user + system CPU over the workload, per alert published.
// --noisy-streams=N (single node): while the workload runs, another
// identity, CIV/customs, publishes to trafficking.drugs on N raw streams as
// fast as the node answers, so that it sits at its limits; with
// --identity-rate=R the node's limits.identity_publish_rate and burst are R
// (default: 10,000,000, so that the bench measures the node, not the limit).
// noisy_accepted / noisy_refused count its alerts stored and refused
// RESOURCE_EXHAUSTED. tests/bench/noisy-neighbour.sh compares runs.
//
// --mode=client (the default) measures what an agency's application gets:
// alerts are published through the client library's asynchronous
// ibsm::Publisher (Client::Connect, NewPublisher with max_in_flight = the
// workload's window and max_batch 128, PublishAsync with a callback per
// alert, Flush) and received through ibsm::Subscriber (push style, Start
// with a callback that calls Ack for every delivery, so the node's cursor
// moves; durable names; --credit alerts of credit, default 4096). One Client
// (one connection) per publisher and per subscriber. --mode=wire uses raw
// gRPC stubs instead: one PublishStream with requests of at most 128 alerts,
// and Subscribe streams that return credit and acks every C/4 deliveries
// (at once in latency runs).
// --sign signs every alert as its originator (docs/signature-format.md) with
// --key and the chain of --cert before it is sent, as the client library
// does; without it alerts are unsigned (ClientOptions::sign_alerts = false:
// a node with no peers accepts them, and fills in the originator from the
// certificate). --topology=link always signs.
// --policy=FILE is the sharing policy of the node(s) ibsm-bench starts
// (both nodes with --topology=link). Default: the shipped
// policies/ibsm-west-africa.textproto, under which CIV/police may publish
// and subscribe topic "border.incident" (rule "border-incident", publishers
// */police, subscribers *) at RESTRICTED, what the bench publishes; MLI/customs
// receives it across a link. --policy= (empty) starts a single node with no
// policy file (every agency of the node may publish and receive everything;
// the node logs a warning); a link needs a policy. The JSON key "policy" is
// the file's name, null for none or with --target. The audit trail is always
// on (the broker has no switch for it).
// W1  publish throughput: 1 publisher, N alerts, <= 256 unacknowledged.
// W2  fan-out: K durable subscribers each receive all N; delivered/s.
// W3  latency: R alerts/s for T s; publish-to-delivery percentiles (the
//     time from just before PublishAsync / the stream write to the delivery
//     callback / the stream read). --rss-every-seconds=S samples the
//     broker's current resident set (VmRSS) at 0, S, 2S, ... seconds of the
//     run into "rss_samples_kib": [[seconds,kib],...].
// W6  backlog memory: a durable subscriber is opened once (its cursor is
//     stored) and stopped at once (stream closed, nothing acknowledged); then
//     N alerts (default 1,000,000) are published as in W1. The broker's VmRSS
//     is sampled before the first and after every --rss-every=K alerts
//     (default 100,000; the publisher waits until those are acknowledged, then
//     reads /proc/PID/status) and after the last: "rss_samples_kib":
//     [[0,kib],[K,kib],...,[N,kib]]. msgs_per_sec is the publishing rate.
// W7  hostile input: for --seconds (default 10), rounds of 300 idle TCP
//     connections that never start TLS, 1,000 publish streams opened at once
//     by one identity, 3 Subscribe requests of 200,000 patterns, 20 alerts of
//     2 MiB and 20 of 20,000 attributes; then all is closed and the
//     node idles for 10 s. "rss_samples_kib": [[0,kib] before, [round,kib]
//     at the end of each round, [last,kib] after the idle time]; "messages"
//     is the calls made, "delivered" how many the node refused.
//     Single node only.
//
// --topology=link starts two linked nodes on loopback with the policy: CIV
// (node A) dials MLI (node B) on B's federation port. Alerts are signed (a
// federated node refuses unsigned ones) and published at A as CIV/police;
// MLI/customs subscribes at B, so W1 counts alerts delivered at B
// ("delivered"), W2's subscribers are at B and W3's latency is from publish at
// A to delivery at B. broker_rss_kib is A's, peer_rss_kib B's. Both nodes use
// reconnect_max_seconds 1 (the bench waits for the link, not for a long
// backoff); the rest are node defaults
// (--link-window sets federation.window on both).
// --link-kbps / --link-delay-ms put a TcpProxy (tests/support) between A
// and B that forwards at most K kbit/s per direction and delays every chunk
// by D ms one way. W4 and W5 always have the proxy, and imply the link.
// W4  drain: with the proxy refusing connections, N acknowledged publishes
//     at A fill the outbox; then the proxy lets the link up. drain_ms is from
//     the link's up_since at A (Node.GetLinks as CIV/focal-point) to the
//     last of the N delivered at B; msgs_per_sec = N / drain.
// W5  thin link (64 kbit/s and 400 ms unless --link-kbps/--link-delay-ms;
//     N = 50 unless --messages; random payloads, which gzip cannot shrink,
//     unless --payload): crossing_first_ms is the first alert of the link
//     (its signing chain travels with it), crossing_ms the median of three
//     single alerts after it (the chain by fingerprint), each published
//     alone, from publish at A to delivery at B, and wire_bytes_single_alert
//     the proxy's bytes (both ways: offer, ack, heartbeats, HTTP/2 and TLS
//     framing) per one of them; then N alerts at once: wire_bytes_per_alert
//     is the proxy's bytes per alert, overhead_bytes_per_alert that minus
//     the payload (--size) and the signature (signature_bytes; chain_bytes is
//     what the chain would add if it travelled every time), msgs_per_sec
//     their rate over the link. Last, ResetAll() aborts the link and one
//     alert is published at once: crossing_after_reset_ms includes noticing
//     the reset, the reconnect backoff, TCP, TLS and Hello over the slow link;
//     relink_ms is the part until the link was up again (its new up_since).
// Every wait has a deadline (10 minutes without progress): ibsm-bench exits
// 2 with a message instead of hanging.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/substitute.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ibsm/alert_signature.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/subscriber.h"
#include "ibsm/tls.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "tests/support/tcp_proxy.h"

namespace {

using Clock = std::chrono::steady_clock;

// The longest any wait goes without progress before the bench gives up.
constexpr absl::Duration kStallTimeout = absl::Minutes(10);

struct Flags {
  std::string workload;
  uint64_t messages = 100000;
  uint64_t size = 1024;
  int subscribers = 4;
  uint64_t rate = 2000;
  uint64_t seconds = 10;
  std::string durability = "sync";
  std::string target, ca, cert, key;
  bool sign = false;
  bool encryption = false;  // --encryption=on: the nodes seal payloads
  std::string topology = "single";
  std::string payload;          // "repeated" or "random"; set by ParseFlags
  uint64_t link_kbps = 0;       // 0: the proxy, if any, does not limit
  uint64_t link_delay_ms = 0;   // 0: no added delay
  uint64_t link_window = 0;     // 0: the node default
  std::string mode = "client";  // or "wire"
  // The policy file of the nodes this run starts (absolute), empty for none;
  // set by ParseFlags (the shipped policy unless --policy).
  std::string policy;
  uint64_t credit = 4096;          // subscription credit (node maximum: 4096)
  uint64_t rss_every = 100000;     // W6: a VmRSS sample every K alerts
  uint64_t rss_every_seconds = 0;  // W3: a VmRSS sample every S s; 0: none
  // --noisy-streams=N: another identity floods the node on N streams while
  // the workload runs (single node); --identity-rate=R: the node's
  // limits.identity_publish_rate (and a burst of R), 0: unlimited.
  uint64_t noisy_streams = 0;
  uint64_t identity_rate = 0;
  bool messages_given = false;
  bool topology_given = false;
  bool policy_given = false;
};

bool IsClientMode(const Flags& f) { return f.mode == "client"; }

bool IsLink(const Flags& f) { return f.topology == "link"; }
// The link workloads need a proxy between the nodes.
bool NeedsProxy(const Flags& f) {
  return f.workload == "W4" || f.workload == "W5" || f.link_kbps > 0 ||
         f.link_delay_ms > 0;
}

// The brokers this run started and its temp dirs, so that Die() (from any
// thread) leaves no process or file behind.
absl::Mutex cleanup_mu(absl::kConstInit);
std::vector<pid_t>* const children ABSL_PT_GUARDED_BY(cleanup_mu) =
    new std::vector<pid_t>;
std::vector<std::string>* const temp_dirs ABSL_PT_GUARDED_BY(cleanup_mu) =
    new std::vector<std::string>;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ibsm-bench: %s\n", message.c_str());
  {
    absl::MutexLock lock(&cleanup_mu);
    for (pid_t pid : *children) {
      kill(pid, SIGKILL);
      int status;
      waitpid(pid, &status, 0);
    }
    for (const std::string& dir : *temp_dirs) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  _exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--sign") {
      f.sign = true;
      continue;
    }
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      Die(absl::StrCat("bad argument '", arg, "': use --name=value"));
    }
    std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    auto number = [&](uint64_t* out) {
      if (!absl::SimpleAtoi(value, out) || *out == 0) {
        Die(absl::StrCat("--", name, " needs a positive integer"));
      }
    };
    uint64_t k;
    if (name == "workload")
      f.workload = value;
    else if (name == "messages") {
      number(&f.messages);
      f.messages_given = true;
    } else if (name == "topology") {
      f.topology = value;
      f.topology_given = true;
    } else if (name == "payload")
      f.payload = value;
    else if (name == "encryption") {
      if (value != "on" && value != "off")
        Die("--encryption must be on or off");
      f.encryption = value == "on";
    } else if (name == "link-kbps")
      number(&f.link_kbps);
    else if (name == "link-delay-ms")
      number(&f.link_delay_ms);
    else if (name == "link-window")
      number(&f.link_window);
    else if (name == "mode")
      f.mode = value;
    else if (name == "policy") {
      f.policy = value;
      f.policy_given = true;
    } else if (name == "credit")
      number(&f.credit);
    else if (name == "rss-every")
      number(&f.rss_every);
    else if (name == "rss-every-seconds")
      number(&f.rss_every_seconds);
    else if (name == "noisy-streams")
      number(&f.noisy_streams);
    else if (name == "identity-rate")
      number(&f.identity_rate);
    else if (name == "size")
      number(&f.size);
    else if (name == "subscribers") {
      number(&k);
      f.subscribers = static_cast<int>(k);
    } else if (name == "rate")
      number(&f.rate);
    else if (name == "seconds")
      number(&f.seconds);
    else if (name == "durability")
      f.durability = value;
    else if (name == "target")
      f.target = value;
    else if (name == "ca")
      f.ca = value;
    else if (name == "cert")
      f.cert = value;
    else if (name == "key")
      f.key = value;
    else
      Die(absl::StrCat("unknown flag --", name));
  }
  if (f.workload != "W1" && f.workload != "W2" && f.workload != "W3" &&
      f.workload != "W4" && f.workload != "W5" && f.workload != "W6" &&
      f.workload != "W7") {
    Die("--workload must be W1, W2, W3, W4, W5, W6 or W7");
  }
  if (f.workload == "W7" && (IsLink(f) || !f.target.empty())) {
    Die("--workload=W7 measures a single node ibsm-bench starts itself");
  }
  if (f.mode != "client" && f.mode != "wire") {
    Die("--mode must be client or wire");
  }
  if (f.credit > 4096) Die("--credit is at most 4096 (the node's maximum)");
  if (f.noisy_streams > 0 &&
      (IsLink(f) || !f.target.empty() ||
       (f.workload != "W1" && f.workload != "W2" && f.workload != "W3"))) {
    Die("--noisy-streams is for W1, W2 or W3 on a single node ibsm-bench "
        "starts itself");
  }
  if (f.noisy_streams > 64) Die("--noisy-streams is at most 64");
  if (f.topology != "single" && f.topology != "link") {
    Die("--topology must be single or link");
  }
  if (f.workload == "W4" || f.workload == "W5") {
    if (f.topology_given && !IsLink(f)) {
      Die(absl::StrCat("--workload=", f.workload,
                       " measures a link: use --topology=link"));
    }
    f.topology = "link";
  }
  if (!IsLink(f) &&
      (f.link_kbps > 0 || f.link_delay_ms > 0 || f.link_window > 0)) {
    Die("--link-kbps, --link-delay-ms and --link-window need --topology=link");
  }
  if (IsLink(f) && !f.target.empty()) {
    Die("--topology=link starts its own two nodes: leave out --target");
  }
  if (f.link_window > 4096) Die("--link-window is at most 4096");
  if (f.workload == "W6") {
    if (IsLink(f)) Die("--workload=W6 measures a single node");
    if (!f.messages_given) f.messages = 1000000;
  }
  if (f.rss_every_seconds > 0 && f.workload != "W3") {
    Die("--rss-every-seconds is for --workload=W3 (W6 samples by --rss-every)");
  }
  if (!f.target.empty() && (f.workload == "W6" || f.rss_every_seconds > 0)) {
    Die("the memory samples read the broker's /proc: leave out --target");
  }
  if (!f.target.empty()) {
    if (f.policy_given) {
      Die("--policy is for the nodes ibsm-bench starts: leave out --target");
    }
  } else if (!f.policy_given) {
    f.policy =
        std::string(IBSM_SOURCE_DIR) + "/policies/ibsm-west-africa.textproto";
  } else if (!f.policy.empty()) {
    std::error_code ec;
    f.policy = std::filesystem::absolute(f.policy, ec).string();
    if (ec || !std::filesystem::is_regular_file(f.policy, ec)) {
      Die(absl::StrCat("--policy: no such file: ", f.policy));
    }
  }
  if (IsLink(f) && f.policy.empty()) {
    Die("--topology=link needs a policy: leave out --policy= or name a file");
  }
  if (f.workload == "W5") {
    if (f.link_kbps == 0) f.link_kbps = 64;
    if (f.link_delay_ms == 0) f.link_delay_ms = 400;
    if (!f.messages_given) f.messages = 50;
  }
  if (f.payload.empty()) f.payload = f.workload == "W5" ? "random" : "repeated";
  if (f.payload != "repeated" && f.payload != "random") {
    Die("--payload must be repeated or random");
  }
  // A federated node refuses unsigned alerts.
  if (IsLink(f)) f.sign = true;
  if (f.durability != "sync" && f.durability != "async") {
    Die("--durability must be sync or async");
  }
  if (!f.target.empty() && (f.ca.empty() || f.cert.empty() || f.key.empty())) {
    Die("--target needs --ca, --cert and --key");
  }
  return f;
}

std::string SelfDir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

// The temp dir and development PKI of a run that starts its own brokers;
// removed on destruction (after the brokers, which must be gone by then).
class BenchDir {
 public:
  // `pki_args`: the options of certs/make-dev-pki.sh (--nodes, --agencies).
  explicit BenchDir(const std::string& pki_args) {
    char tmpl[] = "/tmp/ibsm-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("cannot make a temp dir");
    path_ = tmpl;
    {
      absl::MutexLock lock(&cleanup_mu);
      temp_dirs->push_back(path_);
    }
    pki_ = path_ + "/pki";
    std::string script =
        std::string(IBSM_SOURCE_DIR) + "/certs/make-dev-pki.sh";
    std::string cmd = absl::StrCat("bash '", script, "' '", pki_, "' --quiet ",
                                   pki_args, " >/dev/null");
    if (std::system(cmd.c_str()) != 0) Die("making the PKI failed: " + cmd);
  }
  ~BenchDir() {
    absl::MutexLock lock(&cleanup_mu);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    temp_dirs->erase(std::find(temp_dirs->begin(), temp_dirs->end(), path_));
  }
  const std::string& path() const { return path_; }
  const std::string& pki() const { return pki_; }
  std::string ca() const { return pki_ + "/ca.pem"; }
  // `agency` is "CIV/police".
  std::string AgencyCert(const std::string& agency) const {
    return absl::StrCat(pki_, "/agency-", FileName(agency), "-chain.pem");
  }
  std::string AgencyKey(const std::string& agency) const {
    return absl::StrCat(pki_, "/agency-", FileName(agency), ".key");
  }

 private:
  static std::string FileName(std::string agency) {
    std::replace(agency.begin(), agency.end(), '/', '_');
    return agency;
  }
  std::string path_, pki_;
};

// Waits for a port file written by a broker; 0 when `pid` exits first.
int WaitForPortFile(const std::string& file, pid_t pid) {
  for (int i = 0; i < 3000; ++i) {
    std::ifstream in(file);
    int port = 0;
    if (in >> port && port > 0) return port;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

// A broker this run measures, when ibsm-bench starts its own: node `node`
// with its data under dir.path()/node, which must outlive it.
class OwnBroker {
 public:
  // `extra_config`: more NodeConfig text (policy_file, federation).
  OwnBroker(const Flags& flags, const BenchDir& dir, const std::string& node,
            const std::string& extra_config = "") {
    const std::string base = absl::StrCat(dir.path(), "/", node);
    const std::string& pki = dir.pki();
    std::string config = base + ".textproto";
    std::string broker = SelfDir() + "/ibsm-broker";
    std::string encryption;
    if (flags.encryption) {
      const std::string key = base + ".key";
      if (std::system(
              absl::StrCat("'", broker, "' keygen --out '", key, "' >/dev/null")
                  .c_str()) != 0) {
        Die("ibsm-broker keygen failed");
      }
      encryption = absl::StrCat("encryption { key_file: \"", key, "\" }\n");
    }
    std::ofstream(config) << absl::StrCat(
        "node_id: \"", node, "\"\nlisten_address: \"127.0.0.1:0\"\n",
        "data_dir: \"", base, "-data\"\nport_file: \"", base, ".port\"\n",
        "durability: ",
        flags.durability == "sync" ? "DURABILITY_SYNC" : "DURABILITY_ASYNC",
        "\ntls {\n cert_file: \"", pki, "/node-", node,
        "-chain.pem\"\n key_file: \"", pki, "/node-", node,
        ".key\"\n ca_file: \"", dir.ca(), "\"\n crl_dir: \"", pki,
        "/crl\"\n}\n", encryption,
        // The bench measures the node, not the per-identity rate limit
        // (limits.identity_publish_rate, 10,000/s by default), which one
        // publisher here exceeds on purpose, unless --identity-rate.
        absl::Substitute(
            "limits {\n identity_publish_rate: $0\n"
            " identity_publish_burst: $0\n}\n",
            flags.identity_rate > 0 ? flags.identity_rate : 10000000),
        extra_config);
    pid_ = fork();
    if (pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      // IBSM_BENCH_BROKER_LOG=1 keeps the broker's log on stderr.
      if (getenv("IBSM_BENCH_BROKER_LOG") == nullptr) dup2(devnull, 2);
      execl(broker.c_str(), broker.c_str(), "--config", config.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    {
      absl::MutexLock lock(&cleanup_mu);
      children->push_back(pid_);
    }
    const int port = WaitForPortFile(base + ".port", pid_);
    if (port == 0) {
      Die(absl::StrCat("ibsm-broker ", node,
                       " did not start (IBSM_BENCH_BROKER_LOG=1 shows why)"));
    }
    target_ = absl::StrCat("127.0.0.1:", port);
  }
  ~OwnBroker() {
    absl::MutexLock lock(&cleanup_mu);
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    children->erase(std::find(children->begin(), children->end(), pid_));
  }
  // The federation port, from the federation.port_file `file` it was
  // configured with.
  std::string FederationAddress(const std::string& file) const {
    const int port = WaitForPortFile(file, pid_);
    if (port == 0) Die("ibsm-broker wrote no federation port to " + file);
    return absl::StrCat("127.0.0.1:", port);
  }
  // Peak resident set of the broker so far, in KiB.
  std::optional<uint64_t> PeakRssKib() const { return StatusKib("VmHWM:"); }
  // The broker's resident set now, in KiB.
  std::optional<uint64_t> CurrentRssKib() const { return StatusKib("VmRSS:"); }
  // User + system CPU the broker used so far, in seconds (/proc/PID/stat).
  double CpuSeconds() const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    // Fields after the command name, which is in parentheses; utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after it.
    std::vector<std::string> fields =
        absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
    uint64_t utime = 0, stime = 0;
    if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
        !absl::SimpleAtoi(fields[12], &stime)) {
      return 0;
    }
    return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  }
  const std::string& target() const { return target_; }

 private:
  // A "<field>   1234 kB" line of /proc/PID/status.
  std::optional<uint64_t> StatusKib(absl::string_view field) const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, field)) {
        absl::string_view v = absl::StripAsciiWhitespace(
            absl::string_view(line).substr(field.size()));
        if (absl::ConsumeSuffix(&v, "kB")) v = absl::StripAsciiWhitespace(v);
        uint64_t kib = 0;
        if (absl::SimpleAtoi(v, &kib)) return kib;
      }
    }
    return std::nullopt;
  }

  std::string target_;
  pid_t pid_ = -1;
};

// `f` aimed at `broker` as `agency` of `dir`'s PKI.
Flags As(const Flags& f, const OwnBroker& broker, const BenchDir& dir,
         const std::string& agency) {
  Flags at = f;
  at.target = broker.target();
  at.ca = dir.ca();
  at.cert = dir.AgencyCert(agency);
  at.key = dir.AgencyKey(agency);
  return at;
}

std::shared_ptr<grpc::Channel> NewChannel(const Flags& f) {
  ibsm::TlsFiles files{f.cert, f.key, f.ca, ""};
  auto creds = ibsm::MakeChannelCredentials(files);
  if (!creds.ok()) Die(std::string(creds.status().message()));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // own connection
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(f.target, *creds, args);
}

ibsm::v1::Alert Template(const Flags& f, const std::string& run) {
  ibsm::v1::Alert a;
  a.set_topic("border.incident");
  a.set_classification("RESTRICTED");
  a.set_severity(ibsm::v1::SEVERITY_MEDIUM);
  a.set_content_type("application/octet-stream");
  a.set_payload(std::string(f.size, 'x'));
  (*a.mutable_attributes())["bench"] = run;
  return a;
}

// --payload=random: bytes that no compression shrinks, new for every alert
// (the alerts of one link frame are compressed together).
void RandomizePayload(std::mt19937_64* random, ibsm::v1::Alert* alert) {
  std::string* payload = alert->mutable_payload();
  for (char& c : *payload) c = static_cast<char>((*random)() & 0xff);
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// What --sign signs with: the key, chain and identity of --key and --cert.
struct Signing {
  std::optional<ibsm::SigningKey> key;
  std::vector<std::string> chain_der;
  std::string originator;
};

std::unique_ptr<Signing> LoadSigning(const Flags& f) {
  if (!f.sign) return nullptr;
  auto signing = std::make_unique<Signing>();
  absl::StatusOr<std::string> key_pem = ibsm::ReadFileToString(f.key);
  if (!key_pem.ok()) Die(std::string(key_pem.status().message()));
  absl::StatusOr<ibsm::SigningKey> key = ibsm::SigningKey::FromPem(*key_pem);
  if (!key.ok()) Die(absl::StrCat(f.key, ": ", key.status().message()));
  signing->key.emplace(*std::move(key));
  absl::StatusOr<std::string> chain_pem = ibsm::ReadFileToString(f.cert);
  if (!chain_pem.ok()) Die(std::string(chain_pem.status().message()));
  absl::StatusOr<std::vector<std::string>> chain =
      ibsm::SigningChainFromPem(*chain_pem);
  if (!chain.ok()) Die(absl::StrCat(f.cert, ": ", chain.status().message()));
  signing->chain_der = *std::move(chain);
  absl::StatusOr<std::string> uri = ibsm::CertificateUri(f.cert);
  if (!uri.ok() || uri->rfind("spiffe://ibsm/", 0) != 0) {
    Die(absl::StrCat(f.cert, ": no spiffe://ibsm/ identity to sign as"));
  }
  signing->originator = uri->substr(std::string("spiffe://ibsm/").size());
  return signing;
}

// --mode=wire: publishes `count` alerts on one raw PublishStream with at
// most `window` unacknowledged, `pace` (if set) spacing them in time.
// Returns acknowledged.
uint64_t PublishWire(const Flags& f, uint64_t count, size_t window,
                     std::optional<absl::Duration> pace,
                     const std::string& run) {
  const std::unique_ptr<Signing> signing = LoadSigning(f);
  auto channel = NewChannel(f);
  auto stub = ibsm::v1::Publisher::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->PublishStream(&context);
  absl::Mutex mu;
  size_t inflight = 0;
  uint64_t acked = 0, failed = 0, not_queued = 0;
  std::string first_error;
  bool reader_done = false;
  std::thread reader([&] {
    ibsm::v1::PublishResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      for (const auto& r : response.results()) {
        if (r.code() == 0) {
          ++acked;
          // On a link, every alert must be queued for the peer, or the
          // run would wait for deliveries that never come.
          if (IsLink(f) && r.forwarded_to_size() == 0) ++not_queued;
        } else {
          if (failed++ == 0) first_error = r.message();
        }
      }
      inflight -= response.results_size();
    }
    absl::MutexLock lock(&mu);
    reader_done = true;
  });
  ibsm::v1::Alert alert = Template(f, run);
  if (signing != nullptr) {
    // The signature covers both: the node must not fill them in.
    alert.set_originator(signing->originator);
    int64_t us = NowMicros();
    alert.mutable_created_at()->set_seconds(us / 1000000);
  }
  std::mt19937_64 random(std::hash<std::string>()(run));
  Clock::time_point start = Clock::now();
  uint64_t sent = 0;
  while (sent < count) {
    size_t batch;
    {
      absl::MutexLock lock(&mu);
      auto room = [&] { return inflight < window || reader_done; };
      mu.Await(absl::Condition(&room));
      if (reader_done) break;
      // Requests of at most 128 alerts keep the pipeline full: the broker
      // commits one request while the next is on the wire.
      batch = std::min<uint64_t>({window - inflight, count - sent, 128});
      if (pace) batch = 1;
      inflight += batch;
    }
    if (pace) {
      std::this_thread::sleep_until(start +
                                    absl::ToChronoNanoseconds(*pace * sent));
    }
    ibsm::v1::PublishRequest request;
    for (size_t i = 0; i < batch; ++i) {
      alert.set_id(absl::StrCat(run, "-", sent + i));
      if (f.payload == "random") RandomizePayload(&random, &alert);
      if (pace) {
        int64_t us = NowMicros();
        alert.mutable_created_at()->set_seconds(us / 1000000);
        alert.mutable_created_at()->set_nanos((us % 1000000) * 1000);
      }
      if (signing != nullptr) {
        absl::Status signed_alert =
            ibsm::SignAlert(*signing->key, signing->chain_der, &alert);
        if (!signed_alert.ok()) Die(std::string(signed_alert.message()));
      }
      *request.add_alerts() = alert;
    }
    if (!stream->Write(request)) break;
    sent += batch;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status s = stream->Finish();
  if (!s.ok() || failed > 0) {
    Die(absl::StrCat("publishing failed: ", s.error_message(), " (", failed,
                     " alerts refused; the first: ", first_error, ")"));
  }
  if (not_queued > 0) {
    Die(absl::StrCat(not_queued, " of ", acked,
                     " alerts were stored but queued for no peer"));
  }
  return acked;
}

// --noisy-streams: an identity at its limits. Each of `streams` threads
// publishes requests of 128 alerts on its own PublishStream as fast as the
// node answers, until destroyed; refusals (its rate limit) are counted, not
// fatal. Its alerts go to `topic`, which the measured subscribers do not
// receive.
class NoisyNeighbour {
 public:
  NoisyNeighbour(const Flags& as, uint64_t streams, const std::string& run) {
    for (uint64_t i = 0; i < streams; ++i) {
      threads_.emplace_back([this, as, i, run] { Flood(as, i, run); });
    }
  }
  ~NoisyNeighbour() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
  }
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  void Flood(const Flags& f, uint64_t index, const std::string& run) {
    auto stub = ibsm::v1::Publisher::NewStub(NewChannel(f));
    grpc::ClientContext context;
    auto stream = stub->PublishStream(&context);
    ibsm::v1::Alert alert = Template(f, run);
    alert.set_topic("trafficking.drugs");
    for (uint64_t n = 0; !stop_.load(); n += 128) {
      ibsm::v1::PublishRequest request;
      for (uint64_t k = 0; k < 128; ++k) {
        alert.set_id(absl::StrCat(run, "-noisy-", index, "-", n + k));
        *request.add_alerts() = alert;
      }
      if (!stream->Write(request)) break;
      size_t answered = 0;
      ibsm::v1::PublishResponse response;
      while (answered < 128 && stream->Read(&response)) {
        for (const auto& r : response.results()) {
          ++answered;
          if (r.code() == 0) {
            accepted_.fetch_add(1);
          } else if (r.code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
            refused_.fetch_add(1);
          } else {
            Die(absl::StrCat("the noisy neighbour's alert was refused: ",
                             r.message()));
          }
        }
      }
      if (answered < 128) break;
    }
    stream->WritesDone();
    grpc::Status s = stream->Finish();
    if (!s.ok() && !stop_.load()) {
      Die(absl::StrCat("the noisy neighbour's stream ended: ",
                       s.error_message()));
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::vector<std::thread> threads_;
};

// A client-library connection to `f.target` as the agency of `f.cert`,
// signing published alerts when `sign`.
std::unique_ptr<ibsm::Client> ConnectClient(const Flags& f, bool sign) {
  ibsm::ClientOptions options;
  options.target = f.target;
  options.ca_file = f.ca;
  options.cert_file = f.cert;
  options.key_file = f.key;
  options.sign_alerts = sign;
  absl::StatusOr<std::unique_ptr<ibsm::Client>> client =
      ibsm::Client::Connect(options);
  if (!client.ok()) {
    Die(absl::StrCat("Client::Connect to ", f.target,
                     " failed: ", client.status().message()));
  }
  return *std::move(client);
}

// What a publishing run calls after every `every` acknowledged alerts and
// after the last, with the count so far; nothing is in flight at that point.
struct Checkpoints {
  uint64_t every = 0;
  std::function<void(uint64_t acknowledged)> at;
};

// The results of a client-mode run, updated by the Publisher's callbacks.
struct ClientPublishState {
  // `link`: every alert must be queued for a peer.
  explicit ClientPublishState(bool link) : link(link) {}

  const bool link;
  absl::Mutex mu;
  uint64_t acked ABSL_GUARDED_BY(mu) = 0;
  uint64_t failed ABSL_GUARDED_BY(mu) = 0;
  uint64_t not_queued ABSL_GUARDED_BY(mu) = 0;
  std::string first_error ABSL_GUARDED_BY(mu);

  void Done(const absl::StatusOr<ibsm::PublishReceipt>& receipt) {
    absl::MutexLock lock(&mu);
    if (!receipt.ok()) {
      if (failed++ == 0) first_error = receipt.status().ToString();
      return;
    }
    ++acked;
    // On a link, every alert must be queued for the peer, or the run
    // would wait for deliveries that never come.
    if (link && receipt->forwarded_to.empty()) ++not_queued;
  }
  // Dies when an alert was refused or not queued for the peer; returns the
  // acknowledged count.
  uint64_t Check() {
    absl::MutexLock lock(&mu);
    if (failed > 0) {
      Die(absl::StrCat("publishing failed: ", failed,
                       " alerts refused; the first: ", first_error));
    }
    if (not_queued > 0) {
      Die(absl::StrCat(not_queued, " of ", acked,
                       " alerts were stored but queued for no peer"));
    }
    return acked;
  }
};

// --mode=client: publishes `count` alerts through one ibsm::Publisher
// (PublishAsync, at most `window` outstanding, requests of at most 128),
// `pace` (if set) spacing them in time. Returns acknowledged.
uint64_t PublishClient(const Flags& f, uint64_t count, size_t window,
                       std::optional<absl::Duration> pace,
                       const std::string& run, const Checkpoints* checkpoints) {
  std::unique_ptr<ibsm::Client> client = ConnectClient(f, f.sign);
  ibsm::PublisherOptions options;
  // The node stops reading a stream at 4096 unanswered alerts.
  options.max_in_flight = std::min<size_t>(window, 4096);
  // As the wire mode's requests: one request is committed while the next
  // is on the wire.
  options.max_batch = 128;
  std::unique_ptr<ibsm::Publisher> publisher = client->NewPublisher(options);
  ClientPublishState state(IsLink(f));
  ClientPublishState* const results = &state;  // small enough to be inline
  const ibsm::Publisher::Callback done =
      [results](absl::StatusOr<ibsm::PublishReceipt> receipt) {
        results->Done(receipt);
      };
  auto flush = [&] {
    absl::Status flushed = publisher->Flush(kStallTimeout);
    if (!flushed.ok()) Die("Publisher::Flush: " + flushed.ToString());
    return state.Check();
  };
  const ibsm::v1::Alert alert_template = Template(f, run);
  std::mt19937_64 random(std::hash<std::string>()(run));
  const Clock::time_point start = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    if (pace) {
      std::this_thread::sleep_until(start +
                                    absl::ToChronoNanoseconds(*pace * i));
    }
    ibsm::v1::Alert alert = alert_template;
    alert.set_id(absl::StrCat(run, "-", i));
    if (f.payload == "random") RandomizePayload(&random, &alert);
    if (pace) {
      // The send time, for the subscriber's latency. Otherwise the library
      // fills in created_at (and, when signing, the originator).
      int64_t us = NowMicros();
      alert.mutable_created_at()->set_seconds(us / 1000000);
      alert.mutable_created_at()->set_nanos((us % 1000000) * 1000);
    }
    publisher->PublishAsync(std::move(alert), done);
    if (checkpoints != nullptr &&
        ((i + 1) % checkpoints->every == 0 || i + 1 == count)) {
      checkpoints->at(flush());
    }
  }
  const uint64_t acked = flush();
  publisher.reset();
  return acked;
}

// Publishes `count` alerts in the run's --mode; see PublishWire and
// PublishClient. With `checkpoints`, the wire mode publishes each share on
// its own stream.
uint64_t Publish(const Flags& f, uint64_t count, size_t window,
                 std::optional<absl::Duration> pace, const std::string& run,
                 const Checkpoints* checkpoints = nullptr) {
  if (IsClientMode(f)) {
    return PublishClient(f, count, window, pace, run, checkpoints);
  }
  if (checkpoints == nullptr) return PublishWire(f, count, window, pace, run);
  uint64_t acked = 0;
  for (uint64_t share = 0; acked < count; ++share) {
    const uint64_t n = std::min(checkpoints->every, count - acked);
    acked += PublishWire(f, n, window, pace, absl::StrCat(run, "-", share));
    checkpoints->at(acked);
  }
  return acked;
}

// One durable subscription (topics "border.>", starting with alerts
// published after it was opened) that counts, and optionally times,
// deliveries. Open() makes one of the run's --mode. Its counters are safe
// for concurrent use.
class BenchSubscriber {
 public:
  // `name` is the durable name; `record_latency` keeps publish-to-delivery
  // times from the alerts' created_at.
  static std::unique_ptr<BenchSubscriber> Open(const Flags& f,
                                               const std::string& name,
                                               bool record_latency);
  virtual ~BenchSubscriber() = default;

  // Waits until `n` alerts were received in all; dies when the
  // subscription ends first or nothing arrives for kStallTimeout.
  void WaitFor(uint64_t n) {
    absl::MutexLock lock(&mu_);
    for (;;) {
      const uint64_t before = received_;
      // Await evaluates the condition with mu_ held.
      auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return received_ >= n || ended_ || received_ > before;
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&done), kStallTimeout)) {
        Die(absl::StrCat("no delivery for ",
                         absl::FormatDuration(kStallTimeout), " (", received_,
                         " of ", n,
                         " received; IBSM_BENCH_BROKER_LOG=1 shows the "
                         "brokers' logs)"));
      }
      if (received_ >= n) return;
      if (ended_) Die("a subscription ended early: " + end_reason_);
    }
  }
  uint64_t Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // Wall-clock time (Unix µs) when the latest delivery was read.
  int64_t LastDeliveryMicros() {
    absl::MutexLock lock(&mu_);
    return last_delivery_us_;
  }
  std::vector<int64_t> TakeLatencies() {
    absl::MutexLock lock(&mu_);
    return std::move(latencies_);
  }

 protected:
  explicit BenchSubscriber(bool record_latency)
      : record_latency_(record_latency) {}

  // Publish-to-delivery time of `alert` read at `now_us` (Unix µs).
  static int64_t LatencyMicros(const ibsm::v1::Alert& alert, int64_t now_us) {
    const auto& c = alert.created_at();
    return now_us - (c.seconds() * 1000000 + c.nanos() / 1000);
  }
  // Counts `n` deliveries read at `now_us`, with their latencies.
  void Count(uint64_t n, int64_t now_us, const std::vector<int64_t>& lat) {
    absl::MutexLock lock(&mu_);
    received_ += n;
    if (n > 0) last_delivery_us_ = now_us;
    latencies_.insert(latencies_.end(), lat.begin(), lat.end());
  }
  // One delivery read at `now_us`.
  void CountOne(int64_t now_us, const ibsm::v1::Alert& alert) {
    absl::MutexLock lock(&mu_);
    ++received_;
    last_delivery_us_ = now_us;
    if (record_latency_) latencies_.push_back(LatencyMicros(alert, now_us));
  }
  void End(std::string why) {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    end_reason_ = std::move(why);
  }

  const bool record_latency_;

 private:
  absl::Mutex mu_;
  uint64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::string end_reason_ ABSL_GUARDED_BY(mu_);
  int64_t last_delivery_us_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> latencies_ ABSL_GUARDED_BY(mu_);
};

// --mode=wire: a raw Subscribe stream read on its own thread, returning
// credit and acknowledging every --credit/4 deliveries (at once when timing
// latency, so that latency runs are not credit-bound).
class WireSubscriber : public BenchSubscriber {
 public:
  WireSubscriber(const Flags& f, const std::string& name, bool record_latency)
      : BenchSubscriber(record_latency),
        channel_(NewChannel(f)),
        stub_(ibsm::v1::Subscriber::NewStub(channel_)),
        credit_(static_cast<uint32_t>(f.credit)) {
    stream_ = stub_->Subscribe(&context_);
    ibsm::v1::SubscribeRequest open;
    open.mutable_open()->add_topics("border.>");
    open.mutable_open()->set_durable_name(name);
    open.mutable_open()->set_start(ibsm::v1::SubscribeRequest::Open::START_NEW);
    open.mutable_open()->set_credit(credit_);
    stream_->Write(open);
    ibsm::v1::SubscribeResponse first;
    if (!stream_->Read(&first) || !first.has_opened()) {
      Die("subscription was not opened: " + stream_->Finish().error_message());
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~WireSubscriber() override {
    context_.TryCancel();
    thread_.join();
  }

 private:
  void Run() {
    ibsm::v1::SubscribeResponse response;
    uint32_t unacked = 0;
    while (stream_->Read(&response)) {
      int64_t now = NowMicros();
      uint64_t last = 0;
      std::vector<int64_t> lat;
      for (const auto& d : response.deliveries()) {
        last = d.sequence();
        if (record_latency_) lat.push_back(LatencyMicros(d.alert(), now));
      }
      unacked += response.deliveries_size();
      // Latency runs are not credit-bound: return credit at once.
      if (unacked >= std::max<uint32_t>(1, credit_ / 4) ||
          (record_latency_ && response.deliveries_size() > 0)) {
        ibsm::v1::SubscribeRequest flow;
        flow.mutable_flow()->set_ack_sequence(last);
        flow.mutable_flow()->set_credit(unacked);
        stream_->Write(flow);
        unacked = 0;
      }
      Count(response.deliveries_size(), now, lat);
    }
    (void)stream_->Finish();  // cancelled at the end of the run
    End("the stream ended");
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ibsm::v1::Subscriber::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<ibsm::v1::SubscribeRequest,
                                           ibsm::v1::SubscribeResponse>>
      stream_;
  const uint32_t credit_;
  std::thread thread_;
};

// --mode=client: an ibsm::Subscriber on its own Client, push style; the
// callback counts each delivery and acknowledges it (Ack), as an agency's
// application that processes alerts one by one would.
class ClientSubscriber : public BenchSubscriber {
 public:
  ClientSubscriber(const Flags& f, const std::string& name, bool record_latency)
      : BenchSubscriber(record_latency), client_(ConnectClient(f, false)) {
    ibsm::SubscribeOptions options;
    options.topics = {"border.>"};
    options.durable_name = name;
    options.start = ibsm::SubscribeOptions::Start::kNew;
    options.credit = static_cast<uint32_t>(f.credit);
    absl::StatusOr<std::unique_ptr<ibsm::Subscriber>> subscriber =
        client_->NewSubscriber(options);
    if (!subscriber.ok()) {
      Die("NewSubscriber: " + subscriber.status().ToString());
    }
    subscriber_ = *std::move(subscriber);
    absl::Status started = subscriber_->Start(
        [this](const ibsm::v1::Delivery& d) {
          CountOne(NowMicros(), d.alert());
          subscriber_->Ack(d.sequence());
        },
        [this](const absl::Status& s) { End(s.ToString()); });
    if (!started.ok())
      Die("subscription was not opened: " + started.ToString());
  }
  // Sends the last acknowledgement and closes the stream.
  ~ClientSubscriber() override { subscriber_->Stop(); }

 private:
  std::unique_ptr<ibsm::Client> client_;
  std::unique_ptr<ibsm::Subscriber> subscriber_;
};

std::unique_ptr<BenchSubscriber> BenchSubscriber::Open(const Flags& f,
                                                       const std::string& name,
                                                       bool record_latency) {
  if (IsClientMode(f)) {
    return std::make_unique<ClientSubscriber>(f, name, record_latency);
  }
  return std::make_unique<WireSubscriber>(f, name, record_latency);
}

// Node.GetLinks at node A, as an admin there: the link's state and backlog.
class LinkProbe {
 public:
  LinkProbe(const Flags& admin, std::string peer)
      : channel_(NewChannel(admin)),
        stub_(ibsm::v1::Node::NewStub(channel_)),
        peer_(std::move(peer)) {}

  ibsm::v1::LinkInfo Get() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    ibsm::v1::Links links;
    grpc::Status s = stub_->GetLinks(&context, {}, &links);
    if (!s.ok()) Die("Node.GetLinks failed: " + s.error_message());
    for (const ibsm::v1::LinkInfo& link : links.links()) {
      if (link.peer() == peer_) return link;
    }
    Die("Node.GetLinks lists no link to " + peer_);
  }
  // Waits for the link to be up; returns its up_since (Unix µs).
  int64_t WaitUntilUp() {
    ibsm::v1::LinkInfo up = Poll("up", [](const ibsm::v1::LinkInfo& l) {
      return l.state() == ibsm::v1::LinkInfo::UP;
    });
    return up.up_since().seconds() * 1000000 + up.up_since().nanos() / 1000;
  }
  // Waits until every outbox entry towards the peer is acknowledged.
  void WaitUntilDrained() {
    Poll("drained", [](const ibsm::v1::LinkInfo& l) {
      return l.backlog_critical() + l.backlog_high() + l.backlog_other() == 0 &&
             l.in_flight() == 0;
    });
  }

 private:
  template <typename Pred>
  ibsm::v1::LinkInfo Poll(const char* what, Pred pred) {
    const Clock::time_point deadline =
        Clock::now() + absl::ToChronoNanoseconds(kStallTimeout);
    for (;;) {
      ibsm::v1::LinkInfo link = Get();
      if (pred(link)) return link;
      if (Clock::now() > deadline) {
        Die(absl::StrCat("the link to ", peer_, " was not ", what, " within ",
                         absl::FormatDuration(kStallTimeout), ": ",
                         link.last_error()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ibsm::v1::Node::Stub> stub_;
  const std::string peer_;
};

std::string Json(std::optional<double> v) {
  if (!v) return "null";
  return absl::StrCat(static_cast<int64_t>(*v + 0.5));
}

std::string Json(
    const std::optional<std::vector<std::pair<uint64_t, uint64_t>>>& pairs) {
  if (!pairs) return "null";
  std::string out = "[";
  for (const auto& [x, y] : *pairs) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "[", x, ",", y, "]");
  }
  return out + "]";
}

// The policy file's name, as a JSON string; null for none.
std::string PolicyJson(const Flags& f) {
  if (f.policy.empty()) return "null";
  return absl::StrCat(
      "\"", absl::CEscape(std::filesystem::path(f.policy).filename().string()),
      "\"");
}

// The signature and signing-chain sizes of one alert of this run, signed
// as --sign signs them (the client library signs the same way).
std::pair<size_t, size_t> SignatureSizes(const Flags& f,
                                         const std::string& run) {
  const std::unique_ptr<Signing> signing = LoadSigning(f);
  if (signing == nullptr) return {0, 0};
  ibsm::v1::Alert alert = Template(f, run);
  alert.set_id(run + "-size");
  alert.set_originator(signing->originator);
  alert.mutable_created_at()->set_seconds(NowMicros() / 1000000);
  absl::Status signed_alert =
      ibsm::SignAlert(*signing->key, signing->chain_der, &alert);
  if (!signed_alert.ok()) Die(std::string(signed_alert.message()));
  size_t chain = 0;
  for (const std::string& cert : alert.signing_chain()) chain += cert.size();
  return {alert.signature().size(), chain};
}

// The processes and identities of a run. Destroyed in reverse order: node A
// stops before the proxy and B, and the dir goes last.
struct Rig {
  std::unique_ptr<BenchDir> dir;
  std::unique_ptr<OwnBroker> peer;  // node B (MLI), link topology only
  std::unique_ptr<ibsm::testing::TcpProxy> proxy;  // between A and B
  std::unique_ptr<OwnBroker> node;  // node A (CIV), or the single node
  Flags publisher;                  // at A
  Flags subscriber;                 // at B; at A when single
  Flags admin;                      // CIV/focal-point at A (link topology)
  Flags noisy;                      // CIV/customs (--noisy-streams)
};

// The policy_file line of the nodes' config (none for --policy=).
std::string PolicyConfig(const Flags& f) {
  if (f.policy.empty()) return "";
  return absl::StrCat("policy_file: \"", absl::CEscape(f.policy), "\"\n");
}

void StartSingle(const Flags& f, Rig* rig) {
  rig->publisher = rig->subscriber = f;
  if (!f.target.empty()) return;  // someone else's broker
  rig->dir = std::make_unique<BenchDir>("--nodes CIV");
  rig->node = std::make_unique<OwnBroker>(f, *rig->dir, "CIV", PolicyConfig(f));
  rig->publisher = rig->subscriber = As(f, *rig->node, *rig->dir, "CIV/police");
  rig->noisy = As(f, *rig->node, *rig->dir, "CIV/customs");
}

void StartLink(const Flags& f, Rig* rig) {
  rig->dir = std::make_unique<BenchDir>(
      "--nodes CIV,MLI --agencies CIV/police,CIV/focal-point,MLI/customs");
  const std::string policy = PolicyConfig(f);
  const std::string window =
      f.link_window > 0 ? absl::StrCat("  window: ", f.link_window, "\n") : "";
  const std::string port_file = rig->dir->path() + "/MLI.fed-port";
  rig->peer = std::make_unique<OwnBroker>(
      f, *rig->dir, "MLI",
      absl::StrCat(policy, "federation {\n  listen_address: \"127.0.0.1:0\"\n",
                   "  port_file: \"", port_file, "\"\n",
                   "  peers { node_id: \"CIV\" }\n", window, "}\n"));
  std::string address = rig->peer->FederationAddress(port_file);
  if (NeedsProxy(f)) {
    auto proxy = ibsm::testing::TcpProxy::Start(address);
    if (!proxy.ok()) Die(std::string(proxy.status().message()));
    rig->proxy = *std::move(proxy);
    rig->proxy->SetBandwidth(f.link_kbps * 1000 / 8);
    rig->proxy->SetDelay(absl::Milliseconds(f.link_delay_ms));
    // W4 builds its backlog while no connection gets through.
    if (f.workload == "W4") rig->proxy->RefuseNew(true);
    address = rig->proxy->address();
  }
  rig->node = std::make_unique<OwnBroker>(
      f, *rig->dir, "CIV",
      absl::StrCat(
          policy, "federation {\n  peers { node_id: \"MLI\" address: \"",
          address, "\" }\n  reconnect_max_seconds: 1\n", window, "}\n"));
  rig->publisher = As(f, *rig->node, *rig->dir, "CIV/police");
  rig->subscriber = As(f, *rig->peer, *rig->dir, "MLI/customs");
  rig->admin = As(f, *rig->node, *rig->dir, "CIV/focal-point");
}

// What a run measured; unset keys print as null.
struct Results {
  uint64_t messages = 0;
  std::optional<double> rate, p50, p99, p999, delivered;
  std::optional<double> drain_ms, wire_bytes_per_alert, wire_bytes_single_alert,
      overhead_bytes_per_alert, signature_bytes, chain_bytes, crossing_first_ms,
      crossing_ms, crossing_after_reset_ms, relink_ms;
  // W6: [alerts, VmRSS KiB]; W3 with --rss-every-seconds: [seconds, KiB].
  std::optional<std::vector<std::pair<uint64_t, uint64_t>>> rss_samples;
};

// Percentiles of W3 from the subscriber's latencies.
void SetPercentiles(std::vector<int64_t> lat, Results* r) {
  if (lat.empty()) return;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    return static_cast<double>(
        lat[std::min<size_t>(lat.size() - 1, q * lat.size())]);
  };
  r->p50 = pct(0.50);
  r->p99 = pct(0.99);
  r->p999 = pct(0.999);
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The broker's current resident set, for the memory workloads.
uint64_t CurrentRss(const Rig& rig) {
  std::optional<uint64_t> kib = rig.node->CurrentRssKib();
  if (!kib) Die("cannot read the broker's VmRSS");
  return *kib;
}

// W6 (see the header).
void RunBacklogMemory(const Flags& f, const Rig& rig, const std::string& run,
                      Results* r) {
  // Its cursor is stored when it is opened; it never acknowledges.
  BenchSubscriber::Open(rig.subscriber, run + "-stopped", false).reset();
  std::vector<std::pair<uint64_t, uint64_t>> samples;
  samples.emplace_back(0, CurrentRss(rig));
  Checkpoints checkpoints;
  checkpoints.every = f.rss_every;
  checkpoints.at = [&](uint64_t acknowledged) {
    samples.emplace_back(acknowledged, CurrentRss(rig));
  };
  const Clock::time_point t0 = Clock::now();
  const uint64_t acked =
      Publish(rig.publisher, f.messages, 256, std::nullopt, run, &checkpoints);
  r->rate = acked / SecondsSince(t0);
  r->rss_samples = std::move(samples);
}

// W7: the broker's memory under hostile input (docs/security.md, "Limits").
// Rounds of: 300 idle TCP connections that never start TLS, 1,000 publish
// streams opened at once by one identity, Subscribe requests of 200,000
// patterns, oversized alerts and alerts of 20,000 attributes, for --seconds;
// then everything is closed and the node left idle for 10 s. rss_samples_kib
// is [round, VmRSS KiB]: round 0 before, the last one after the idle time.
void RunHostile(const Flags& f, const Rig& rig, Results* r) {
  const Flags& as = rig.publisher;
  const int port = std::stoi(as.target.substr(as.target.rfind(':') + 1));
  std::vector<std::pair<uint64_t, uint64_t>> samples;
  samples.emplace_back(0, CurrentRss(rig));
  auto channel = NewChannel(as);
  auto stub = ibsm::v1::Publisher::NewStub(channel);
  auto subscriber = ibsm::v1::Subscriber::NewStub(channel);
  ibsm::v1::SubscribeRequest huge;
  for (int i = 0; i < 200000; ++i) {
    huge.mutable_open()->add_topics(absl::StrCat("border.p", i));
  }
  ibsm::v1::PublishRequest oversized;
  *oversized.add_alerts() = Template(as, "hostile");
  oversized.mutable_alerts(0)->set_payload(std::string(2 << 20, 'x'));
  ibsm::v1::PublishRequest many_attributes;
  *many_attributes.add_alerts() = Template(as, "hostile");
  for (int i = 0; i < 20000; ++i) {
    (*many_attributes.mutable_alerts(0)
          ->mutable_attributes())[absl::StrCat("a", i)] = "v";
  }
  uint64_t refused = 0, calls = 0;
  const Clock::time_point t0 = Clock::now();
  for (uint64_t round = 1;
       round == 1 || SecondsSince(t0) < static_cast<double>(f.seconds);
       ++round) {
    std::vector<int> sockets;
    for (int i = 0; i < 300; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (fd >= 0 &&
          connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        sockets.push_back(fd);
      } else if (fd >= 0) {
        close(fd);
      }
    }
    struct Held {
      grpc::ClientContext context;
      std::unique_ptr<grpc::ClientReaderWriter<ibsm::v1::PublishRequest,
                                               ibsm::v1::PublishResponse>>
          stream;
    };
    std::vector<std::unique_ptr<Held>> streams;
    for (int i = 0; i < 1000; ++i) {
      auto held = std::make_unique<Held>();
      held->stream = stub->PublishStream(&held->context);
      streams.push_back(std::move(held));
    }
    for (int i = 0; i < 3; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
      auto stream = subscriber->Subscribe(&context);
      stream->Write(huge);
      stream->WritesDone();
      ibsm::v1::SubscribeResponse ignored;
      while (stream->Read(&ignored)) {
      }
      refused += !stream->Finish().ok();
      ++calls;
    }
    for (int i = 0; i < 20; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
      ibsm::v1::PublishResponse response;
      refused += !stub->Publish(&context, oversized, &response).ok();
      grpc::ClientContext again;
      again.set_deadline(context.deadline());
      refused += !stub->Publish(&again, many_attributes, &response).ok();
      calls += 2;
    }
    samples.emplace_back(round, CurrentRss(rig));
    for (auto& held : streams) held->context.TryCancel();
    for (auto& held : streams) {
      refused += !held->stream->Finish().ok();
      ++calls;
    }
    for (int fd : sockets) close(fd);
  }
  absl::SleepFor(absl::Seconds(10));
  samples.emplace_back(samples.size(), CurrentRss(rig));
  r->messages = calls;
  r->delivered = static_cast<double>(refused);
  r->rss_samples = std::move(samples);
}

// W3's --rss-every-seconds: samples VmRSS at 0, S, 2S, ... seconds on its
// own thread, until destroyed.
class RssSampler {
 public:
  RssSampler(const Rig& rig, uint64_t every_seconds)
      : rig_(rig), every_(absl::Seconds(every_seconds)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RssSampler() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  std::vector<std::pair<uint64_t, uint64_t>> Samples() {
    absl::MutexLock lock(&mu_);
    return samples_;
  }

 private:
  void Run() {
    const absl::Time start = absl::Now();
    for (uint64_t i = 0;; ++i) {
      const uint64_t kib = CurrentRss(rig_);
      absl::MutexLock lock(&mu_);
      samples_.emplace_back(i * absl::ToInt64Seconds(every_), kib);
      auto stopping = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithDeadline(absl::Condition(&stopping),
                                start + every_ * static_cast<double>(i + 1))) {
        return;
      }
    }
  }

  const Rig& rig_;
  const absl::Duration every_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<uint64_t, uint64_t>> samples_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// W4 (see the header).
void RunDrain(const Flags& f, const Rig& rig, const std::string& run,
              Results* r) {
  LinkProbe probe(rig.admin, "MLI");
  const std::unique_ptr<BenchSubscriber> sub =
      BenchSubscriber::Open(rig.subscriber, run + "-drain", false);
  Publish(rig.publisher, f.messages, 256, std::nullopt, run);
  rig.proxy->RefuseNew(false);
  const int64_t up_us = probe.WaitUntilUp();
  sub->WaitFor(f.messages);
  probe.WaitUntilDrained();
  const int64_t drain_us =
      std::max<int64_t>(1, sub->LastDeliveryMicros() - up_us);
  r->drain_ms = drain_us / 1000.0;
  r->rate = f.messages / (drain_us / 1e6);
  r->delivered = sub->Received();
}

// W5 (see the header).
void RunThinLink(const Flags& f, const Rig& rig, const std::string& run,
                 Results* r) {
  LinkProbe probe(rig.admin, "MLI");
  const std::unique_ptr<BenchSubscriber> sub =
      BenchSubscriber::Open(rig.subscriber, run + "-thin", true);
  probe.WaitUntilUp();
  const ibsm::testing::TcpProxy& proxy = *rig.proxy;
  auto wire = [&] { return proxy.bytes_to_target() + proxy.bytes_to_client(); };
  uint64_t expected = 0;
  // Publishes one alert and returns its publish-to-delivery time in ms.
  auto cross_one = [&](const std::string& tag) {
    Publish(rig.publisher, 1, 1, absl::Milliseconds(1), tag);
    sub->WaitFor(++expected);
    std::vector<int64_t> lat = sub->TakeLatencies();
    if (lat.empty()) Die("no latency recorded");
    return lat.back() / 1000.0;
  };
  r->crossing_first_ms = cross_one(run + "-first");
  probe.WaitUntilDrained();
  std::vector<double> crossings;
  uint64_t single_bytes = 0;
  for (int i = 0; i < 3; ++i) {
    const uint64_t before = wire();
    crossings.push_back(cross_one(absl::StrCat(run, "-single", i)));
    probe.WaitUntilDrained();
    single_bytes += wire() - before;
  }
  std::sort(crossings.begin(), crossings.end());
  r->crossing_ms = crossings[1];
  r->wire_bytes_single_alert = single_bytes / 3.0;

  const uint64_t before = wire();
  const Clock::time_point t0 = Clock::now();
  Publish(rig.publisher, f.messages, 256, std::nullopt, run + "-batch");
  expected += f.messages;
  sub->WaitFor(expected);
  r->rate = f.messages / SecondsSince(t0);
  probe.WaitUntilDrained();
  (void)sub->TakeLatencies();  // not paced: created_at is not the send time
  r->wire_bytes_per_alert = static_cast<double>(wire() - before) / f.messages;
  const auto [signature, chain] = SignatureSizes(rig.publisher, run);
  r->signature_bytes = signature;
  r->chain_bytes = chain;
  r->overhead_bytes_per_alert =
      *r->wire_bytes_per_alert - static_cast<double>(f.size) - signature;

  const int64_t reset_us = NowMicros();
  rig.proxy->ResetAll();
  r->crossing_after_reset_ms = cross_one(run + "-reset");
  const google::protobuf::Timestamp up = probe.Get().up_since();
  r->relink_ms =
      (up.seconds() * 1000000 + up.nanos() / 1000 - reset_us) / 1000.0;
  r->delivered = sub->Received();
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  Rig rig;
  if (IsLink(f)) {
    StartLink(f, &rig);
  } else {
    StartSingle(f, &rig);
  }
  const Flags& pub = rig.publisher;
  const Flags& at_sub = rig.subscriber;
  const std::string run = absl::StrCat("bench-", NowMicros());
  Results r;
  r.messages = f.messages;
  const double cpu_before = rig.node != nullptr ? rig.node->CpuSeconds() : 0;
  if (IsLink(f) && f.workload != "W4")
    LinkProbe(rig.admin, "MLI").WaitUntilUp();

  std::optional<NoisyNeighbour> noisy;
  if (f.noisy_streams > 0) noisy.emplace(rig.noisy, f.noisy_streams, run);
  if (f.workload == "W1" && !IsLink(f)) {
    Clock::time_point t0 = Clock::now();
    uint64_t acked = Publish(pub, f.messages, 256, std::nullopt, run);
    r.rate = acked / SecondsSince(t0);
  } else if (f.workload == "W1") {
    // Publish at A to delivery at B.
    const std::unique_ptr<BenchSubscriber> sub =
        BenchSubscriber::Open(at_sub, run + "-sub", false);
    Clock::time_point t0 = Clock::now();
    Publish(pub, f.messages, 256, std::nullopt, run);
    sub->WaitFor(f.messages);
    r.rate = f.messages / SecondsSince(t0);
    r.delivered = sub->Received();
  } else if (f.workload == "W2") {
    std::vector<std::unique_ptr<BenchSubscriber>> subs;
    for (int i = 0; i < f.subscribers; ++i) {
      subs.push_back(
          BenchSubscriber::Open(at_sub, absl::StrCat(run, "-sub", i), false));
    }
    Clock::time_point t0 = Clock::now();
    std::thread publisher(
        [&] { Publish(pub, f.messages, 256, std::nullopt, run); });
    for (auto& s : subs) s->WaitFor(f.messages);
    double secs = SecondsSince(t0);
    publisher.join();
    r.rate = static_cast<double>(f.messages) * f.subscribers / secs;
    uint64_t least = f.messages;
    for (auto& s : subs) least = std::min(least, s->Received());
    r.delivered = least;
  } else if (f.workload == "W3") {
    r.messages = f.rate * f.seconds;
    const std::unique_ptr<BenchSubscriber> sub =
        BenchSubscriber::Open(at_sub, run + "-lat", true);
    std::optional<RssSampler> sampler;
    if (f.rss_every_seconds > 0) sampler.emplace(rig, f.rss_every_seconds);
    Clock::time_point t0 = Clock::now();
    Publish(pub, r.messages, 1 << 20,
            absl::Seconds(1) / static_cast<double>(f.rate), run);
    sub->WaitFor(r.messages);
    r.rate = r.messages / SecondsSince(t0);
    if (sampler) {
      r.rss_samples = sampler->Samples();
      sampler.reset();
    }
    SetPercentiles(sub->TakeLatencies(), &r);
    r.delivered = sub->Received();
  } else if (f.workload == "W4") {
    RunDrain(f, rig, run, &r);
  } else if (f.workload == "W6") {
    RunBacklogMemory(f, rig, run, &r);
  } else if (f.workload == "W7") {
    RunHostile(f, rig, &r);
  } else {
    RunThinLink(f, rig, run, &r);
  }
  std::optional<double> noisy_accepted, noisy_refused;
  if (noisy) {
    noisy_accepted = static_cast<double>(noisy->accepted());
    noisy_refused = static_cast<double>(noisy->refused());
    noisy.reset();
  }
  std::optional<double> cpu_per_alert;
  if (rig.node != nullptr && r.messages > 0) {
    cpu_per_alert = (rig.node->CpuSeconds() - cpu_before) * 1e6 /
                    static_cast<double>(r.messages);
  }
  auto rss = [](const std::unique_ptr<OwnBroker>& b) -> std::optional<double> {
    if (b == nullptr) return std::nullopt;
    if (auto kib = b->PeakRssKib()) return static_cast<double>(*kib);
    return std::nullopt;
  };
  auto shaped = [&](uint64_t v) -> std::optional<double> {
    if (!IsLink(f) || rig.proxy == nullptr || v == 0) return std::nullopt;
    return static_cast<double>(v);
  };
  std::string line = absl::StrCat(
      "{\"workload\":\"", f.workload, "\",\"messages\":", r.messages,
      ",\"size\":", f.size, ",\"msgs_per_sec\":", Json(r.rate),
      ",\"p50_us\":", Json(r.p50), ",\"p99_us\":", Json(r.p99),
      ",\"p999_us\":", Json(r.p999),
      ",\"broker_rss_kib\":", Json(rss(rig.node)),
      ",\"signed\":", f.sign ? "true" : "false", ",\"topology\":\"", f.topology,
      "\",\"payload\":\"", f.payload, "\",\"delivered\":", Json(r.delivered),
      ",\"peer_rss_kib\":", Json(rss(rig.peer)),
      ",\"link_kbps\":", Json(shaped(f.link_kbps)),
      ",\"link_delay_ms\":", Json(shaped(f.link_delay_ms)));
  absl::StrAppend(
      &line, ",\"drain_ms\":", Json(r.drain_ms),
      ",\"wire_bytes_per_alert\":", Json(r.wire_bytes_per_alert),
      ",\"wire_bytes_single_alert\":", Json(r.wire_bytes_single_alert),
      ",\"overhead_bytes_per_alert\":", Json(r.overhead_bytes_per_alert),
      ",\"signature_bytes\":", Json(r.signature_bytes),
      ",\"chain_bytes\":", Json(r.chain_bytes),
      ",\"crossing_first_ms\":", Json(r.crossing_first_ms),
      ",\"crossing_ms\":", Json(r.crossing_ms),
      ",\"crossing_after_reset_ms\":", Json(r.crossing_after_reset_ms),
      ",\"relink_ms\":", Json(r.relink_ms), ",\"mode\":\"", f.mode,
      "\",\"policy\":", PolicyJson(f),
      ",\"rss_samples_kib\":", Json(r.rss_samples),
      ",\"encryption\":", f.encryption ? "true" : "false",
      ",\"broker_cpu_us_per_alert\":", Json(cpu_per_alert),
      ",\"noisy_streams\":", f.noisy_streams, ",\"identity_rate\":",
      Json(f.identity_rate > 0 ? std::optional<double>(f.identity_rate)
                               : std::nullopt),
      ",\"noisy_accepted\":", Json(noisy_accepted),
      ",\"noisy_refused\":", Json(noisy_refused), "}\n");
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  rig.node.reset();
  rig.proxy.reset();
  rig.peer.reset();
  rig.dir.reset();
  _exit(0);
}
