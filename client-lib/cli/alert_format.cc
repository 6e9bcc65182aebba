#include "alert_format.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <iterator>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "ibsm/spiffe_id.h"
#include "ibsm/status_macros.h"
#include "table.h"

namespace ibsm::cli {
namespace {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t secs = absl::ToUnixSeconds(t);
  out->set_seconds(secs);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs))));
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  absl::Time time =
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::string_view SeverityName(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_LOW:
      return "LOW";
    case v1::SEVERITY_MEDIUM:
      return "MEDIUM";
    case v1::SEVERITY_HIGH:
      return "HIGH";
    case v1::SEVERITY_CRITICAL:
      return "CRITICAL";
    default:
      return "UNSPECIFIED";
  }
}

bool LooksLikeText(absl::string_view content_type, absl::string_view data) {
  bool texty = content_type.empty() ||
               absl::StartsWith(content_type, "text/") ||
               absl::StrContains(content_type, "json") ||
               absl::StrContains(content_type, "xml");
  if (!texty) return false;
  for (unsigned char c : data) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<v1::Severity> ParseSeverity(absl::string_view value) {
  std::string upper = absl::AsciiStrToUpper(value);
  absl::string_view v = upper;
  absl::ConsumePrefix(&v, "SEVERITY_");
  if (v == "LOW") return v1::SEVERITY_LOW;
  if (v == "MEDIUM") return v1::SEVERITY_MEDIUM;
  if (v == "HIGH") return v1::SEVERITY_HIGH;
  if (v == "CRITICAL") return v1::SEVERITY_CRITICAL;
  return absl::InvalidArgumentError(absl::StrCat(
      "--severity: '", value, "' is not LOW, MEDIUM, HIGH or CRITICAL"));
}

namespace {

// --updates / --retracts ORIGINATOR/ID, e.g. "CIV/police/civ-2026-0101": the
// originator is an agency id, the alert id follows its last '/'.
absl::StatusOr<v1::AlertReference> ParseAlertReference(
    absl::string_view flag, absl::string_view value,
    v1::AlertReference::Kind kind) {
  const size_t slash = value.rfind('/');
  absl::StatusOr<Identity> originator =
      slash == absl::string_view::npos
          ? absl::InvalidArgumentError("no originator")
          : ParseSpiffeId(
                absl::StrCat("spiffe://ibsm/", value.substr(0, slash)));
  if (!originator.ok() || !originator->is_agency() ||
      slash + 1 == value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", value,
                     "' is not ORIGINATOR/ID, e.g. CIV/police/civ-2026-0101"));
  }
  v1::AlertReference reference;
  reference.set_originator(originator->id());
  reference.set_alert_id(std::string(value.substr(slash + 1)));
  reference.set_kind(kind);
  return reference;
}

}  // namespace

absl::StatusOr<v1::Alert> AlertFromFlags(const ParsedFlags& flags,
                                         absl::Time now,
                                         const PayloadReader& read_payload) {
  for (const char* required : {"id", "topic", "classification", "severity"}) {
    if (!flags.Has(required)) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing required flag --", required));
    }
  }
  v1::Alert alert;
  alert.set_id(flags.Get("id"));
  alert.set_topic(flags.Get("topic"));
  alert.set_classification(flags.Get("classification"));
  IBSM_ASSIGN_OR_RETURN(v1::Severity severity,
                        ParseSeverity(flags.Get("severity")));
  alert.set_severity(severity);
  for (const std::string& list : flags.GetAll("releasable-to")) {
    for (std::string& r : SplitList(list))
      alert.add_releasable_to(std::move(r));
  }
  alert.set_orcon(flags.Bool("orcon"));
  if (flags.Has("tlp")) alert.set_tlp(absl::AsciiStrToUpper(flags.Get("tlp")));
  SetTime(now, alert.mutable_created_at());

  if (flags.Has("expires-in") && flags.Has("expires-at")) {
    return absl::InvalidArgumentError(
        "give either --expires-in or --expires-at, not both");
  }
  if (flags.Has("expires-in")) {
    IBSM_ASSIGN_OR_RETURN(
        absl::Duration d,
        ParseDurationValue("expires-in", flags.Get("expires-in")));
    SetTime(now + d, alert.mutable_expires_at());
  } else if (flags.Has("expires-at")) {
    IBSM_ASSIGN_OR_RETURN(
        absl::Time t, ParseTimeValue("expires-at", flags.Get("expires-at")));
    SetTime(t, alert.mutable_expires_at());
  }

  for (const std::string& kv : flags.GetAll("attr")) {
    IBSM_ASSIGN_OR_RETURN(auto pair, ParseKeyValue("attr", kv));
    (*alert.mutable_attributes())[pair.first] = pair.second;
  }
  if (flags.Has("content-type"))
    alert.set_content_type(flags.Get("content-type"));
  if (flags.Has("payload") && flags.Has("payload-file")) {
    return absl::InvalidArgumentError(
        "give either --payload or --payload-file, not both");
  }
  if (flags.Has("payload")) {
    alert.set_payload(flags.Get("payload"));
    if (!flags.Has("content-type")) alert.set_content_type("text/plain");
  } else if (flags.Has("payload-file")) {
    absl::StatusOr<std::string> data = read_payload(flags.Get("payload-file"));
    if (!data.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--payload-file: ", data.status().message()));
    }
    alert.set_payload(*std::move(data));
  }

  bool has_lat = flags.Has("lat"), has_lon = flags.Has("lon");
  if (has_lat != has_lon) {
    return absl::InvalidArgumentError("--lat and --lon go together");
  }
  if (has_lat || flags.Has("place") || flags.Has("country")) {
    v1::GeoLocation* loc = alert.mutable_location();
    if (has_lat) {
      IBSM_ASSIGN_OR_RETURN(double lat,
                            ParseDoubleValue("lat", flags.Get("lat")));
      IBSM_ASSIGN_OR_RETURN(double lon,
                            ParseDoubleValue("lon", flags.Get("lon")));
      loc->set_latitude(lat);
      loc->set_longitude(lon);
    }
    loc->set_place_name(flags.Get("place"));
    loc->set_country(flags.Get("country"));
  }

  if (flags.Has("updates") && flags.Has("retracts")) {
    return absl::InvalidArgumentError(
        "give either --updates or --retracts, not both");
  }
  for (const auto& [flag, kind] :
       {std::pair{"updates", v1::AlertReference::KIND_UPDATE},
        std::pair{"retracts", v1::AlertReference::KIND_RETRACTION}}) {
    if (!flags.Has(flag)) continue;
    IBSM_ASSIGN_OR_RETURN(*alert.add_references(),
                          ParseAlertReference(flag, flags.Get(flag), kind));
  }
  return alert;
}

absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(m, &out, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print JSON: ", std::string(status.message())));
  }
  return out;
}

std::string FormatReceipt(const PublishReceipt& receipt) {
  if (receipt.duplicate) {
    return absl::StrCat("alert ", receipt.alert_id, ": sequence ",
                        receipt.sequence, " duplicate (already stored)\n");
  }
  if (receipt.forwarded_to.empty()) {
    return absl::StrCat("alert ", receipt.alert_id, ": sequence ",
                        receipt.sequence, "\n");
  }
  return absl::StrCat("alert ", receipt.alert_id, ": sequence ",
                      receipt.sequence, ", forwarded to ",
                      absl::StrJoin(receipt.forwarded_to, ", "), "\n");
}

absl::StatusOr<std::string> ReceiptJson(const PublishReceipt& receipt) {
  v1::PublishResult r;
  r.set_alert_id(receipt.alert_id);
  r.set_sequence(receipt.sequence);
  r.set_duplicate(receipt.duplicate);
  for (const std::string& peer : receipt.forwarded_to) r.add_forwarded_to(peer);
  return ToJsonLine(r);
}

std::string FormatDelivery(const v1::Delivery& d) {
  const v1::Alert& a = d.alert();
  std::string out = absl::StrCat(
      "#", d.sequence(), " ", a.originator().empty() ? "?" : a.originator(),
      " ", a.id(), "  ", a.topic(), "  ", a.classification(), " ",
      SeverityName(a.severity()));
  if (a.orcon()) absl::StrAppend(&out, " ORCON");
  if (!a.tlp().empty()) absl::StrAppend(&out, " TLP:", a.tlp());
  absl::StrAppend(&out, "\n");
  if (a.has_created_at()) {
    absl::StrAppend(&out, "  created:  ", FormatTime(a.created_at()));
    if (d.has_received_at()) {
      absl::StrAppend(&out, "  stored: ", FormatTime(d.received_at()));
    }
    absl::StrAppend(&out, "\n");
  }
  if (a.has_expires_at()) {
    absl::StrAppend(&out, "  expires:  ", FormatTime(a.expires_at()), "\n");
  }
  if (a.releasable_to_size() > 0) {
    absl::StrAppend(&out,
                    "  releasable to: ", absl::StrJoin(a.releasable_to(), ", "),
                    "\n");
  }
  if (a.has_location()) {
    const v1::GeoLocation& l = a.location();
    absl::StrAppend(&out, "  location: ", l.latitude(), ", ", l.longitude());
    if (!l.place_name().empty())
      absl::StrAppend(&out, " (", l.place_name(), ")");
    if (!l.country().empty()) absl::StrAppend(&out, " ", l.country());
    absl::StrAppend(&out, "\n");
  }
  std::map<std::string, std::string> attrs(a.attributes().begin(),
                                           a.attributes().end());
  for (const auto& [k, v] : attrs) {
    absl::StrAppend(&out, "  ", k, ": ", v, "\n");
  }
  for (const v1::AlertReference& r : a.references()) {
    absl::StrAppend(&out, "  ",
                    v1::AlertReference::Kind_Name(r.kind()).substr(5), " of ",
                    r.originator(), " ", r.alert_id(), "\n");
  }
  if (!a.payload().empty()) {
    absl::StrAppend(&out, "  payload (",
                    a.content_type().empty() ? "no type" : a.content_type(),
                    ", ", a.payload().size(), " bytes)");
    if (LooksLikeText(a.content_type(), a.payload())) {
      absl::StrAppend(&out, ":\n    ", a.payload());
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string FormatNodeInfo(const v1::NodeInfo& info) {
  std::string out;
  auto line = [&out](absl::string_view k, absl::string_view v) {
    absl::StrAppend(&out, k, std::string(16 - k.size(), ' '), v, "\n");
  };
  line("node:", info.node_id());
  line("version:", info.version());
  line("caller:", info.caller());
  line("serving:", info.serving() ? "yes" : "no");
  line("last sequence:", absl::StrCat(info.last_sequence()));
  line("durability:", info.durability());
  line("policy version:", info.policy_version());
  line("started at:",
       info.has_started_at() ? FormatTime(info.started_at()) : "");
  line("subscriptions:", absl::StrCat(info.active_subscriptions()));
  line("levels:", absl::StrJoin(info.classification_levels(), ", "));
  line("encryption:",
       info.encryption_at_rest()
           ? absl::StrCat("on, key id ", info.encryption_key_id())
           : "off (payloads stored in plaintext)");
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, "B");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f%s", value, kUnits[unit]);
}

std::string FormatAge(const google::protobuf::Timestamp& t, absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "never";
  const absl::Duration age =
      now - (absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()));
  if (age < absl::ZeroDuration()) return "just now";  // clocks differ
  const int64_t s = absl::ToInt64Seconds(age);
  if (s < 60) return absl::StrCat(s, "s ago");
  if (s < 3600) return absl::StrCat(s / 60, "m ago");
  if (s < 86400) return absl::StrCat(s / 3600, "h ago");
  return absl::StrCat(s / 86400, "d ago");
}

namespace {

// The last error is free text from the link; the table keeps its width.
constexpr size_t kLastErrorWidth = 60;

std::string LinkStateName(v1::LinkInfo::State state) {
  switch (state) {
    case v1::LinkInfo::CONNECTING:
      return "connecting";
    case v1::LinkInfo::UP:
      return "up";
    case v1::LinkInfo::DOWN:
      return "down";
    case v1::LinkInfo::REFUSED:
      return "refused";
    default:
      return "unknown";
  }
}

// "critical/high/other", the stored bytes and the bound:
// "3/0/12 4.2KiB of max 100000 alerts/1.0GiB".
std::string BacklogCell(const v1::LinkInfo& l) {
  std::string out = absl::StrCat(l.backlog_critical(), "/", l.backlog_high(),
                                 "/", l.backlog_other(), " ",
                                 FormatBytes(l.backlog_bytes()), " of max ");
  absl::StrAppend(&out, l.max_backlog_alerts() == 0
                            ? std::string("?")
                            : absl::StrCat(l.max_backlog_alerts()));
  absl::StrAppend(&out, " alerts/",
                  l.max_backlog_bytes() == 0
                      ? std::string("?")
                      : FormatBytes(l.max_backlog_bytes()));
  return out;
}

std::string Cut(absl::string_view s, size_t width) {
  if (s.empty()) return "-";
  if (s.size() <= width) return std::string(s);
  return absl::StrCat(s.substr(0, width - 3), "...");
}

}  // namespace

std::string FormatLinks(const v1::Links& links, absl::Time now) {
  if (links.links().empty()) {
    return absl::StrCat("node ", links.node_id(), " has no federation links\n");
  }
  using Align = Table::Align;
  Table table({"PEER", "STATE", "DIAL", "BACKLOG", "IN-FLIGHT", "SENT", "RECV",
               "REFUSED", "BYTES OUT/IN", "LAST CONTACT", "LAST ERROR"},
              {Align::kLeft, Align::kLeft, Align::kLeft, Align::kLeft,
               Align::kRight, Align::kRight, Align::kRight, Align::kRight});
  for (const v1::LinkInfo& l : links.links()) {
    table.AddRow({
        l.peer(),
        LinkStateName(l.state()),
        l.address().empty() ? std::string("(dials in)") : l.address(),
        BacklogCell(l),
        absl::StrCat(l.in_flight()),
        absl::StrCat(l.alerts_sent()),
        absl::StrCat(l.alerts_received()),
        absl::StrCat(l.alerts_refused()),
        absl::StrCat(FormatBytes(l.bytes_sent()), "/",
                     FormatBytes(l.bytes_received())),
        FormatAge(l.last_contact(), now),
        Cut(l.last_error(), kLastErrorWidth),
    });
  }
  return table.Format(TerminalWidth());
}

}  // namespace ibsm::cli
