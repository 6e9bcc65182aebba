// The multi-node fault harness (issue #12 items 1, 2 and 5;
// docs/reliability.md, "Fault harness"). Four real ibsm-broker processes on
// loopback -- CIV and MLI (national, directly linked), NER (national) and
// INTERPOL (international, the hub that relays) -- with a TcpProxy on every
// federation link, the policy tests/fault/fault-policy.textproto, signed
// publishers at three nodes across topics and levels (with updates,
// retractions and alerts the policy refuses), and durable subscribers of
// different clearances at every node. Meanwhile it SIGKILLs and restarts
// nodes, pauses them (SIGSTOP/SIGCONT), drops, stalls, delays and resets
// links, and fills one node's disk. Everything is written as JSON lines in
// a run folder; at the end the one HistoryChecker judges the run.
//
// Modes (environment):
//   default              short: 3 kill cycles, link cuts, one pause, a full
//                        disk (the CI run, label `fault`)
//   IBSM_FAULT_LONG=1    long: >= 50 kill cycles and 30 minutes of faults,
//                        with a second thread flapping and partitioning
//                        links the whole time
//   IBSM_FAULT_KILL_CYCLES=N, IBSM_FAULT_MINUTES=M   override either bound
//   IBSM_FAULT_SEED=S    the random choices of the long mode (default 1)
//   IBSM_FAULT_KEEP=1    keep the run folder even when the run is clean
//   IBSM_FAULT_INJECT_LOSS=1  the checker's own check: NER/police's
//                        subscriber acknowledges its 10th delivery without
//                        writing it down, so the run must fail with "lost"
//                        and show that alert's journey
// On a violation the run folder (histories, decisions, report, a copy of
// every node's data directory, the PKI) is kept and its path printed, with
// the first violating alert's journey (`ibsm audit journey`) over all nodes.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "ibsm/client.h"
#include "ibsm/internal/v1/policy.pb.h"
#include "ibsm/policy.h"
#include "ibsm/publisher.h"
#include "ibsm/subscriber.h"
#include "ibsm/v1/alert.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "tests/fault/history.h"
#include "tests/fault/history_checker.h"
#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"
#include "tests/support/tmpfs.h"

namespace ibsm::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kNodes = {"CIV", "MLI", "NER", "INTERPOL"};
struct LinkSpec {
  std::string dialer;
  std::string acceptor;
  std::string name() const { return dialer + ">" + acceptor; }
};
const std::vector<LinkSpec> kLinks = {{"CIV", "INTERPOL"},
                                      {"CIV", "MLI"},
                                      {"MLI", "INTERPOL"},
                                      {"NER", "INTERPOL"}};
// The node whose data directory is on a small tmpfs of its own.
constexpr char kFullDiskNode[] = "MLI";

std::string PolicyPath() {
  return SourceDir() + "/tests/fault/fault-policy.textproto";
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

struct Mode {
  bool long_mode = false;
  int kill_cycles = 3;
  absl::Duration fault_time = absl::ZeroDuration();  // at least this long
  uint32_t seed = 1;
  bool keep = false;
  bool inject_loss = false;
  absl::Duration publish_pause = absl::Milliseconds(30);

  static Mode FromEnv() {
    Mode m;
    m.long_mode = EnvInt("IBSM_FAULT_LONG", 0) != 0;
    if (m.long_mode) {
      m.kill_cycles = 50;
      m.fault_time = absl::Minutes(30);
      m.publish_pause = absl::Milliseconds(150);
    }
    m.kill_cycles =
        static_cast<int>(EnvInt("IBSM_FAULT_KILL_CYCLES", m.kill_cycles));
    m.fault_time = absl::Minutes(
        EnvInt("IBSM_FAULT_MINUTES", absl::ToInt64Minutes(m.fault_time)));
    m.seed = static_cast<uint32_t>(EnvInt("IBSM_FAULT_SEED", 1));
    m.keep = EnvInt("IBSM_FAULT_KEEP", 0) != 0;
    m.inject_loss = EnvInt("IBSM_FAULT_INJECT_LOSS", 0) != 0;
    return m;
  }
};

// The run folder: histories and, on a violation, everything else. Not a
// TempDir: it outlives the test when kept.
class RunDir {
 public:
  RunDir() {
    std::string pattern =
        (fs::temp_directory_path() / "ibsm-fault-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~RunDir() {
    if (!keep_) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void Keep() { keep_ = true; }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool keep_ = false;
};

// Writes `path` until the file system refuses more (ENOSPC), in shrinking
// chunks so that the last free page goes too. False on another error.
bool FillDisk(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return false;
  std::vector<char> chunk(1 << 20, 'x');
  int last_errno = 0;
  for (size_t size = chunk.size(); size >= 1; size /= 16) {
    while (write(fd, chunk.data(), size) > 0) {
    }
    last_errno = errno;
  }
  close(fd);
  return last_errno == ENOSPC;
}

// Whether child `pid` has exited (a zombie not reaped yet), without reaping
// it: BrokerProcess::Wait does that.
bool HasExited(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;  // gone altogether
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ||
         line[close + 2] == 'Z' || line[close + 2] == 'X';
}

std::string EntityOf(const std::string& agency) {
  return "agency-" + absl::StrReplaceAll(agency, {{"/", "_"}});
}

std::string ClearanceOf(const Policy& policy, const std::string& agency) {
  for (const auto& a : policy.proto().agencies()) {
    if (a.id() == agency) return a.clearance();
  }
  return "";
}

std::string FileSafe(const std::string& s) {
  return absl::StrReplaceAll(s, {{"/", "_"}, {"#", "-"}, {":", "-"}});
}

// One durable subscriber (client library, push style) that writes every
// delivery it is handed to its history before acknowledging it.
class HistorySubscriber {
 public:
  HistorySubscriber(const std::string& target, std::string node,
                    std::string agency, std::string clearance,
                    const std::string& run_dir, int forget_delivery = 0)
      : node_(std::move(node)),
        agency_(std::move(agency)),
        clearance_(std::move(clearance)),
        name_(agency_ + ":fault"),
        forget_(forget_delivery),
        history_(
            absl::StrCat(run_dir, "/subscriber-", FileSafe(name_), ".jsonl")) {
    client_ = ConnectOrFail(target, EntityOf(agency_));
    SubscribeOptions options;
    options.topics = {"border.>", "trafficking.>", "local.>"};
    options.durable_name = "fault";
    options.start = SubscribeOptions::Start::kEarliest;
    options.credit = 256;
    HistoryEvent declared;
    declared.type = "subscriber";
    declared.subscriber = name_;
    declared.node = node_;
    declared.agency = agency_;
    declared.clearance = clearance_;
    declared.durable = options.durable_name;
    declared.topics = options.topics;
    REQUIRE(history_.Write(declared).ok());
    auto sub = client_->NewSubscriber(options);
    INFO(sub.status().ToString());
    REQUIRE(sub.ok());
    subscriber_ = *std::move(sub);
    Subscriber* raw = subscriber_.get();
    absl::Status started = subscriber_->Start(
        [this, raw](const v1::Delivery& d) {
          HistoryEvent e;
          e.type = "delivery";
          SetAlertFacts(d.alert(), &e);
          e.subscriber = name_;
          e.node = node_;
          e.agency = agency_;
          e.clearance = clearance_;
          e.sequence = d.sequence();
          if (++handed_ == forget_) {
            raw->Ack(d.sequence());  // IBSM_FAULT_INJECT_LOSS: "lost"
            return;
          }
          absl::Status written = history_.Write(e);
          if (!written.ok()) {
            absl::MutexLock lock(&mu_);
            if (error_.ok()) error_ = written;
            return;  // not acknowledged: it comes again
          }
          raw->Ack(d.sequence());
        },
        [this](const absl::Status& ended) {
          absl::MutexLock lock(&mu_);
          error_ = ended;
        });
    INFO(name_ << ": " << started.ToString());
    REQUIRE(started.ok());
  }
  ~HistorySubscriber() { subscriber_->Stop(); }

  absl::Status error() const {
    absl::MutexLock lock(&mu_);
    return error_;
  }
  uint64_t reconnects() const { return subscriber_->reconnects(); }
  const std::string& name() const { return name_; }

 private:
  const std::string node_;
  const std::string agency_;
  const std::string clearance_;
  const std::string name_;
  const int forget_;  // the delivery not written down (0: none)
  int handed_ = 0;    // the delivery thread's own
  HistoryWriter history_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Subscriber> subscriber_;
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// One publishing thread of an agency: one alert after another (blocking
// Publish, signed), each request and result written to its history; a
// result that leaves the outcome open, or a full disk, is retried with the
// same id (up to 3 attempts). Alerts rotate over topics, levels,
// releasability, ORCON, priorities, updates and retractions.
class HistoryPublisher {
 public:
  HistoryPublisher(std::unique_ptr<Client> client, std::string agency,
                   int thread, absl::Duration pause, const std::string& run_dir)
      : client_(std::move(client)),
        agency_(std::move(agency)),
        node_(agency_.substr(0, agency_.find('/'))),
        name_(absl::StrCat(agency_, "#", thread)),
        id_prefix_(absl::StrCat(FileSafe(agency_), "-", thread, "-")),
        pause_(pause),
        history_(
            absl::StrCat(run_dir, "/publisher-", FileSafe(name_), ".jsonl")) {
    publisher_ = client_->NewPublisher();
    thread_ = std::thread([this] { Run(); });
  }
  ~HistoryPublisher() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t acknowledged() const { return acked_.load(); }
  absl::Status error() const {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  // The other national node, for ORCON alerts released to it by id.
  std::string Partner() const { return node_ == "CIV" ? "MLI" : "CIV"; }

  v1::Alert Next(uint64_t n) {
    v1::Alert a = MakeAlert(absl::StrCat(id_prefix_, n));
    a.set_originator(agency_);
    a.set_payload(absl::StrCat("fault harness alert ", n, " of ", name_));
    switch (n % 10) {
      case 0:
        break;  // border.incident RESTRICTED: everyone
      case 1:
        a.set_classification("SECRET");  // not NER, not customs
        break;
      case 2:
        a.set_topic("trafficking.drugs");
        a.set_classification("CONFIDENTIAL");
        break;
      case 3:
        a.set_topic("local.note");  // stays at its node
        break;
      case 4:
        a.set_topic("border.crossing");
        a.set_classification("CONFIDENTIAL");
        a.add_releasable_to("SAHEL");  // not through the hub
        break;
      case 5:
        a.set_orcon(true);  // direct links only
        a.add_releasable_to(Partner());
        break;
      case 6:
        a.set_topic("border.patrol");
        a.set_classification("UNCLASSIFIED");
        a.set_severity(v1::SEVERITY_CRITICAL);  // jumps the outbox queue
        break;
      case 7:
      case 9: {
        // An update (7) or retraction (9) of alert n-7 or n-9 (a case 0
        // alert), when that one was acknowledged: the node refuses one of
        // an alert it does not hold.
        const uint64_t original = n - (n % 10);
        if (acked_ids_.count(original) == 0) break;
        v1::AlertReference* ref = a.add_references();
        ref->set_originator(agency_);
        ref->set_alert_id(absl::StrCat(id_prefix_, original));
        ref->set_kind(n % 10 == 7 ? v1::AlertReference::KIND_UPDATE
                                  : v1::AlertReference::KIND_RETRACTION);
        break;
      }
      case 8:
        a.set_topic("trafficking.persons");
        a.set_classification("SECRET");  // NER/police may not publish it
        break;
    }
    return a;
  }

  void Record(HistoryEvent e) {
    e.publisher = name_;
    e.node = node_;
    absl::Status s = history_.Write(std::move(e));
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      if (error_.ok()) error_ = s;
    }
  }

  void Run() {
    for (uint64_t n = 0; !stop_; ++n) {
      v1::Alert alert = Next(n);
      for (int attempt = 1; attempt <= 3; ++attempt) {
        *alert.mutable_created_at() =
            google::protobuf::util::TimeUtil::GetCurrentTime();
        HistoryEvent request;
        request.type = "publish";
        SetAlertFacts(alert, &request);
        request.attempt = attempt;
        Record(request);
        absl::StatusOr<PublishReceipt> receipt = publisher_->Publish(alert);
        HistoryEvent result;
        result.type = "publish_result";
        result.originator = alert.originator();
        result.id = alert.id();
        result.attempt = attempt;
        if (receipt.ok()) {
          result.outcome = "ack";
          result.sequence = receipt->sequence;
          result.duplicate = receipt->duplicate;
          result.forwarded_to = receipt->forwarded_to;
        } else {
          const absl::StatusCode code = receipt.status().code();
          result.outcome = code == absl::StatusCode::kDeadlineExceeded ||
                                   code == absl::StatusCode::kUnavailable
                               ? "timeout"
                               : "error";
          result.code = absl::StatusCodeToString(code);
          result.message = std::string(receipt.status().message());
        }
        Record(result);
        if (receipt.ok()) {
          ++acked_;
          acked_ids_.insert(n);
          break;
        }
        const absl::StatusCode code = receipt.status().code();
        const bool retry = code == absl::StatusCode::kDeadlineExceeded ||
                           code == absl::StatusCode::kUnavailable ||
                           code == absl::StatusCode::kResourceExhausted ||
                           code == absl::StatusCode::kInternal ||
                           code == absl::StatusCode::kCancelled ||
                           code == absl::StatusCode::kAborted;
        if (!retry || stop_) break;
        absl::SleepFor(absl::Milliseconds(500));
      }
      absl::SleepFor(pause_);
    }
  }

  std::unique_ptr<Client> client_;
  std::unique_ptr<Publisher> publisher_;
  const std::string agency_;
  const std::string node_;
  const std::string name_;
  const std::string id_prefix_;
  const absl::Duration pause_;
  HistoryWriter history_;
  std::set<uint64_t> acked_ids_;  // the thread's own
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_{0};
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Writes fault events; safe for concurrent use (the HistoryWriter is).
class FaultLog {
 public:
  explicit FaultLog(const std::string& path) : history_(path) {}
  void Record(const std::string& fault, const std::string& target,
              const std::string& message = "") {
    HistoryEvent e;
    e.type = "fault";
    e.fault = fault;
    e.target = target;
    e.message = message;
    (void)history_.Write(e);  // a lost fault line only lowers a count
    Progress(fault, target);
  }

 private:
  static void Progress(const std::string& fault, const std::string& target) {
    // Progress on stderr (Catch's macros are for the test thread only).
    std::fprintf(
        stderr, "[fault %s] %s %s\n",
        absl::FormatTime("%H:%M:%S", absl::Now(), absl::UTCTimeZone()).c_str(),
        fault.c_str(), target.c_str());
  }
  HistoryWriter history_;
};

// The link faults on one proxy, for `hold`, then Pass again.
void LinkFault(TcpProxy& proxy, const std::string& link, int kind,
               absl::Duration hold, FaultLog& log) {
  switch (kind % 4) {
    case 0:
      log.Record("link_drop", link);
      proxy.Drop();
      break;
    case 1:
      log.Record("link_stall", link);
      proxy.Stall();
      break;
    case 2:
      log.Record("link_delay", link, "200ms per chunk");
      proxy.SetDelay(absl::Milliseconds(200));
      break;
    case 3:
      log.Record("link_reset", link);
      proxy.ResetAll();
      break;
  }
  absl::SleepFor(hold);
  proxy.SetDelay(absl::ZeroDuration());
  proxy.Pass();
  log.Record("link_pass", link);
}

// Reads every history of the run into a fresh checker.
std::unique_ptr<HistoryChecker> LoadHistories(
    const std::shared_ptr<const Policy>& policy, const std::string& dir,
    std::string* problem) {
  auto checker = std::make_unique<HistoryChecker>(policy);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".jsonl") && name != "decisions.jsonl") {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());  // "fault", "publisher", "run", ...
  for (const std::string& file : files) {
    auto events = ReadHistoryFile(file);
    if (!events.ok()) {
      *problem = std::string(events.status().message());
      return nullptr;
    }
    for (const HistoryEvent& e : *events) {
      if (absl::Status s = checker->Add(e); !s.ok()) {
        *problem = absl::StrCat(file, ": ", s.message());
        return nullptr;
      }
    }
  }
  return checker;
}

TEST_CASE(
    "fault harness: four nodes, a hub relay and a direct link, signed "
    "publishers and durable subscribers of different clearances, under "
    "SIGKILL, SIGSTOP, link faults and a full disk: the history checker "
    "finds nothing lost, leaked, reordered or duplicated") {
  const Mode mode = Mode::FromEnv();
  RunDir run;
  std::fprintf(stderr, "fault harness: %s mode, run folder %s\n",
               mode.long_mode ? "long" : "short", run.path().c_str());
  auto policy_or = Policy::Load(PolicyPath());
  REQUIRE(policy_or.ok());
  std::shared_ptr<const Policy> policy = *policy_or;

  // MLI's data directory on a small disk of its own. Declared before the
  // Federation so that it is unmounted after the nodes are gone.
  TmpfsMount disk(run.File("mli-disk"), mode.long_mode ? 2048 : 256);
  FaultLog faults(run.File("faults.jsonl"));
  if (!disk.mounted()) {
    faults.Record("skipped", kFullDiskNode,
                  "full disk: cannot mount a tmpfs: " + disk.error());
    WARN("full-disk fault skipped: cannot mount a tmpfs (" << disk.error()
                                                           << ")");
  }

  Federation fed(PolicyPath());
  for (const LinkSpec& l : kLinks) {
    fed.AddLink(l.dialer, l.acceptor, /*proxied=*/true);
  }
  for (const std::string& n : kNodes) {
    fed.config(n).mutable_audit()->set_checkpoint_every_seconds(1);
  }
  if (disk.mounted()) {
    fed.config(kFullDiskNode).set_data_dir(run.File("mli-disk/data"));
  }
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());

  {
    HistoryWriter topology(run.File("run.jsonl"));
    HistoryEvent t;
    t.type = "topology";
    t.nodes = kNodes;
    for (const LinkSpec& l : kLinks) t.links.push_back(l.name());
    t.message =
        absl::StrCat("policy ", PolicyPath(), " version ", policy->version());
    REQUIRE(topology.Write(t).ok());
  }

  std::vector<std::unique_ptr<HistorySubscriber>> subscribers;
  for (const char* agency : {"CIV/police", "CIV/customs", "MLI/police",
                             "MLI/customs", "NER/police", "INTERPOL/police"}) {
    const std::string a = agency;
    const std::string node = a.substr(0, a.find('/'));
    subscribers.push_back(std::make_unique<HistorySubscriber>(
        fed.address(node), node, agency, ClearanceOf(*policy, agency),
        run.path(),
        mode.inject_loss && node == "NER" ? /*forget_delivery=*/10 : 0));
  }

  std::vector<std::unique_ptr<HistoryPublisher>> publishers;
  struct PublisherSpec {
    std::string agency;
    int thread;
  };
  for (const PublisherSpec& p : std::vector<PublisherSpec>{{"CIV/police", 0},
                                                           {"CIV/police", 1},
                                                           {"MLI/police", 0},
                                                           {"NER/police", 0}}) {
    const std::string node = p.agency.substr(0, p.agency.find('/'));
    ClientOptions options =
        ClientOptionsFor(fed.address(node), EntityOf(p.agency));
    // A bounded wait per publish, so that a paused or dead node gives
    // timeouts (outcome unknown) as well as late acknowledgements.
    options.call_timeout = absl::Seconds(5);
    options.retry_timeout = absl::Seconds(20);
    auto client = Client::Connect(options);
    INFO(client.status().ToString());
    REQUIRE(client.ok());
    publishers.push_back(std::make_unique<HistoryPublisher>(
        *std::move(client), p.agency, p.thread, mode.publish_pause,
        run.path()));
  }

  auto load = [&](size_t more) {
    uint64_t before = 0;
    for (auto& p : publishers) before += p->acknowledged();
    return Eventually([&] {
      uint64_t now = 0;
      for (auto& p : publishers) now += p->acknowledged();
      return now >= before + more;
    });
  };
  REQUIRE(load(40));

  // ---- faults --------------------------------------------------------------
  std::map<std::string, TcpProxy*> proxies;
  for (const LinkSpec& l : kLinks) {
    proxies[l.name()] = &fed.proxy(l.dialer, l.acceptor);
  }
  std::mt19937 rng(mode.seed);
  auto pick = [&](int n) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng));
  };
  int kills = 0;
  // A node that exits by itself (an abort, a crash) is a failure of the
  // run, whatever the checker finds: noticed before every fault and at the
  // end, recorded as a "crash" fault with its exit code, and restarted so
  // that the run goes on and its histories are still judged.
  std::vector<std::string> crashes;
  auto reap_crashes = [&] {
    for (const std::string& node : kNodes) {
      if (!fed.running(node) || !HasExited(fed.process(node).pid())) continue;
      const int code = fed.Stop(node, SIGKILL);  // reaps it
      const std::string what =
          absl::StrCat(node, " exited by itself with code ", code,
                       code > 128 ? absl::StrCat(" (signal ", code - 128, ")")
                                  : std::string());
      faults.Record("crash", node, what);
      crashes.push_back(what);
      fed.Restart(node);
      faults.Record("restart", node);
    }
  };
  auto kill_restart = [&](const std::string& node, absl::Duration down) {
    reap_crashes();
    faults.Record("sigkill", node);
    CHECK(fed.Stop(node, SIGKILL) == 128 + SIGKILL);
    absl::SleepFor(down);
    fed.Restart(node);
    faults.Record("restart", node);
    ++kills;
  };
  auto term_restart = [&](const std::string& node) {
    reap_crashes();
    faults.Record("sigterm", node);
    CHECK(fed.Stop(node, SIGTERM) == 0);
    fed.Restart(node);
    faults.Record("restart", node);
  };
  auto pause = [&](const std::string& node, absl::Duration hold) {
    reap_crashes();
    faults.Record("sigstop", node);
    fed.process(node).Kill(SIGSTOP);
    absl::SleepFor(hold);
    fed.process(node).Kill(SIGCONT);
    faults.Record("sigcont", node);
  };
  auto full_disk = [&](absl::Duration hold) {
    reap_crashes();
    if (!disk.mounted()) return;
    const std::string filler = run.File("mli-disk/filler");
    faults.Record("disk_full", kFullDiskNode);
    const bool full = FillDisk(filler);
    absl::SleepFor(hold);
    std::error_code ec;
    fs::remove(filler, ec);
    faults.Record("disk_free", kFullDiskNode,
                  full ? "" : "the filler stopped before ENOSPC");
  };

  const absl::Time faults_started = absl::Now();
  if (!mode.long_mode) {
    // A fixed sequence: every kind of fault once or more, a few kill cycles.
    kill_restart("CIV", absl::Milliseconds(500));
    REQUIRE(load(20));
    LinkFault(*proxies["CIV>INTERPOL"], "CIV>INTERPOL", 3, absl::Seconds(1),
              faults);  // reset
    pause("MLI", absl::Seconds(3));
    REQUIRE(load(20));
    LinkFault(*proxies["CIV>MLI"], "CIV>MLI", 0, absl::Seconds(3), faults);
    kill_restart("INTERPOL", absl::Seconds(1));
    REQUIRE(load(20));
    LinkFault(*proxies["MLI>INTERPOL"], "MLI>INTERPOL", 1, absl::Seconds(2),
              faults);  // stall
    full_disk(absl::Seconds(3));
    REQUIRE(load(20));
    kill_restart("NER", absl::Milliseconds(500));
    LinkFault(*proxies["NER>INTERPOL"], "NER>INTERPOL", 2, absl::Seconds(2),
              faults);  // delay
    term_restart("MLI");
    REQUIRE(load(20));
    for (; kills < mode.kill_cycles;) {
      kill_restart(kNodes[kills % kNodes.size()], absl::Milliseconds(300));
      REQUIRE(load(10));
    }
  } else {
    // A second thread flaps and partitions links the whole time (the
    // proxies are thread-safe); this thread kills, pauses, restarts and
    // fills the disk.
    std::atomic<bool> stop_flapping{false};
    std::thread flapper([&] {
      std::mt19937 flap_rng(mode.seed * 7919 + 1);
      auto fpick = [&](int n) {
        return std::uniform_int_distribution<int>(0, n - 1)(flap_rng);
      };
      while (!stop_flapping) {
        absl::SleepFor(absl::Milliseconds(500 + fpick(2500)));
        if (stop_flapping) break;
        if (fpick(5) == 0) {
          // A partition: every link of one node dropped for 5 to 20 s.
          const std::string node = kNodes[fpick(kNodes.size())];
          faults.Record("partition", node);
          std::vector<std::string> cut;
          for (const LinkSpec& l : kLinks) {
            if (l.dialer == node || l.acceptor == node) {
              proxies[l.name()]->Drop();
              cut.push_back(l.name());
            }
          }
          absl::SleepFor(absl::Seconds(5 + fpick(16)));
          for (const std::string& l : cut) proxies[l]->Pass();
          faults.Record("partition_heal", node);
        } else {
          const LinkSpec& l = kLinks[fpick(kLinks.size())];
          LinkFault(*proxies[l.name()], l.name(), fpick(4),
                    absl::Milliseconds(500 + fpick(4500)), faults);
        }
      }
    });
    while (kills < mode.kill_cycles ||
           absl::Now() - faults_started < mode.fault_time) {
      const std::string node = kNodes[pick(kNodes.size())];
      const int what = pick(10);
      if (what < 5) {
        kill_restart(node, absl::Milliseconds(100 + pick(3000)));
      } else if (what < 7) {
        pause(node, absl::Milliseconds(500 + pick(9500)));
      } else if (what < 8) {
        term_restart(node);
      } else {
        full_disk(absl::Seconds(1 + pick(8)));
      }
      absl::SleepFor(absl::Milliseconds(500 + pick(4000)));
    }
    stop_flapping = true;
    flapper.join();
  }
  const absl::Duration fault_phase = absl::Now() - faults_started;
  reap_crashes();

  // ---- quiesce and check
  // -----------------------------------------------------
  for (auto& [name, proxy] : proxies) {
    proxy->SetDelay(absl::ZeroDuration());
    proxy->Pass();
  }
  for (auto& p : publishers) p->Stop();
  for (auto& p : publishers) {
    INFO("publisher history: " << p->error().ToString());
    CHECK(p->error().ok());
  }
  CHECK(fed.WaitAllLinksUp(absl::Minutes(2)));

  std::string problem;
  std::unique_ptr<HistoryChecker> checker;
  // Wait until every acknowledged alert reached every subscriber entitled
  // to it, or the checker has to call what is missing lost.
  const absl::Time give_up = absl::Now() + absl::Minutes(3);
  uint64_t missing = 0;
  while (true) {
    checker = LoadHistories(policy, run.path(), &problem);
    REQUIRE(checker != nullptr);
    missing = checker->MissingDeliveries();
    if (missing == 0 || absl::Now() > give_up) break;
    absl::SleepFor(absl::Seconds(1));
  }
  CHECK(fed.WaitDrained(absl::Minutes(2)));
  // Whatever arrived while draining counts too (late duplicates included).
  absl::SleepFor(absl::Seconds(1));
  for (auto& s : subscribers) {
    INFO(s->name() << ": " << s->error().ToString());
    CHECK(s->error().ok());
  }

  // Duplicates the nodes suppressed on links (an alert offered again after a
  // reconnect or over a second route), from their audit trails.
  {
    HistoryWriter stats(run.File("stats.jsonl"));
    for (const std::string& node : kNodes) {
      uint64_t duplicates = 0;
      for (const v1::AuditRecord& r :
           fed.Audit(node, "", v1::AUDIT_FEDERATION_RECEIVE,
                     v1::AuditQuery::DECISION_ALLOWED)) {
        if (absl::StrContains(r.reason(), "duplicate")) ++duplicates;
      }
      HistoryEvent e;
      e.type = "stat";
      e.name = "link_duplicates_suppressed";
      e.node = node;
      e.value = static_cast<int64_t>(duplicates);
      REQUIRE(stats.Write(e).ok());
    }
    uint64_t reconnects = 0;
    for (auto& s : subscribers) reconnects += s->reconnects();
    HistoryEvent e;
    e.type = "stat";
    e.name = "subscriber_reconnects";
    e.value = static_cast<int64_t>(reconnects);
    REQUIRE(stats.Write(e).ok());
    e.name = "fault_phase_seconds";
    e.value = absl::ToInt64Seconds(fault_phase);
    REQUIRE(stats.Write(e).ok());
  }
  subscribers.clear();  // stop them before the final read

  checker = LoadHistories(policy, run.path(), &problem);
  INFO(problem);
  REQUIRE(checker != nullptr);
  const CheckReport report = checker->Check();
  {
    HistoryWriter decisions(run.File("decisions.jsonl"));
    for (const EntitlementDecision& d : checker->Decisions()) {
      HistoryEvent e;
      e.type = "decision";
      const size_t slash = d.alert.rfind('/');
      e.originator = d.alert.substr(0, slash);
      e.id = d.alert.substr(slash + 1);
      e.subscriber = d.subscriber;
      e.outcome = d.allowed ? "allow" : "deny";
      e.message = d.reason;
      (void)decisions.Write(e);  // output for people; the check is above
    }
  }
  const std::string text = FormatReport(report);
  std::ofstream(run.File("report.txt")) << text << ReportJson(report) << "\n";
  std::fprintf(stderr,
               "fault harness report (%s mode, fault phase %s):\n%s%s\n",
               mode.long_mode ? "long" : "short",
               absl::FormatDuration(fault_phase).c_str(), text.c_str(),
               ReportJson(report).c_str());

  for (const std::string& crash : crashes) {
    run.Keep();
    FAIL_CHECK("a node crashed during the run: "
               << crash << " (its stderr is in this test's output; run "
               << "folder kept: " << run.path() << ")");
  }
  if (!report.violations.empty()) {
    run.Keep();
    const Violation& first = report.violations.front();
    // The first violating alert's journey over every node's audit trail,
    // with the CLI's own `ibsm audit journey`.
    std::vector<std::string> args = {
        "--ca",      PkiDir() + "/ca.pem",
        "--cert",    PkiDir() + "/auditor-UNODC_audit-chain.pem",
        "--key",     PkiDir() + "/auditor-UNODC_audit.key",
        "audit",     "journey",
        "--alert",   first.alert,
        "--crl-dir", PkiDir() + "/crl"};
    for (const std::string& node : kNodes) {
      args.insert(args.end(),
                  {"--target", fed.address(node), "--node-cert",
                   absl::StrCat(PkiDir(), "/node-", node, "-chain.pem")});
    }
    RunResult journey = RunBinary(CliBinary(), args, absl::Seconds(60));
    std::ofstream(run.File("journey.txt")) << journey.output;
    std::fprintf(stderr, "first violation: %s %s: %s\njourney:\n%s\n",
                 first.rule.c_str(), first.alert.c_str(), first.detail.c_str(),
                 journey.output.c_str());
    // Keep what the nodes stored: stop them, then copy their folders.
    for (const std::string& node : kNodes) {
      if (fed.running(node)) (void)fed.Stop(node, SIGTERM);
      std::error_code ec;
      const std::string data = fed.config(node).data_dir();
      fs::copy(data, run.File("data/" + node), fs::copy_options::recursive, ec);
      for (const char* suffix : {".textproto", ".key"}) {
        fs::copy(data + suffix, run.File("data/" + node + suffix), ec);
      }
    }
    std::error_code ec;
    fs::copy(PkiDir(), run.File("pki"), fs::copy_options::recursive, ec);
    std::fprintf(stderr,
                 "fault harness: violations; kept the histories, the node "
                 "data and the PKI in %s\n",
                 run.path().c_str());
    FAIL("the history checker found "
         << report.violations.size() << " violation(s); first: " << first.rule
         << " " << first.alert << " at " << first.subscriber << ": "
         << first.detail << "; kept in " << run.path());
  }
  CHECK(missing == 0);
  CHECK(report.lost == 0);
  CHECK(report.acknowledged > 0);
  CHECK(report.checked == report.expected_deliveries);
  // The run did what it says: each kind of fault happened.
  CHECK(report.faults.count("sigkill") > 0);
  CHECK(kills >= mode.kill_cycles);
  CHECK(report.faults.count("sigstop") > 0);
  CHECK(report.faults.count("link_drop") + report.faults.count("partition") >
        0);
  if (disk.mounted()) CHECK(report.faults.count("disk_full") > 0);
  if (mode.keep) {
    run.Keep();
    std::fprintf(stderr, "fault harness: kept %s\n", run.path().c_str());
  }
}

}  // namespace
}  // namespace ibsm::testing
