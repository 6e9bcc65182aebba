// `ibsm audit ...` as an auditor uses it against a real ibsm-broker: query
// (table and --json), refusal of a non-auditor, export and offline verify
// (with a kept checkpoint across two exports), proofs and checkpoints.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
  for (int i = 0; i < 100; ++i) {
    r = Auditor(port, {"audit", "checkpoint"});
    if (r.exit_code == 0 && NoteSize(r.output) > above) return r.output;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(r.output);
  FAIL("no checkpoint of more than " << above << " records");
  return "";
}

TEST_CASE(
    "ibsm audit: query, export, verify, proof and checkpoint as an "
    "auditor; a non-auditor is refused") {
  TempDir dir;
  v1::NodeConfig config = NodeConfigFor(dir.File("data"));
  config.set_policy_file(SourceDir() + "/policies/ibsm-west-africa.textproto");
  config.mutable_audit()->set_checkpoint_every_records(5);
  config.mutable_audit()->set_checkpoint_every_seconds(1);
  BrokerProcess broker(config);
  const int port = broker.port();
  const std::string node_cert = PkiDir() + "/node-CIV.pem";

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
        CliBinary(), {"audit", "verify", export1, "--node-cert", node_cert});
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    CHECK_THAT(verified.output, Catch::StartsWith("OK:"));

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

    RunResult consistent =
        RunBinary(CliBinary(), {"audit", "verify", export2, "--node-cert",
                                node_cert, "--kept-checkpoint", kept});
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
    RunResult partial_ok =
        RunBinary(CliBinary(), {"audit", "verify", export3, "--node-cert",
                                node_cert, "--kept-checkpoint", kept});
    INFO(partial_ok.output);
    CHECK(partial_ok.exit_code == 0);
  }

  SECTION("proofs and checkpoints") {
    RunResult proof = Auditor(port, {"audit", "proof", "--index", "0"});
    INFO(proof.output);
    CHECK(proof.exit_code == 0);
    CHECK_THAT(proof.output, Catch::Contains("audit path") &&
                                 Catch::Contains("VERIFIED: record 0"));

    RunResult signed_proof = Auditor(
        port, {"audit", "proof", "--index", "1", "--node-cert", node_cert});
    INFO(signed_proof.output);
    CHECK(signed_proof.exit_code == 0);
    CHECK_THAT(signed_proof.output,
               Catch::Contains("VERIFIED") &&
                   Catch::Contains("checkpoint signature checked"));

    RunResult json_proof =
        Auditor(port, {"--json", "audit", "proof", "--index", "0"});
    INFO(json_proof.output);
    CHECK(json_proof.exit_code == 0);
    CHECK(Lines(json_proof.output).size() == 1);
    CHECK_THAT(json_proof.output, Catch::Contains("\"result\":\"VERIFIED\""));

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
                                   "3"}}) {
      RunResult r = Auditor(port, args);
      INFO(absl::StrJoin(args, " ") << "\n" << r.output);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.output, Catch::StartsWith("ibsm: "));
    }
  }
}

}  // namespace
}  // namespace ibsm::testing
