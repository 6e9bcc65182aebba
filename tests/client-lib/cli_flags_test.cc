// Tests for the ibsm CLI's pure parts: client-lib/cli/flags.h (flag parsing
// and typed values) and client-lib/cli/alert_format.h (alert from flags).
// Link with client-lib/cli/flags.cc and client-lib/cli/alert_format.cc.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "client-lib/cli/alert_format.h"
#include "client-lib/cli/flags.h"

using ibsm::cli::FlagSpec;
using ibsm::cli::ParsedFlags;
using ibsm::cli::ParseFlags;
using Kind = FlagSpec::Kind;

namespace {

std::vector<FlagSpec> Specs() {
  return {
      FlagSpec{"target", Kind::kValue, "HOST:PORT", "", "IBSM_TARGET"},
      FlagSpec{"json", Kind::kBool, "", "", ""},
      FlagSpec{"topic", Kind::kRepeated, "P", "", ""},
  };
}

}  // namespace

TEST_CASE("ParseFlags accepts --name value, --name=value and booleans") {
  std::vector<std::string> positional;
  auto flags = ParseFlags(
      Specs(), {"--target", "h:1", "--json", "--topic=a.b", "--topic", "c"},
      &positional);
  REQUIRE(flags.ok());
  CHECK(flags->Get("target") == "h:1");
  CHECK(flags->Bool("json"));
  CHECK(flags->GetAll("topic") == std::vector<std::string>{"a.b", "c"});
  CHECK(positional.empty());
}

TEST_CASE("ParseFlags rejects unknown flags, missing values and repeats") {
  std::vector<std::string> positional;
  CHECK(absl::IsInvalidArgument(
      ParseFlags(Specs(), {"--nope"}, &positional).status()));
  CHECK(absl::IsInvalidArgument(
      ParseFlags(Specs(), {"--target"}, &positional).status()));
  CHECK(absl::IsInvalidArgument(
      ParseFlags(Specs(), {"--json=yes"}, &positional).status()));
  CHECK(absl::IsInvalidArgument(
      ParseFlags(Specs(), {"--target", "a", "--target", "b"}, &positional)
          .status()));
  CHECK(absl::IsInvalidArgument(
      ParseFlags(Specs(), {"-x"}, &positional).status()));
}

TEST_CASE("ParseFlags keeps positionals and everything after --") {
  std::vector<std::string> positional;
  auto flags = ParseFlags(Specs(), {"extra", "--", "--json", "-"}, &positional);
  REQUIRE(flags.ok());
  CHECK_FALSE(flags->Bool("json"));
  CHECK(positional == std::vector<std::string>{"extra", "--json", "-"});
}

TEST_CASE("ApplyEnvironment fills only absent flags") {
  std::vector<std::string> positional;
  auto env = [](const char* name) -> const char* {
    return std::string(name) == "IBSM_TARGET" ? "env:1" : nullptr;
  };
  auto from_env = ParseFlags(Specs(), {}, &positional);
  REQUIRE(from_env.ok());
  ibsm::cli::ApplyEnvironment(Specs(), env, &*from_env);
  CHECK(from_env->Get("target") == "env:1");
  auto explicit_flag = ParseFlags(Specs(), {"--target", "cli:2"}, &positional);
  REQUIRE(explicit_flag.ok());
  ibsm::cli::ApplyEnvironment(Specs(), env, &*explicit_flag);
  CHECK(explicit_flag->Get("target") == "cli:2");
}

TEST_CASE("Typed flag values") {
  using namespace ibsm::cli;
  CHECK(*ParseDurationValue("d", "3600s") == absl::Hours(1));
  CHECK(*ParseDurationValue("d", "90") == absl::Seconds(90));
  CHECK(*ParseDurationValue("d", "1h30m") == absl::Minutes(90));
  CHECK_FALSE(ParseDurationValue("d", "soon").ok());
  CHECK_FALSE(ParseDurationValue("d", "-5s").ok());
  CHECK(ParseTimeValue("t", "2025-01-31T12:00:00Z").ok());
  CHECK_FALSE(ParseTimeValue("t", "31/01/2025").ok());
  CHECK(*ParseUintValue("n", "42") == 42);
  CHECK_FALSE(ParseUintValue("n", "-1").ok());
  CHECK_FALSE(ParseUintValue("n", "x").ok());
  CHECK(ParseKeyValue("attr", "plate=AB=12")->second == "AB=12");
  CHECK_FALSE(ParseKeyValue("attr", "=v").ok());
  CHECK(SplitList(" MLI, ECOWAS,,") ==
        std::vector<std::string>{"MLI", "ECOWAS"});
}

TEST_CASE("AlertFromFlags builds the alert the publish flags describe") {
  ParsedFlags f;
  f.Add("id", "a-1");
  f.Add("topic", "border.incident");
  f.Add("classification", "RESTRICTED");
  f.Add("severity", "high");
  f.Add("releasable-to", "MLI,ECOWAS");
  f.Add("orcon", "true");
  f.Add("expires-in", "1h");
  f.Add("attr", "vehicle=pickup");
  f.Add("payload", "hello");
  f.Add("lat", "5.3");
  f.Add("lon", "-4.0");
  absl::Time now = absl::FromUnixSeconds(1700000000);
  auto alert = ibsm::cli::AlertFromFlags(
      f, now, [](const std::string&) -> absl::StatusOr<std::string> {
        return absl::NotFoundError("unused");
      });
  REQUIRE(alert.ok());
  CHECK(alert->severity() == ibsm::v1::SEVERITY_HIGH);
  CHECK(alert->releasable_to_size() == 2);
  CHECK(alert->orcon());
  CHECK(alert->created_at().seconds() == 1700000000);
  CHECK(alert->expires_at().seconds() == 1700003600);
  CHECK(alert->attributes().at("vehicle") == "pickup");
  CHECK(alert->content_type() == "text/plain");
  CHECK(alert->location().longitude() == -4.0);
  CHECK(alert->originator().empty());
}

TEST_CASE("AlertFromFlags refuses missing and conflicting flags") {
  auto reader = [](const std::string&) -> absl::StatusOr<std::string> {
    return std::string("data");
  };
  ParsedFlags base;
  base.Add("id", "a");
  base.Add("topic", "t.x");
  base.Add("classification", "RESTRICTED");
  CHECK_FALSE(ibsm::cli::AlertFromFlags(base, absl::Now(), reader).ok());
  base.Add("severity", "LOW");
  CHECK(ibsm::cli::AlertFromFlags(base, absl::Now(), reader).ok());
  ParsedFlags both = base;
  both.Add("payload", "x");
  both.Add("payload-file", "-");
  CHECK_FALSE(ibsm::cli::AlertFromFlags(both, absl::Now(), reader).ok());
  ParsedFlags lat_only = base;
  lat_only.Add("lat", "1");
  CHECK_FALSE(ibsm::cli::AlertFromFlags(lat_only, absl::Now(), reader).ok());
}

TEST_CASE("AlertFromFlags: --retracts and --updates name ORIGINATOR/ID") {
  auto reader = [](const std::string&) -> absl::StatusOr<std::string> {
    return std::string("data");
  };
  ParsedFlags base;
  base.Add("id", "civ-2");
  base.Add("topic", "border.incident");
  base.Add("classification", "RESTRICTED");
  base.Add("severity", "LOW");
  ParsedFlags retracts = base;
  retracts.Add("retracts", "CIV/police/civ-1");
  auto alert = ibsm::cli::AlertFromFlags(retracts, absl::Now(), reader);
  REQUIRE(alert.ok());
  REQUIRE(alert->references_size() == 1);
  CHECK(alert->references(0).originator() == "CIV/police");
  CHECK(alert->references(0).alert_id() == "civ-1");
  CHECK(alert->references(0).kind() ==
        ibsm::v1::AlertReference::KIND_RETRACTION);
  ParsedFlags updates = base;
  updates.Add("updates", "MLI/customs/a:b.c");
  alert = ibsm::cli::AlertFromFlags(updates, absl::Now(), reader);
  REQUIRE(alert.ok());
  CHECK(alert->references(0).kind() == ibsm::v1::AlertReference::KIND_UPDATE);
  CHECK(alert->references(0).alert_id() == "a:b.c");
  for (const char* bad :
       {"civ-1", "CIV/civ-1", "CIV/police/", "/police/x", "CIV/po lice/x"}) {
    ParsedFlags f = base;
    f.Add("retracts", bad);
    absl::StatusOr<ibsm::v1::Alert> refused =
        ibsm::cli::AlertFromFlags(f, absl::Now(), reader);
    CHECK_FALSE(refused.ok());
    CHECK(absl::StrContains(refused.status().message(), "ORIGINATOR/ID"));
  }
  ParsedFlags both = retracts;
  both.Add("updates", "CIV/police/civ-1");
  CHECK_FALSE(ibsm::cli::AlertFromFlags(both, absl::Now(), reader).ok());
}
