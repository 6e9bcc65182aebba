// Bad input gets a status a person can act on, and nothing is written.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "node/node.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

TEST_CASE("invalid alerts are refused with INVALID_ARGUMENT and not stored") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.mutable_limits()->set_max_alert_bytes(64 * 1024);
  auto node = broker::Node::Start(config);
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));

  struct Case {
    const char* name;
    std::function<void(v1::Alert&)> spoil;
    const char* mentions;
  };
  std::vector<Case> cases = {
      {"oversized",
       [](v1::Alert& a) { a.set_payload(std::string(70000, 'x')); },
       "65536 bytes"},
      {"empty topic", [](v1::Alert& a) { a.clear_topic(); }, "topic"},
      {"malformed topic", [](v1::Alert& a) { a.set_topic("Border..X"); },
       "topic"},
      {"wildcard topic", [](v1::Alert& a) { a.set_topic("border.*"); },
       "wildcard"},
      {"unknown classification",
       [](v1::Alert& a) { a.set_classification("TOP-SECRET-ISH"); },
       "unknown classification"},
      {"missing id", [](v1::Alert& a) { a.clear_id(); }, "id is missing"},
      {"over-long id", [](v1::Alert& a) { a.set_id(std::string(129, 'a')); },
       "at most 128"},
      {"expiry before creation",
       [](v1::Alert& a) {
         *a.mutable_expires_at() = a.created_at();
         a.mutable_expires_at()->set_seconds(a.created_at().seconds() - 60);
       },
       "expires_at"},
      {"missing severity", [](v1::Alert& a) { a.clear_severity(); },
       "severity"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    v1::Alert alert = MakeAlert("bad-alert");
    c.spoil(alert);
    grpc::Status s = RawPublish(police, {alert});
    INFO(s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(c.mentions));
  }
  // One bad alert in a unary batch refuses the whole batch.
  v1::Alert bad = MakeAlert("bad-in-batch");
  bad.set_topic("");
  CHECK(RawPublish(police, {MakeAlert("good-in-batch"), bad}).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);

  // Nothing was written: the first good alert gets sequence 1.
  v1::PublishResponse response;
  REQUIRE(RawPublish(police, {MakeAlert("good")}, &response).ok());
  CHECK(response.results(0).sequence() == 1);
}

TEST_CASE("the stream answers each bad alert and stores the good ones") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  auto stub = v1::Publisher::NewStub(police);
  grpc::ClientContext context;
  SetTestDeadline(context);
  auto stream = stub->PublishStream(&context);
  v1::PublishRequest request;
  *request.add_alerts() = MakeAlert("s-good-1");
  v1::Alert bad = MakeAlert("s-bad");
  bad.set_classification("");
  *request.add_alerts() = bad;
  *request.add_alerts() = MakeAlert("s-good-2");
  REQUIRE(stream->Write(request));
  stream->WritesDone();
  std::map<std::string, v1::PublishResult> results;
  v1::PublishResponse response;
  while (stream->Read(&response)) {
    for (const auto& r : response.results()) results[r.alert_id()] = r;
  }
  REQUIRE(stream->Finish().ok());
  REQUIRE(results.size() == 3);
  CHECK(results["s-good-1"].code() == 0);
  CHECK(results["s-bad"].code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(results["s-bad"].message(), Catch::Contains("classification"));
  CHECK(results["s-good-2"].code() == 0);
  CHECK(results["s-good-1"].sequence() == 1);
  CHECK(results["s-good-2"].sequence() == 2);
}

TEST_CASE("an empty or oversized batch is refused as a whole") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.mutable_limits()->set_max_batch_alerts(3);
  auto node = broker::Node::Start(config);
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  CHECK(RawPublish(police, {}).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status s = RawPublish(police, {MakeAlert("b1"), MakeAlert("b2"),
                                       MakeAlert("b3"), MakeAlert("b4")});
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("at most 3"));
}

TEST_CASE("bad subscribe requests are refused with a reason") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto customs = Channel((*node)->port(), Tls("agency-CIV_customs"));
  struct Case {
    v1::SubscribeRequest::Open open;
    const char* mentions;
  };
  std::vector<Case> cases = {
      {OpenRequest({}), "at least one topic"},
      {OpenRequest({"terrorism.>.x"}), "last segment"},
      {OpenRequest({"Terrorism"}), "lowercase"},
      {OpenRequest({"border.*"}, "bad name!"), "durable_name"},
  };
  for (const Case& c : cases) {
    RawSubscription sub(customs, c.open);
    grpc::Status s = sub.AwaitEnd();
    INFO(s.error_message());
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(c.mentions));
  }
}

TEST_CASE("an alert reference with an unknown kind number is refused") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  v1::Alert alert = MakeAlert("ref-kind");
  v1::AlertReference* ref = alert.add_references();
  ref->set_originator("CIV/police");
  ref->set_alert_id("earlier-1");
  ref->set_kind(static_cast<v1::AlertReference::Kind>(7));
  grpc::Status s = RawPublish(police, {alert});
  INFO(s.error_message());
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("kind"));
  // A known kind is still accepted.
  ref->set_kind(v1::AlertReference::KIND_RELATED);
  CHECK(RawPublish(police, {alert}).ok());
}

TEST_CASE("a subscribe with more topic patterns than the limit is refused") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto customs = Channel((*node)->port(), Tls("agency-CIV_customs"));
  std::vector<std::string> patterns;
  for (int i = 0; i < 64; ++i) patterns.push_back(absl::StrCat("p", i, ".>"));
  {
    // The default limit, 64, is allowed.
    RawSubscription sub(customs, OpenRequest(patterns));
    CHECK(sub.WaitOpened());
  }
  patterns.push_back("one.more");
  RawSubscription sub(customs, OpenRequest(patterns));
  grpc::Status s = sub.AwaitEnd();
  INFO(s.error_message());
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(s.error_message(), Catch::Contains("at most 64"));
}

// Collects what this process writes to stderr between construction and
// Take(); the in-process node shares our stderr.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = dup(2);
    int fd = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() { (void)Take(); }
  std::string Take() {
    if (saved_ < 0) return taken_;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    taken_ = text.str();
    return taken_;
  }

 private:
  std::string path_;
  int saved_ = -1;
  std::string taken_;
};

// One call of raw bytes that the node must refuse as malformed.
struct MalformedCall {
  const char* what;
  std::function<grpc::Status()> call;
};

// Runs every call while `capture` holds stderr, then checks that each got
// INVALID_ARGUMENT naming the request and that protobuf printed nothing.
void CheckRefusedAsMalformed(const std::vector<MalformedCall>& calls,
                             StderrCapture* capture) {
  std::vector<grpc::Status> results;
  for (const MalformedCall& c : calls) results.push_back(c.call());
  const std::string err = capture->Take();
  for (size_t i = 0; i < calls.size(); ++i) {
    INFO(calls[i].what << ": " << results[i].error_code() << " "
                       << results[i].error_message());
    CHECK(results[i].error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(results[i].error_message(), Catch::Contains("request"));
  }
  INFO(err);
  CHECK_THAT(err, !Catch::Contains("libprotobuf"));
}

TEST_CASE(
    "malformed request bytes get INVALID_ARGUMENT with a message and no "
    "protobuf error line") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  auto customs = Channel((*node)->port(), Tls("agency-CIV_customs"));
  // Not protobuf: a truncated varint tag.
  const std::string garbage = "\xff\xff\xff\xff";
  // A PublishRequest whose one alert has an id that is not UTF-8.
  const std::string bad_utf8_publish("\x0a\x04\x0a\x02\xc3\x28", 6);
  // A SubscribeRequest whose open carries a topic that is not UTF-8.
  const std::string bad_utf8_subscribe("\x0a\x04\x0a\x02\xc3\x28", 6);

  StderrCapture capture(dir.File("stderr.txt"));
  std::vector<MalformedCall> cases = {
      {"Publish, not protobuf",
       [&] {
         return RawBytesUnary(police, "/ibsm.v1.Publisher/Publish", garbage);
       }},
      {"Publish, invalid UTF-8",
       [&] {
         return RawBytesUnary(police, "/ibsm.v1.Publisher/Publish",
                              bad_utf8_publish);
       }},
      {"PublishStream, not protobuf",
       [&] {
         return RawBytesStream(police, "/ibsm.v1.Publisher/PublishStream",
                               {garbage});
       }},
      {"PublishStream, invalid UTF-8",
       [&] {
         return RawBytesStream(police, "/ibsm.v1.Publisher/PublishStream",
                               {bad_utf8_publish});
       }},
      {"Subscribe, not protobuf",
       [&] {
         return RawBytesStream(customs, "/ibsm.v1.Subscriber/Subscribe",
                               {garbage});
       }},
      {"Subscribe, invalid UTF-8",
       [&] {
         return RawBytesStream(customs, "/ibsm.v1.Subscriber/Subscribe",
                               {bad_utf8_subscribe});
       }},
  };
  CheckRefusedAsMalformed(cases, &capture);
  // Nothing was stored.
  v1::PublishResponse response;
  REQUIRE(RawPublish(police, {MakeAlert("after-garbage")}, &response).ok());
  CHECK(response.results(0).sequence() == 1);
}

TEST_CASE(
    "malformed request bytes to Node.GetInfo and the Auditor methods get "
    "INVALID_ARGUMENT, are audited once as refused, and log no protobuf "
    "error") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  // A policy that gives UNODC/audit the AUDITOR role, to read the trail.
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  auto node = broker::Node::Start(config);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  auto auditor = Channel((*node)->port(), Tls("auditor-UNODC_audit"));
  // Not protobuf: a truncated varint tag.
  const std::string garbage = "\xff\xff\xff\xff";
  // An AuditQuery whose actor (field 3) is not UTF-8.
  const std::string bad_utf8_query("\x1a\x02\xc3\x28", 4);

  StderrCapture capture(dir.File("stderr.txt"));
  auto unary = [](const std::shared_ptr<grpc::Channel>& channel,
                  std::string method, std::string bytes) {
    return [channel, method, bytes] {
      return RawBytesUnary(channel, method, bytes);
    };
  };
  std::vector<MalformedCall> cases = {
      {"Node.GetInfo, not protobuf",
       unary(police, "/ibsm.v1.Node/GetInfo", garbage)},
      {"Auditor.Query, not protobuf",
       [&] {
         return RawBytesStream(auditor, "/ibsm.v1.Auditor/Query", {garbage});
       }},
      {"Auditor.Query, invalid UTF-8",
       [&] {
         return RawBytesStream(auditor, "/ibsm.v1.Auditor/Query",
                               {bad_utf8_query});
       }},
      {"Auditor.GetCheckpoint, not protobuf",
       unary(auditor, "/ibsm.v1.Auditor/GetCheckpoint", garbage)},
      {"Auditor.GetInclusionProof, not protobuf",
       unary(auditor, "/ibsm.v1.Auditor/GetInclusionProof", garbage)},
      {"Auditor.GetConsistencyProof, not protobuf",
       unary(auditor, "/ibsm.v1.Auditor/GetConsistencyProof", garbage)},
      {"Auditor.Export, not protobuf",
       unary(auditor, "/ibsm.v1.Auditor/Export", garbage)},
      {"Auditor.ExportAlerts, not protobuf",
       unary(auditor, "/ibsm.v1.Auditor/ExportAlerts", garbage)},
  };
  CheckRefusedAsMalformed(cases, &capture);

  // Each malformed call is in the trail once, as a refused call, and none
  // as an allowed audit action. Records are committed with a later batch.
  auto count = [](const std::vector<v1::AuditRecord>& records,
                  v1::AuditAction action, const std::string& actor) {
    size_t n = 0;
    for (const v1::AuditRecord& r : records) {
      if (r.action() == action && r.actor() == actor) ++n;
    }
    return n;
  };
  const size_t auditor_cases = cases.size() - 1;
  std::vector<v1::AuditRecord> records;
  grpc::Status status;
  // Stops early on a failed query; checked below.
  (void)Eventually([&] {
    records = RawAuditQuery(auditor, v1::AuditQuery(), &status);
    return !status.ok() ||
           (count(records, v1::AUDIT_CALL_REFUSED, "UNODC/audit") >=
                auditor_cases &&
            count(records, v1::AUDIT_CALL_REFUSED, "CIV/police") >= 1);
  });
  INFO(status.error_code() << " " << status.error_message());
  REQUIRE(status.ok());
  CHECK(count(records, v1::AUDIT_CALL_REFUSED, "UNODC/audit") == auditor_cases);
  CHECK(count(records, v1::AUDIT_CALL_REFUSED, "CIV/police") == 1);
  CHECK(count(records, v1::AUDIT_AUDITOR_EXPORT, "UNODC/audit") == 0);
  bool found = false;
  for (const v1::AuditRecord& r : records) {
    if (r.action() != v1::AUDIT_CALL_REFUSED || r.actor() != "UNODC/audit" ||
        r.detail() != "Auditor.Query") {
      continue;
    }
    CHECK_FALSE(r.allowed());
    CHECK_THAT(r.reason(), Catch::Contains("ibsm.v1.AuditQuery"));
    found = true;
  }
  CHECK(found);
}

// A certificate that chains to the IBSM root (issued by CIV's intermediate)
// but carries no spiffe://ibsm/... URI, so the call's identity check fails.
TlsFiles NoIdentityCertificate(const TempDir& dir) {
  const std::string ca = PkiDir() + "/CIV-ca";
  const std::string base = dir.File("no-identity");
  std::ofstream(dir.File("ext.cnf"))
      << "basicConstraints = critical, CA:false\n"
         "keyUsage = critical, digitalSignature\n"
         "extendedKeyUsage = clientAuth\n";
  RunResult req =
      RunBinary("/usr/bin/openssl",
                {"req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-noenc", "-keyout", base + ".key",
                 "-out", base + ".csr", "-subj", "/O=IBSM/OU=CIV/CN=nobody"});
  INFO(req.output);
  REQUIRE(req.exit_code == 0);
  RunResult signed_cert = RunBinary(
      "/usr/bin/openssl",
      {"x509", "-req", "-in", base + ".csr", "-CA", ca + ".pem", "-CAkey",
       ca + ".key", "-CAcreateserial", "-CAserial", dir.File("serial"), "-days",
       "2", "-extfile", dir.File("ext.cnf"), "-out", base + ".pem"});
  INFO(signed_cert.output);
  REQUIRE(signed_cert.exit_code == 0);
  std::ofstream chain(base + "-chain.pem");
  chain << std::ifstream(base + ".pem").rdbuf()
        << std::ifstream(ca + ".pem").rdbuf();
  chain.close();
  TlsFiles files = Tls("agency-CIV_police");
  files.cert_file = base + "-chain.pem";
  files.key_file = base + ".key";
  return files;
}

TEST_CASE(
    "a publish stream refused for its identity and then cancelled is "
    "finished once") {
  TempDir dir;
  auto node = broker::Node::Start(NodeConfigFor(dir.File("data")));
  REQUIRE(node.ok());
  auto nobody = Channel((*node)->port(), NoIdentityCertificate(dir));
  auto stub = v1::Publisher::NewStub(nobody);
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext context;
    SetTestDeadline(context);
    auto stream = stub->PublishStream(&context);
    // The node refuses the identity at once; the cancel races with that
    // (and used to make the reactor call Finish a second time).
    if (i % 2 == 0) context.TryCancel();
    grpc::Status s = stream->Finish();
    INFO(s.error_code() << " " << s.error_message());
    CHECK((s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
           s.error_code() == grpc::StatusCode::CANCELLED));
  }
  // The node is still there and serves others.
  auto police = Channel((*node)->port(), Tls("agency-CIV_police"));
  CHECK(RawPublish(police, {MakeAlert("after-refusals")}).ok());
}

}  // namespace
}  // namespace ibsm::testing
