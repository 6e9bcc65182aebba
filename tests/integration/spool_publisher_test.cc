// The Publisher's offline spool against a real ibsm-broker process over
// mutual TLS: the node killed and restarted mid-stream, the publishing
// process SIGKILLed and restarted on its spool, the bounds, refusals and
// the one-process-per-spool rule.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/subscriber.h"
#include "ibsm/v1/broker.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/restartable_broker.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_support.h"
#include "tests/support/tmpfs.h"

namespace ibsm::testing {
namespace {

std::string HelperBinary() {
  return BinaryDir() + "/bin/ibsm-spool-test-publisher";
}

// A child process whose stdout (and stderr) the test reads line by line
// while it runs. SIGKILLed by the destructor if still running.
class Child {
 public:
  Child(const std::string& binary, const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Reads what is available within `wait`; false once the pipe is closed.
  bool Read(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) <= 0) {
      return true;
    }
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    output_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Lines starting with "`word` ", with that word removed.
  std::vector<std::string> Lines(const std::string& word) const {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(output_, '\n')) {
      if (absl::ConsumePrefix(&line, word + " ")) out.emplace_back(line);
    }
    return out;
  }
  void KillAndReap() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    // What it wrote before it died is still in the pipe.
    while (Read(absl::Milliseconds(200))) {
    }
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

// A durable subscriber of CIV/customs on border.>, opened (so its cursor
// exists) before anything is published.
std::unique_ptr<Subscriber> OpenDurableSubscriber(Client& client,
                                                  const std::string& name) {
  SubscribeOptions options;
  options.topics = {"border.>"};
  options.durable_name = name;
  options.start = SubscribeOptions::Start::kEarliest;
  auto subscriber = client.NewSubscriber(options);
  REQUIRE(subscriber.ok());
  auto first = (*subscriber)->Next(absl::Milliseconds(100));
  REQUIRE(first.ok());
  REQUIRE_FALSE(first->has_value());
  return *std::move(subscriber);
}

// Takes deliveries until none comes for `quiet`; returns the ids.
void TakeUntilQuiet(Subscriber& subscriber, std::vector<std::string>* ids,
                    absl::Duration quiet = absl::Seconds(2)) {
  while (true) {
    auto next = subscriber.Next(quiet);
    REQUIRE(next.ok());
    if (!next->has_value()) return;
    ids->push_back((*next)->alert().id());
    subscriber.Ack((*next)->sequence());
  }
}

uint64_t LastSequence(const std::string& target) {
  auto client = ConnectOrFail(target, "agency-CIV_police");
  auto info = client->NodeInfo();
  REQUIRE(info.ok());
  return info->last_sequence();
}

TEST_CASE(
    "spool: the node is killed and restarted mid-stream; every alert "
    "reaches the durable subscriber once, in order") {
  TempDir dir;
  RestartableBroker broker(dir.File("data"));
  auto sub_client = ConnectOrFail(broker.target(), "agency-CIV_customs");
  std::unique_ptr<Subscriber> subscriber =
      OpenDurableSubscriber(*sub_client, "spool-desk");

  ClientOptions client_options =
      ClientOptionsFor(broker.target(), "agency-CIV_police");
  auto client = Client::Connect(client_options);
  REQUIRE(client.ok());
  PublisherOptions options;
  options.spool_dir = dir.File("spool");
  options.max_in_flight = 32;
  options.max_batch = 8;
  auto publisher = (*client)->OpenPublisher(options);
  REQUIRE(publisher.ok());

  constexpr int kAlerts = 1200;
  constexpr int kKillAt = 400;
  constexpr int kRestartAt = 800;
  std::atomic<int> stored{0};
  absl::Mutex mu;
  std::vector<std::string> errors;
  uint64_t spooled_while_down = 0;
  for (int i = 0; i < kAlerts; ++i) {
    if (i == kKillAt) REQUIRE(broker.Stop(SIGKILL) == 128 + SIGKILL);
    if (i == kRestartAt) {
      // Everything published while the node was down waits in the spool.
      auto state = (*publisher)->spool_state();
      REQUIRE(state.ok());
      spooled_while_down = state->alerts;
      CHECK_FALSE(state->last_error.ok());
      broker.Start();
    }
    (*publisher)
        ->PublishAsync(MakeAlert(absl::StrCat("sp-", i)),
                       [&](absl::StatusOr<PublishReceipt> r) {
                         if (r.ok()) {
                           ++stored;
                         } else {
                           absl::MutexLock lock(&mu);
                           errors.push_back(r.status().ToString());
                         }
                       });
    absl::SleepFor(absl::Milliseconds(1));
  }
  CHECK(spooled_while_down >= kRestartAt - kKillAt);
  REQUIRE((*publisher)->Flush(absl::Seconds(120)).ok());
  {
    absl::MutexLock lock(&mu);
    CHECK(errors.empty());
  }
  CHECK(stored == kAlerts);
  auto state = (*publisher)->spool_state();
  REQUIRE(state.ok());
  CHECK(state->alerts == 0);
  CHECK(state->refusals.empty());

  std::vector<std::string> seen;
  TakeUntilQuiet(*subscriber, &seen);
  REQUIRE(seen.size() == kAlerts);
  for (int i = 0; i < kAlerts; ++i) {
    INFO("position " << i);
    CHECK(seen[i] == absl::StrCat("sp-", i));
  }
  // Each alert was stored once by the node, not only shown once.
  CHECK(LastSequence(broker.target()) == kAlerts);
}

TEST_CASE(
    "spool: the publishing process is SIGKILLed mid-stream and restarted on "
    "its spool; every alert it accepted arrives once") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const std::string target = absl::StrCat("127.0.0.1:", broker.port());
  auto sub_client = ConnectOrFail(target, "agency-CIV_customs");
  std::unique_ptr<Subscriber> subscriber =
      OpenDurableSubscriber(*sub_client, "kill-desk");
  // The publishing process reaches the node through a proxy, which stalls
  // halfway: then alerts pile up in the spool, and those on the wire may
  // be stored by the node without their acknowledgement coming back.
  auto proxy = TcpProxy::Start(target);
  REQUIRE(proxy.ok());

  const TlsFiles tls = Tls("agency-CIV_police");
  const std::string spool = dir.File("spool");
  constexpr int kAlerts = 3000;
  auto args = [&](int count) {
    return std::vector<std::string>{
        (*proxy)->address(),  tls.ca_file, tls.cert_file,
        tls.key_file,         spool,       "kill",
        std::to_string(count)};
  };
  std::vector<std::string> accepted;
  {
    Child publisher(HelperBinary(), args(kAlerts));
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    bool stalled = false;
    while (publisher.Lines("spooled").size() < 500 && absl::Now() < give_up) {
      REQUIRE(publisher.Read(absl::Milliseconds(100)));
      if (!stalled && publisher.Lines("spooled").size() >= 250) {
        (*proxy)->Stall();
        stalled = true;
      }
    }
    publisher.KillAndReap();
    INFO(publisher.output().substr(0, 2000));
    accepted = publisher.Lines("spooled");
    CHECK(publisher.Lines("done").empty());  // killed mid-stream
    CHECK(publisher.Lines("error").empty());
  }
  REQUIRE(accepted.size() >= 500);
  REQUIRE(accepted.size() < kAlerts);
  auto left = ReadSpoolState(spool);
  REQUIRE(left.ok());
  // Everything accepted after the stall is still spooled.
  CHECK(left->alerts >= 250);
  (*proxy)->Pass();
  INFO("accepted " << accepted.size() << ", left in the spool "
                   << left->alerts);

  // Started again on the same spool: it sends what waits, then ends.
  RunResult resumed = RunBinary(HelperBinary(), args(0), absl::Seconds(120));
  INFO(resumed.output.substr(0, 2000));
  REQUIRE(resumed.exit_code == 0);
  CHECK(absl::StrContains(resumed.output, "done 0"));
  auto after = ReadSpoolState(spool);
  REQUIRE(after.ok());
  CHECK(after->alerts == 0);

  std::vector<std::string> seen;
  TakeUntilQuiet(*subscriber, &seen);
  std::map<std::string, int> times;
  for (const std::string& id : seen) ++times[id];
  for (const std::string& id : accepted) {
    INFO(id);
    CHECK(times[id] == 1);
  }
  // At most the alert being spooled at the kill came on top (synced but
  // not yet reported), and nothing twice; in publishing order.
  CHECK(seen.size() <= accepted.size() + 1);
  for (size_t i = 0; i < seen.size(); ++i) {
    INFO("position " << i);
    CHECK(seen[i] == absl::StrCat("kill-", i));
  }
  CHECK(LastSequence(target) == seen.size());
  size_t duplicates = 0;
  for (absl::string_view line : absl::StrSplit(resumed.output, '\n')) {
    if (absl::StartsWith(line, "recovered ") &&
        absl::EndsWith(line, " duplicate")) {
      ++duplicates;
    }
  }
  WARN("process kill: " << accepted.size() << " alerts accepted before the "
                        << "SIGKILL, " << left->alerts
                        << " of them still spooled, " << duplicates
                        << " resent that the node had stored already, "
                        << seen.size() << " delivered, once each");
}

TEST_CASE(
    "spool: alerts the node cannot store for now (its disk is full) stay "
    "spooled, and arrive once and in order when it has space again") {
  TempDir dir;
  TmpfsMount mnt(dir.File("mnt"), 24);
  if (!mnt.mounted()) {
    WARN("SKIPPED: cannot mount a tmpfs here (" << mnt.error()
                                                << "); node disk not filled");
    return;
  }
  BrokerProcess broker(NodeConfigFor(dir.File("mnt/data")));
  const std::string target = absl::StrCat("127.0.0.1:", broker.port());
  auto sub_client = ConnectOrFail(target, "agency-CIV_customs");
  std::unique_ptr<Subscriber> subscriber =
      OpenDurableSubscriber(*sub_client, "full-desk");
  auto client = ConnectOrFail(target, "agency-CIV_police");
  PublisherOptions options;
  options.spool_dir = dir.File("spool");  // not on the full disk
  options.max_batch = 4;
  auto publisher = client->OpenPublisher(options);
  REQUIRE(publisher.ok());

  std::atomic<int> stored{0}, failed{0};
  auto publish = [&](int i) {
    (*publisher)
        ->PublishAsync(MakeAlert(absl::StrCat("d-", i)),
                       [&](absl::StatusOr<PublishReceipt> r) {
                         ++(r.ok() ? stored : failed);
                       });
  };
  for (int i = 0; i < 5; ++i) publish(i);
  REQUIRE((*publisher)->Flush(absl::Seconds(30)).ok());
  REQUIRE(stored == 5);

  const std::string filler = dir.File("mnt/filler");
  FillDisk(filler);
  constexpr int kAlerts = 40;
  for (int i = 5; i < kAlerts; ++i) publish(i);
  CHECK(Eventually([&] {
    auto state = (*publisher)->spool_state();
    return state.ok() &&
           state->last_error.code() == absl::StatusCode::kResourceExhausted;
  }));
  auto state = (*publisher)->spool_state();
  REQUIRE(state.ok());
  INFO(state->last_error.ToString());
  // The node refuses them for now (it may have stored one or two before it
  // noticed the full disk): no error reaches a callback, the rest waits.
  CHECK(state->alerts + stored == kAlerts);
  CHECK(state->alerts >= kAlerts - 10);
  CHECK(failed == 0);

  std::filesystem::remove(filler);
  REQUIRE((*publisher)->Flush(absl::Seconds(120)).ok());
  CHECK(stored == kAlerts);
  CHECK(failed == 0);
  CHECK((*publisher)->spool_state()->alerts == 0);
  std::vector<std::string> seen;
  TakeUntilQuiet(*subscriber, &seen);
  REQUIRE(seen.size() == kAlerts);
  for (int i = 0; i < kAlerts; ++i) {
    INFO("position " << i);
    CHECK(seen[i] == absl::StrCat("d-", i));
  }
  CHECK(LastSequence(target) == kAlerts);
}

TEST_CASE(
    "spool: a full spool refuses with RESOURCE_EXHAUSTED, says so in its "
    "state, and drops nothing") {
  TempDir dir;
  RestartableBroker broker(dir.File("data"));
  REQUIRE(broker.Stop(SIGTERM) == 0);  // the link to the node is down
  ClientOptions client_options =
      ClientOptionsFor(broker.target(), "agency-CIV_police");
  client_options.connect_timeout = absl::ZeroDuration();
  auto client = Client::Connect(client_options);
  REQUIRE(client.ok());
  PublisherOptions options;
  options.spool_dir = dir.File("spool");
  options.spool_max_alerts = 5;
  std::vector<std::future<absl::StatusOr<PublishReceipt>>> waiting;
  {
    auto publisher = (*client)->OpenPublisher(options);
    REQUIRE(publisher.ok());
    for (int i = 0; i < 5; ++i) {
      waiting.push_back(
          (*publisher)->PublishAsync(MakeAlert(absl::StrCat("full-", i))));
    }
    auto refused = (*publisher)->PublishAsync(MakeAlert("full-5"));
    // Refused before PublishAsync returned.
    REQUIRE(refused.wait_for(std::chrono::seconds(0)) ==
            std::future_status::ready);
    absl::Status status = refused.get().status();
    CHECK(status.code() == absl::StatusCode::kResourceExhausted);
    CHECK(absl::StrContains(status.message(), "spool_max_alerts = 5"));
    CHECK(absl::StrContains(status.message(), options.spool_dir));
    auto state = (*publisher)->spool_state();
    REQUIRE(state.ok());
    CHECK(state->alerts == 5);
    CHECK(state->max_alerts == 5);
    CHECK(state->oldest_spooled_at != absl::InfinitePast());
    CHECK(Eventually([&] {
      auto s = (*publisher)->spool_state();
      return s.ok() && !s->last_error.ok();
    }));
    for (auto& f : waiting) {
      CHECK(f.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
    }
  }
  // Closed while the node is down: the callbacks hear so, the alerts stay.
  for (auto& f : waiting) {
    absl::Status s = f.get().status();
    CHECK(s.code() == absl::StatusCode::kCancelled);
    CHECK(absl::StrContains(s.message(), "stays in the spool"));
  }
  auto state = ReadSpoolState(options.spool_dir);
  REQUIRE(state.ok());
  CHECK(state->alerts == 5);

  // The node is back: a new Publisher on the spool sends all five.
  broker.Start();
  std::atomic<int> recovered{0};
  options.spool_recovered_result = [&](absl::StatusOr<PublishReceipt> r) {
    if (r.ok()) ++recovered;
  };
  auto publisher = (*client)->OpenPublisher(options);
  REQUIRE(publisher.ok());
  REQUIRE((*publisher)->Flush(absl::Seconds(60)).ok());
  CHECK(recovered == 5);
  CHECK((*publisher)->spool_state()->alerts == 0);
  CHECK(LastSequence(broker.target()) == 5);
}

TEST_CASE(
    "spool: a definitive refusal reaches the callback and is recorded; one "
    "Publisher per spool") {
  TempDir dir;
  BrokerProcess broker(NodeConfigFor(dir.File("data")));
  const std::string target = absl::StrCat("127.0.0.1:", broker.port());
  auto client = ConnectOrFail(target, "agency-CIV_police");
  PublisherOptions options;
  options.spool_dir = dir.File("spool");
  options.validate_locally = false;  // so that the node refuses it
  {
    auto publisher = client->OpenPublisher(options);
    REQUIRE(publisher.ok());
    v1::Alert bad = MakeAlert("not-a-level");
    bad.set_classification("COSMIC");
    auto refused = (*publisher)->PublishAsync(bad);
    auto fine = (*publisher)->PublishAsync(MakeAlert("fine"));
    REQUIRE((*publisher)->Flush(absl::Seconds(30)).ok());
    CHECK(refused.get().status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(fine.get().ok());
    auto state = (*publisher)->spool_state();
    REQUIRE(state.ok());
    CHECK(state->alerts == 0);
    REQUIRE(state->refusals.size() == 1);
    CHECK(state->refusals[0].alert_id == "not-a-level");
    CHECK(state->refusals[0].status.code() ==
          absl::StatusCode::kInvalidArgument);

    // The directory is taken while this Publisher lives.
    auto second = client->OpenPublisher(options);
    REQUIRE(second.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(absl::StrContains(second.status().message(), "in use"));
    std::unique_ptr<Publisher> unopened = client->NewPublisher(options);
    auto refused_too = unopened->PublishAsync(MakeAlert("nowhere"));
    CHECK(refused_too.get().status().code() ==
          absl::StatusCode::kFailedPrecondition);
  }
  // The refusal record outlives the Publisher.
  auto state = ReadSpoolState(options.spool_dir);
  REQUIRE(state.ok());
  CHECK(state->alerts == 0);
  REQUIRE(state->refusals.size() == 1);
  CHECK(state->refusals[0].alert_id == "not-a-level");
  CHECK(LastSequence(target) == 1);
}

}  // namespace
}  // namespace ibsm::testing
