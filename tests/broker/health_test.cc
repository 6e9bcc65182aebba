// The node's health state (broker/metrics/health.h): what the gRPC health
// service and /healthz answer at each stage of a node's life, and that its
// listeners hear every change once.
#include "metrics/health.h"

#include <catch2/catch.hpp>
#include <vector>

namespace ibsm::broker {
namespace {

TEST_CASE(
    "health: NOT_SERVING while starting, SERVING once started, "
    "NOT_SERVING for a store problem until it passes, and for good "
    "once stopping",
    "[health]") {
  HealthState health;
  std::vector<bool> heard;
  health.OnChange([&](bool serving) { heard.push_back(serving); });
  CHECK_FALSE(health.serving());
  CHECK(health.NotServingReason() == "starting: the store is not open yet");

  health.SetStarted();
  CHECK(health.serving());
  health.SetStoreProblem("disk full: 0 bytes free");
  CHECK(health.NotServingReason() == "disk full: 0 bytes free");
  health.SetStoreProblem("disk full: 0 bytes free");  // no change
  health.SetStoreProblem("");
  CHECK(health.serving());

  health.SetStopping();
  CHECK(health.NotServingReason() == "the node is shutting down");
  health.SetStoreProblem("");  // stopping wins
  CHECK_FALSE(health.serving());
  CHECK(heard == std::vector<bool>{true, false, true, false});
}

TEST_CASE("health: a store problem found while starting shows once started",
          "[health]") {
  HealthState health;
  health.SetStoreProblem("RocksDB stopped writes");
  CHECK(health.NotServingReason() == "starting: the store is not open yet");
  health.SetStarted();
  CHECK(health.NotServingReason() == "RocksDB stopped writes");
}

}  // namespace
}  // namespace ibsm::broker
