#include "tests/support/test_support.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ibsm/v1/broker.pb.h"
#include "storage/key_ring.h"
#include "tests/support/eventually.h"

namespace ibsm::testing {
namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

// Reads `fd` until end of file or until `deadline`, whichever comes first.
std::string ReadUntilEnd(int fd, absl::Time deadline) {
  std::string out;
  char buf[4096];
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) break;
    pollfd readable{fd, POLLIN, 0};
    const int ready =
        poll(&readable, 1,
             static_cast<int>(std::min<int64_t>(left_ms, 24 * 3600 * 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

}  // namespace

std::string SourceDir() { return EnvOr("IBSM_SOURCE_DIR", "."); }
std::string BinaryDir() { return EnvOr("IBSM_BINARY_DIR", "."); }

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ibsm-test-XXXXXX").string();
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

const std::string& PkiDir() {
  // Made once per process and removed at exit.
  static TempDir* dir = [] {
    auto* d = new TempDir();
    // The script's default entities, plus the five nodes of the federation
    // tests (tests/federation/) with a police agency and an auditor each.
    // UNODC/audit stays the first auditor: the sibling-* material names it.
    RunResult made = RunBinary(
        SourceDir() + "/certs/make-dev-pki.sh",
        {d->path() + "/pki", "--quiet", "--nodes", "CIV,MLI,NER,INTERPOL,UNODC",
         "--agencies",
         "CIV/police,CIV/customs,CIV/gendarmerie,MLI/customs,INTERPOL/nccu,"
         "MLI/police,NER/police,INTERPOL/police,UNODC/police",
         "--auditors",
         "UNODC/audit,CIV/audit,MLI/audit,NER/audit,INTERPOL/audit"});
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    std::atexit([] { delete dir; });
    return d;
  }();
  static const std::string path = dir->path() + "/pki";
  return path;
}

TlsFiles Tls(const std::string& entity) {
  const std::string& pki = PkiDir();
  TlsFiles files;
  files.cert_file = absl::StrCat(pki, "/", entity, "-chain.pem");
  files.key_file = absl::StrCat(pki, "/", entity, ".key");
  files.ca_file = absl::StrCat(pki, "/ca.pem");
  return files;
}

ClientOptions ClientOptionsFor(const std::string& target,
                               const std::string& entity) {
  TlsFiles tls = Tls(entity);
  ClientOptions options;
  options.target = target;
  options.ca_file = tls.ca_file;
  options.cert_file = tls.cert_file;
  options.key_file = tls.key_file;
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Milliseconds(500);
  return options;
}

std::unique_ptr<Client> ConnectOrFail(const std::string& target,
                                      const std::string& entity) {
  auto client = Client::Connect(ClientOptionsFor(target, entity));
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return *std::move(client);
}

void TakeAndAck(Subscriber& subscriber, size_t n,
                std::vector<std::string>* ids) {
  while (ids->size() < n) {
    auto next = subscriber.Next(absl::Seconds(20));
    INFO("reconnects " << subscriber.reconnects() << " seen " << ids->size()
                       << " status " << next.status().ToString());
    REQUIRE(next.ok());
    REQUIRE(next->has_value());
    ids->push_back((*next)->alert().id());
    subscriber.Ack((*next)->sequence());
  }
}

void IssueCertificate(const std::string& ca_base, const std::string& spiffe_id,
                      const std::string& out_base) {
  const std::string ca = absl::StrCat(PkiDir(), "/", ca_base);
  {
    std::ofstream ext(out_base + ".ext");
    ext << "[ ext ]\n"
        << "basicConstraints = critical, CA:false\n"
        << "keyUsage = critical, digitalSignature\n"
        << "extendedKeyUsage = serverAuth, clientAuth\n"
        << "subjectAltName = URI:" << spiffe_id
        << ", DNS:localhost, IP:127.0.0.1\n";
  }
  for (std::vector<std::string> args :
       {std::vector<std::string>{"req", "-new", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:P-256", "-noenc", "-keyout",
                                 out_base + ".key", "-out", out_base + ".csr",
                                 "-subj", "/O=IBSM/CN=test"},
        std::vector<std::string>{"x509", "-req", "-in", out_base + ".csr",
                                 "-CA", ca + ".pem", "-CAkey", ca + ".key",
                                 "-set_serial", "4242", "-days", "2",
                                 "-extfile", out_base + ".ext", "-extensions",
                                 "ext", "-out", out_base + ".pem"}}) {
    RunResult r = RunBinary("/usr/bin/openssl", args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  std::filesystem::permissions(
      out_base + ".key",
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::ofstream(out_base + "-chain.pem")
      << *ReadFileToString(out_base + ".pem") << *ReadFileToString(ca + ".pem");
}

internal::v1::NodeConfig NodeConfigFor(const std::string& data_dir,
                                       const std::string& node_id) {
  TlsFiles node = Tls("node-" + node_id);
  internal::v1::NodeConfig config;
  config.set_node_id(node_id);
  config.set_listen_address("127.0.0.1:0");
  config.set_data_dir(data_dir);
  config.mutable_tls()->set_cert_file(node.cert_file);
  config.mutable_tls()->set_key_file(node.key_file);
  config.mutable_tls()->set_ca_file(node.ca_file);
  config.mutable_tls()->set_crl_dir(PkiDir() + "/crl");
  config.set_durability(internal::v1::DURABILITY_SYNC);
  config.set_shutdown_grace_seconds(2);
  // Encryption at rest on, so every test runs with it: one key per data
  // directory, made on first use and kept for restarts.
  config.mutable_encryption()->set_key_file(NodeKeyFileFor(data_dir));
  // Everything else keeps the defaults that Node::Start fills in.
  return config;
}

std::string NodeKeyFileFor(const std::string& data_dir) {
  const std::string path = data_dir + ".key";
  if (!std::filesystem::exists(path)) {
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    absl::StatusOr<std::string> made = broker::WriteNewKeyFile(path);
    INFO(made.status().ToString());
    REQUIRE(made.ok());
  }
  return path;
}

broker::StoreOptions StoreOptionsFor(const internal::v1::NodeConfig& config) {
  broker::StoreOptions options{config.data_dir(), config.node_id()};
  if (config.has_encryption()) {
    const internal::v1::EncryptionConfig& e = config.encryption();
    absl::StatusOr<std::shared_ptr<const broker::KeyRing>> keys =
        broker::KeyRing::Load(
            e.key_file(), {e.old_key_files().begin(), e.old_key_files().end()});
    INFO(keys.status().ToString());
    REQUIRE(keys.ok());
    options.keys = *keys;
  }
  return options;
}

std::shared_ptr<grpc::Channel> Channel(int port, const TlsFiles& client) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ReadFileToString(client.ca_file);
  options.pem_cert_chain = *ReadFileToString(client.cert_file);
  options.pem_private_key = *ReadFileToString(client.key_file);
  grpc::ChannelArguments args;
  // Separate connections per channel, so tests model separate clients.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::SslCredentials(options), args);
}

v1::Alert MakeAlert(const std::string& id, const std::string& topic,
                    const std::string& classification) {
  v1::Alert alert;
  alert.set_id(id);
  alert.set_topic(topic);
  alert.set_classification(classification);
  alert.set_severity(v1::SEVERITY_HIGH);
  alert.set_content_type("text/plain");
  alert.set_payload("Armed group sighted moving north near the border post.");
  *alert.mutable_created_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  return alert;
}

BrokerProcess::BrokerProcess(internal::v1::NodeConfig config,
                             std::vector<std::string> extra_args)
    : config_(std::move(config)) {
  std::filesystem::create_directories(config_.data_dir());
  std::string port_file = config_.data_dir() + ".port";
  std::filesystem::remove(port_file);
  config_.set_port_file(port_file);
  const bool federated = config_.has_federation() &&
                         !config_.federation().listen_address().empty();
  std::string federation_port_file;
  if (federated) {
    if (config_.federation().port_file().empty()) {
      config_.mutable_federation()->set_port_file(config_.data_dir() +
                                                  ".fed-port");
    }
    federation_port_file = config_.federation().port_file();
    std::filesystem::remove(federation_port_file);
  }
  std::string text;
  REQUIRE(google::protobuf::TextFormat::PrintToString(config_, &text));
  std::string config_path = config_.data_dir() + ".textproto";
  {
    std::ofstream out(config_path);
    out << text;
  }
  std::string binary = BinaryDir() + "/bin/ibsm-broker";
  std::vector<std::string> args = {binary, "--config", config_path};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  bool exited = false;
  const bool serving = Eventually([&] {
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) {
      if (!federated) return true;
      std::ifstream fed(federation_port_file);
      if (fed >> federation_port_ && federation_port_ > 0) return true;
    }
    int status;
    exited = waitpid(pid_, &status, WNOHANG) == pid_;
    return exited;
  });
  if (exited) {
    pid_ = -1;
    FAIL("ibsm-broker exited before serving");
  }
  if (!serving) {
    // FAIL throws out of the constructor, so the destructor will not reap
    // the child: do it here.
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    FAIL("ibsm-broker did not start serving"
         << (federated ? " (client and federation ports)" : "") << " within "
         << absl::FormatDuration(kEventuallyDeadline));
  }
}

BrokerProcess::~BrokerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

void BrokerProcess::Kill(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int BrokerProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  const bool exited = Eventually(
      [&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    FAIL_CHECK("ibsm-broker did not exit within "
               << absl::FormatDuration(timeout) << "; killed it");
    return -1;
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string CliBinary() { return BinaryDir() + "/bin/ibsm"; }

std::vector<std::string> CliArgs(int port, const std::string& entity,
                                 std::vector<std::string> args) {
  TlsFiles tls = Tls(entity);
  std::vector<std::string> all = {"--target", absl::StrCat("127.0.0.1:", port),
                                  "--ca",     tls.ca_file,
                                  "--cert",   tls.cert_file,
                                  "--key",    tls.key_file};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

RunResult RunBinary(const std::string& binary,
                    const std::vector<std::string>& args,
                    absl::Duration timeout) {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  // Read until the child closes its end, then reap it; a child that overruns
  // `timeout` is killed. Both the read and the reaping are bounded, also
  // when a grandchild keeps the pipe open or the child closes it early.
  const absl::Time deadline = absl::Now() + timeout;
  std::string output = ReadUntilEnd(pipe_fds[0], deadline);
  close(pipe_fds[0]);
  int status = 0;
  if (!Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                  deadline - absl::Now())) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, output};
}

}  // namespace ibsm::testing
