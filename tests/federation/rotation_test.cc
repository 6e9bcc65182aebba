// Rotation without restart (issue #11 item 2): a node's certificate and key,
// and its CA bundle, are replaced on disk while the node serves, under load.
// What must hold: no acknowledged alert is lost, no stream that was healthy
// is dropped, every new handshake (clients on the client port, the peer on
// the federation port, both directions of the link) gets the new
// certificate, and the peer accepts it. What a new handshake presents is
// read with a plain OpenSSL client, so the check does not depend on gRPC or
// the client library.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ibsm/certificates.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/federation.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

namespace fs = std::filesystem;

// CertificateSha256 of the leaf that the TLS server on 127.0.0.1:`port`
// presents in a new handshake to a client presenting `client`; empty when
// no handshake completes. The client does not judge the server's
// certificate: the test compares what was presented.
std::string PresentedLeafSha256(int port, const TlsFiles& client) {
  std::string sha256;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
  if (SSL_CTX_use_certificate_chain_file(ctx, client.cert_file.c_str()) == 1 &&
      SSL_CTX_use_PrivateKey_file(ctx, client.key_file.c_str(),
                                  SSL_FILETYPE_PEM) == 1) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
        0) {
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        if (X509* leaf = SSL_get1_peer_certificate(ssl)) {
          BIO* bio = BIO_new(BIO_s_mem());
          PEM_write_bio_X509(bio, leaf);
          char* data = nullptr;
          const long size = BIO_get_mem_data(bio, &data);
          sha256 = CertificateSha256(
              absl::string_view(data, static_cast<size_t>(size)));
          BIO_free(bio);
          X509_free(leaf);
        }
      }
      SSL_free(ssl);
    }
    close(fd);
  }
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return sha256;
}

// Renews `node`'s certificate and key in `dir` (the files its config
// names), the way an operator or an ACME client does: a new key and a new
// certificate from the node's intermediate, each moved into place with one
// rename, the key first. Returns the new certificate's CertificateSha256.
std::string Renew(const TempDir& dir, const std::string& node) {
  const std::string base = dir.File("renewed-" + node);
  IssueCertificate(node + "-ca", "spiffe://ibsm/" + node, base);
  fs::rename(base + ".key", dir.File(node + ".key"));
  fs::rename(base + "-chain.pem", dir.File(node + ".pem"));
  return CertificateSha256(*ReadFileToString(base + ".pem"));
}

bool HasLinkUpNaming(Federation& fed, const std::string& node,
                     const std::string& sha256) {
  for (const v1::AuditRecord& r :
       fed.Audit(node, "", v1::AUDIT_FEDERATION_LINK_UP)) {
    if (absl::StrContains(r.reason(), "peer certificate SHA-256 " + sha256)) {
      return true;
    }
  }
  return false;
}

TEST_CASE(
    "renewing both nodes' certificates and keys on disk under load: no "
    "acknowledged alert is lost, no healthy stream is dropped, and every new "
    "handshake, of clients and of the peer, gets and accepts the new "
    "certificates",
    "[federation][rotation]") {
  Federation fed;
  fed.AddLink("CIV", "MLI", /*proxied=*/true);
  TempDir files;
  for (const std::string node : {"CIV", "MLI"}) {
    const TlsFiles issued = Tls("node-" + node);
    fs::copy_file(issued.cert_file, files.File(node + ".pem"));
    fs::copy_file(issued.key_file, files.File(node + ".key"));
    internal::v1::TlsConfig& tls = *fed.config(node).mutable_tls();
    tls.set_cert_file(files.File(node + ".pem"));
    tls.set_key_file(files.File(node + ".key"));
    tls.set_reload_interval_seconds(1);
  }
  fed.StartAll();
  REQUIRE(fed.WaitAllLinksUp());
  Collector local(fed.address("CIV"), "agency-CIV_police", {"border.>"},
                  "rotation-local");
  Collector remote(fed.address("MLI"), "agency-MLI_police", {"border.>"},
                   "rotation-remote");
  BackgroundPublisher publisher(fed.Connect("CIV"), "rot", "border.incident",
                                absl::Milliseconds(5), 100000);
  REQUIRE(remote.WaitForCount(20));

  const std::string old_civ =
      PresentedLeafSha256(fed.port("CIV"), Tls("agency-CIV_police"));
  const std::string old_mli =
      PresentedLeafSha256(fed.federation_port("MLI"), Tls("node-CIV"));
  REQUIRE(old_civ ==
          CertificateSha256(*ReadFileToString(Tls("node-CIV").cert_file)));
  REQUIRE(old_mli ==
          CertificateSha256(*ReadFileToString(Tls("node-MLI").cert_file)));
  REQUIRE(HasLinkUpNaming(fed, "MLI", old_civ));

  const std::string new_civ = Renew(files, "CIV");
  const std::string new_mli = Renew(files, "MLI");
  REQUIRE(new_civ != old_civ);
  REQUIRE(new_mli != old_mli);

  // New handshakes on every port of both nodes get the new certificate.
  CHECK(Eventually([&] {
    return PresentedLeafSha256(fed.port("CIV"), Tls("agency-CIV_police")) ==
           new_civ;
  }));
  CHECK(Eventually([&] {
    return PresentedLeafSha256(fed.federation_port("CIV"), Tls("node-MLI")) ==
           new_civ;
  }));
  CHECK(Eventually([&] {
    return PresentedLeafSha256(fed.port("MLI"), Tls("agency-MLI_police")) ==
           new_mli;
  }));
  CHECK(Eventually([&] {
    return PresentedLeafSha256(fed.federation_port("MLI"), Tls("node-CIV")) ==
           new_mli;
  }));
  REQUIRE(publisher.WaitForMore(20));

  // The link's next handshake: CIV dials again with its new certificate and
  // MLI answers with its new one; each accepts the other's, and says which
  // certificate it saw.
  fed.proxy("CIV", "MLI").ResetAll();
  REQUIRE(Eventually([&] {
    return HasLinkUpNaming(fed, "MLI", new_civ) &&
           HasLinkUpNaming(fed, "CIV", new_mli);
  }));
  REQUIRE(fed.WaitLinkUp("CIV", "MLI"));
  REQUIRE(publisher.WaitForMore(20));

  // A new client, which checks the server's certificate, connects and
  // publishes.
  auto fresh = fed.Connect("CIV");
  REQUIRE(fresh->NewPublisher()->Publish(MakeAlert("after-rotation")).ok());

  publisher.Stop();
  INFO("publish failures: " << publisher.failures().size());
  CHECK(publisher.failures().empty());
  std::vector<std::string> expected = publisher.acknowledged();
  expected.push_back("after-rotation");
  REQUIRE(local.WaitFor(expected));
  REQUIRE(remote.WaitFor(expected));
  for (const Collector* desk : {&local, &remote}) {
    for (const auto& [id, n] : CountIds(desk->ids())) {
      INFO("handed over: " << id);
      CHECK(n == 1);
    }
    // The subscriptions opened before the rotation were never broken.
    CHECK(desk->reconnects() == 0);
    CHECK(desk->error().ok());
  }
}

TEST_CASE(
    "a CA bundle replaced on disk applies to new handshakes without a "
    "restart: a root taken out of it is no longer trusted",
    "[federation][rotation]") {
  // The bundle starts with a second root that issued a peer certificate;
  // the operator then withdraws that root.
  TempDir files;
  const std::string bundle = files.File("bundle.pem");
  const std::string ibsm_root = *ReadFileToString(PkiDir() + "/ca.pem");
  std::ofstream(bundle) << ibsm_root
                        << *ReadFileToString(PkiDir() + "/foreign-ca.pem");
  internal::v1::NodeConfig config = NodeConfigFor(files.File("data"));
  config.mutable_tls()->set_ca_file(bundle);
  config.mutable_tls()->set_reload_interval_seconds(1);
  // Without CRLs, so that foreign-ca (which has none) passes the handshake
  // while the bundle trusts it: the difference the test looks for is the
  // bundle's alone.
  config.mutable_tls()->clear_crl_dir();
  BrokerProcess broker(config);
  REQUIRE(broker.port() > 0);

  const TlsFiles foreign = Tls("foreign");
  auto Status = [&](const TlsFiles& client) {
    return RawPublish(Channel(broker.port(), client),
                      {MakeAlert(absl::StrCat(
                          "ca-", absl::ToUnixMicros(absl::Now())))})
        .error_code();
  };
  // Trusted by the bundle, so the handshake completes; the call is then
  // refused (UNAUTHENTICATED) because foreign-ca may not issue IBSM
  // identities. Untrusted, the handshake fails: UNAVAILABLE.
  const grpc::StatusCode before = Status(foreign);
  CHECK(before != grpc::StatusCode::OK);
  CHECK(before != grpc::StatusCode::UNAVAILABLE);
  CHECK(Status(Tls("agency-CIV_police")) == grpc::StatusCode::OK);

  {
    std::ofstream replaced(bundle + ".new");
    replaced << ibsm_root;
  }
  fs::rename(bundle + ".new", bundle);
  CHECK(Eventually(
      [&] { return Status(foreign) == grpc::StatusCode::UNAVAILABLE; }));
  CHECK(Status(Tls("agency-CIV_police")) == grpc::StatusCode::OK);
}

}  // namespace
}  // namespace ibsm::testing
