// Revocation as certs/README.md promises it, measured from outside against a
// real ibsm-broker: every certificate of the chain is checked against the
// CRLs in crl_dir, a CA without a CRL there fails closed, and a replaced CRL
// applies to new handshakes, new calls and live streams within the TLS
// reload interval. Each test works on its own copy of the PKI's crl/.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "ibsm/tls.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

namespace fs = std::filesystem;

// A copy of the PKI's CRL directory in `dir`.
std::string CopyCrlDir(const TempDir& dir) {
  std::string crl_dir = dir.File("crl");
  fs::copy(PkiDir() + "/crl", crl_dir);
  return crl_dir;
}

// The files of `crl_dir` that hold the CRL of intermediate `ca` ("CIV-ca"):
// <ca>.crl.pem and its hashed-directory copy.
std::vector<fs::path> CrlFilesOf(const std::string& crl_dir,
                                 const std::string& ca) {
  std::string want = *ReadFileToString(PkiDir() + "/crl/" + ca + ".crl.pem");
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(crl_dir)) {
    if (*ReadFileToString(entry.path().string()) == want) {
      out.push_back(entry.path());
    }
  }
  REQUIRE(out.size() == 2);
  return out;
}

// Revokes `entity`'s certificate with the key of intermediate `ca` and
// replaces that CA's CRL files in `crl_dir` with the new CRL (written
// elsewhere first and renamed, as an operator's tooling would).
void Revoke(const TempDir& dir, const std::string& crl_dir,
            const std::string& ca, const std::string& entity) {
  std::vector<fs::path> targets = CrlFilesOf(crl_dir, ca);
  std::string work = dir.File("revoke");
  fs::create_directories(work);
  std::ofstream(work + "/index").close();
  std::ofstream(work + "/crlnumber") << "2000\n";
  std::ofstream(work + "/ca.cnf")
      << "[ ca ]\ndefault_ca = s\n[ s ]\ndatabase = " << work
      << "/index\ncertificate = " << PkiDir() << "/" << ca
      << ".pem\nprivate_key = " << PkiDir() << "/" << ca
      << ".key\ncrlnumber = " << work
      << "/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n";
  RunResult revoked = RunBinary(
      "/usr/bin/openssl",
      {"ca", "-config", work + "/ca.cnf", "-revoke",
       PkiDir() + "/" + entity + ".pem", "-crl_reason", "keyCompromise"});
  INFO(revoked.output);
  REQUIRE(revoked.exit_code == 0);
  RunResult crl =
      RunBinary("/usr/bin/openssl", {"ca", "-config", work + "/ca.cnf",
                                     "-gencrl", "-out", work + "/new.crl.pem"});
  INFO(crl.output);
  REQUIRE(crl.exit_code == 0);
  for (const fs::path& target : targets) {
    fs::copy_file(work + "/new.crl.pem", target.string() + ".tmp");
    fs::rename(target.string() + ".tmp", target);
  }
}

internal::v1::NodeConfig RevocationConfig(const TempDir& dir,
                                          const std::string& crl_dir) {
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_tls()->set_crl_dir(crl_dir);
  config.mutable_tls()->set_reload_interval_seconds(1);
  return config;
}

// The refusals in the trail whose reason mentions `text`, once at least
// `want` of them are there (or the deadline passed: then those there are).
std::vector<v1::AuditRecord> AwaitRefusalsMentioning(
    const std::shared_ptr<grpc::Channel>& auditor, const std::string& text,
    size_t want) {
  v1::AuditQuery query;
  query.set_action(v1::AUDIT_CALL_REFUSED);
  std::vector<v1::AuditRecord> found;
  (void)Eventually([&] {
    found.clear();
    for (const v1::AuditRecord& r : RawAuditQuery(auditor, query)) {
      if (r.reason().find(text) != std::string::npos) found.push_back(r);
    }
    return found.size() >= want;
  });
  return found;
}

TEST_CASE("a certificate issued under a revoked intermediate CA is refused",
          "[revocation]") {
  TempDir dir;
  BrokerProcess broker(RevocationConfig(dir, CopyCrlDir(dir)));
  auto under_revoked = Channel(broker.port(), Tls("under-revoked-ca"));
  grpc::Status info = RawNodeInfo(under_revoked);
  INFO(info.error_message());
  CHECK(info.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_FALSE(RawPublish(under_revoked, {MakeAlert("r-1")}).ok());
  // A leaf of the same node under its valid intermediate is served.
  REQUIRE(RawNodeInfo(Channel(broker.port(), Tls("agency-CIV_police"))).ok());
  auto auditor = Channel(broker.port(), Tls("auditor-UNODC_audit"));
  std::vector<v1::AuditRecord> refused =
      AwaitRefusalsMentioning(auditor, "Revoked Intermediate", 1);
  REQUIRE_FALSE(refused.empty());
  CHECK(refused[0].detail() == "tls handshake");
  CHECK_THAT(refused[0].reason(), Catch::Contains("revoked"));
}

TEST_CASE("a CA without a CRL in crl_dir fails closed", "[revocation]") {
  TempDir dir;
  std::string crl_dir = CopyCrlDir(dir);
  for (const fs::path& f : CrlFilesOf(crl_dir, "CIV-ca")) fs::remove(f);
  BrokerProcess broker(RevocationConfig(dir, crl_dir));
  // The revoked leaf, whose revocation the node cannot see, and every other
  // certificate of CIV's intermediate are refused.
  grpc::Status revoked = RawNodeInfo(Channel(broker.port(), Tls("revoked")));
  CHECK(revoked.error_code() == grpc::StatusCode::UNAVAILABLE);
  grpc::Status police =
      RawNodeInfo(Channel(broker.port(), Tls("agency-CIV_police")));
  CHECK(police.error_code() == grpc::StatusCode::UNAVAILABLE);
  // Another node's CA still has its CRL, so its auditor gets in, and finds
  // the refusals recorded with the reason.
  auto auditor = Channel(broker.port(), Tls("auditor-UNODC_audit"));
  std::vector<v1::AuditRecord> refused =
      AwaitRefusalsMentioning(auditor, "no CRL", 2);
  CHECK(refused.size() >= 2);
  for (const auto& r : refused) CHECK(r.detail() == "tls handshake");
}

TEST_CASE(
    "revoking a connected agency ends its live streams and refuses its new "
    "calls and connections, all audited",
    "[revocation]") {
  TempDir dir;
  std::string crl_dir = CopyCrlDir(dir);
  BrokerProcess broker(RevocationConfig(dir, crl_dir));
  auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
  auto police = Channel(broker.port(), Tls("agency-CIV_police"));

  // Live before the revocation: a subscription and a publish stream.
  RawSubscription subscription(customs, OpenRequest({">"}));
  REQUIRE(subscription.WaitOpened());
  auto stub = v1::Publisher::NewStub(customs);
  grpc::ClientContext publish_context;
  SetTestDeadline(publish_context, absl::Seconds(60));
  auto publish_stream = stub->PublishStream(&publish_context);
  v1::PublishRequest request;
  *request.add_alerts() = MakeAlert("before-revocation");
  REQUIRE(publish_stream->Write(request));
  v1::PublishResponse response;
  REQUIRE(publish_stream->Read(&response));
  REQUIRE(RawPublish(customs, {MakeAlert("unary-before")}).ok());

  Revoke(dir, crl_dir, "CIV-ca", "agency-CIV_customs");

  // Within the reload interval (1 s here) the node ends both streams; their
  // 60 s deadlines are only a backstop.
  grpc::Status sub_end = subscription.AwaitEnd();
  INFO(sub_end.error_message());
  CHECK(sub_end.error_code() == grpc::StatusCode::CANCELLED);
  while (publish_stream->Read(&response)) {
  }
  grpc::Status pub_end = publish_stream->Finish();
  CHECK(pub_end.error_code() == grpc::StatusCode::CANCELLED);
  // A new call on the old connection, and a new connection, are refused.
  grpc::Status old_connection = RawPublish(customs, {MakeAlert("after-1")});
  CHECK(old_connection.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(old_connection.error_message(), Catch::Contains("revoked"));
  grpc::Status new_connection =
      RawNodeInfo(Channel(broker.port(), Tls("agency-CIV_customs")));
  CHECK(new_connection.error_code() == grpc::StatusCode::UNAVAILABLE);
  // Others of the same CA are not affected.
  CHECK(RawPublish(police, {MakeAlert("police-after")}).ok());

  auto auditor = Channel(broker.port(), Tls("auditor-UNODC_audit"));
  std::vector<v1::AuditRecord> refused =
      AwaitRefusalsMentioning(auditor, "revoked", 4);
  std::set<std::string> details;
  for (const auto& r : refused) details.insert(r.detail());
  CHECK(details.count("subscribe") == 1);
  CHECK(details.count("publish stream") == 1);
  CHECK(details.count("publish") == 1);
  CHECK(details.count("tls handshake") == 1);
  for (const auto& r : refused) {
    if (r.detail() == "subscribe" || r.detail() == "publish stream") {
      CHECK(r.actor() == "CIV/customs");
      CHECK_THAT(r.reason(), Catch::Contains("live"));
    }
  }
}

TEST_CASE("SIGHUP applies a replaced CRL at once", "[revocation]") {
  TempDir dir;
  std::string crl_dir = CopyCrlDir(dir);
  internal::v1::NodeConfig config = RevocationConfig(dir, crl_dir);
  // The watcher would not look again during this test.
  config.mutable_tls()->set_reload_interval_seconds(3600);
  BrokerProcess broker(config);
  auto customs = Channel(broker.port(), Tls("agency-CIV_customs"));
  RawSubscription subscription(customs, OpenRequest({">"}));
  REQUIRE(subscription.WaitOpened());
  Revoke(dir, crl_dir, "CIV-ca", "agency-CIV_customs");
  broker.Kill(SIGHUP);
  grpc::Status ended = subscription.AwaitEnd();
  INFO(ended.error_message());
  CHECK(ended.error_code() == grpc::StatusCode::CANCELLED);
  grpc::Status refused = RawNodeInfo(customs);
  CHECK(refused.error_code() == grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace ibsm::testing
