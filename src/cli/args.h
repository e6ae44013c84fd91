// xe's command line: `xe [global options] <command> [key=value ...] [--flag ...]`.
// Hand parsed (xe's key=value / map-key:sub=value syntax does not fit a
// getopt-style parser). Nothing here talks to the daemon.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmstack::cli {

// Where and as whom to connect. Filled from (lowest precedence first) the
// defaults, ~/.xe, then the command line (-s/-p/-u/-pw/-pwf/--nossl or the
// equivalent server=/port=/username=/password=/passwordfile= keys).
struct ConnOptions {
  std::string server;           // empty: the local unix socket
  unsigned short port = 0;      // 0: default (kDefaultTcpPort)
  std::string username;
  std::string password;
  bool have_password = false;
  std::string password_file;    // -pwf
  bool nossl = false;
};

inline constexpr unsigned short kDefaultTcpPort = 8080;
inline constexpr const char* kDefaultSocket = "/var/lib/vmstack/xapi.sock";

// A parsed command line. Params keep their order (param-set applies them in
// order); `--foo` is stored as foo=true, exactly as xe's server does.
struct Args {
  std::string command;  // empty: no command given
  std::vector<std::pair<std::string, std::string>> params;
  ConnOptions conn;

  bool has(std::string_view key) const;
  std::optional<std::string> get(std::string_view key) const;  // last occurrence
  std::string get_or(std::string_view key, std::string def) const;
  // true for "true"/"yes"/"on"/"1" (case-insensitive); throws CliError on junk.
  bool flag(std::string_view key) const;
};

// Throws CliError (see xe_errors.h) with xe's "Syntax error" text for
// malformed input; the global options are consumed into Args::conn.
Args parse_args(const std::vector<std::string>& argv);  // argv without argv[0]

// Applies ~/.xe-style `key=value` lines (server, port, username, password,
// nossl) under anything already set from the command line.
void apply_rc_file(const std::string& text, ConnOptions& conn, const ConnOptions& from_cmdline);

}  // namespace vmstack::cli
