// ibsm: the command-line client of IBSM Exchange. See docs/cli.md.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  ibsm::cli::Io io{std::cin, std::cout, std::cerr};
  return ibsm::cli::RunCli(args, io, [](const char* name) {
    return static_cast<const char*>(std::getenv(name));
  });
}
