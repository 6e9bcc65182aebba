// Tests of ibsm/alert_rules.h: ValidateAlertId and ValidateAlert.
#include "ibsm/alert_rules.h"

#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm {
namespace {

v1::Alert ValidAlert() {
  v1::Alert alert;
  alert.set_id("civ-police:2024.06.11_0001");
  alert.set_topic("border.incident");
  alert.set_classification("RESTRICTED");
  alert.set_severity(v1::SEVERITY_HIGH);
  alert.add_releasable_to("MLI");
  alert.add_releasable_to("ECOWAS");
  alert.mutable_created_at()->set_seconds(1718000000);
  alert.mutable_expires_at()->set_seconds(1718086400);
  alert.mutable_location()->set_latitude(10.95);
  alert.mutable_location()->set_longitude(-3.2);
  alert.mutable_location()->set_place_name("Pogo border post");
  (*alert.mutable_attributes())["vehicle"] = "white pickup";
  alert.set_content_type("application/json");
  alert.set_payload(R"({"plates":"AB-123"})");
  alert.set_tlp("AMBER");
  v1::AlertReference* ref = alert.add_references();
  ref->set_originator("CIV/police");
  ref->set_alert_id("civ-police:2024.06.10_0042");
  ref->set_kind(v1::AlertReference::KIND_UPDATE);
  alert.set_originator("CIV/police");
  return alert;
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// Checks INVALID_ARGUMENT and that the message names `field`
// (case-insensitively).
void ExpectInvalid(const absl::Status& s, const std::string& field) {
  INFO("status: " << s.ToString());
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Lower(s.message()), Catch::Contains(Lower(field)));
}

TEST_CASE("A fully populated valid alert passes", "[alert]") {
  absl::Status s = ValidateAlert(ValidAlert(), AlertLimits());
  INFO(s.ToString());
  CHECK(s.ok());
}

TEST_CASE("A minimal alert (id, topic, classification, severity) passes",
          "[alert]") {
  v1::Alert alert;
  alert.set_id("x");
  alert.set_topic("a");
  alert.set_classification("UNCLASSIFIED");
  alert.set_severity(v1::SEVERITY_LOW);
  absl::Status s = ValidateAlert(alert, AlertLimits());
  INFO(s.ToString());
  CHECK(s.ok());
}

TEST_CASE("ValidateAlertId: 1..128 chars of [A-Za-z0-9._:-]", "[alert][id]") {
  for (const std::string& id :
       {std::string("a"), std::string("Z9"), std::string("a.b_c:d-e"),
        std::string(kMaxAlertIdLength, 'x'),
        std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789._:-")}) {
    INFO("id: " << id);
    CHECK(ValidateAlertId(id).ok());
  }
  ExpectInvalid(ValidateAlertId(""), "id");
  CHECK_THAT(std::string(ValidateAlertId("").message()),
             Catch::Contains("missing"));
  absl::Status too_long =
      ValidateAlertId(std::string(kMaxAlertIdLength + 1, 'x'));
  ExpectInvalid(too_long, "id");
  CHECK_THAT(std::string(too_long.message()), Catch::Contains("129"));
  for (const std::string& bad :
       {std::string("a b"), std::string("a/b"), std::string("a\0b", 3),
        std::string("a\nb"), std::string("caf\xc3\xa9"), std::string("a+b"),
        std::string("a@b"), std::string("a#b")}) {
    INFO("id: " << bad);
    ExpectInvalid(ValidateAlertId(bad), "id");
  }
}

// Table: each mutation of a valid alert must be refused, naming the field.
TEST_CASE(
    "ValidateAlert refuses each bad field with INVALID_ARGUMENT naming "
    "it",
    "[alert]") {
  struct Case {
    std::string name;
    std::function<void(v1::Alert&)> mutate;
    std::string field;  // must appear in the message
  };
  const std::vector<Case> cases = {
      {"missing id", [](v1::Alert& a) { a.clear_id(); }, "alert id"},
      {"id of 129 chars", [](v1::Alert& a) { a.set_id(std::string(129, 'a')); },
       "alert id"},
      {"id with a space", [](v1::Alert& a) { a.set_id("bad id"); }, "alert id"},
      {"id with a slash", [](v1::Alert& a) { a.set_id("CIV/1"); }, "alert id"},
      {"empty topic", [](v1::Alert& a) { a.clear_topic(); }, "topic"},
      {"topic with uppercase",
       [](v1::Alert& a) { a.set_topic("Border.incident"); }, "topic"},
      {"topic with '..'", [](v1::Alert& a) { a.set_topic("border..x"); },
       "topic"},
      {"topic with wildcard", [](v1::Alert& a) { a.set_topic("border.*"); },
       "topic"},
      {"topic too long",
       [](v1::Alert& a) { a.set_topic(std::string(256, 'a')); }, "topic"},
      {"missing classification", [](v1::Alert& a) { a.clear_classification(); },
       "classification"},
      {"unknown classification",
       [](v1::Alert& a) { a.set_classification("TOP_SECRET"); },
       "classification"},
      {"classification in lowercase",
       [](v1::Alert& a) { a.set_classification("restricted"); },
       "classification"},
      {"missing severity",
       [](v1::Alert& a) { a.set_severity(v1::SEVERITY_UNSPECIFIED); },
       "severity"},
      {"expiry before creation",
       [](v1::Alert& a) {
         a.mutable_created_at()->set_seconds(2000);
         a.mutable_expires_at()->set_seconds(1000);
       },
       "expires_at"},
      {"expiry equal to creation",
       [](v1::Alert& a) {
         a.mutable_created_at()->set_seconds(2000);
         a.mutable_created_at()->set_nanos(5);
         a.mutable_expires_at()->set_seconds(2000);
         a.mutable_expires_at()->set_nanos(5);
       },
       "expires_at"},
      {"expiry a nanosecond before creation",
       [](v1::Alert& a) {
         a.mutable_created_at()->set_seconds(2000);
         a.mutable_created_at()->set_nanos(5);
         a.mutable_expires_at()->set_seconds(2000);
         a.mutable_expires_at()->set_nanos(4);
       },
       "expires_at"},
      {"expires_at with invalid nanos",
       [](v1::Alert& a) { a.mutable_expires_at()->set_nanos(1000000000); },
       "expires_at"},
      {"created_at with negative nanos",
       [](v1::Alert& a) { a.mutable_created_at()->set_nanos(-1); },
       "created_at"},
      {"created_at beyond year 9999",
       [](v1::Alert& a) {
         a.mutable_created_at()->set_seconds(253402300800LL);
       },
       "created_at"},
      {"releasable_to lowercase",
       [](v1::Alert& a) { a.add_releasable_to("mli"); }, "releasable_to"},
      {"releasable_to empty", [](v1::Alert& a) { a.add_releasable_to(""); },
       "releasable_to"},
      {"releasable_to with '/'",
       [](v1::Alert& a) { a.add_releasable_to("CIV/police"); },
       "releasable_to"},
      {"releasable_to 33 chars",
       [](v1::Alert& a) { a.add_releasable_to(std::string(33, 'A')); },
       "releasable_to"},
      {"unknown TLP", [](v1::Alert& a) { a.set_tlp("WHITE"); }, "TLP"},
      {"TLP in lowercase", [](v1::Alert& a) { a.set_tlp("amber"); }, "TLP"},
      {"latitude above 90",
       [](v1::Alert& a) { a.mutable_location()->set_latitude(90.0001); },
       "latitude"},
      {"latitude below -90",
       [](v1::Alert& a) { a.mutable_location()->set_latitude(-91); },
       "latitude"},
      {"longitude above 180",
       [](v1::Alert& a) { a.mutable_location()->set_longitude(180.5); },
       "longitude"},
      {"longitude below -180",
       [](v1::Alert& a) { a.mutable_location()->set_longitude(-181); },
       "longitude"},
      {"latitude NaN",
       [](v1::Alert& a) {
         a.mutable_location()->set_latitude(
             std::numeric_limits<double>::quiet_NaN());
       },
       "latitude"},
      {"longitude infinite",
       [](v1::Alert& a) {
         a.mutable_location()->set_longitude(
             std::numeric_limits<double>::infinity());
       },
       "longitude"},
      {"reference without kind",
       [](v1::Alert& a) {
         a.mutable_references(0)->set_kind(
             v1::AlertReference::KIND_UNSPECIFIED);
       },
       "reference"},
      {"reference without alert_id",
       [](v1::Alert& a) { a.mutable_references(0)->clear_alert_id(); },
       "reference"},
      {"reference with a bad alert_id",
       [](v1::Alert& a) { a.mutable_references(0)->set_alert_id("a b"); },
       "reference"},
      {"empty attribute name",
       [](v1::Alert& a) { (*a.mutable_attributes())[""] = "v"; }, "attribute"},
      {"attribute name of 129 chars",
       [](v1::Alert& a) {
         (*a.mutable_attributes())[std::string(129, 'k')] = "v";
       },
       "attribute"},
      {"content_type of 256 chars",
       [](v1::Alert& a) { a.set_content_type(std::string(256, 'c')); },
       "content_type"},
  };
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    v1::Alert alert = ValidAlert();
    c.mutate(alert);
    ExpectInvalid(ValidateAlert(alert, AlertLimits()), c.field);
  }
}

TEST_CASE("Once the id is valid, messages name the alert id", "[alert]") {
  v1::Alert alert = ValidAlert();
  alert.set_topic("");
  absl::Status s = ValidateAlert(alert, AlertLimits());
  ExpectInvalid(s, "topic");
  CHECK_THAT(std::string(s.message()), Catch::Contains(alert.id()));
}

TEST_CASE("Boundary values of location, attributes and content_type pass",
          "[alert]") {
  v1::Alert alert = ValidAlert();
  for (auto [lat, lon] : std::vector<std::pair<double, double>>{
           {90, 180}, {-90, -180}, {0, 0}, {-90, 180}}) {
    INFO("lat " << lat << " lon " << lon);
    alert.mutable_location()->set_latitude(lat);
    alert.mutable_location()->set_longitude(lon);
    CHECK(ValidateAlert(alert, AlertLimits()).ok());
  }
  (*alert.mutable_attributes())[std::string(128, 'k')] = "v";
  alert.set_content_type(std::string(255, 'c'));
  CHECK(ValidateAlert(alert, AlertLimits()).ok());
}

TEST_CASE("Every TLP label and empty TLP pass", "[alert]") {
  for (const char* tlp :
       {"", "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}) {
    INFO("tlp: " << tlp);
    v1::Alert alert = ValidAlert();
    alert.set_tlp(tlp);
    CHECK(ValidateAlert(alert, AlertLimits()).ok());
  }
}

TEST_CASE("Every defined severity passes", "[alert]") {
  for (v1::Severity sev : {v1::SEVERITY_LOW, v1::SEVERITY_MEDIUM,
                           v1::SEVERITY_HIGH, v1::SEVERITY_CRITICAL}) {
    INFO("severity: " << sev);
    v1::Alert alert = ValidAlert();
    alert.set_severity(sev);
    CHECK(ValidateAlert(alert, AlertLimits()).ok());
  }
}

TEST_CASE("A severity number outside the enum (from the wire) is refused",
          "[alert]") {
  // proto3 enums are open: a peer can send any varint. Field 6, varint 99.
  std::string wire = ValidAlert().SerializeAsString() + std::string("\x30\x63");
  v1::Alert alert;
  REQUIRE(alert.ParseFromString(wire));
  REQUIRE(static_cast<int>(alert.severity()) == 99);
  ExpectInvalid(ValidateAlert(alert, AlertLimits()), "severity");
}

TEST_CASE("A reference kind number outside the enum (from the wire) is refused",
          "[alert]") {
  // Like severities: an open proto3 enum must not let an unknown kind in.
  v1::Alert alert = ValidAlert();
  REQUIRE(alert.references_size() > 0);
  alert.mutable_references(0)->set_kind(
      static_cast<v1::AlertReference::Kind>(7));
  ExpectInvalid(ValidateAlert(alert, AlertLimits()), "reference");
  for (auto kind :
       {v1::AlertReference::KIND_UPDATE, v1::AlertReference::KIND_RETRACTION,
        v1::AlertReference::KIND_RELATED}) {
    alert.mutable_references(0)->set_kind(kind);
    CHECK(ValidateAlert(alert, AlertLimits()).ok());
  }
}

TEST_CASE("Expiry without created_at and a nanosecond after creation pass",
          "[alert]") {
  v1::Alert alert = ValidAlert();
  alert.clear_created_at();
  CHECK(ValidateAlert(alert, AlertLimits()).ok());

  alert = ValidAlert();
  alert.mutable_created_at()->set_seconds(2000);
  alert.mutable_created_at()->set_nanos(999999999);
  alert.mutable_expires_at()->set_seconds(2001);
  alert.mutable_expires_at()->set_nanos(0);
  CHECK(ValidateAlert(alert, AlertLimits()).ok());
}

TEST_CASE("Size limit: exactly max_alert_bytes passes, one byte less refused",
          "[alert][size]") {
  v1::Alert alert = ValidAlert();
  alert.set_payload(std::string(5000, 'p'));
  const size_t size = alert.ByteSizeLong();

  AlertLimits limits;
  limits.max_alert_bytes = size;
  CHECK(ValidateAlert(alert, limits).ok());

  limits.max_alert_bytes = size - 1;
  absl::Status s = ValidateAlert(alert, limits);
  ExpectInvalid(s, "bytes");
  CHECK_THAT(std::string(s.message()), Catch::Contains(std::to_string(size)));
  CHECK_THAT(std::string(s.message()),
             Catch::Contains(std::to_string(size - 1)));
}

TEST_CASE("Size limit: the default is 1 MiB", "[alert][size]") {
  REQUIRE(AlertLimits().max_alert_bytes == 1048576);
  v1::Alert alert = ValidAlert();
  alert.set_payload(std::string(1048576, 'p'));  // payload alone is 1 MiB
  ExpectInvalid(ValidateAlert(alert, AlertLimits()), "bytes");
  alert.set_payload(std::string(1000000, 'p'));
  CHECK(ValidateAlert(alert, AlertLimits()).ok());
}

TEST_CASE(
    "Default classification scheme is UNCLASSIFIED < RESTRICTED < "
    "CONFIDENTIAL < SECRET",
    "[alert][classification]") {
  const std::vector<std::string> expected = {"UNCLASSIFIED", "RESTRICTED",
                                             "CONFIDENTIAL", "SECRET"};
  CHECK(DefaultClassificationLevels() == expected);
  for (const std::string& level : expected) {
    v1::Alert alert = ValidAlert();
    alert.set_classification(level);
    INFO("level: " << level);
    CHECK(ValidateAlert(alert, AlertLimits()).ok());
  }
}

TEST_CASE("A custom classification scheme replaces the default one",
          "[alert][classification]") {
  const std::vector<std::string> scheme = {"PUBLIC", "INTERNAL", "SENSITIVE"};
  AlertLimits limits;
  limits.classification_levels = &scheme;

  v1::Alert alert = ValidAlert();
  alert.set_classification("INTERNAL");
  CHECK(ValidateAlert(alert, limits).ok());

  // A default level is unknown under the custom scheme, and the message lists
  // the custom levels.
  alert.set_classification("RESTRICTED");
  absl::Status s = ValidateAlert(alert, limits);
  ExpectInvalid(s, "classification");
  CHECK_THAT(std::string(s.message()), Catch::Contains("RESTRICTED"));
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("PUBLIC, INTERNAL, SENSITIVE"));

  alert.clear_classification();
  s = ValidateAlert(alert, limits);
  ExpectInvalid(s, "classification");
  CHECK_THAT(std::string(s.message()), Catch::Contains("PUBLIC"));
}

TEST_CASE("The first problem is reported: a bad id wins over a bad topic",
          "[alert]") {
  v1::Alert alert = ValidAlert();
  alert.clear_id();
  alert.set_topic("");
  absl::Status s = ValidateAlert(alert, AlertLimits());
  ExpectInvalid(s, "alert id");
  CHECK_THAT(std::string(s.message()), !Catch::Contains("topic"));
}

}  // namespace
}  // namespace ibsm
