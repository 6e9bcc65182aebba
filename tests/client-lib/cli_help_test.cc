// Every `ibsm` command answers --help (issue #13 item 7): exit 0, its
// synopsis, and each of its flags and the common ones documented.
#include <catch2/catch.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "commands.h"

namespace ibsm::cli {
namespace {

TEST_CASE(
    "every ibsm command has --help naming its synopsis and all its "
    "flags, and 'ibsm --help' lists every command") {
  auto no_env = [](const char*) -> const char* { return nullptr; };
  std::istringstream in;
  std::ostringstream top_out, top_err;
  Io top{in, top_out, top_err};
  REQUIRE(RunCli({"--help"}, top, no_env) == kExitOk);
  for (const Command& command : Commands()) {
    const std::string path = absl::StrJoin(command.path, " ");
    INFO("ibsm " << path);
    CHECK_THAT(top_out.str(), Catch::Contains(path));
    std::vector<std::string> args = command.path;
    args.push_back("--help");
    std::ostringstream out, err;
    Io io{in, out, err};
    CHECK(RunCli(args, io, no_env) == kExitOk);
    const std::string help = out.str() + err.str();
    CHECK_THAT(help, Catch::Contains(absl::StrCat("ibsm ", path)));
    for (const FlagSpec& flag : command.flags) {
      CHECK_THAT(help, Catch::Contains(absl::StrCat("--", flag.name)));
    }
    CHECK_THAT(help, Catch::Contains("--json"));
  }
}

}  // namespace
}  // namespace ibsm::cli
