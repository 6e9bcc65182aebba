// libFuzzer target for the inclusion-proof verifier (client-lib/shared
// audit_verify.h, what `ibsm audit proof --index` runs on the node's
// answer): the bytes are an ibsm.v1.InclusionProof, checked with node-CIV's
// key of the fixed fuzzing PKI, with a trust callback, and without a key.
// It promises never to fail on untrusted input: every problem is a verdict.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"
#include "ibsm/audit_verify.h"
#include "ibsm/v1/audit.pb.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::LogSilencer quiet;
  ibsm::v1::InclusionProof proof;
  if (!proof.ParseFromArray(data, static_cast<int>(size))) return 0;
  ibsm::InclusionReport keyed = ibsm::VerifyInclusionProof(
      proof, &ibsm::fuzz::NodeVerifyingKey(), ibsm::fuzz::kOrigin);
  if (keyed.verdict == ibsm::InclusionVerdict::kVerified &&
      !keyed.signed_checkpoint.has_value()) {
    std::abort();
  }
  (void)ibsm::VerifyInclusionProof(
      proof, &ibsm::fuzz::NodeVerifyingKey(), ibsm::fuzz::kOrigin,
      [](const ibsm::Checkpoint& c) {
        return c.time_unix % 2 == 0
                   ? absl::OkStatus()
                   : absl::PermissionDeniedError("odd time, not trusted");
      });
  ibsm::InclusionReport unkeyed =
      ibsm::VerifyInclusionProof(proof, nullptr, ibsm::fuzz::kOrigin);
  if (unkeyed.verdict == ibsm::InclusionVerdict::kVerified) std::abort();
  return 0;
}
