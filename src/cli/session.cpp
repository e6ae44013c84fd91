#include "cli/session.h"

#include <fstream>

#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

api::Endpoint endpoint_for(const ConnOptions& conn, const char* socket_env) {
  api::Endpoint ep;
  if (conn.server.empty()) {
    ep.unix_path = socket_env && *socket_env ? socket_env : kDefaultSocket;
  } else {
    // xe accepts "[v6addr]" for IPv6 literals.
    std::string host = conn.server;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    ep.host = host;
    ep.port = conn.port ? conn.port : kDefaultTcpPort;
  }
  return ep;
}

Credentials credentials_for(const ConnOptions& conn) {
  Credentials c;
  c.username = conn.username;
  c.password = conn.password;
  if (!conn.password_file.empty()) {
    std::ifstream in(conn.password_file);
    if (!in) throw CliError("Error opening password file '" + conn.password_file + "'");
    std::string user, pass;
    if (!std::getline(in, user) || !std::getline(in, pass))
      throw CliError(
          "Error: password file format: expecting username on the first line, password on the second line");
    c.username = user;
    c.password = pass;
  }
  c.explicit_username = !c.username.empty();
  if (c.username.empty()) c.username = "root";
  return c;
}

Session::Session(Rpc& rpc, const Credentials& creds) : rpc_(rpc) {
  Value r = rpc_.call("session.login_with_password", Array{creds.username, creds.password, "1.0", "xe"});
  ref_ = r.as_string();
}

Session::~Session() {
  try {
    rpc_.call("session.logout", Array{ref_});
  } catch (const std::exception&) {
    // The daemon may be gone (or the command was console and it closed
    // first); the session expires server-side anyway.
  }
}

Value Session::call(const std::string& method, Array params) {
  params.insert(params.begin(), Value(ref_));
  return rpc_.call(method, params);
}

}  // namespace vmstack::cli
