// The whole of `xe` as a function, so tests run it in-process as well as
// through the binary (src/bin/xe.cpp is a two-line main around run()).
#pragma once

#include <string>
#include <vector>

#include "api/client.h"
#include "cli/commands.h"
#include "cli/session.h"

namespace vmstack::cli {

// What xe reads from its environment, passed in explicitly.
struct Environment {
  const char* socket = nullptr;  // $VMSTACK_SOCKET
  const char* home = nullptr;    // $HOME, for ~/.xe
};

// argv without argv[0]. Returns xe's exit code: 0 on success, 1 on any
// error (printed to io.err as xe prints it). The daemon runs the command
// (POST /cli, one round trip) unless it needs the client or no daemon
// (thin::runs_in_client: console, event-wait, vm-uninstall, help) or the
// daemon cannot take it; then xe runs it here, making its own calls.
int run(const std::vector<std::string>& argv, const Environment& env, Io& io);


// The same over a given transport (tests): `ep` is what console connects
// to (may be null), ~/.xe is not read.
int run_with(const std::vector<std::string>& argv, Rpc& rpc, const api::Endpoint* ep, Io& io);

// The daemon's side of /cli: the command line as the client sent it
// (username= and password= among the params; never a password file),
// run against `rpc`, which calls the dispatcher as the connection's peer.
int run_in_daemon(const std::vector<std::string>& argv, Rpc& rpc, Io& io);

// The usage text (`xe` with no command, `xe help`).
std::string usage_text();

}  // namespace vmstack::cli
