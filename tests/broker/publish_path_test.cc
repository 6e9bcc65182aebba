// Tests of the content hash of broker/publish/publish_path.h.
#include "publish/publish_path.h"

#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>

#include "ibsm/v1/alert.pb.h"

namespace ibsm::broker {
namespace {

TEST_CASE(
    "AlertContentSha256InPlace equals AlertContentSha256 and leaves "
    "the alert as it was",
    "[publish]") {
  v1::Alert alert;
  alert.set_id("a1");
  alert.set_topic("border.incident");
  alert.set_originator("CIV/police");
  alert.set_payload("payload");
  alert.mutable_created_at()->set_seconds(1718000000);
  alert.set_signature("sig");
  alert.add_signing_chain("leaf");
  alert.add_signing_chain("ca");
  const v1::Alert before = alert;
  CHECK(AlertContentSha256InPlace(&alert) == AlertContentSha256(before));
  CHECK(google::protobuf::util::MessageDifferencer::Equals(alert, before));
  // Left out: time, signature and chain do not change the content.
  v1::Alert resigned = before;
  resigned.set_signature("another");
  resigned.clear_signing_chain();
  resigned.mutable_created_at()->set_seconds(1);
  CHECK(AlertContentSha256InPlace(&resigned) == AlertContentSha256(before));
  v1::Alert changed = before;
  changed.set_payload("other");
  CHECK(AlertContentSha256InPlace(&changed) != AlertContentSha256(before));
  v1::Alert bare;  // nothing to move out
  bare.set_id("b");
  CHECK(AlertContentSha256InPlace(&bare) == AlertContentSha256(bare));
  CHECK_FALSE(bare.has_created_at());
}

}  // namespace
}  // namespace ibsm::broker
