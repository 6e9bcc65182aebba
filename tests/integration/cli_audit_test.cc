// `ibsm audit ...` as an auditor uses it against a real ibsm-broker: query
// (table and --json), refusal of a non-auditor, export and offline verify
// (with a kept checkpoint across two exports), proofs and checkpoints.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ibsm/checkpoint.h"
#include "ibsm/tls.h"
#include "ibsm/v1/audit.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_support.h"

namespace ibsm::testing {
namespace {

RunResult Auditor(int port, std::vector<std::string> args) {
  return RunBinary(CliBinary(),
                   CliArgs(port, "auditor-UNODC_audit", std::move(args)));
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tree size of a checkpoint note: its second line.
uint64_t NoteSize(const std::string& note) {
  std::vector<std::string> lines = absl::StrSplit(note, '\n');
  uint64_t size = 0;
  if (lines.size() < 2 || !absl::SimpleAtoi(lines[1], &size)) return 0;
  return size;
}

// Polls `ibsm audit checkpoint` until the node serves a checkpoint of more
// than `above` records; returns its note.
std::string WaitForCheckpoint(int port, uint64_t above) {
  RunResult r{1, ""};
  if (Eventually([&] {
        r = Auditor(port, {"audit", "checkpoint"});
        return r.exit_code == 0 && NoteSize(r.output) > above;
      })) {
    return r.output;
  }
  INFO(r.output);
  FAIL("no checkpoint of more than " << above << " records");
  return "";
}

TEST_CASE(
    "ibsm audit: query, export, verify, proof and checkpoint as an "
    "auditor; a non-auditor is refused") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(5);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  BrokerProcess broker(config);
  const int port = broker.port();
  const std::string node_cert = PkiDir() + "/node-CIV-chain.pem";
  const std::string ca = PkiDir() + "/ca.pem";

  auto police = Channel(port, Tls("agency-CIV_police"));
  REQUIRE(RawPublish(police, {MakeAlert("cli-aud-1"), MakeAlert("cli-aud-2"),
                              MakeAlert("cli-aud-3")})
              .ok());

  const std::string first_note = WaitForCheckpoint(port, 0);
  CHECK_THAT(first_note, Catch::StartsWith("ibsm/CIV\n"));

  SECTION("query: table and --json list the publish records") {
    RunResult table = Auditor(port, {"audit", "query", "--action", "publish"});
    INFO(table.output);
    REQUIRE(table.exit_code == 0);
    std::vector<std::string> lines = Lines(table.output);
    REQUIRE(lines.size() == 4);  // header + 3 records
    CHECK_THAT(lines[0], Catch::StartsWith("INDEX") &&
                             Catch::Contains("ACTOR") &&
                             Catch::Contains("CLASSIFICATION") &&
                             Catch::Contains("REASON"));
    for (int i = 1; i <= 3; ++i) {
      CHECK_THAT(lines[i], Catch::Contains(absl::StrCat("cli-aud-", i)) &&
                               Catch::Contains("CIV/police") &&
                               Catch::Contains("publish") &&
                               Catch::Contains("allowed") &&
                               Catch::Contains("border.incident") &&
                               Catch::Contains("RESTRICTED"));
    }
    // Aligned: the ACTOR column starts at the same offset on every line.
    const size_t actor_col = lines[0].find("ACTOR");
    for (int i = 1; i <= 3; ++i) {
      CHECK(lines[i].find("CIV/police") == actor_col);
    }

    RunResult json = Auditor(port, {"--json", "audit", "query", "--action",
                                    "publish", "--actor", "CIV/police"});
    INFO(json.output);
    REQUIRE(json.exit_code == 0);
    std::vector<std::string> records = Lines(json.output);
    REQUIRE(records.size() == 3);
    for (int i = 0; i < 3; ++i) {
      CHECK_THAT(records[i], Catch::StartsWith("{") && Catch::EndsWith("}"));
      CHECK_THAT(records[i],
                 Catch::Contains(
                     absl::StrCat("\"alert_id\":\"cli-aud-", i + 1, "\"")) &&
                     Catch::Contains("\"action\":\"AUDIT_PUBLISH\"") &&
                     Catch::Contains("\"actor\":\"CIV/police\""));
    }

    // Pagination: one record per page, the rest announced on stderr.
    RunResult page = Auditor(
        port, {"audit", "query", "--action", "publish", "--limit", "1"});
    INFO(page.output);
    REQUIRE(page.exit_code == 0);
    CHECK_THAT(page.output, Catch::Contains("cli-aud-1") &&
                                Catch::Contains("next page: --from-index "));
    CHECK_THAT(page.output, !Catch::Contains("cli-aud-2"));

    RunResult none = Auditor(port, {"audit", "query", "--decision", "denied",
                                    "--actor", "nobody/here"});
    CHECK(none.exit_code == 0);
  }

  SECTION("a non-auditor is refused (exit 1, PERMISSION_DENIED)") {
    RunResult refused = RunBinary(
        CliBinary(), CliArgs(port, "agency-CIV_police", {"audit", "query"}));
    INFO(refused.output);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.output,
               Catch::Contains("ibsm: audit query refused: PERMISSION_DENIED"));
    for (std::vector<std::string> args :
         {std::vector<std::string>{"audit", "checkpoint"},
          std::vector<std::string>{"audit", "export", "-o",
                                   dir.File("nope.bin")},
          std::vector<std::string>{"audit", "proof", "--index", "0"}}) {
      RunResult r =
          RunBinary(CliBinary(), CliArgs(port, "agency-CIV_police", args));
      INFO(r.output);
      CHECK(r.exit_code == 1);
      CHECK_THAT(r.output, Catch::Contains("PERMISSION_DENIED"));
    }
    CHECK_FALSE(std::ifstream(dir.File("nope.bin")).good());
  }

  SECTION(
      "export, verify offline, keep the checkpoint, export again and "
      "verify consistency") {
    const std::string export1 = dir.File("export1.bin");
    const std::string kept = dir.File("kept.note");
    RunResult exported = Auditor(
        port, {"audit", "export", "-o", export1, "--save-checkpoint", kept});
    INFO(exported.output);
    REQUIRE(exported.exit_code == 0);
    const std::string note = ReadFile(kept);
    const uint64_t kept_size = NoteSize(note);
    REQUIRE(kept_size > 0);
    CHECK_THAT(exported.output,
               Catch::StartsWith(absl::StrCat(
                   "exported ", kept_size, " records [0, ", kept_size,
                   ") with checkpoint size ", kept_size, " to ", export1)));

    RunResult verified = RunBinary(
        CliBinary(),
        {"audit", "verify", export1, "--node-cert", node_cert, "--ca", ca});
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    CHECK_THAT(verified.output, Catch::StartsWith("OK:") &&
                                    Catch::Contains("trusted node certificate "
                                                    "spiffe://ibsm/CIV") &&
                                    Catch::Contains("revocation not checked"));

    // With the CRLs of the whole chain, revocation is checked too.
    RunResult with_crls = RunBinary(
        CliBinary(), {"audit", "verify", export1, "--node-cert", node_cert,
                      "--ca", ca, "--crl-dir", PkiDir() + "/crl"});
    INFO(with_crls.output);
    CHECK(with_crls.exit_code == 0);
    CHECK_THAT(with_crls.output,
               Catch::Contains("revocation checked for the whole chain"));

    // The stored log, exported as digests, matches the trail.
    const std::string alerts = dir.File("alerts.bin");
    RunResult exported_alerts =
        Auditor(port, {"audit", "export-alerts", "-o", alerts});
    INFO(exported_alerts.output);
    REQUIRE(exported_alerts.exit_code == 0);
    CHECK_THAT(exported_alerts.output,
               Catch::StartsWith("exported the digests of sequences [1, 3]"));
    RunResult alerts_ok =
        RunBinary(CliBinary(), {"audit", "verify", export1, "--node-cert",
                                node_cert, "--ca", ca, "--alerts", alerts});
    INFO(alerts_ok.output);
    CHECK(alerts_ok.exit_code == 0);
    CHECK_THAT(alerts_ok.output,
               Catch::Contains("stored alerts match their publish records") &&
                   !Catch::Contains("TAMPERED"));

    // Without the root there is nothing to trust the certificate by.
    RunResult no_root = RunBinary(
        CliBinary(), {"audit", "verify", export1, "--node-cert", node_cert});
    INFO(no_root.output);
    CHECK(no_root.exit_code == 2);
    CHECK_THAT(no_root.output, Catch::StartsWith("ibsm: missing --ca"));
    CHECK_THAT(no_root.output, !Catch::Contains("OK"));

    // More activity, then a later checkpoint.
    REQUIRE(RawPublish(police, {MakeAlert("cli-aud-4"), MakeAlert("cli-aud-5")})
                .ok());
    WaitForCheckpoint(port, kept_size);

    const std::string export2 = dir.File("export2.bin");
    RunResult again = Auditor(
        port, {"audit", "export", "--kept-checkpoint", kept, "-o", export2});
    INFO(again.output);
    REQUIRE(again.exit_code == 0);
    CHECK_THAT(again.output, Catch::Contains("exported "));

    RunResult consistent = RunBinary(
        CliBinary(), {"audit", "verify", export2, "--node-cert", node_cert,
                      "--ca", ca, "--kept-checkpoint", kept});
    INFO(consistent.output);
    CHECK(consistent.exit_code == 0);
    CHECK_THAT(consistent.output,
               Catch::StartsWith("OK:") &&
                   Catch::Contains("consistent with the checkpoint you kept"));

    // A partial export from a later index verifies too.
    const std::string export3 = dir.File("export3.bin");
    RunResult partial =
        Auditor(port, {"audit", "export", "--from", "2", "--kept-checkpoint",
                       kept, "-o", export3});
    INFO(partial.output);
    REQUIRE(partial.exit_code == 0);
    CHECK_THAT(partial.output, Catch::Contains(" records [2, "));
    RunResult partial_ok = RunBinary(
        CliBinary(), {"audit", "verify", export3, "--node-cert", node_cert,
                      "--ca", ca, "--kept-checkpoint", kept});
    INFO(partial_ok.output);
    CHECK(partial_ok.exit_code == 0);
  }

  SECTION("proofs and checkpoints") {
    RunResult proof = Auditor(port, {"audit", "proof", "--index", "0"});
    INFO(proof.output);
    CHECK(proof.exit_code == 0);
    // Without --node-cert the root is unsigned: never VERIFIED.
    CHECK_THAT(proof.output,
               Catch::Contains("audit path") &&
                   Catch::Contains("UNVERIFIED: the audit path of record 0") &&
                   Catch::Contains("signature was not checked"));
    for (const std::string& line : Lines(proof.output)) {
      CHECK_THAT(line, !Catch::StartsWith("VERIFIED"));
    }

    RunResult signed_proof = Auditor(
        port, {"audit", "proof", "--index", "1", "--node-cert", node_cert});
    INFO(signed_proof.output);
    CHECK(signed_proof.exit_code == 0);
    CHECK_THAT(signed_proof.output,
               Catch::Contains("\nVERIFIED: record 1") &&
                   Catch::Contains("checkpoint signature checked") &&
                   Catch::Contains("trusted node certificate "
                                   "spiffe://ibsm/CIV"));

    RunResult json_proof =
        Auditor(port, {"--json", "audit", "proof", "--index", "0"});
    INFO(json_proof.output);
    CHECK(json_proof.exit_code == 0);
    CHECK(Lines(json_proof.output).size() == 1);
    CHECK_THAT(json_proof.output, Catch::Contains("\"result\":\"UNVERIFIED\""));

    const uint64_t size = NoteSize(first_note);
    RunResult consistency = Auditor(
        port, {"audit", "proof", "--consistency", "1", absl::StrCat(size)});
    INFO(consistency.output);
    CHECK(consistency.exit_code == 0);
    CHECK_THAT(consistency.output,
               Catch::StartsWith(absl::StrCat(
                   "consistency proof from tree size 1 to tree size ", size)));

    const std::string note_file = dir.File("latest.note");
    RunResult saved = Auditor(port, {"audit", "checkpoint", "-o", note_file});
    INFO(saved.output);
    CHECK(saved.exit_code == 0);
    CHECK_THAT(ReadFile(note_file), Catch::StartsWith("ibsm/CIV\n"));

    // With --node-cert the note's signature is checked: by the node's
    // certificate, trusted through the root and the CRLs.
    const std::string verified_file = dir.File("verified.note");
    RunResult verified =
        Auditor(port, {"audit", "checkpoint", "--node-cert", node_cert,
                       "--crl-dir", PkiDir() + "/crl", "-o", verified_file});
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    CHECK_THAT(verified.output,
               Catch::Contains("\nVERIFIED: checkpoint of ") &&
                   Catch::Contains(" records of ibsm/CIV, signed at ") &&
                   Catch::Contains("trusted node certificate "
                                   "spiffe://ibsm/CIV") &&
                   Catch::Contains("revocation checked"));
    CHECK_THAT(ReadFile(verified_file), Catch::StartsWith("ibsm/CIV\n"));
    RunResult json = Auditor(
        port, {"--json", "audit", "checkpoint", "--node-cert", node_cert});
    INFO(json.output);
    CHECK(json.exit_code == 0);
    CHECK_THAT(json.output, Catch::Contains("\"verified\":true"));

    // Another node's certificate: FAILED, exit 1, and nothing is written.
    const std::string refused_file = dir.File("refused.note");
    RunResult other =
        Auditor(port, {"audit", "checkpoint", "--node-cert",
                       PkiDir() + "/node-MLI-chain.pem", "-o", refused_file});
    INFO(other.output);
    CHECK(other.exit_code == 1);
    CHECK_THAT(other.output,
               Catch::Contains("FAILED: the checkpoint does not verify with "
                               "--node-cert"));
    CHECK_FALSE(std::filesystem::exists(refused_file));
  }

  SECTION("usage errors exit 2") {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"audit", "query", "--action", "explode"},
          std::vector<std::string>{"audit", "query", "--from-time",
                                   "yesterday"},
          std::vector<std::string>{"audit", "query", "--decision", "maybe"},
          std::vector<std::string>{"audit", "export"},
          std::vector<std::string>{"audit", "export", "-o", dir.File("x"),
                                   "--kept-checkpoint", dir.File("missing")},
          std::vector<std::string>{"audit", "proof"},
          std::vector<std::string>{"audit", "proof", "--index", "0",
                                   "--consistency", "1", "2"},
          std::vector<std::string>{"audit", "proof", "--consistency", "1", "2",
                                   "3"},
          std::vector<std::string>{"audit", "checkpoint", "--crl-dir",
                                   PkiDir() + "/crl"},
          std::vector<std::string>{"audit", "checkpoint", "--node-cert",
                                   dir.File("missing.pem")}}) {
      RunResult r = Auditor(port, args);
      INFO(absl::StrJoin(args, " ") << "\n" << r.output);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.output, Catch::StartsWith("ibsm: "));
    }
  }
}

// Runs openssl with `args`; fails the test if it fails.
void OpenSsl(std::vector<std::string> args) {
  RunResult r = RunBinary("/usr/bin/openssl", args);
  INFO(absl::StrJoin(args, " ") << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
}

// What an operator who rewrote history would do: re-sign the export's
// checkpoint with a key of their own. The records stay as they are, so only
// the trust in the signing certificate can tell.
void Resign(const std::string& in, const std::string& out,
            const std::string& key_file) {
  v1::AuditExport exported;
  REQUIRE(exported.ParseFromString(ReadFile(in)));
  auto real = ibsm::VerifyingKey::FromCertificatePem(
      ReadFile(PkiDir() + "/node-CIV.pem"));
  REQUIRE(real.ok());
  auto cp =
      ibsm::VerifyCheckpoint(exported.checkpoint().note(), "ibsm/CIV", *real);
  REQUIRE(cp.ok());
  auto key = ibsm::SigningKey::FromPem(ReadFile(key_file));
  REQUIRE(key.ok());
  // Signed now, when the forger's certificate is valid.
  cp->time_unix = absl::ToUnixSeconds(absl::Now()) + 1;
  auto note = ibsm::SignCheckpoint(*cp, *key);
  REQUIRE(note.ok());
  exported.mutable_checkpoint()->set_note(*note);
  exported.mutable_checkpoint()->mutable_time()->set_seconds(cp->time_unix);
  std::ofstream(out, std::ios::binary) << exported.SerializeAsString();
}

TEST_CASE(
    "ibsm audit verify trusts only a node certificate that chains to the "
    "root, is bound to its node's CA and has the CRLs of its whole chain") {
  TempDir dir;
  internal::v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(5);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  BrokerProcess broker(config);
  const int port = broker.port();
  const std::string ca = PkiDir() + "/ca.pem";
  REQUIRE(RawPublish(Channel(port, Tls("agency-CIV_police")),
                     {MakeAlert("trust-1"), MakeAlert("trust-2")})
              .ok());
  WaitForCheckpoint(port, 3);
  const std::string genuine = dir.File("genuine.bin");
  REQUIRE(Auditor(port, {"audit", "export", "-o", genuine}).exit_code == 0);

  // A self-made certificate claiming spiffe://ibsm/CIV.
  OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:P-256", "-noenc", "-keyout", dir.File("self.key"),
           "-out", dir.File("self.pem"), "-subj", "/O=IBSM/OU=CIV/CN=CIV",
           "-addext", "subjectAltName=URI:spiffe://ibsm/CIV", "-days", "2"});
  // A certificate for node CIV issued by the sibling MLI intermediate.
  IssueCertificate("MLI-ca", "spiffe://ibsm/CIV", dir.File("sib"));

  struct Case {
    const char* name;
    std::string key;
    std::string cert;
    const char* reason;
  };
  for (const Case& c : {Case{"a self-made certificate", dir.File("self.key"),
                             dir.File("self.pem"), "not trusted"},
                        Case{"another node's intermediate", dir.File("sib.key"),
                             dir.File("sib-chain.pem"),
                             "is not the intermediate CA of node CIV"}}) {
    INFO(c.name);
    const std::string forged = dir.File("forged.bin");
    Resign(genuine, forged, c.key);
    RunResult r = RunBinary(CliBinary(), {"audit", "verify", forged,
                                          "--node-cert", c.cert, "--ca", ca});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(c.reason));
    CHECK_THAT(r.output, !Catch::Contains("OK:"));
  }

  // A CA of the chain without a CRL in --crl-dir: refused, not skipped.
  std::filesystem::create_directories(dir.File("crl"));
  std::filesystem::copy_file(PkiDir() + "/crl/CIV-ca.crl.pem",
                             dir.File("crl/CIV-ca.crl.pem"));
  RunResult missing =
      RunBinary(CliBinary(), {"audit", "verify", genuine, "--node-cert",
                              PkiDir() + "/node-CIV-chain.pem", "--ca", ca,
                              "--crl-dir", dir.File("crl")});
  INFO(missing.output);
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output, Catch::Contains("CRL"));
  CHECK_THAT(missing.output, !Catch::Contains("OK:"));
}

}  // namespace
}  // namespace ibsm::testing
