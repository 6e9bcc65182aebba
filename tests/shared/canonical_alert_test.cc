// Tests of ibsm/canonical_alert.h: the bytes an alert's content hash (and
// later its originator signature) is computed over.
#include "ibsm/canonical_alert.h"

#include <catch2/catch.hpp>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/message_differencer.h"
#include "ibsm/v1/alert.pb.h"

namespace ibsm {
namespace {

v1::Alert FullAlert() {
  v1::Alert alert;
  alert.set_id("civ-police:2024.06.11_0001");
  alert.set_topic("border.incident");
  alert.set_classification("RESTRICTED");
  alert.add_releasable_to("MLI");
  alert.add_releasable_to("ECOWAS");
  alert.set_orcon(true);
  alert.set_severity(v1::SEVERITY_HIGH);
  alert.mutable_created_at()->set_seconds(1718000000);
  alert.mutable_expires_at()->set_seconds(1718086400);
  alert.mutable_location()->set_latitude(10.95);
  alert.mutable_location()->set_longitude(-3.2);
  alert.mutable_location()->set_place_name("Pogo border post");
  alert.mutable_location()->set_country("CIV");
  (*alert.mutable_attributes())["vehicle"] = "white pickup";
  (*alert.mutable_attributes())["plate"] = "AB-123-CD";
  (*alert.mutable_attributes())["direction"] = "north";
  alert.set_content_type("application/json");
  alert.set_payload(R"({"persons": 3})");
  v1::AlertReference* ref = alert.add_references();
  ref->set_originator("CIV/police");
  ref->set_alert_id("civ-police:2024.06.10_0007");
  ref->set_kind(v1::AlertReference::KIND_UPDATE);
  alert.set_tlp("AMBER");
  alert.set_originator("CIV/police");
  alert.set_signature("signature bytes");
  alert.add_signing_chain("-----BEGIN CERTIFICATE-----");
  return alert;
}

// One change per field of Alert, by field name.
std::vector<std::pair<std::string, std::function<void(v1::Alert*)>>>
ContentChanges() {
  return {
      {"id", [](v1::Alert* a) { a->set_id("civ-police:2024.06.11_0002"); }},
      {"topic", [](v1::Alert* a) { a->set_topic("border.crossing"); }},
      {"classification", [](v1::Alert* a) { a->set_classification("SECRET"); }},
      {"releasable_to", [](v1::Alert* a) { a->set_releasable_to(1, "BFA"); }},
      {"orcon", [](v1::Alert* a) { a->set_orcon(false); }},
      {"severity", [](v1::Alert* a) { a->set_severity(v1::SEVERITY_LOW); }},
      {"expires_at",
       [](v1::Alert* a) { a->mutable_expires_at()->set_nanos(1); }},
      {"location",
       [](v1::Alert* a) { a->mutable_location()->set_country("BFA"); }},
      {"attributes",
       [](v1::Alert* a) { (*a->mutable_attributes())["plate"] = "AB-124-CD"; }},
      {"content_type", [](v1::Alert* a) { a->set_content_type("text/plain"); }},
      {"payload", [](v1::Alert* a) { a->set_payload(R"({"persons": 4})"); }},
      {"references",
       [](v1::Alert* a) {
         a->mutable_references(0)->set_kind(v1::AlertReference::KIND_RELATED);
       }},
      {"tlp", [](v1::Alert* a) { a->set_tlp("RED"); }},
      {"originator", [](v1::Alert* a) { a->set_originator("CIV/customs"); }},
  };
}

// Changes that are not content: the canonical bytes leave these fields out.
// The signature fields are left out because the signature is made over the
// canonical bytes.
std::vector<std::pair<std::string, std::function<void(v1::Alert*)>>>
NonContentChanges() {
  return {
      {"created_at",
       [](v1::Alert* a) { a->mutable_created_at()->set_seconds(1718000001); }},
      {"signature", [](v1::Alert* a) { a->set_signature("other signature"); }},
      {"signing_chain",
       [](v1::Alert* a) { a->add_signing_chain("-----BEGIN CERT"); }},
  };
}

TEST_CASE(
    "CanonicalAlertBytes does not depend on the order attributes were "
    "inserted in") {
  const std::vector<std::pair<std::string, std::string>> attributes = {
      {"vehicle", "white pickup"},
      {"plate", "AB-123-CD"},
      {"direction", "north"},
      {"persons", "3"},
      {"a", ""},
      {"zz", "last"}};
  v1::Alert forward = FullAlert();
  forward.clear_attributes();
  v1::Alert backward = forward;
  for (const auto& [key, value] : attributes) {
    (*forward.mutable_attributes())[key] = value;
  }
  for (auto it = attributes.rbegin(); it != attributes.rend(); ++it) {
    (*backward.mutable_attributes())[it->first] = it->second;
  }
  CHECK(CanonicalAlertBytes(forward) == CanonicalAlertBytes(backward));
  // A message that went over the wire (parsed from a serialization whose map
  // order is not promised) gives the same bytes too.
  v1::Alert parsed;
  REQUIRE(parsed.ParseFromString(backward.SerializeAsString()));
  CHECK(CanonicalAlertBytes(parsed) == CanonicalAlertBytes(forward));
}

TEST_CASE("CanonicalAlertBytes changes with every content field") {
  const std::string original = CanonicalAlertBytes(FullAlert());
  for (const auto& [field, change] : ContentChanges()) {
    INFO(field);
    v1::Alert changed = FullAlert();
    change(&changed);
    CHECK(CanonicalAlertBytes(changed) != original);
  }
}

TEST_CASE("CanonicalAlertBytes leaves out created_at and the signature") {
  const std::string original = CanonicalAlertBytes(FullAlert());
  for (const auto& [field, change] : NonContentChanges()) {
    INFO(field);
    v1::Alert changed = FullAlert();
    change(&changed);
    CHECK(CanonicalAlertBytes(changed) == original);
  }
  v1::Alert without = FullAlert();
  without.clear_created_at();
  without.clear_signature();
  without.clear_signing_chain();
  CHECK(CanonicalAlertBytes(without) == original);
}

TEST_CASE("Every field of Alert is either content or left out, and tested") {
  // A new field of Alert must be added to one of the two lists above, and
  // the header must say which.
  std::set<std::string> listed;
  for (const auto& [field, change] : ContentChanges()) listed.insert(field);
  for (const auto& [field, change] : NonContentChanges()) listed.insert(field);
  std::set<std::string> fields;
  const google::protobuf::Descriptor* descriptor = v1::Alert::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    fields.insert(descriptor->field(i)->name());
  }
  CHECK(listed == fields);
}

TEST_CASE("CanonicalAlertBytes round-trips through parsing") {
  const v1::Alert alert = FullAlert();
  const std::string bytes = CanonicalAlertBytes(alert);
  v1::Alert parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  CHECK(CanonicalAlertBytes(parsed) == bytes);
  v1::Alert expected = alert;
  expected.clear_created_at();
  expected.clear_signature();
  expected.clear_signing_chain();
  CHECK(google::protobuf::util::MessageDifferencer::Equals(parsed, expected));
}

TEST_CASE("CanonicalAlertBytes keeps unknown fields after the known ones") {
  // A field from a newer schema is content: hashing it keeps a retry that
  // changes it from counting as a duplicate.
  v1::Alert alert;
  alert.set_id("x");
  v1::Alert with_unknown;
  REQUIRE(with_unknown.ParseFromString(alert.SerializeAsString() +
                                       std::string("\xf8\x06\x01", 3)));
  CHECK(CanonicalAlertBytes(with_unknown) ==
        CanonicalAlertBytes(alert) + std::string("\xf8\x06\x01", 3));
}

TEST_CASE("The canonical bytes of a fixed alert do not change") {
  // Pinned: these bytes are a stored format (the dedup content hash). If
  // this fails, stored alerts' hashes no longer match; see the header.
  v1::Alert alert;
  alert.set_id("a1");
  alert.set_topic("t.x");
  alert.set_classification("R");
  alert.mutable_created_at()->set_seconds(5);
  (*alert.mutable_attributes())["b"] = "2";
  (*alert.mutable_attributes())["a"] = "1";
  alert.set_originator("CIV/police");
  // id, topic, classification; attributes a then b (key order); field 20
  // (originator); no created_at.
  CHECK(absl::BytesToHexString(CanonicalAlertBytes(alert)) ==
        "0a026131"                    // 1: "a1"
        "1203742e78"                  // 2: "t.x"
        "1a0152"                      // 3: "R"
        "52060a0161120131"            // 10: {"a", "1"}
        "52060a0162120132"            // 10: {"b", "2"}
        "a2010a4349562f706f6c696365"  // 20: "CIV/police"
  );
}

}  // namespace
}  // namespace ibsm
