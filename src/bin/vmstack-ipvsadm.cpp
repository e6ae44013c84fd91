// vmstack-ipvsadm: ipvsadm's command line, talking to vmstack-lbd over its
// control socket instead of to the kernel. ipvsadm's own option syntax
// (clustered short options, -p's optional value, --set's three positional
// values) is parsed by lb/ipvsadm.h, not by a generic flag library.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "lb/control.h"
#include "lb/ipvsadm.h"

using namespace vmstack::lb;

int main(int argc, char** argv) {
  std::string prog = argc > 0 ? argv[0] : "vmstack-ipvsadm";
  if (auto slash = prog.rfind('/'); slash != std::string::npos) prog = prog.substr(slash + 1);
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);

  ParseResult p = parse_ipvsadm_args(args);
  if (!p.cmd) {
    if (!p.error.empty()) std::cerr << p.error << "\n";
    if (p.exit_code == 255 && p.error.empty())
      std::cerr << "Try `" << prog << " -h' or '" << prog << " --help' for more information.\n";
    return p.exit_code;
  }
  const Command& c = *p.cmd;
  if (c.op == Op::Help) {
    std::cout << usage_text(prog);
    return 0;
  }
  if (c.op == Op::Version) {
    std::cout << version_text();
    return 0;
  }

  nlohmann::json req;
  if (c.op == Op::Restore) {
    // Parsed here (names resolved, syntax checked) so a bad file changes
    // nothing; the daemon applies the batch all or nothing.
    nlohmann::json batch = nlohmann::json::array();
    std::vector<int> lines;
    int n = 0;
    for (std::string line; std::getline(std::cin, line);) {
      ++n;
      ParseResult lp = parse_save_line(line);
      if (!lp.cmd) {
        std::cerr << "line " << n << ": " << lp.error << "\n";
        return 2;
      }
      if (lp.cmd->op == Op::None) continue;
      batch.push_back(command_to_json(*lp.cmd));
      lines.push_back(n);
    }
    req = {{"batch", batch}, {"lines", lines}};
  } else {
    req = {{"cmd", command_to_json(c)}};
  }

  const std::string socket = p.socket_path.empty() ? default_control_socket() : p.socket_path;
  ControlReply r;
  try {
    r = control_call(socket, req);
  } catch (const std::exception& e) {
    std::cerr << "Can't initialize ipvs: " << e.what() << "\n"
              << "Is vmstack-lbd running? (control socket " << socket
              << "; set --socket or VMSTACK_LB_SOCKET)\n";
    return 2;
  }
  std::fputs(r.out.c_str(), stdout);
  std::fflush(stdout);
  std::fputs(r.err.c_str(), stderr);
  return r.rc;
}
