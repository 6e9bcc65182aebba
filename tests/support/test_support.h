// What the tests share: temp directories, one development PKI per test
// process (made by certs/make-dev-pki.sh), node configs, in-process nodes and
// ibsm-broker child processes on loopback port 0, and mTLS channels.
// Not thread-safe unless stated; each test drives its own objects.
#ifndef IBSM_TESTS_SUPPORT_TEST_SUPPORT_H_
#define IBSM_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ibsm/client.h"
#include "ibsm/internal/v1/config.pb.h"
#include "ibsm/subscriber.h"
#include "ibsm/tls.h"
#include "ibsm/v1/alert.pb.h"
#include "node/node.h"
#include "storage/store.h"

namespace grpc {
class Channel;
}

namespace ibsm::testing {

std::string SourceDir();  // the repository, from IBSM_SOURCE_DIR
std::string BinaryDir();  // the build tree, from IBSM_BINARY_DIR

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The development PKI of this test process, made on first use: nodes CIV,
// MLI, NER, INTERPOL and UNODC; agencies CIV/police, CIV/customs,
// CIV/gendarmerie, MLI/customs, INTERPOL/nccu and <NODE>/police of the
// other nodes; auditors UNODC/audit and <NODE>/audit of every other node;
// and the script's negative-test material (certs/make-dev-pki.sh).
const std::string& PkiDir();
// TLS files for a PKI entity: "node-CIV", "agency-CIV_police", "revoked",
// "expired", "foreign", "auditor-UNODC_audit". Uses the -chain.pem file.
TlsFiles Tls(const std::string& entity);

// Client options for PKI `entity` dialing `target` ("127.0.0.1:PORT"), with
// a short reconnect backoff so tests that break connections recover quickly.
ClientOptions ClientOptionsFor(const std::string& target,
                               const std::string& entity);
// A connected client with ClientOptionsFor(target, entity); fails the test
// otherwise.
std::unique_ptr<Client> ConnectOrFail(const std::string& target,
                                      const std::string& entity);
// Takes deliveries from `subscriber`, acknowledging each, until `ids` holds
// `n` alert ids; fails the test on an error or 20 s without a delivery.
void TakeAndAck(Subscriber& subscriber, size_t n,
                std::vector<std::string>* ids);

// Issues, with openssl, a fresh P-256 key and a certificate for
// `spiffe_id` (e.g. "spiffe://ibsm/CIV") signed by the PKI's CA `ca_base`
// (e.g. "CIV-ca", "MLI-ca"), valid 2 days, usable as a TLS server and
// client certificate. Writes `out_base`.key, `out_base`.pem and
// `out_base`-chain.pem (certificate + CA). Fails the test on error.
void IssueCertificate(const std::string& ca_base, const std::string& spiffe_id,
                      const std::string& out_base);

// A config for node `node_id` on 127.0.0.1:0 with its PKI files, and
// encryption at rest on under the key NodeKeyFileFor(data_dir).
internal::v1::NodeConfig NodeConfigFor(const std::string& data_dir,
                                       const std::string& node_id = "CIV");
// The node key file of `data_dir` (`data_dir`.key, next to it), written
// with a new key (ibsm-broker keygen's way) when it does not exist yet.
std::string NodeKeyFileFor(const std::string& data_dir);
// Options to open `config`'s store offline, as the broker does: with its
// keys when it has `encryption`.
broker::StoreOptions StoreOptionsFor(const internal::v1::NodeConfig& config);

// An mTLS channel to 127.0.0.1:port presenting `client` (raw gRPC SSL
// credentials: no client-side checks, so tests can present bad certificates).
std::shared_ptr<grpc::Channel> Channel(int port, const TlsFiles& client);

// A valid alert.
v1::Alert MakeAlert(const std::string& id,
                    const std::string& topic = "border.incident",
                    const std::string& classification = "RESTRICTED");

// ibsm-broker as a child process.
class BrokerProcess {
 public:
  // Writes `config` (with port_file set, and federation.port_file when it
  // has a federation listen_address) next to its data dir, starts the
  // broker and waits until it serves, on its federation port too. Fails the
  // test if it does not. `extra_args` follow `--config FILE` (e.g.
  // --accept-rollback N).
  explicit BrokerProcess(internal::v1::NodeConfig config,
                         std::vector<std::string> extra_args = {});
  ~BrokerProcess();  // SIGKILLs if still running
  int port() const { return port_; }
  // The bound federation port; 0 without a federation listen_address.
  int federation_port() const { return federation_port_; }
  // The config as written for the broker (port files set).
  const internal::v1::NodeConfig& config() const { return config_; }
  pid_t pid() const { return pid_; }
  void Kill(int signal);
  // Waits up to `timeout` for exit; returns the exit code, or 128+signal.
  // A broker still running then is SIGKILLed, the test fails and -1 is
  // returned.
  int Wait(absl::Duration timeout = absl::Seconds(60));

 private:
  internal::v1::NodeConfig config_;
  pid_t pid_ = -1;
  int port_ = 0;
  int federation_port_ = 0;
};

// The ibsm CLI of this build, and its arguments for a call to the node on
// 127.0.0.1:port with `entity`'s certificate (see Tls) followed by `args`.
std::string CliBinary();
std::vector<std::string> CliArgs(int port, const std::string& entity,
                                 std::vector<std::string> args);

// Runs `binary` with `args` to completion; returns its exit code and its
// stdout and stderr together. A child still running after `timeout` is
// SIGKILLed (exit code 128+9) with the output read so far.
struct RunResult {
  int exit_code;
  std::string output;
};
RunResult RunBinary(const std::string& binary,
                    const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Seconds(30));

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_TEST_SUPPORT_H_
