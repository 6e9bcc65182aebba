// libFuzzer target for the audit export reader: what `ibsm audit verify FILE
// --node-cert CERT [--kept-checkpoint NOTE] [--alerts ALERTS]` does with its
// files once read (client-lib/cli/audit_commands.cc): parse the export as an
// ibsm.v1.AuditExport, verify it (audit_verify.h VerifyExport) against
// node-CIV's key of the fixed fuzzing PKI, with the kept checkpoint when
// given, and when it verifies check the alert export (VerifyAlerts).
//
// Input: up to three parts (fuzz_support.h SplitParts): the export, the
// kept checkpoint note (empty: none), the alert export (empty: none).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "ibsm/audit_verify.h"
#include "ibsm/v1/audit.pb.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::LogSilencer quiet;
  std::vector<absl::string_view> parts = ibsm::fuzz::SplitParts(
      absl::string_view(reinterpret_cast<const char*>(data), size), 3);
  if (parts.empty()) return 0;
  ibsm::v1::AuditExport exported;
  if (!exported.ParseFromArray(parts[0].data(),
                               static_cast<int>(parts[0].size()))) {
    return 0;
  }
  std::string kept;
  if (parts.size() > 1) kept = std::string(parts[1]);
  auto report =
      ibsm::VerifyExport(exported, ibsm::fuzz::NodeVerifyingKey(),
                         ibsm::fuzz::kOrigin, kept.empty() ? nullptr : &kept);
  if (!report.ok() || !report->ok) return 0;
  if (!report->checkpoint_verified) std::abort();
  if (parts.size() < 3) return 0;
  ibsm::v1::AlertExport alerts;
  if (!alerts.ParseFromArray(parts[2].data(),
                             static_cast<int>(parts[2].size()))) {
    return 0;
  }
  (void)ibsm::VerifyAlerts(exported, alerts);
  return 0;
}
