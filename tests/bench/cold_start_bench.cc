// ibsm-cold-start-bench: how long a node with a big stored log takes from
// exec to serving (issue #10: 10,000,000 stored alerts, serving within 2 s).
//
//   ibsm-cold-start-bench [--alerts=N] [--runs=R] [--cache=warm|cold|both]
//                         [--data-dir=DIR [--reuse]] [--keep] [--peer=0|1]
//                         [--outbox-backlog=K] [--broker=PATH] [--crash]
//
// 1. Generation (not timed as start-up; "generate_s"): a data directory of N
//    stored alerts (default 10,000,000), written in-process through the
//    broker's own Store, AuditTrail and Committer (not gRPC), so it holds
//    what a node that accepted N publishes holds: the log records, dedup
//    entries, AUDIT_PUBLISH records with their Merkle nodes, alert-audit
//    links, signed checkpoints (every 1000 records), four durable cursors
//    and, with --peer=1 (the default), outbox entries for peer MLI for the
//    newest --outbox-backlog alerts (default 10,000). Payloads are 1 KiB of
//    random bytes: they do not compress, like the encrypted or binary
//    payloads agencies send. The committer writes unsynced (nothing is
//    acknowledged to anyone) and the store is flushed at the end, as a
//    clean stop does; with --crash it is synced but not flushed, as a node
//    that crashed under load leaves it: the first run then replays the
//    write-ahead log.
//    --data-dir=DIR --reuse starts from DIR as it is (generated earlier with
//    --keep): generate_s is then 0 and N is read from nothing, so pass the
//    same --alerts.
// 2. R runs (default 3): the real ibsm-broker (next to this binary, or
//    --broker) is exec'd on the directory with a development PKI (real
//    mTLS), and serving_ms is the time from just before fork() to the
//    first successful Node.GetInfo over mTLS as CIV/police (polling the
//    broker's port file every millisecond, then one call). Then SIGTERM and
//    wait. --cache=warm leaves the page cache as it is; cold writes 3 to
//    /proc/sys/vm/drop_caches (needs root) before each run; both does the R
//    warm runs, then R cold ones ("cold_serving_ms").
// It prints one JSON line (keys are only ever added, never renamed):
//   {"bench":"cold-start","alerts":N,"data_bytes":B,"serving_ms":[...],
//    "median_ms":M,"min_ms":..,"max_ms":..,"generate_s":G,"cache":"warm",
//    "cold_serving_ms":[...]|null,"cold_median_ms":..|null,"runs":R,
//    "peer":true,"outbox_backlog":K,"crash":false}
// Before generating it checks the free space (about 1.5 KiB per alert with
// RocksDB's temporary compaction room) and refuses with a message when
// there is not enough. A generated directory is removed at the end unless
// --keep; a --reuse one is left as it is.
// IBSM_BENCH_BROKER_LOG=1 keeps the broker's log on stderr.
#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_trail.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"
#include "ibsm/tls.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "publish/committer.h"
#include "publish/publish_path.h"
#include "storage/key_codec.h"
#include "storage/log_cache.h"
#include "storage/outbox.h"
#include "storage/store.h"

namespace {

namespace broker = ibsm::broker;
using Clock = std::chrono::steady_clock;

constexpr const char* kNode = "CIV";
constexpr const char* kPeer = "MLI";
constexpr const char* kAgency = "CIV/police";
constexpr size_t kPayloadBytes = 1024;
constexpr size_t kGroupAlerts = 4096;
constexpr int kInFlightGroups = 4;
constexpr int kCursors = 4;
// Free space wanted per alert: its records (about 1.3 KiB) and room for
// compactions.
constexpr uint64_t kBytesPerAlert = 1600;

struct Flags {
  uint64_t alerts = 10'000'000;
  int runs = 3;
  std::string cache = "warm";
  std::string data_dir;
  bool reuse = false;
  bool keep = false;
  bool peer = true;
  bool crash = false;
  uint64_t outbox_backlog = 10'000;
  std::string broker;
};

std::vector<std::string>* const temp_dirs = new std::vector<std::string>;
pid_t running_broker = -1;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ibsm-cold-start-bench: %s\n", message.c_str());
  if (running_broker > 0) {
    kill(running_broker, SIGKILL);
    int status;
    waitpid(running_broker, &status, 0);
  }
  for (const std::string& dir : *temp_dirs) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  _exit(2);
}

bool ParseUint(absl::string_view arg, absl::string_view name, uint64_t* out) {
  if (!absl::ConsumePrefix(&arg, name)) return false;
  if (!absl::SimpleAtoi(arg, out)) {
    Die(absl::StrCat(name, " needs a non-negative number"));
  }
  return true;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    uint64_t n = 0;
    if (ParseUint(arg, "--alerts=", &f.alerts)) {
    } else if (ParseUint(arg, "--runs=", &n)) {
      f.runs = static_cast<int>(std::min<uint64_t>(n, 1000));
    } else if (ParseUint(arg, "--outbox-backlog=", &f.outbox_backlog)) {
    } else if (ParseUint(arg, "--peer=", &n)) {
      f.peer = n != 0;
    } else if (absl::ConsumePrefix(&arg, "--cache=")) {
      f.cache = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--data-dir=")) {
      f.data_dir = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--broker=")) {
      f.broker = std::string(arg);
    } else if (arg == "--reuse") {
      f.reuse = true;
    } else if (arg == "--keep") {
      f.keep = true;
    } else if (arg == "--crash") {
      f.crash = true;
    } else {
      Die(absl::StrCat("unknown argument '", arg, "' (see the comment at ",
                       "the top of tests/bench/cold_start_bench.cc)"));
    }
  }
  if (f.alerts == 0 || f.alerts > 1'000'000'000) {
    Die("--alerts must be 1..1000000000");
  }
  if (f.runs < 1) Die("--runs must be at least 1");
  if (f.cache != "warm" && f.cache != "cold" && f.cache != "both") {
    Die("--cache must be warm, cold or both");
  }
  if (f.reuse && f.data_dir.empty()) Die("--reuse needs --data-dir");
  f.outbox_backlog = f.peer ? std::min(f.outbox_backlog, f.alerts) : 0;
  if (f.outbox_backlog > 100'000) {
    Die("--outbox-backlog must be at most 100000 (the peer's default bound)");
  }
  return f;
}

std::string SelfDir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
  }
  return bytes;
}

uint64_t FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) {
    Die(absl::StrCat("cannot read the free space of ", path));
  }
  return uint64_t{fs.f_bavail} * fs.f_frsize;
}

// A fast generator of bytes that do not compress (splitmix64).
class RandomBytes {
 public:
  explicit RandomBytes(uint64_t seed) : state_(seed) {}
  void Fill(std::string* out, size_t n) {
    out->resize(n);
    for (size_t i = 0; i < n; i += 8) {
      uint64_t z = (state_ += 0x9e3779b97f4a7c15);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
      z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
      z ^= z >> 31;
      std::memcpy(out->data() + i, &z, std::min<size_t>(8, n - i));
    }
  }

 private:
  uint64_t state_;
};

// One publish entry as PreparePublish (broker/publish/publish_path.cc)
// builds it for CIV/police under the shipped policy's rule.
broker::PublishEntry MakeEntry(uint64_t n, RandomBytes* random,
                               const google::protobuf::Timestamp& now,
                               bool to_peer) {
  broker::PublishEntry entry;
  entry.actor = kAgency;
  entry.record = std::make_shared<broker::LogRecord>();
  ibsm::internal::v1::StoredAlert& stored = entry.record->stored;
  ibsm::v1::Alert& alert = *stored.mutable_alert();
  alert.set_id(absl::StrCat("cold-start-", n));
  alert.set_topic("border.incident");
  alert.set_classification("RESTRICTED");
  alert.set_severity(n % 10 == 0 ? ibsm::v1::SEVERITY_HIGH
                                 : ibsm::v1::SEVERITY_MEDIUM);
  alert.set_content_type("application/octet-stream");
  random->Fill(alert.mutable_payload(), kPayloadBytes);
  alert.set_originator(kAgency);
  entry.payload_sha256 = std::string(
      ibsm::crypto::HashView(ibsm::crypto::Sha256(alert.payload())));
  entry.decision_rule = "border-incident";
  entry.policy_version = "cold-start-bench";
  entry.content_sha256 = broker::AlertContentSha256InPlace(&alert);
  *alert.mutable_created_at() = now;
  *stored.mutable_received_at() = now;
  stored.set_received_from(kNode);
  if (to_peer) entry.outbox_peers.push_back(kPeer);
  entry.value = stored.SerializeAsString();
  entry.record->bytes = entry.value.size();
  entry.record->charge = broker::LogCache::Charge(*entry.record);
  return entry;
}

// Writes `f.alerts` alerts into `data_dir` through the broker's committer.
void Generate(const Flags& f, const std::string& data_dir,
              const std::string& key_file) {
  absl::StatusOr<std::unique_ptr<broker::Store>> store =
      broker::Store::Open({data_dir, kNode});
  if (!store.ok()) Die(std::string(store.status().message()));
  if ((*store)->recovered_last_sequence() != 0) {
    Die(absl::StrCat(data_dir, " holds alerts already; use --reuse or an ",
                     "empty directory"));
  }
  broker::LogCache cache(size_t{16} << 20, 1);
  absl::StatusOr<std::string> key_pem = ibsm::ReadFileToString(key_file);
  if (!key_pem.ok()) Die(std::string(key_pem.status().message()));
  absl::StatusOr<ibsm::SigningKey> key = ibsm::SigningKey::FromPem(*key_pem);
  if (!key.ok()) Die(std::string(key.status().message()));
  broker::AuditOptions audit_options;
  audit_options.node_id = kNode;
  absl::StatusOr<std::unique_ptr<broker::AuditTrail>> audit =
      broker::AuditTrail::Open(store->get(), *std::move(key), audit_options);
  if (!audit.ok()) Die(std::string(audit.status().message()));
  std::unique_ptr<broker::Outbox> outbox;
  if (f.peer) {
    absl::flat_hash_map<std::string, broker::OutboxBounds> bounds;
    bounds[kPeer] = {100'000, uint64_t{1024} << 20};
    absl::StatusOr<std::unique_ptr<broker::Outbox>> loaded =
        broker::Outbox::Load(**store, std::move(bounds));
    if (!loaded.ok()) Die(std::string(loaded.status().message()));
    outbox = *std::move(loaded);
  }
  broker::CommitterOptions options;
  options.sync = false;  // nothing is acknowledged to anyone
  options.max_group_alerts = kGroupAlerts;
  options.outbox = outbox.get();
  auto committer = std::make_unique<broker::Committer>(
      store->get(), &cache, audit->get(), options, [](uint64_t) {});
  committer->Audit(broker::AuditEvent(ibsm::v1::AUDIT_NODE_START, kNode, true,
                                      "cold-start bench: generating"));

  absl::Mutex mu;
  int in_flight = 0;
  std::string failure;
  RandomBytes random(0x1b5e);
  const google::protobuf::Timestamp now =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  const uint64_t first_to_peer = f.alerts - f.outbox_backlog;
  uint64_t next = 0;
  uint64_t last_report = 0;
  const auto start = Clock::now();
  while (next < f.alerts) {
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](int* n) { return *n < kInFlightGroups; }, &in_flight));
      if (!failure.empty()) Die("generating failed: " + failure);
      ++in_flight;
    }
    auto group = std::make_unique<broker::PublishGroup>();
    const uint64_t end = std::min<uint64_t>(f.alerts, next + kGroupAlerts);
    group->entries.reserve(end - next);
    for (; next < end; ++next) {
      group->entries.push_back(
          MakeEntry(next, &random, now, next >= first_to_peer));
    }
    group->done = [&mu, &in_flight,
                   &failure](std::unique_ptr<broker::PublishGroup> g) {
      absl::Status first = broker::FirstError(*g);
      absl::MutexLock lock(&mu);
      if (!first.ok() && failure.empty()) {
        failure = std::string(first.message());
      }
      --in_flight;
    };
    committer->Submit(std::move(group));
    // Subscriptions that acknowledged part of the log: their cursors.
    if (next / 100'000 != last_report / 100'000 || next == f.alerts) {
      for (int c = 0; c < kCursors; ++c) {
        committer->UpdateCursor(
            broker::CursorKey(kAgency, absl::StrCat("durable-", c)),
            next * (c + 1) / (kCursors + 1));
      }
    }
    if (next / 1'000'000 != last_report / 1'000'000) {
      const double s =
          std::chrono::duration<double>(Clock::now() - start).count();
      std::fprintf(stderr, "ibsm-cold-start-bench: %llu alerts in %.0f s\n",
                   static_cast<unsigned long long>(next), s);
    }
    last_report = next;
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &in_flight));
    if (!failure.empty()) Die("generating failed: " + failure);
  }
  committer->Audit(broker::AuditEvent(ibsm::v1::AUDIT_NODE_STOP, kNode, true,
                                      "cold-start bench: generated"));
  committer->Stop();
  committer.reset();
  if (absl::Status s = (*store)->SyncLog(); !s.ok()) {
    Die(std::string(s.message()));
  }
  // A node that crashed under load leaves its write-ahead log behind, for
  // the next start to replay; one that stopped cleanly flushed it.
  if (f.crash) return;
  if (absl::Status s = (*store)->Flush(); !s.ok()) {
    Die(std::string(s.message()));
  }
}

// Waits for a port file written by a broker; 0 when `pid` exits first.
int WaitForPortFile(const std::string& file, pid_t pid) {
  const auto deadline = Clock::now() + std::chrono::minutes(10);
  while (Clock::now() < deadline) {
    std::ifstream in(file);
    int port = 0;
    if (in >> port && port > 0) return port;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return 0;
}

struct Pki {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
};

void DropCaches() {
  sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  out << "3\n";
  out.close();
  if (!out) {
    Die("--cache=cold needs root: cannot write /proc/sys/vm/drop_caches");
  }
}

// One start: exec to the first successful Node.GetInfo, in ms.
double MeasureStart(const Flags& f, const std::string& work,
                    const std::string& data_dir, const Pki& pki, int run) {
  const std::string config = absl::StrCat(work, "/broker-", run, ".textproto");
  const std::string port_file = absl::StrCat(work, "/broker-", run, ".port");
  std::ofstream(config) << absl::StrCat(
      "node_id: \"", kNode, "\"\nlisten_address: \"127.0.0.1:0\"\n",
      "data_dir: \"", data_dir, "\"\nport_file: \"", port_file, "\"\n",
      "policy_file: \"", IBSM_SOURCE_DIR,
      "/policies/ibsm-west-africa.textproto\"\n", "tls {\n cert_file: \"",
      pki.dir, "/node-", kNode, "-chain.pem\"\n key_file: \"", pki.dir,
      "/node-", kNode, ".key\"\n ca_file: \"", pki.ca(), "\"\n crl_dir: \"",
      pki.dir, "/crl\"\n}\n",
      f.peer ? absl::StrCat("federation {\n listen_address: \"127.0.0.1:0\"\n "
                            "peers { node_id: \"",
                            kPeer, "\" }\n}\n")
             : "");
  // The client side is ready before the clock starts.
  ibsm::TlsFiles files{absl::StrCat(pki.dir, "/agency-CIV_police-chain.pem"),
                       absl::StrCat(pki.dir, "/agency-CIV_police.key"),
                       pki.ca(), ""};
  auto creds = ibsm::MakeChannelCredentials(files);
  if (!creds.ok()) Die(std::string(creds.status().message()));
  const std::string broker =
      f.broker.empty() ? SelfDir() + "/ibsm-broker" : f.broker;

  const auto start = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    if (getenv("IBSM_BENCH_BROKER_LOG") == nullptr) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
    }
    execl(broker.c_str(), broker.c_str(), "--config", config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  running_broker = pid;
  const int port = WaitForPortFile(port_file, pid);
  if (port == 0) {
    Die("ibsm-broker did not start (IBSM_BENCH_BROKER_LOG=1 shows why)");
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), *creds, args);
  auto stub = ibsm::v1::Node::NewStub(channel);
  grpc::Status status;
  for (int attempt = 0; attempt < 100; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    context.set_wait_for_ready(true);
    ibsm::v1::NodeInfo info;
    status = stub->GetInfo(&context, ibsm::v1::NodeInfoRequest(), &info);
    if (status.ok()) break;
  }
  const double ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!status.ok()) {
    Die(absl::StrCat("Node.GetInfo failed: ", status.error_message()));
  }
  // Closed first, so that the broker's drain does not wait for it.
  stub.reset();
  channel.reset();
  kill(pid, SIGTERM);
  int wait_status = 0;
  waitpid(pid, &wait_status, 0);
  running_broker = -1;
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    Die("ibsm-broker did not stop cleanly");
  }
  std::filesystem::remove(port_file);
  std::fprintf(stderr, "ibsm-cold-start-bench: run %d: serving after %.1f ms\n",
               run, ms);
  return ms;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string JsonList(const std::vector<double>& v) {
  std::vector<std::string> parts;
  for (double x : v) parts.push_back(absl::StrCat(std::llround(x * 10) / 10.0));
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  char tmpl[] = "/tmp/ibsm-cold-start-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("cannot make a temp dir");
  const std::string work = tmpl;
  temp_dirs->push_back(work);
  // Outside `work` (removed at the end), so that --keep keeps it.
  const std::string data_dir = f.data_dir.empty() ? work + "-data" : f.data_dir;
  if (!f.keep && !f.reuse) temp_dirs->push_back(data_dir);

  Pki pki{work + "/pki"};
  const std::string cmd =
      absl::StrCat("bash '", IBSM_SOURCE_DIR, "/certs/make-dev-pki.sh' '",
                   pki.dir, "' --quiet --nodes CIV,MLI >/dev/null");
  if (std::system(cmd.c_str()) != 0) Die("making the PKI failed: " + cmd);

  double generate_s = 0;
  if (!f.reuse) {
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(data_dir).parent_path(), ec);
    const uint64_t need = f.alerts * kBytesPerAlert;
    const uint64_t free =
        FreeBytes(std::filesystem::path(data_dir).parent_path().string());
    if (free < need + (uint64_t{2} << 30)) {
      Die(absl::StrCat("not enough disk space for ", f.alerts,
                       " alerts: ", free >> 20, " MiB free, about ", need >> 20,
                       " MiB needed (plus 2 GiB to spare); use a smaller ",
                       "--alerts or a --data-dir on a bigger disk"));
    }
    const auto start = Clock::now();
    Generate(f, data_dir, absl::StrCat(pki.dir, "/node-", kNode, ".key"));
    generate_s = std::chrono::duration<double>(Clock::now() - start).count();
  } else if (!std::filesystem::exists(data_dir + "/CURRENT")) {
    Die(absl::StrCat("--reuse: ", data_dir, " holds no data directory"));
  }
  const uint64_t data_bytes = DirectoryBytes(data_dir);

  std::vector<double> warm, cold;
  int run = 0;
  if (f.cache != "cold") {
    for (int i = 0; i < f.runs; ++i) {
      warm.push_back(MeasureStart(f, work, data_dir, pki, ++run));
    }
  }
  if (f.cache != "warm") {
    for (int i = 0; i < f.runs; ++i) {
      DropCaches();
      cold.push_back(MeasureStart(f, work, data_dir, pki, ++run));
    }
  }
  const std::vector<double>& main_runs = warm.empty() ? cold : warm;
  std::printf(
      "{\"bench\":\"cold-start\",\"alerts\":%llu,\"data_bytes\":%llu,"
      "\"serving_ms\":%s,\"median_ms\":%.1f,\"min_ms\":%.1f,\"max_ms\":%.1f,"
      "\"generate_s\":%.1f,\"cache\":\"%s\",\"cold_serving_ms\":%s,"
      "\"cold_median_ms\":%s,\"runs\":%d,\"peer\":%s,\"outbox_backlog\":%llu,"
      "\"crash\":%s}"
      "\n",
      static_cast<unsigned long long>(f.alerts),
      static_cast<unsigned long long>(data_bytes), JsonList(main_runs).c_str(),
      Median(main_runs), *std::min_element(main_runs.begin(), main_runs.end()),
      *std::max_element(main_runs.begin(), main_runs.end()), generate_s,
      warm.empty() ? "cold" : "warm",
      !warm.empty() && !cold.empty() ? JsonList(cold).c_str() : "null",
      !warm.empty() && !cold.empty()
          ? absl::StrCat(std::llround(Median(cold) * 10) / 10.0).c_str()
          : "null",
      f.runs, f.peer ? "true" : "false",
      static_cast<unsigned long long>(f.outbox_backlog),
      f.crash ? "true" : "false");
  std::fflush(stdout);
  for (const std::string& dir : *temp_dirs) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
