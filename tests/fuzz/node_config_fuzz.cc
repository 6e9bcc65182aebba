// libFuzzer target for the node configuration parser (broker/node/config.h):
// any byte string must give a config or a clean INVALID_ARGUMENT, never a
// crash. A config that parses goes through the checks Node::Start runs on
// it before anything else (limits, TLS, federation, encryption).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/logging.h"
#include "node/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The text-format parser logs each error it finds; the status says it.
  google::protobuf::LogSilencer quiet;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = ibsm::broker::ParseConfig(text, "fuzz.textproto");
  if (!config.ok()) return 0;
  (void)ibsm::broker::CheckLimits(config->limits(), "fuzz");
  (void)ibsm::broker::CheckTlsConfig(config->tls(), "fuzz");
  (void)ibsm::broker::CheckFederationConfig(*config, "fuzz");
  (void)ibsm::broker::CheckEncryptionConfig(*config, "fuzz");
  return 0;
}
