// xe: the XenAPI command-line client of vmstackd (see docs/xe.md).
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "cli/xe.h"

int main(int argc, char** argv) {
  // A daemon that goes away mid-write must give an error, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  std::ios::sync_with_stdio(false);
  vmstack::cli::Environment env{std::getenv("VMSTACK_SOCKET"), std::getenv("HOME")};
  vmstack::cli::Io io{std::cout, std::cerr, std::cin, 0, 1};
  int rc = vmstack::cli::run(std::vector<std::string>(argv + 1, argv + argc), env, io);
  std::cout.flush();
  return rc;
}
