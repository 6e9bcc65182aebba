#include "tests/support/restartable_broker.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

namespace ibsm::testing {

RestartableBroker::RestartableBroker(const std::string& data_dir)
    : config_(NodeConfigFor(data_dir)) {
  config_.set_listen_address("127.0.0.1:0");
  process_ = std::make_unique<BrokerProcess>(config_);
  config_.set_listen_address(absl::StrCat("127.0.0.1:", process_->port()));
}

int RestartableBroker::Stop(int signal) {
  process_->Kill(signal);
  const int status = process_->Wait();
  process_.reset();
  return status;
}

void RestartableBroker::Start() {
  process_ = std::make_unique<BrokerProcess>(config_);
  REQUIRE(absl::StrCat("127.0.0.1:", process_->port()) == target());
}

}  // namespace ibsm::testing
