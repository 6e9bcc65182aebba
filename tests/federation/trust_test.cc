// Trust between nodes: a peer is who its certificate says, bound to its own
// node's CA, and must be the peer the config names; an alert offered over a
// link is verified again and refused, audited, when it was forged or
// altered; a receiver's stricter policy refuses openly, audited on both
// sides.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "ibsm/alert_signature.h"
#include "ibsm/certificates.h"
#include "ibsm/crypto.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

using internal::v1::LinkAck;
using internal::v1::LinkOffer;

bool ContainsNoCase(const std::string& text, const std::string& part) {
  return absl::StrContains(absl::AsciiStrToLower(text),
                           absl::AsciiStrToLower(part));
}

// The refusals of links that `node` audited: refused calls and link events
// with allowed = false that name `who` (as actor, recipient or in the
// reason).
std::vector<v1::AuditRecord> LinkRefusals(Federation& fed,
                                          const std::string& node,
                                          const std::string& who) {
  std::vector<v1::AuditRecord> found;
  for (const v1::AuditRecord& r :
       fed.Audit(node, "", v1::AUDIT_ACTION_UNSPECIFIED,
                 v1::AuditQuery::DECISION_DENIED)) {
    const bool link_event = r.action() == v1::AUDIT_CALL_REFUSED ||
                            r.action() == v1::AUDIT_FEDERATION_LINK_UP ||
                            r.action() == v1::AUDIT_FEDERATION_LINK_DOWN;
    if (link_event && (absl::StrContains(r.actor(), who) ||
                       absl::StrContains(r.recipient(), who) ||
                       absl::StrContains(r.reason(), who))) {
      found.push_back(r);
    }
  }
  return found;
}

// TLS files for a certificate made with IssueCertificate.
TlsFiles IssuedTls(const std::string& base) {
  TlsFiles files;
  files.cert_file = base + "-chain.pem";
  files.key_file = base + ".key";
  files.ca_file = PkiDir() + "/ca.pem";
  return files;
}

LinkOffer OfferOf(uint64_t id, const v1::Alert& alert,
                  const std::vector<std::string>& hops) {
  LinkOffer offer;
  offer.set_id(id);
  *offer.mutable_alert() = alert;
  offer.set_chain_sha256(SigningChainSha256(alert));
  for (const std::string& hop : hops) offer.add_hops(hop);
  return offer;
}

TEST_CASE(
    "a dialled peer whose certificate names another node, or was issued "
    "under another node's CA, is refused: GetLinks and the audit trail say so",
    "[federation]") {
  TempDir certs;
  std::string expected_in_error;
  std::unique_ptr<FakeLinkServer> impostor;
  SECTION("a certificate of NER where CIV expects MLI") {
    impostor = std::make_unique<FakeLinkServer>(Tls("node-NER"), "MLI");
    expected_in_error = "NER";
  }
  SECTION("spiffe://ibsm/MLI issued by CIV's intermediate CA") {
    IssueCertificate("CIV-ca", "spiffe://ibsm/MLI", certs.File("sibling-MLI"));
    impostor = std::make_unique<FakeLinkServer>(
        IssuedTls(certs.File("sibling-MLI")), "MLI");
    expected_in_error = "MLI";
  }
  Federation fed;
  fed.AddNode("CIV");
  internal::v1::PeerConfig* peer =
      fed.config("CIV").mutable_federation()->add_peers();
  peer->set_node_id("MLI");
  peer->set_address(impostor->address());
  fed.Start("CIV");

  std::optional<v1::LinkInfo> link;
  REQUIRE(Eventually([&] {
    link = fed.Link("CIV", "MLI");
    return link.has_value() && link->state() == v1::LinkInfo::REFUSED;
  }));
  INFO("last_error: " << link->last_error());
  CHECK(absl::StrContains(link->last_error(), expected_in_error));
  std::vector<v1::AuditRecord> refusals;
  REQUIRE(Eventually([&] {
    refusals = LinkRefusals(fed, "CIV", "MLI");
    return !refusals.empty();
  }));
  CHECK_FALSE(refusals[0].reason().empty());
  CHECK(fed.Audit("CIV", "", v1::AUDIT_FEDERATION_LINK_UP,
                  v1::AuditQuery::DECISION_ALLOWED)
            .empty());
}

TEST_CASE(
    "a dialling peer whose certificate names another node than a configured "
    "peer, or was issued under another node's CA, is refused and audited",
    "[federation]") {
  TempDir certs;
  Federation fed;
  fed.AddNode("CIV");
  fed.config("CIV").mutable_federation()->add_peers()->set_node_id("MLI");
  fed.Start("CIV");

  TlsFiles presented;
  std::string who;
  SECTION("NER's node certificate, claiming to be MLI") {
    presented = Tls("node-NER");
    who = "NER";
  }
  SECTION("spiffe://ibsm/MLI issued by CIV's intermediate CA") {
    IssueCertificate("CIV-ca", "spiffe://ibsm/MLI", certs.File("sibling-MLI"));
    presented = IssuedTls(certs.File("sibling-MLI"));
    who = "MLI";
  }
  {
    RawLink impostor(fed.federation_port("CIV"), presented);
    // CIV never greets an impostor: it ends the stream (a Goodbye at most).
    CHECK_FALSE(impostor.Handshake("MLI").has_value());
    grpc::Status status = impostor.Finish();
    INFO("status " << status.error_code() << ": " << status.error_message());
    const bool goodbye_not_a_peer =
        impostor.goodbye().has_value() &&
        impostor.goodbye()->reason() == internal::v1::LinkGoodbye::NOT_A_PEER;
    CHECK((goodbye_not_a_peer || !status.ok()));
  }
  std::vector<v1::AuditRecord> refusals;
  REQUIRE(Eventually([&] {
    refusals = LinkRefusals(fed, "CIV", who);
    return !refusals.empty();
  }));
  CHECK_FALSE(refusals[0].reason().empty());
  std::optional<v1::LinkInfo> link = fed.Link("CIV", "MLI");
  REQUIRE(link.has_value());
  CHECK(link->state() != v1::LinkInfo::UP);
  CHECK(link->alerts_received() == 0);

  // The genuine MLI certificate is greeted (the control).
  RawLink genuine(fed.federation_port("CIV"), Tls("node-MLI"));
  std::optional<internal::v1::LinkHello> hello = genuine.Handshake("MLI");
  REQUIRE(hello.has_value());
  CHECK(hello->node_id() == "CIV");
  CHECK(fed.WaitLinkUp("CIV", "MLI"));
}

// MLI as a node of its own, unlinked, that only makes genuine alerts of
// MLI/police, signed by the client library; CIV has MLI as a peer. The
// test then plays MLI towards CIV over a raw link with MLI's node
// certificate. Returns the alerts `ids` as MLI stored them.
std::vector<v1::Alert> GenuineAlertsOfMli(Federation& fed,
                                          const std::vector<std::string>& ids) {
  fed.AddNode("MLI");
  fed.config("MLI").clear_federation();
  fed.AddNode("CIV");
  fed.config("CIV").mutable_federation()->add_peers()->set_node_id("MLI");
  fed.Start("MLI");
  fed.Start("CIV");
  auto mli = fed.Connect("MLI");
  auto publisher = mli->NewPublisher();
  for (const std::string& id : ids) {
    REQUIRE(publisher->Publish(MakeAlert(id)).ok());
  }
  RawSubscription read_back(Channel(fed.port("MLI"), Tls("agency-MLI_police")),
                            OpenRequest({"border.>"}));
  const std::vector<v1::Delivery>& delivered =
      read_back.ReadDeliveries(ids.size());
  REQUIRE(delivered.size() == ids.size());
  std::vector<v1::Alert> alerts;
  for (size_t i = 0; i < ids.size(); ++i) {
    REQUIRE(delivered[i].alert().id() == ids[i]);
    alerts.push_back(delivered[i].alert());
  }
  return alerts;
}

// `alert` with its signature's last bit flipped.
v1::Alert WithBadSignature(const v1::Alert& alert) {
  v1::Alert bad = alert;
  std::string signature = bad.signature();
  signature.back() = static_cast<char>(signature.back() ^ 0x01);
  bad.set_signature(signature);
  return bad;
}

TEST_CASE(
    "alerts forged or altered by a peer are refused and audited at the "
    "receiver; the genuine alert is stored once",
    "[federation]") {
  Federation fed;
  const v1::Alert genuine = GenuineAlertsOfMli(fed, {"m-1"})[0];
  REQUIRE(genuine.originator() == "MLI/police");
  INFO("the client library signs alerts (docs/signature-format.md)");
  REQUIRE_FALSE(genuine.signature().empty());
  REQUIRE(genuine.signing_chain_size() > 0);

  RawLink link(fed.federation_port("CIV"), Tls("node-MLI"));
  REQUIRE(link.Handshake("MLI").has_value());

  v1::Alert altered = genuine;
  altered.set_payload("Armed group sighted moving SOUTH near the border post.");
  const v1::Alert bad_signature = WithBadSignature(genuine);
  // Signed, as far as the chain goes, by a CA outside the IBSM PKI.
  TempDir certs;
  IssueCertificate("foreign-ca", "spiffe://ibsm/MLI/police",
                   certs.File("foreign-MLI_police"));
  v1::Alert foreign_chain = genuine;
  foreign_chain.clear_signing_chain();
  for (const std::string& der :
       DerChain(certs.File("foreign-MLI_police-chain.pem"))) {
    foreign_chain.add_signing_chain(der);
  }

  struct Forged {
    const char* what;
    v1::Alert alert;
  };
  uint64_t offer_id = 0;
  for (const Forged& forged : {Forged{"altered payload", altered},
                               Forged{"bad signature", bad_signature},
                               Forged{"foreign chain", foreign_chain}}) {
    INFO(forged.what);
    std::optional<LinkAck> ack =
        link.Offer(OfferOf(++offer_id, forged.alert, {"MLI"}));
    REQUIRE(ack.has_value());
    CHECK(ack->result() == LinkAck::REFUSED);
    CHECK_FALSE(ack->reason().empty());
  }
  // A fingerprint of a chain this stream never carried, without the chain.
  LinkOffer unknown = OfferOf(++offer_id, genuine, {"MLI"});
  unknown.mutable_alert()->clear_signing_chain();
  unknown.set_chain_sha256(std::string(32, '\xab'));
  std::optional<LinkAck> unknown_ack = link.Offer(unknown);
  REQUIRE(unknown_ack.has_value());
  CHECK(unknown_ack->result() == LinkAck::CHAIN_UNKNOWN);
  CHECK(fed.StoredAlertIds("CIV").empty());

  // The genuine alert, unchanged: stored; offered again: a duplicate.
  std::optional<LinkAck> stored =
      link.Offer(OfferOf(++offer_id, genuine, {"MLI"}));
  REQUIRE(stored.has_value());
  INFO("reason: " << stored->reason());
  CHECK(stored->result() == LinkAck::STORED);
  std::optional<LinkAck> again =
      link.Offer(OfferOf(++offer_id, genuine, {"MLI"}));
  REQUIRE(again.has_value());
  CHECK(again->result() == LinkAck::DUPLICATE);

  const std::vector<v1::StoredAlertDigest> at_civ = fed.StoredAlerts("CIV");
  REQUIRE(at_civ.size() == 1);
  CHECK(at_civ[0].alert_id() == "m-1");
  CHECK(at_civ[0].payload_sha256() ==
        std::string(crypto::HashView(crypto::Sha256(genuine.payload()))));

  const std::vector<v1::AuditRecord> refused =
      fed.Audit("CIV", "m-1", v1::AUDIT_FEDERATION_RECEIVE,
                v1::AuditQuery::DECISION_DENIED);
  REQUIRE(refused.size() >= 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("record " << i << ": " << refused[i].reason());
    CHECK(absl::StrContains(refused[i].actor(), "MLI"));
    CHECK(ContainsNoCase(refused[i].reason(), "sign"));
  }
  // Allowed twice: stored, then the duplicate ("nothing written").
  size_t stored_records = 0;
  for (const v1::AuditRecord& r :
       fed.Audit("CIV", "m-1", v1::AUDIT_FEDERATION_RECEIVE,
                 v1::AuditQuery::DECISION_ALLOWED)) {
    if (!absl::StrContains(r.reason(), "duplicate")) ++stored_records;
  }
  CHECK(stored_records == 1);
}

TEST_CASE(
    "in one batch of offers, whose signatures are checked together, each "
    "offer gets the ack of its own checks, in order",
    "[federation]") {
  Federation fed;
  const std::vector<v1::Alert> genuine =
      GenuineAlertsOfMli(fed, {"m-1", "m-2"});
  const v1::Alert& first = genuine[0];
  const v1::Alert& second = genuine[1];

  RawLink link(fed.federation_port("CIV"), Tls("node-MLI"));
  REQUIRE(link.Handshake("MLI").has_value());

  v1::Alert altered = first;
  altered.set_payload("Armed group sighted moving SOUTH near the border post.");
  const v1::Alert bad_signature = WithBadSignature(first);

  internal::v1::LinkFrame frame;
  internal::v1::LinkOffers* offers = frame.mutable_offers();
  *offers->add_offers() = OfferOf(1, altered, {"MLI"});
  *offers->add_offers() = OfferOf(2, second, {"MLI"});  // carries the chain
  *offers->add_offers() = OfferOf(3, bad_signature, {"MLI"});
  // The genuine m-1 by the fingerprint of the chain offer 2 carried.
  LinkOffer by_fingerprint = OfferOf(4, first, {"MLI"});
  by_fingerprint.mutable_alert()->clear_signing_chain();
  by_fingerprint.set_chain_sha256(SigningChainSha256(second));
  *offers->add_offers() = by_fingerprint;
  LinkOffer unknown = OfferOf(5, first, {"MLI"});
  unknown.mutable_alert()->clear_signing_chain();
  unknown.set_chain_sha256(std::string(32, '\xab'));
  *offers->add_offers() = unknown;
  REQUIRE(link.Write(frame));

  std::vector<LinkAck> acks;
  while (acks.size() < 5) {
    std::optional<internal::v1::LinkFrame> reply = link.Read();
    REQUIRE(reply.has_value());
    for (const LinkAck& ack : reply->acks().acks()) acks.push_back(ack);
  }
  REQUIRE(acks.size() == 5);
  const LinkAck::Result want[] = {LinkAck::REFUSED, LinkAck::STORED,
                                  LinkAck::REFUSED, LinkAck::STORED,
                                  LinkAck::CHAIN_UNKNOWN};
  for (size_t i = 0; i < acks.size(); ++i) {
    INFO("offer " << i + 1 << ": " << acks[i].reason());
    CHECK(acks[i].id() == i + 1);
    CHECK(acks[i].result() == want[i]);
  }
  CHECK(ContainsNoCase(acks[0].reason(), "sign"));
  CHECK(ContainsNoCase(acks[2].reason(), "sign"));
  std::set<std::string> stored;
  for (const v1::StoredAlertDigest& d : fed.StoredAlerts("CIV")) {
    stored.insert(d.alert_id());
  }
  CHECK(stored == std::set<std::string>{"m-1", "m-2"});
}

TEST_CASE(
    "an alert refused by the receiver's stricter policy is audited on both "
    "sides, the sender's record carrying the receiver's reason, and not "
    "retried",
    "[federation]") {
  // MLI's own copy of the policy clears MLI only to CONFIDENTIAL; CIV's
  // still says SECRET, so CIV sends what MLI refuses.
  TempDir dir;
  const std::string base = *ReadFileToString(FederationPolicyPath());
  const std::string strict = absl::StrReplaceAll(
      base,
      {{R"(nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: ["SAHEL"] clearance: "SECRET" })",
        R"(nodes { id: "MLI" kind: NODE_KIND_NATIONAL groups: ["SAHEL"] clearance: "CONFIDENTIAL" })"}});
  REQUIRE(strict != base);
  std::ofstream(dir.File("strict-mli.textproto")) << strict;

  Federation fed;
  fed.AddLink("CIV", "MLI");
  fed.SetPolicy("MLI", dir.File("strict-mli.textproto"));
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  auto civ = fed.Connect("CIV");
  auto publisher = civ->NewPublisher();
  REQUIRE(
      publisher->Publish(MakeAlert("s-1", "border.incident", "SECRET")).ok());
  REQUIRE(publisher->Publish(MakeAlert("r-1", "border.incident", "RESTRICTED"))
              .ok());
  REQUIRE(fed.WaitDrained());

  const auto received = fed.Audit("MLI", "s-1", v1::AUDIT_FEDERATION_RECEIVE,
                                  v1::AuditQuery::DECISION_DENIED);
  REQUIRE(received.size() == 1);
  const std::string reason = received[0].reason();
  INFO("MLI's reason: " << reason);
  CHECK_FALSE(reason.empty());
  CHECK(absl::StrContains(received[0].actor(), "CIV"));
  const auto sent = fed.Audit("CIV", "s-1", v1::AUDIT_FEDERATION_SEND,
                              v1::AuditQuery::DECISION_DENIED);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].recipient() == "MLI");
  CHECK(absl::StrContains(sent[0].reason(), reason));
  // Refused once, not retried; the RESTRICTED alert went through.
  CHECK(fed.StoredAlertIds("MLI") == std::vector<std::string>{"r-1"});
  std::optional<v1::LinkInfo> link = fed.Link("CIV", "MLI");
  REQUIRE(link.has_value());
  CHECK(link->alerts_refused() == 1);
  CHECK(link->alerts_sent() == 1);
}

TEST_CASE(
    "a peer that speaks only other link protocol versions is refused with "
    "both ranges named, and the refusal is audited",
    "[federation]") {
  Federation fed;
  fed.AddNode("CIV");
  fed.config("CIV").mutable_federation()->add_peers()->set_node_id("MLI");
  fed.Start("CIV");

  RawLink link(fed.federation_port("CIV"), Tls("node-MLI"));
  internal::v1::LinkFrame hello;
  hello.mutable_hello()->set_min_version(2);
  hello.mutable_hello()->set_max_version(3);
  hello.mutable_hello()->set_node_id("MLI");
  REQUIRE(link.Write(hello));
  std::optional<internal::v1::LinkFrame> answer = link.Read();
  REQUIRE(answer.has_value());
  REQUIRE(answer->has_goodbye());
  CHECK(answer->goodbye().reason() ==
        internal::v1::LinkGoodbye::INCOMPATIBLE_VERSION);
  INFO(answer->goodbye().message());
  CHECK(absl::StrContains(answer->goodbye().message(), "1..1"));
  CHECK(absl::StrContains(answer->goodbye().message(), "2..3"));

  std::vector<v1::AuditRecord> refusals;
  REQUIRE(Eventually([&] {
    refusals = LinkRefusals(fed, "CIV", "MLI");
    return !refusals.empty();
  }));
  CHECK(absl::StrContains(refusals[0].reason(), "link protocol version"));
  std::optional<v1::LinkInfo> info = fed.Link("CIV", "MLI");
  REQUIRE(info.has_value());
  CHECK(info->state() == v1::LinkInfo::REFUSED);
}

}  // namespace
}  // namespace ibsm::testing

namespace ibsm::testing {
namespace {

// The dialler's side of the certificate matrix (docs/security.md): CIV
// dials "MLI" at a FakeLinkServer presenting each certificate. A refused
// handshake never reaches the fake's service; the valid one does.
TEST_CASE(
    "a dialler refuses at the handshake an acceptor whose certificate is "
    "expired, from a foreign CA, without serverAuth, without its "
    "intermediate or an agency's",
    "[federation][matrix]") {
  struct DialRow {
    const char* name;
    TlsFiles tls;
    bool reaches_service;
  };
  const std::string pki = PkiDir();
  const DialRow row = GENERATE_COPY(
      DialRow{"valid", Tls("node-MLI"), true},
      DialRow{"expired node certificate", Tls("node-expired"), false},
      DialRow{"node certificate without serverAuth", Tls("node-noserver"),
              false},
      DialRow{"foreign CA", Tls("foreign"), false},
      DialRow{"intermediate missing",
              TlsFiles{pki + "/node-MLI.pem", pki + "/node-MLI.key",
                       pki + "/ca.pem", ""},
              false},
      DialRow{"agency certificate as a node", Tls("agency-MLI_customs"),
              false});
  INFO(row.name);
  FakeLinkServer acceptor(row.tls, "MLI");
  Federation fed;
  fed.AddNode("CIV");
  internal::v1::PeerConfig* peer =
      fed.config("CIV").mutable_federation()->add_peers();
  peer->set_node_id("MLI");
  peer->set_address(acceptor.address());
  fed.Start("CIV");
  if (row.reaches_service) {
    CHECK(Eventually([&] { return acceptor.streams() > 0; }));
    return;
  }
  // Wait for a dial that failed, then check that none got through.
  std::optional<v1::LinkInfo> link;
  REQUIRE(Eventually([&] {
    link = fed.Link("CIV", "MLI");
    return link.has_value() && !link->last_error().empty();
  }));
  INFO("last_error: " << link->last_error());
  CHECK(acceptor.streams() == 0);
  CHECK(link->state() != v1::LinkInfo::UP);
}

}  // namespace
}  // namespace ibsm::testing
