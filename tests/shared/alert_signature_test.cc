// Tests of ibsm/alert_signature.h: the signing bytes (pinned against the
// worked example of docs/signature-format.md), signing with the dev PKI's
// agency keys, and every refusal of VerifyAlertSignature.
#include "ibsm/alert_signature.h"

#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/canonical_alert.h"
#include "ibsm/certificates.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"
#include "ibsm/v1/alert.pb.h"
#include "tests/support/test_support.h"

namespace ibsm {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The alert of the worked example in docs/signature-format.md.
v1::Alert ExampleAlert() {
  v1::Alert alert;
  alert.set_id("civ-2025-0001");
  alert.set_topic("border.incident");
  alert.set_classification("RESTRICTED");
  alert.add_releasable_to("MLI");
  alert.add_releasable_to("ECOWAS");
  alert.set_severity(v1::SEVERITY_HIGH);
  alert.mutable_created_at()->set_seconds(1735725600);  // 2025-01-01T10:00Z
  alert.mutable_location()->set_latitude(5.3);
  alert.mutable_location()->set_longitude(-4.01);
  alert.mutable_location()->set_place_name("Noe border post");
  (*alert.mutable_attributes())["vehicle"] = "white pickup";
  (*alert.mutable_attributes())["direction"] = "north";
  alert.set_content_type("text/plain");
  alert.set_payload("Vehicle crossed without stopping");
  alert.set_tlp("AMBER");
  alert.set_originator("CIV/police");
  // Not covered: they are what is being made.
  alert.set_signature("any signature");
  alert.add_signing_chain("any certificate");
  return alert;
}

// The hex between the markers of the worked example in the doc.
std::string DocumentedHex() {
  const std::string path = testing::SourceDir() + "/docs/signature-format.md";
  absl::StatusOr<std::string> doc = ReadFileToString(path);
  REQUIRE(doc.ok());
  const std::string begin = "<!-- signing-bytes-hex:begin -->";
  const std::string end = "<!-- signing-bytes-hex:end -->";
  size_t from = doc->find(begin);
  size_t to = doc->find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  std::string block =
      doc->substr(from + begin.size(), to - from - begin.size());
  std::string hex;
  for (char c : block) {
    if (absl::ascii_isxdigit(c)) hex.push_back(absl::ascii_tolower(c));
  }
  return hex;
}

// The dev PKI entity's signing material (tests/support Tls files).
struct Signer {
  std::optional<SigningKey> key;
  std::vector<std::string> chain;
};
Signer SignerFor(const std::string& entity) {
  TlsFiles files = testing::Tls(entity);
  absl::StatusOr<std::string> key_pem = ReadFileToString(files.key_file);
  REQUIRE(key_pem.ok());
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(*key_pem);
  REQUIRE(key.ok());
  absl::StatusOr<std::string> chain_pem = ReadFileToString(files.cert_file);
  REQUIRE(chain_pem.ok());
  absl::StatusOr<std::vector<std::string>> chain =
      SigningChainFromPem(*chain_pem);
  REQUIRE(chain.ok());
  Signer signer;
  signer.key.emplace(*std::move(key));
  signer.chain = *std::move(chain);
  return signer;
}

// The dev PKI's root, with every CRL of its crl/ dir when `with_crls`.
crypto::X509StorePtr Trust(bool with_crls) {
  absl::StatusOr<std::string> roots =
      ReadFileToString(testing::PkiDir() + "/ca.pem");
  REQUIRE(roots.ok());
  std::vector<crypto::X509CrlPtr> crls;
  if (with_crls) {
    absl::StatusOr<CrlDirContents> dir = ReadCrlDir(testing::PkiDir() + "/crl");
    REQUIRE(dir.ok());
    crls = std::move(dir->crls);
  }
  return crypto::MakeTrustStore(crypto::ParseCertificates(*roots), crls);
}

crypto::ChainOptions WithCrls() {
  crypto::ChainOptions options;
  options.crl_check_all = true;
  return options;
}

v1::Alert SignedBy(const std::string& entity, v1::Alert alert) {
  Signer signer = SignerFor(entity);
  absl::Status signed_alert = SignAlert(*signer.key, signer.chain, &alert);
  INFO(signed_alert.message());
  REQUIRE(signed_alert.ok());
  return alert;
}

// The refusal of VerifyAlertSignature for `alert` (with the CRLs).
std::string Refusal(const v1::Alert& alert) {
  crypto::X509StorePtr trust = Trust(true);
  absl::StatusOr<AlertSigner> signer =
      VerifyAlertSignature(alert, *trust, WithCrls());
  REQUIRE_FALSE(signer.ok());
  CHECK(absl::IsPermissionDenied(signer.status()));
  return std::string(signer.status().message());
}

// Changes the value of `field` of `message`, whatever its type, so that the
// message serializes differently.
void ChangeField(Message* message, const FieldDescriptor* field) {
  const Reflection* r = message->GetReflection();
  if (field->is_repeated()) {
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(message, field, "added");
        return;
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        Message* added = r->AddMessage(message, field);
        // A map entry, a reference: give it a first field that differs.
        ChangeField(added, added->GetDescriptor()->field(0));
        return;
      }
      default:
        FAIL("repeated field type not handled: " << field->full_name());
    }
  }
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      r->SetInt32(message, field, r->GetInt32(*message, field) + 1);
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      r->SetInt64(message, field, r->GetInt64(*message, field) + 1);
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      r->SetUInt32(message, field, r->GetUInt32(*message, field) + 1);
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      r->SetUInt64(message, field, r->GetUInt64(*message, field) + 1);
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      r->SetDouble(message, field, r->GetDouble(*message, field) + 0.5);
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      r->SetFloat(message, field, r->GetFloat(*message, field) + 0.5f);
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(message, field, !r->GetBool(*message, field));
      return;
    case FieldDescriptor::CPPTYPE_ENUM:
      r->SetEnumValue(message, field, r->GetEnumValue(*message, field) + 1);
      return;
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(message, field, r->GetString(*message, field) + "x");
      return;
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      Message* nested = r->MutableMessage(message, field);
      ChangeField(nested, nested->GetDescriptor()->field(0));
      return;
    }
  }
}

TEST_CASE("The signing bytes of the documented example are the doc's hex") {
  // docs/signature-format.md shows these bytes; if this fails, either the
  // format changed (every signature breaks: it must not) or the doc did.
  const std::string bytes = AlertSigningBytes(ExampleAlert());
  CHECK(absl::BytesToHexString(bytes) == DocumentedHex());
  CHECK(absl::StartsWith(bytes, "IBSM-ALERT-SIGNATURE-V1\n"));
}

TEST_CASE("The signing bytes leave out the signature and its chain only") {
  v1::Alert alert = ExampleAlert();
  const std::string bytes = AlertSigningBytes(alert);
  alert.set_signature("another signature");
  alert.add_signing_chain("another certificate");
  CHECK(AlertSigningBytes(alert) == bytes);
  alert.mutable_created_at()->set_nanos(1);
  CHECK(AlertSigningBytes(alert) != bytes);
  // The attributes' insertion order does not matter (map entries sorted).
  v1::Alert reordered = ExampleAlert();
  reordered.clear_attributes();
  (*reordered.mutable_attributes())["direction"] = "north";
  (*reordered.mutable_attributes())["vehicle"] = "white pickup";
  CHECK(AlertSigningBytes(reordered) == AlertSigningBytes(ExampleAlert()));
}

// A signature made before AlertSigningBytes stopped copying the alert:
// `openssl dgst -sha256 -sign` with the key of kVectorPublicKey over the
// signing bytes of ExampleAlert as the copying code produced them (the hex
// of docs/signature-format.md).
constexpr absl::string_view kVectorPublicKey =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEo4jOYnbS2YA+wtlTNLKOz64URN0M\n"
    "r1xMjBMbfisZZhFqP1CbxQ6TTznX2GWA1KotXZdmF6O4nBVg+p3t/YfYXw==\n"
    "-----END PUBLIC KEY-----\n";
constexpr absl::string_view kVectorSignatureHex =
    "30440220357bda25d9b64478437cc21b2ae72c1f993f063b93a6982177f380bb529f75e4"
    "022000d315f6aa935245ddba8718a61a7d85468df628a928e3aaadab3af50b689d8e";

TEST_CASE("A signature made over the earlier signing bytes still verifies") {
  absl::StatusOr<VerifyingKey> key =
      VerifyingKey::FromPublicKeyPem(kVectorPublicKey);
  REQUIRE(key.ok());
  v1::Alert alert = ExampleAlert();
  alert.set_signature(absl::HexStringToBytes(kVectorSignatureHex));
  CHECK(key->Verify(AlertSigningBytes(alert), alert.signature()).ok());
  alert.set_payload("Vehicle crossed without stopping!");
  CHECK_FALSE(key->Verify(AlertSigningBytes(alert), alert.signature()).ok());
}

// The definition of docs/signature-format.md, literally: a copy without
// fields 21 and 22, serialized deterministically.
std::string ReferenceSigningBytes(const v1::Alert& alert) {
  v1::Alert covered = alert;
  covered.clear_signature();
  covered.clear_signing_chain();
  return absl::StrCat(kAlertSignatureContext, "\n",
                      DeterministicAlertBytes(covered));
}

std::string RandomBytes(std::mt19937& rng, size_t max) {
  std::string out(std::uniform_int_distribution<size_t>(0, max)(rng), '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::string RandomText(std::mt19937& rng, size_t max) {
  std::string out(std::uniform_int_distribution<size_t>(0, max)(rng), 'a');
  for (char& c : out) c = static_cast<char>('a' + rng() % 26);
  return out;
}

v1::Alert RandomAlert(std::mt19937& rng) {
  auto maybe = [&rng] { return rng() % 2 == 0; };
  v1::Alert alert;
  if (maybe()) alert.set_id(RandomText(rng, 40));
  if (maybe()) alert.set_topic(RandomText(rng, 30));
  if (maybe()) alert.set_classification("RESTRICTED");
  for (int i = rng() % 4; i > 0; --i)
    alert.add_releasable_to(RandomText(rng, 6));
  alert.set_orcon(maybe());
  alert.set_severity(static_cast<v1::Severity>(rng() % 5));
  if (maybe()) {
    alert.mutable_created_at()->set_seconds(rng());
    alert.mutable_created_at()->set_nanos(static_cast<int32_t>(rng()));
  }
  if (maybe()) alert.mutable_expires_at()->set_seconds(rng());
  if (maybe()) {
    v1::GeoLocation* at = alert.mutable_location();
    if (maybe()) at->set_latitude(static_cast<double>(rng()) / 1e7);
    if (maybe()) at->set_place_name(RandomText(rng, 20));
  }
  for (int i = rng() % 4; i > 0; --i) {
    (*alert.mutable_attributes())[RandomText(rng, 8)] = RandomText(rng, 12);
  }
  if (maybe()) alert.set_content_type("text/plain");
  alert.set_payload(RandomBytes(rng, maybe() ? 100 : 5000));
  for (int i = rng() % 3; i > 0; --i) {
    v1::AlertReference* ref = alert.add_references();
    ref->set_originator(RandomText(rng, 10));
    ref->set_alert_id(RandomText(rng, 10));
    ref->set_kind(static_cast<v1::AlertReference::Kind>(rng() % 4));
  }
  if (maybe()) alert.set_tlp("AMBER");
  if (maybe()) alert.set_originator(RandomText(rng, 12));
  // Signatures and certificates of every length class, empty ones included
  // (an empty chain element is still written).
  if (maybe()) alert.set_signature(RandomBytes(rng, maybe() ? 100 : 1024));
  for (int i = rng() % 4; i > 0; --i) {
    alert.add_signing_chain(RandomBytes(rng, maybe() ? 10 : 20000));
  }
  switch (rng() % 8) {
    case 0:  // a field of a newer schema
      alert.GetReflection()->MutableUnknownFields(&alert)->AddVarint(30, rng());
      break;
    case 1:  // field 21 with the wrong wire type stays unknown, and covered
      alert.GetReflection()->MutableUnknownFields(&alert)->AddVarint(21, 7);
      break;
    default:
      break;
  }
  return alert;
}

TEST_CASE("The signing bytes equal the copy-and-clear definition") {
  std::mt19937 rng(20261202);
  for (int i = 0; i < 3000; ++i) {
    const v1::Alert alert = RandomAlert(rng);
    INFO("alert " << i);
    REQUIRE(AlertSigningBytes(alert) == ReferenceSigningBytes(alert));
  }
}

TEST_CASE("SigningChainSha256 is over length-prefixed DER certificates") {
  v1::Alert alert;
  alert.add_signing_chain("abc");
  alert.add_signing_chain("de");
  crypto::Hash expected = crypto::Sha256(
      {std::string("\0\0\0\3abc", 7), std::string("\0\0\0\2de", 6)});
  CHECK(SigningChainSha256(alert) == crypto::HashView(expected));
  // Moving a byte between certificates changes it.
  v1::Alert moved;
  moved.add_signing_chain("ab");
  moved.add_signing_chain("cde");
  CHECK(SigningChainSha256(moved) != SigningChainSha256(alert));
}

TEST_CASE(
    "An alert signed with an agency key verifies, with and without CRLs") {
  const v1::Alert alert = SignedBy("agency-CIV_police", ExampleAlert());
  CHECK(alert.signing_chain_size() == 2);  // the agency, CIV's intermediate
  for (bool crls : {true, false}) {
    INFO("with CRLs: " << crls);
    crypto::X509StorePtr trust = Trust(crls);
    crypto::ChainOptions options;
    options.crl_check_all = crls;
    absl::StatusOr<AlertSigner> signer =
        VerifyAlertSignature(alert, *trust, options);
    INFO(signer.status().message());
    REQUIRE(signer.ok());
    CHECK(signer->originator == "CIV/police");
    CHECK(signer->chain_sha256 == SigningChainSha256(alert));
    CHECK(signer->not_after_unix > 1735725600);
  }
  // A copy that went over the wire verifies too.
  v1::Alert parsed;
  REQUIRE(parsed.ParseFromString(alert.SerializeAsString()));
  crypto::X509StorePtr trust = Trust(true);
  CHECK(VerifyAlertSignature(parsed, *trust, WithCrls()).ok());
}

TEST_CASE("Every covered field changed after signing is refused") {
  // Over the descriptor, so that a field added to Alert is covered here
  // without anyone remembering to list it.
  const v1::Alert original = SignedBy("agency-CIV_police", ExampleAlert());
  const google::protobuf::Descriptor* descriptor = v1::Alert::descriptor();
  int checked = 0;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->number() == v1::Alert::kSignatureFieldNumber ||
        field->number() == v1::Alert::kSigningChainFieldNumber) {
      continue;
    }
    for (bool from_unset : {false, true}) {
      INFO(field->name() << (from_unset ? " (set after signing)" : ""));
      v1::Alert changed = original;
      if (from_unset) {
        // Signed without the field, then the field added.
        v1::Alert without = ExampleAlert();
        without.GetReflection()->ClearField(&without, field);
        if (field->name() == "originator" || field->name() == "created_at") {
          continue;  // SignAlert refuses an alert without them
        }
        changed = SignedBy("agency-CIV_police", without);
      }
      ChangeField(&changed, field);
      REQUIRE(AlertSigningBytes(changed) != AlertSigningBytes(original));
      std::string why = Refusal(changed);
      CHECK_THAT(why, Catch::Contains(changed.id().substr(0, 20)));
      if (field->name() != "originator") {
        CHECK_THAT(why, Catch::Contains("does not verify: the alert was "
                                        "changed after it was signed"));
      }
      ++checked;
    }
  }
  CHECK(checked == 2 * 14);
}

TEST_CASE(
    "An unknown field added after signing, or a changed signature, is "
    "refused") {
  const v1::Alert original = SignedBy("agency-CIV_police", ExampleAlert());
  {
    // Field 23, varint 1: what a newer schema's field looks like here.
    v1::Alert with_unknown;
    REQUIRE(with_unknown.ParseFromString(original.SerializeAsString() +
                                         std::string("\xb8\x01\x01", 3)));
    CHECK_THAT(Refusal(with_unknown), Catch::Contains("does not verify"));
  }
  {
    v1::Alert changed = original;
    std::string signature = changed.signature();
    signature[signature.size() / 2] ^= 1;
    changed.set_signature(signature);
    CHECK(Refusal(changed) ==
          "the signature of alert 'civ-2025-0001' does not verify: the alert "
          "was changed after it was signed, or signed with another key");
  }
}

TEST_CASE("A signature by another agency than the originator is refused") {
  v1::Alert alert = ExampleAlert();
  alert.set_originator("CIV/customs");
  alert = SignedBy("agency-CIV_police", alert);
  CHECK(Refusal(alert) ==
        "alert 'civ-2025-0001' claims originator CIV/customs but is signed "
        "by CIV/police");
  // Signed by customs for police: the same refusal, the other way round.
  v1::Alert other = SignedBy("agency-CIV_customs", [] {
    v1::Alert a = ExampleAlert();
    a.set_originator("CIV/customs");
    return a;
  }());
  other.set_originator("CIV/police");
  CHECK_THAT(Refusal(other),
             Catch::Contains("claims originator CIV/police but is signed by "
                             "CIV/customs"));
}

TEST_CASE("Refused signing chains name the certificate and the reason") {
  SECTION("issued by another node's intermediate (sibling)") {
    CHECK_THAT(Refusal(SignedBy("sibling-CIV_police", ExampleAlert())),
               Catch::Contains("may only issue identities of node MLI"));
  }
  SECTION("under a foreign root") {
    std::string why = Refusal(SignedBy("foreign", ExampleAlert()));
    CHECK_THAT(why, Catch::Contains("alert 'civ-2025-0001'"));
    CHECK_THAT(why, Catch::Contains("unable to get"));
  }
  SECTION("revoked signer, with the CRLs") {
    v1::Alert alert = ExampleAlert();
    alert.set_originator("CIV/revoked");
    CHECK_THAT(Refusal(SignedBy("revoked", alert)),
               Catch::Contains("certificate revoked"));
  }
  SECTION("under a revoked intermediate") {
    CHECK_THAT(Refusal(SignedBy("under-revoked-ca", ExampleAlert())),
               Catch::Contains("certificate revoked"));
  }
  SECTION("expired") {
    v1::Alert alert = ExampleAlert();
    alert.set_originator("CIV/expired");
    CHECK_THAT(Refusal(SignedBy("expired", alert)),
               Catch::Contains("certificate has expired"));
  }
  SECTION("a CA without a CRL, when CRLs are checked") {
    const v1::Alert alert = SignedBy("agency-CIV_police", ExampleAlert());
    crypto::X509StorePtr no_crls = Trust(false);
    absl::StatusOr<AlertSigner> signer =
        VerifyAlertSignature(alert, *no_crls, WithCrls());
    REQUIRE_FALSE(signer.ok());
    CHECK(absl::IsPermissionDenied(signer.status()));
    CHECK_THAT(std::string(signer.status().message()),
               Catch::Contains("no current CRL"));
  }
  SECTION("without the intermediate") {
    v1::Alert alert = SignedBy("agency-CIV_police", ExampleAlert());
    alert.mutable_signing_chain()->RemoveLast();
    CHECK_THAT(Refusal(alert), Catch::Contains("unable to get"));
  }
}

TEST_CASE(
    "Unsigned, incomplete, garbage and oversized signatures are refused") {
  const v1::Alert signed_alert = SignedBy("agency-CIV_police", ExampleAlert());
  SECTION("not signed") {
    v1::Alert alert = ExampleAlert();
    alert.clear_signature();
    alert.clear_signing_chain();
    CHECK_THAT(Refusal(alert),
               Catch::StartsWith("alert 'civ-2025-0001' is not signed"));
  }
  SECTION("a signature without its chain") {
    v1::Alert alert = signed_alert;
    alert.clear_signing_chain();
    CHECK_THAT(Refusal(alert), Catch::Contains("no signing chain"));
  }
  SECTION("a chain without a signature") {
    v1::Alert alert = signed_alert;
    alert.clear_signature();
    CHECK_THAT(Refusal(alert), Catch::Contains("no signature"));
  }
  SECTION("garbage DER") {
    v1::Alert alert = signed_alert;
    alert.set_signing_chain(0, "not a certificate");
    CHECK_THAT(Refusal(alert),
               Catch::Contains("certificate 0 is not one DER certificate"));
    alert = signed_alert;
    alert.set_signing_chain(1, alert.signing_chain(1) + "trailing");
    CHECK_THAT(Refusal(alert),
               Catch::Contains("certificate 1 is not one DER certificate"));
  }
  SECTION("more than 4 certificates") {
    v1::Alert alert = signed_alert;
    for (int i = 0; i < 3; ++i) alert.add_signing_chain(alert.signing_chain(1));
    CHECK_THAT(Refusal(alert), Catch::Contains("has 5 certificates"));
  }
  SECTION("a certificate over 16 KiB") {
    v1::Alert alert = signed_alert;
    alert.set_signing_chain(1, std::string(16 * 1024 + 1, 'x'));
    CHECK_THAT(Refusal(alert), Catch::Contains("16385 bytes"));
  }
  SECTION("a signature over 1 KiB") {
    v1::Alert alert = signed_alert;
    alert.set_signature(std::string(1025, 's'));
    CHECK_THAT(Refusal(alert), Catch::Contains("signature of 1025 bytes"));
  }
}

TEST_CASE("SignAlert refuses what it cannot sign") {
  Signer police = SignerFor("agency-CIV_police");
  SECTION("no originator or created_at: the signature must cover them") {
    v1::Alert alert = ExampleAlert();
    alert.clear_originator();
    absl::Status s = SignAlert(*police.key, police.chain, &alert);
    CHECK(absl::IsInvalidArgument(s));
    CHECK(alert.signature() == "any signature");  // unchanged
    alert = ExampleAlert();
    alert.clear_created_at();
    CHECK(
        absl::IsInvalidArgument(SignAlert(*police.key, police.chain, &alert)));
  }
  SECTION("a key that is not the chain's") {
    Signer customs = SignerFor("agency-CIV_customs");
    absl::Status s = CheckSigningKeyMatches(*police.key, customs.chain[0]);
    CHECK(absl::IsInvalidArgument(s));
    CHECK_THAT(std::string(s.message()),
               Catch::Contains("is not the key of certificate"));
    CHECK(CheckSigningKeyMatches(*police.key, police.chain[0]).ok());
    CHECK(absl::IsInvalidArgument(
        CheckSigningKeyMatches(*police.key, "not a certificate")));
    // Signed anyway, the verifier refuses it.
    v1::Alert alert = ExampleAlert();
    alert.set_originator("CIV/customs");
    REQUIRE(SignAlert(*police.key, customs.chain, &alert).ok());
    CHECK_THAT(Refusal(alert), Catch::Contains("does not verify"));
  }
  SECTION("an empty or oversized chain") {
    v1::Alert alert = ExampleAlert();
    CHECK(absl::IsInvalidArgument(SignAlert(*police.key, {}, &alert)));
    std::vector<std::string> five(5, police.chain[0]);
    CHECK(absl::IsInvalidArgument(SignAlert(*police.key, five, &alert)));
  }
  SECTION("the chain from PEM leaves out a root that came with it") {
    absl::StatusOr<std::string> chain_pem =
        ReadFileToString(testing::Tls("agency-CIV_police").cert_file);
    absl::StatusOr<std::string> root_pem =
        ReadFileToString(testing::PkiDir() + "/ca.pem");
    REQUIRE(chain_pem.ok());
    REQUIRE(root_pem.ok());
    absl::StatusOr<std::vector<std::string>> chain =
        SigningChainFromPem(*chain_pem + *root_pem);
    REQUIRE(chain.ok());
    CHECK(*chain == police.chain);
    CHECK(absl::IsInvalidArgument(SigningChainFromPem("").status()));
  }
}

}  // namespace
}  // namespace ibsm
