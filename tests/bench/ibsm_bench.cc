// ibsm-bench: throughput and latency of an IBSM Exchange node.
//
//   ibsm-bench --workload=W1|W2|W3 [--messages=N] [--size=BYTES]
//              [--subscribers=K] [--rate=PER_SEC] [--seconds=T]
//              [--durability=sync|async] [--sign]
//              [--target=HOST:PORT --ca=FILE --cert=FILE --key=FILE]
//
// Without --target it makes a development PKI, starts its own ibsm-broker
// (child process, temp dir, default config) and stops it afterwards. It
// prints exactly one JSON line (keys that do not apply are null):
//   {"workload":"W1","messages":N,"size":S,"msgs_per_sec":X,"p50_us":..,
//    "p99_us":..,"p999_us":..,"broker_rss_kib":..,"signed":false}
// --sign signs every alert as its originator (docs/signature-format.md) with
// --key and the chain of --cert before it is sent, as the client library
// does; without it alerts are unsigned (the node is not federated).
// W1  publish throughput: 1 publisher, N alerts, <= 256 unacknowledged.
// W2  fan-out: K durable subscribers each receive all N; delivered/s.
// W3  latency: R alerts/s for T s; publish-to-delivery percentiles.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ibsm/alert_signature.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "ibsm/tls.h"
#include "ibsm/v1/broker.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

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
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ibsm-bench: %s\n", message.c_str());
  std::exit(2);
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
    else if (name == "messages")
      number(&f.messages);
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
  if (f.workload != "W1" && f.workload != "W2" && f.workload != "W3") {
    Die("--workload must be W1, W2 or W3");
  }
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

// The broker this run measures, when ibsm-bench starts its own.
class OwnBroker {
 public:
  explicit OwnBroker(const Flags& flags) {
    char tmpl[] = "/tmp/ibsm-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("cannot make a temp dir");
    dir_ = tmpl;
    std::string pki = dir_ + "/pki";
    std::string script =
        std::string(IBSM_SOURCE_DIR) + "/certs/make-dev-pki.sh";
    std::string cmd = absl::StrCat("bash '", script, "' '", pki,
                                   "' --quiet --nodes CIV >/dev/null");
    if (std::system(cmd.c_str()) != 0) Die("making the PKI failed: " + cmd);
    ca_ = pki + "/ca.pem";
    cert_ = pki + "/agency-CIV_police-chain.pem";
    key_ = pki + "/agency-CIV_police.key";
    std::string config = dir_ + "/node.textproto";
    std::ofstream(config) << absl::StrCat(
        "node_id: \"CIV\"\nlisten_address: \"127.0.0.1:0\"\n", "data_dir: \"",
        dir_, "/data\"\nport_file: \"", dir_, "/port\"\n", "durability: ",
        flags.durability == "sync" ? "DURABILITY_SYNC" : "DURABILITY_ASYNC",
        "\ntls {\n cert_file: \"", pki, "/node-CIV-chain.pem\"\n key_file: \"",
        pki, "/node-CIV.key\"\n ca_file: \"", ca_, "\"\n crl_dir: \"", pki,
        "/crl\"\n}\n");
    std::string broker = SelfDir() + "/ibsm-broker";
    pid_ = fork();
    if (pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      // IBSM_BENCH_BROKER_LOG=1 keeps the broker's log on stderr.
      if (getenv("IBSM_BENCH_BROKER_LOG") == nullptr) dup2(devnull, 2);
      execl(broker.c_str(), broker.c_str(), "--config", config.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 3000; ++i) {
      std::ifstream in(dir_ + "/port");
      int port = 0;
      if (in >> port && port > 0) {
        target_ = absl::StrCat("127.0.0.1:", port);
        return;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) Die("ibsm-broker exited");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Die("ibsm-broker did not start");
  }
  ~OwnBroker() {
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Peak resident set of the broker so far, in KiB.
  std::optional<uint64_t> PeakRssKib() const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmHWM:", 0) == 0) {
        uint64_t kib = 0;
        if (absl::SimpleAtoi(line.substr(6, line.size() - 9), &kib)) return kib;
      }
    }
    return std::nullopt;
  }
  const std::string& target() const { return target_; }
  const std::string& ca() const { return ca_; }
  const std::string& cert() const { return cert_; }
  const std::string& key() const { return key_; }

 private:
  std::string dir_, target_, ca_, cert_, key_;
  pid_t pid_ = -1;
};

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

// Publishes `count` alerts on one stream with at most `window`
// unacknowledged, `pace` (if set) spacing them in time. Returns acknowledged.
uint64_t PublishAll(const Flags& f, uint64_t count, size_t window,
                    std::optional<absl::Duration> pace,
                    const std::string& run) {
  const std::unique_ptr<Signing> signing = LoadSigning(f);
  auto channel = NewChannel(f);
  auto stub = ibsm::v1::Publisher::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->PublishStream(&context);
  absl::Mutex mu;
  size_t inflight = 0;
  uint64_t acked = 0, failed = 0;
  bool reader_done = false;
  std::thread reader([&] {
    ibsm::v1::PublishResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      for (const auto& r : response.results()) {
        if (r.code() == 0)
          ++acked;
        else
          ++failed;
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
                     " alerts refused)"));
  }
  return acked;
}

// One durable subscriber that counts (and optionally times) deliveries.
class BenchSubscriber {
 public:
  BenchSubscriber(const Flags& f, const std::string& name, bool record_latency)
      : channel_(NewChannel(f)),
        stub_(ibsm::v1::Subscriber::NewStub(channel_)),
        record_latency_(record_latency) {
    stream_ = stub_->Subscribe(&context_);
    ibsm::v1::SubscribeRequest open;
    open.mutable_open()->add_topics("border.>");
    open.mutable_open()->set_durable_name(name);
    open.mutable_open()->set_start(ibsm::v1::SubscribeRequest::Open::START_NEW);
    open.mutable_open()->set_credit(kWindow);
    stream_->Write(open);
    ibsm::v1::SubscribeResponse first;
    if (!stream_->Read(&first) || !first.has_opened()) {
      Die("subscription was not opened: " + stream_->Finish().error_message());
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~BenchSubscriber() {
    context_.TryCancel();
    thread_.join();
  }
  void WaitFor(uint64_t n) {
    absl::MutexLock lock(&mu_);
    auto done = [&] { return received_ >= n || ended_; };
    mu_.Await(absl::Condition(&done));
    if (received_ < n) Die("a subscription ended early");
  }
  std::vector<int64_t> TakeLatencies() {
    absl::MutexLock lock(&mu_);
    return std::move(latencies_);
  }

 private:
  static constexpr uint32_t kWindow = 4096;

  void Run() {
    ibsm::v1::SubscribeResponse response;
    uint32_t unacked = 0;
    while (stream_->Read(&response)) {
      int64_t now = NowMicros();
      uint64_t last = 0;
      std::vector<int64_t> lat;
      for (const auto& d : response.deliveries()) {
        last = d.sequence();
        if (record_latency_) {
          const auto& c = d.alert().created_at();
          lat.push_back(now - (c.seconds() * 1000000 + c.nanos() / 1000));
        }
      }
      unacked += response.deliveries_size();
      if (unacked >= kWindow / 4) {
        ibsm::v1::SubscribeRequest flow;
        flow.mutable_flow()->set_ack_sequence(last);
        flow.mutable_flow()->set_credit(unacked);
        stream_->Write(flow);
        unacked = 0;
      } else if (record_latency_ && response.deliveries_size() > 0) {
        // Latency runs are not credit-bound: return credit at once.
        ibsm::v1::SubscribeRequest flow;
        flow.mutable_flow()->set_ack_sequence(last);
        flow.mutable_flow()->set_credit(unacked);
        stream_->Write(flow);
        unacked = 0;
      }
      absl::MutexLock lock(&mu_);
      received_ += response.deliveries_size();
      latencies_.insert(latencies_.end(), lat.begin(), lat.end());
    }
    (void)stream_->Finish();  // cancelled at the end of the run
    absl::MutexLock lock(&mu_);
    ended_ = true;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ibsm::v1::Subscriber::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<ibsm::v1::SubscribeRequest,
                                           ibsm::v1::SubscribeResponse>>
      stream_;
  const bool record_latency_;
  std::thread thread_;
  absl::Mutex mu_;
  uint64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int64_t> latencies_ ABSL_GUARDED_BY(mu_);
};

std::string Json(std::optional<double> v) {
  if (!v) return "null";
  return absl::StrCat(static_cast<int64_t>(*v + 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  std::unique_ptr<OwnBroker> own;
  if (f.target.empty()) {
    own = std::make_unique<OwnBroker>(f);
    f.target = own->target();
    f.ca = own->ca();
    f.cert = own->cert();
    f.key = own->key();
  }
  const std::string run = absl::StrCat("bench-", NowMicros());
  std::optional<double> rate, p50, p99, p999;
  uint64_t messages = f.messages;

  if (f.workload == "W1") {
    Clock::time_point t0 = Clock::now();
    uint64_t acked = PublishAll(f, f.messages, 256, std::nullopt, run);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    rate = acked / secs;
  } else if (f.workload == "W2") {
    std::vector<std::unique_ptr<BenchSubscriber>> subs;
    for (int i = 0; i < f.subscribers; ++i) {
      subs.push_back(std::make_unique<BenchSubscriber>(
          f, absl::StrCat(run, "-sub", i), false));
    }
    Clock::time_point t0 = Clock::now();
    std::thread publisher(
        [&] { PublishAll(f, f.messages, 256, std::nullopt, run); });
    for (auto& s : subs) s->WaitFor(f.messages);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    publisher.join();
    rate = static_cast<double>(f.messages) * f.subscribers / secs;
  } else {
    messages = f.rate * f.seconds;
    BenchSubscriber sub(f, run + "-lat", true);
    Clock::time_point t0 = Clock::now();
    PublishAll(f, messages, 1 << 20,
               absl::Seconds(1) / static_cast<double>(f.rate), run);
    sub.WaitFor(messages);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    rate = messages / secs;
    std::vector<int64_t> lat = sub.TakeLatencies();
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      return static_cast<double>(
          lat[std::min<size_t>(lat.size() - 1, q * lat.size())]);
    };
    if (!lat.empty()) {
      p50 = pct(0.50);
      p99 = pct(0.99);
      p999 = pct(0.999);
    }
  }
  std::optional<double> rss;
  if (own) {
    if (auto kib = own->PeakRssKib()) rss = static_cast<double>(*kib);
  }
  std::printf(
      "{\"workload\":\"%s\",\"messages\":%llu,\"size\":%llu,"
      "\"msgs_per_sec\":%s,\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,"
      "\"broker_rss_kib\":%s,\"signed\":%s}\n",
      f.workload.c_str(), static_cast<unsigned long long>(messages),
      static_cast<unsigned long long>(f.size), Json(rate).c_str(),
      Json(p50).c_str(), Json(p99).c_str(), Json(p999).c_str(),
      Json(rss).c_str(), f.sign ? "true" : "false");
  std::fflush(stdout);
  own.reset();
  _exit(0);
}
