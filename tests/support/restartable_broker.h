// An ibsm-broker child process whose port stays the same when it is started
// again, so that clients reconnect to it by themselves: for tests that stop
// a node (SIGTERM, SIGKILL) and bring it back on the same data dir.
// Not thread-safe: one test thread drives it.
#ifndef IBSM_TESTS_SUPPORT_RESTARTABLE_BROKER_H_
#define IBSM_TESTS_SUPPORT_RESTARTABLE_BROKER_H_

#include <memory>
#include <string>

#include "tests/support/test_support.h"

namespace ibsm::testing {

class RestartableBroker {
 public:
  // Starts a broker for node CIV on `data_dir` (NodeConfigFor) on a port of
  // its choosing, which every later Start keeps.
  explicit RestartableBroker(const std::string& data_dir);
  // "127.0.0.1:PORT".
  const std::string& target() const { return config_.listen_address(); }
  // The running process; the broker must be running.
  BrokerProcess& process() { return *process_; }
  bool running() const { return process_ != nullptr; }
  // Signals the running process and returns its exit status.
  int Stop(int signal);
  // Starts it again on the same data dir and port; fails the test if the
  // port changed.
  void Start();

 private:
  internal::v1::NodeConfig config_;
  std::unique_ptr<BrokerProcess> process_;
};

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_RESTARTABLE_BROKER_H_
