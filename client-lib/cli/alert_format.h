// What the ibsm CLI puts into and gets out of alerts: building a v1::Alert
// from `ibsm publish` flags, and rendering receipts, deliveries and node
// info and federation links as human-readable text or single-line JSON. Pure
// code (payload files are read through a caller-supplied function),
// thread-compatible.
#ifndef IBSM_CLIENT_LIB_CLI_ALERT_FORMAT_H_
#define IBSM_CLIENT_LIB_CLI_ALERT_FORMAT_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flags.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/broker.pb.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace ibsm::cli {

// Reads a payload file; "-" means standard input.
using PayloadReader =
    std::function<absl::StatusOr<std::string>(const std::string& path)>;

// "LOW", "medium", "SEVERITY_HIGH" -> the enum; INVALID_ARGUMENT otherwise.
absl::StatusOr<v1::Severity> ParseSeverity(absl::string_view value);

// The alert described by `ibsm publish` flags, created at `now`. Checks the
// flags' syntax only (INVALID_ARGUMENT naming the flag); the caller runs
// ValidateAlert.
absl::StatusOr<v1::Alert> AlertFromFlags(const ParsedFlags& flags,
                                         absl::Time now,
                                         const PayloadReader& read_payload);

// Single-line JSON with proto field names and default values printed.
absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& m);

std::string FormatReceipt(const PublishReceipt& receipt);
// JSON of a receipt, shaped like a v1::PublishResult.
absl::StatusOr<std::string> ReceiptJson(const PublishReceipt& receipt);
std::string FormatDelivery(const v1::Delivery& delivery);
std::string FormatNodeInfo(const v1::NodeInfo& info);
// `ibsm node links`: one table row per link (ages relative to `now`), or
// "node CIV has no federation links".
std::string FormatLinks(const v1::Links& links, absl::Time now);
// "512B", "1.5KiB", "3.0MiB", "2.0GiB".
std::string FormatBytes(uint64_t bytes);
// How long before `now` `t` was: "3s ago", "5m ago", "2h ago", "4d ago";
// "never" when unset.
std::string FormatAge(const google::protobuf::Timestamp& t, absl::Time now);

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_ALERT_FORMAT_H_
