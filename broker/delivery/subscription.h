// One subscriber stream's delivery state, as the SubscriptionHub sees it.
// The gRPC reactor that implements it lives in services/subscriber_service.cc.
//
// Flow: the client opens with topic patterns, an optional durable name and a
// start position; the node answers `opened` with the cursor it starts after,
// then sends deliveries in sequence order, never more than the credit the
// client granted. Acknowledgements move the durable cursor (written through
// the Committer). A Subscription outlives its reactor while a worker still
// holds it; every call into the reactor happens under the Subscription's
// mutex and stops once the reactor is done.
//
// Subscription is safe for concurrent use.
#ifndef IBSM_BROKER_DELIVERY_SUBSCRIPTION_H_
#define IBSM_BROKER_DELIVERY_SUBSCRIPTION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace ibsm::broker {

class Subscription {
 public:
  virtual ~Subscription() = default;
  // Schedules a fill if the subscription has credit and alerts may be due.
  virtual void Wake() = 0;
  // Ends the stream with `status` once the write in flight completes.
  virtual void End(const absl::Status& status) = 0;
  // "agency \0 name" for durable subscriptions, empty for ephemeral ones.
  virtual const std::string& durable_key() const = 0;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_DELIVERY_SUBSCRIPTION_H_
