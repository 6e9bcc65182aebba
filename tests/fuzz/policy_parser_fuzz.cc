// libFuzzer target for the policy parser and validator: any byte string must
// give a policy or a clean INVALID_ARGUMENT, never a crash. A policy that
// parses is also linted and asked one decision of each kind.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "ibsm/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = ibsm::Policy::Parse(text, "fuzz");
  if (!policy.ok()) return 0;
  const ibsm::Policy& p = **policy;
  (void)p.Lint();
  ibsm::AlertFacts alert;
  alert.topic = "a.b";
  alert.classification =
      p.classification_levels().empty() ? "" : p.classification_levels().back();
  alert.releasable_to = {"A", "G"};
  alert.originator = "A/x";
  (void)p.DecidePublish(alert, "A/x");
  (void)p.Decide(alert, ibsm::Recipient::Agency("A/x"));
  (void)p.Decide(alert, ibsm::Recipient::Node("A", true));
  (void)p.RetentionFor("a.b");
  return 0;
}
