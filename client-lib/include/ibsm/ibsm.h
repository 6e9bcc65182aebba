// Everything an application needs to publish and subscribe with IBSM
// Exchange in one include: Client, Publisher, Subscriber, the message types
// (v1::Alert, v1::Delivery, v1::NodeInfo) and the status helpers.
#ifndef IBSM_IBSM_H_
#define IBSM_IBSM_H_

#include "ibsm/alert_rules.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/signature_checker.h"
#include "ibsm/status_macros.h"
#include "ibsm/subscriber.h"
#include "ibsm/topic.h"
#include "ibsm/v1/alert.pb.h"
#include "ibsm/v1/broker.pb.h"

#endif  // IBSM_IBSM_H_
