// xe's side of the thin CLI protocol (thin_protocol.h): send the command
// line to the daemon's /cli and do what it says (print, exit, prompt).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/client.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/session.h"

namespace vmstack::cli {

// The lines of a /cli request: the command, its parameters as key=value
// (conn options left out), then username= (empty unless one was given) and
// password= as xapi's xe sends them. Empty when a value holds a newline or
// carriage return (the protocol cannot carry them) or the whole exceeds
// thin::kMaxCommandLine: the caller runs the command itself.
std::vector<std::string> thin_command_line(const Args& a, const Credentials& creds);

// Runs the command in the daemon. Returns its exit code, or nullopt when
// nothing ran and the caller should run the command itself: `lines` is
// empty, or the daemon answered with an HTTP status (no /cli: 404; no room
// now: 503; 413, 408) or closed without a word. Transport failures throw
// ApiError(CONNECTION_FAILED) when connecting, ApiError(PROTOCOL_ERROR)
// after that.
std::optional<int> run_thin(const api::Endpoint& ep, const std::vector<std::string>& lines, Io& io);

}  // namespace vmstack::cli
