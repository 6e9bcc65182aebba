#include "ibsm/alert_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ibsm/topic.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm {
namespace {

absl::Status Invalid(absl::string_view id, absl::string_view message) {
  return absl::InvalidArgumentError(
      id.empty() ? std::string(message)
                 : absl::StrCat("alert '", id, "': ", message));
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  // RFC 3339 range, as google/protobuf/timestamp.proto defines it.
  return t.seconds() >= -62135596800LL && t.seconds() <= 253402300799LL &&
         t.nanos() >= 0 && t.nanos() <= 999999999;
}

bool Before(const google::protobuf::Timestamp& a,
            const google::protobuf::Timestamp& b) {
  return a.seconds() < b.seconds() ||
         (a.seconds() == b.seconds() && a.nanos() < b.nanos());
}

bool ValidNodeOrGroup(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

constexpr absl::string_view kTlpLabels[] = {"CLEAR", "GREEN", "AMBER",
                                            "AMBER+STRICT", "RED"};

}  // namespace

const std::vector<std::string>& DefaultClassificationLevels() {
  static const auto* levels = new std::vector<std::string>{
      "UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"};
  return *levels;
}

absl::Status ValidateAlertId(absl::string_view id) {
  if (id.empty()) return Invalid("", "alert id is missing");
  if (id.size() > kMaxAlertIdLength) {
    return Invalid("", absl::StrCat("alert id is ", id.size(),
                                    " characters long; at most ",
                                    kMaxAlertIdLength, " are allowed"));
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-';
    if (!ok) {
      return Invalid("", absl::StrCat("alert id '", id,
                                      "' may only contain letters, digits, "
                                      "'.', '_', ':' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAlert(const v1::Alert& alert, const AlertLimits& limits) {
  if (absl::Status s = ValidateAlertId(alert.id()); !s.ok()) return s;
  const std::string& id = alert.id();
  size_t bytes = alert.ByteSizeLong();
  if (bytes > limits.max_alert_bytes) {
    return Invalid(id,
                   absl::StrCat("is ", bytes,
                                " bytes; this node accepts "
                                "at most ",
                                limits.max_alert_bytes, " bytes per alert"));
  }
  if (absl::Status s = ValidateTopic(alert.topic()); !s.ok()) {
    return Invalid(id, s.message());
  }
  const std::vector<std::string>& levels = *limits.classification_levels;
  if (alert.classification().empty()) {
    return Invalid(id, absl::StrCat("classification is missing; use one of ",
                                    absl::StrJoin(levels, ", ")));
  }
  if (std::find(levels.begin(), levels.end(), alert.classification()) ==
      levels.end()) {
    return Invalid(
        id, absl::StrCat("unknown classification '", alert.classification(),
                         "'; use one of ", absl::StrJoin(levels, ", ")));
  }
  if (alert.severity() == v1::SEVERITY_UNSPECIFIED ||
      !v1::Severity_IsValid(alert.severity())) {
    return Invalid(id,
                   "severity is missing or unknown; use LOW, MEDIUM, "
                   "HIGH or CRITICAL");
  }
  for (const std::string& r : alert.releasable_to()) {
    if (!ValidNodeOrGroup(r)) {
      return Invalid(id, absl::StrCat("releasable_to entry '", r,
                                      "' is not a node or group id "
                                      "(uppercase, e.g. MLI or ECOWAS)"));
    }
  }
  if (alert.has_created_at() && !ValidTimestamp(alert.created_at())) {
    return Invalid(id, "created_at is not a valid timestamp");
  }
  if (alert.has_expires_at()) {
    if (!ValidTimestamp(alert.expires_at())) {
      return Invalid(id, "expires_at is not a valid timestamp");
    }
    if (alert.has_created_at() &&
        !Before(alert.created_at(), alert.expires_at())) {
      return Invalid(id, "expires_at must be after created_at");
    }
  }
  if (alert.has_location()) {
    const v1::GeoLocation& loc = alert.location();
    if (!(loc.latitude() >= -90 && loc.latitude() <= 90) ||
        !(loc.longitude() >= -180 && loc.longitude() <= 180)) {
      return Invalid(id,
                     "location must have latitude in [-90, 90] and "
                     "longitude in [-180, 180]");
    }
  }
  for (const auto& [key, value] : alert.attributes()) {
    if (key.empty() || key.size() > 128) {
      return Invalid(id, "attribute names must be 1..128 characters");
    }
  }
  if (!alert.tlp().empty() &&
      std::find(std::begin(kTlpLabels), std::end(kTlpLabels), alert.tlp()) ==
          std::end(kTlpLabels)) {
    return Invalid(id, absl::StrCat("unknown TLP label '", alert.tlp(),
                                    "'; use CLEAR, GREEN, AMBER, "
                                    "AMBER+STRICT or RED"));
  }
  if (alert.content_type().size() > 255) {
    return Invalid(id, "content_type is longer than 255 characters");
  }
  for (const v1::AlertReference& ref : alert.references()) {
    if (!ValidateAlertId(ref.alert_id()).ok() ||
        ref.kind() == v1::AlertReference::KIND_UNSPECIFIED ||
        !v1::AlertReference::Kind_IsValid(ref.kind())) {
      return Invalid(id,
                     "each reference needs a valid alert_id and a kind "
                     "(UPDATE, RETRACTION or RELATED)");
    }
  }
  return absl::OkStatus();
}

}  // namespace ibsm
