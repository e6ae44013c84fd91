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
// (conn options left out), then username= and password= as xapi's xe sends
// them. Empty when a value holds a newline (the protocol cannot carry it:
// the caller runs the command itself).
std::vector<std::string> thin_command_line(const Args& a, const Credentials& creds);

// Runs the command in the daemon. Returns its exit code, or nullopt when
// the daemon has no /cli (nothing ran; the caller runs the command itself)
// or `lines` is empty. Transport failures throw ApiError(CONNECTION_FAILED).
std::optional<int> run_thin(const api::Endpoint& ep, const std::vector<std::string>& lines, Io& io);

}  // namespace vmstack::cli
