// Loading and checking the node configuration
// (proto/ibsm/internal/v1/config.proto, protobuf text format).
// Thread-compatible.
#ifndef IBSM_BROKER_NODE_CONFIG_H_
#define IBSM_BROKER_NODE_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ibsm/internal/v1/config.pb.h"

namespace ibsm::broker {

// Parses `text` (named `source` in messages), refusing unknown fields and
// reporting "source:line:column: reason"; fills defaults for zero limits and
// checks required fields.
absl::StatusOr<internal::v1::NodeConfig> ParseConfig(absl::string_view text,
                                                     absl::string_view source);
absl::StatusOr<internal::v1::NodeConfig> LoadConfig(const std::string& path);

// Replaces zero limits and intervals by their documented defaults.
void ApplyDefaults(internal::v1::NodeConfig* config);

// Bounds of limits.rocksdb_block_cache_mib and limits.rocksdb_memtable_mib.
inline constexpr uint32_t kMinRocksDbMib = 8;
inline constexpr uint32_t kMaxRocksDbMib = 65536;

// The limits that have bounds of their own (after ApplyDefaults): the
// RocksDB memory limits are kMinRocksDbMib..kMaxRocksDbMib. INVALID_ARGUMENT
// "source: limits.field is N MiB; it must be between ..." otherwise.
absl::Status CheckLimits(const internal::v1::Limits& limits,
                         absl::string_view source);

// Bounds and default of tls.handshake_timeout_seconds.
inline constexpr uint32_t kDefaultHandshakeTimeoutSeconds = 5;
inline constexpr uint32_t kMinHandshakeTimeoutSeconds = 1;
inline constexpr uint32_t kMaxHandshakeTimeoutSeconds = 60;

// The tls section (after ApplyDefaults): handshake_timeout_seconds is
// within its bounds. INVALID_ARGUMENT "source: tls.field is N; it must be
// between ..." otherwise.
absl::Status CheckTlsConfig(const internal::v1::TlsConfig& tls,
                            absl::string_view source);

// The federation section (docs/federation.md): peers are node ids, not this
// node, not twice; peers need a policy_file. INVALID_ARGUMENT "source:
// federation: reason" otherwise.
absl::Status CheckFederationConfig(const internal::v1::NodeConfig& config,
                                   absl::string_view source);

// The encryption section: when set, key_file is named and no old key file
// is empty. INVALID_ARGUMENT "source: encryption.field ..." otherwise. The
// key files themselves are checked when the node opens its store.
absl::Status CheckEncryptionConfig(const internal::v1::NodeConfig& config,
                                   absl::string_view source);

// The logging and metrics sections: a known logging.format and level;
// metrics.port_file and client_ca_file only with a listen_address.
// INVALID_ARGUMENT "source: field ..." otherwise.
absl::Status CheckObservabilityConfig(const internal::v1::NodeConfig& config,
                                      absl::string_view source);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_NODE_CONFIG_H_
