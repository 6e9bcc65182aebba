// libFuzzer target for what a node checks of an alert it did not make
// (client-lib/shared: alert_rules.h, canonical_alert.h, alert_signature.h):
// the bytes are parsed as an ibsm.v1.Alert, as the Publisher service and
// federation ingress receive it, then validated, turned into their
// canonical and signing bytes, and their signature verified against the
// fixed fuzzing PKI. Never a crash; and two properties of the canonical
// bytes are checked (canonical_alert.h): they parse back, and the alert
// parsed back has the same canonical bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "ibsm/alert_rules.h"
#include "ibsm/alert_signature.h"
#include "ibsm/canonical_alert.h"
#include "ibsm/v1/alert.pb.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::LogSilencer quiet;
  ibsm::v1::Alert alert;
  if (!alert.ParseFromArray(data, static_cast<int>(size))) return 0;

  (void)ibsm::ValidateAlertId(alert.id());
  (void)ibsm::ValidateAlert(alert, ibsm::AlertLimits{});
  ibsm::AlertLimits small;
  small.max_alert_bytes = 512;
  (void)ibsm::ValidateAlert(alert, small);

  const std::string canonical = ibsm::CanonicalAlertBytes(alert);
  ibsm::v1::Alert back;
  if (!back.ParseFromString(canonical)) std::abort();
  if (ibsm::CanonicalAlertBytes(back) != canonical) std::abort();

  const std::string signing = ibsm::AlertSigningBytes(alert);
  if (signing.rfind(std::string(ibsm::kAlertSignatureContext) + "\n", 0) != 0) {
    std::abort();
  }
  if (ibsm::SigningChainSha256(alert).size() != 32) std::abort();

  if (!ibsm::CheckSignatureBounds(alert).ok()) return 0;
  (void)ibsm::VerifyAlertSignature(alert, ibsm::fuzz::TrustStore(),
                                   ibsm::fuzz::FixedTimeChainOptions());
  return 0;
}
