// xe's top level: parse, pick the command, log in, run, print errors the
// way xe does, log out.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/complete.h"
#include "cli/thin_client.h"
#include "cli/thin_protocol.h"
#include "cli/xe.h"
#include "cli/xe_errors.h"
#include "core/error.h"

namespace vmstack::cli {

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The transport's failures in xe's words ("Error: Connection refused
// (calling connect )" is what xe prints when nothing listens).
std::string transport_error_text(const ApiError& e, const ConnOptions& conn) {
  std::string detail = e.params().empty() ? "" : e.params().front();
  if (e.code() == api::wire_errors::CONNECTION_FAILED) {
    if (contains(detail, " lost: ")) return "Lost connection to the server.";
    if (contains(detail, "cannot resolve")) return "Host '" + conn.server + "' not found.";
    for (int err : {ECONNREFUSED, ENOENT, EACCES, EPERM, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ECONNRESET,
                    ENAMETOOLONG}) {
      std::string text = std::strerror(err);
      if (contains(detail, text)) return "Error: " + text + " (calling connect )";
    }
    return "Error: " + detail;
  }
  if (contains(detail, "connection closed") || contains(detail, "end of stream") || contains(detail, "reset"))
    return "Lost connection to the server.";
  return "Error: " + detail;
}

bool is_transport(const ApiError& e) {
  return e.code() == api::wire_errors::CONNECTION_FAILED || e.code() == api::wire_errors::PROTOCOL_ERROR;
}

// Who runs the command: xe itself (its own calls over `injected` or a
// connection it opens; `thin` sends it to the daemon's /cli when it can), or
// the daemon (`in_daemon`: the command line came over /cli and `injected`
// calls the dispatcher directly).
struct Mode {
  bool thin = false;
  bool in_daemon = false;
};

int run_impl(const std::vector<std::string>& argv, const Environment* env, Rpc* injected,
             const api::Endpoint* injected_ep, Io& io, Mode mode) {
  Args a;
  try {
    if (!mode.in_daemon && !argv.empty() && argv.front() == "--complete") {
      std::vector<std::string> words(argv.begin() + 1, argv.end());
      std::unique_ptr<ClientRpc> rpc;
      std::unique_ptr<Session> session;
      auto connect = [&](const ConnOptions& conn) -> Session* {
        try {
          Rpc* r = injected;
          if (!r) {
            rpc = std::make_unique<ClientRpc>(endpoint_for(conn, env ? env->socket : nullptr));
            r = rpc.get();
          }
          session = std::make_unique<Session>(*r, credentials_for(conn));
          return session.get();
        } catch (const std::exception&) {
          return nullptr;
        }
      };
      for (const auto& c : complete(words, connect)) io.out << c << "\n";
      return 0;
    }

    a = parse_args(argv);
    if (env && env->home) {
      std::ifstream rc(std::string(env->home) + "/.xe");
      if (rc) {
        std::stringstream text;
        text << rc.rdbuf();
        ConnOptions from_cmdline = a.conn;
        apply_rc_file(text.str(), a.conn, from_cmdline);
      }
    }
    if (mode.in_daemon) {
      // The client's business: its files, its terminal, where to connect.
      if (!a.conn.password_file.empty()) throw CliError("Error: xe reads password files on the client");
      if (!a.conn.server.empty() || a.conn.port) throw CliError("Error: server and port are chosen by the client");
      if (thin::client_only(a.command))
        throw CliError("Error: '" + a.command + "' runs in xe on the client, not in the daemon");
    }
    if (a.command.empty() || a.has("help") || a.command == "-help") {
      io.err << usage_text();
      return 0;
    }
    if (mode.thin && !thin::runs_in_client(a.command)) {
      // One request to the daemon, which runs the command (xapi's thin
      // CLI); nullopt: a daemon without /cli, so run it here.
      api::Endpoint ep = endpoint_for(a.conn, env ? env->socket : nullptr);
      if (auto rc = run_thin(ep, thin_command_line(a, credentials_for(a.conn)), io)) return *rc;
    }
    const Command* cmd = command_table().find(a.command);
    if (!cmd) throw unknown_command(a.command);
    for (const auto& r : cmd->reqd)
      if (!a.has(r)) throw missing_param(r);
    Printer printer(io.out, a.flag("minimal"));

    if (cmd->flags & kNoSession) {
      Context ctx(a, printer, io, nullptr, nullptr);
      int rc = cmd->run(ctx);
      if (rc == 0) printer.flush();
      return rc;
    }

    api::Endpoint ep = injected_ep ? *injected_ep : endpoint_for(a.conn, env ? env->socket : nullptr);
    std::unique_ptr<ClientRpc> own;
    Rpc* rpc = injected;
    if (!rpc) {
      own = std::make_unique<ClientRpc>(ep);
      rpc = own.get();
    }
    Credentials creds = credentials_for(a.conn);
    std::unique_ptr<Session> session;
    try {
      session = std::make_unique<Session>(*rpc, creds);
    } catch (const ApiError& e) {
      if (is_transport(e)) throw;
      io.err << format_api_error(e.description(), nullptr, creds.explicit_username) << "\n";
      return 1;
    }
    Context ctx(a, printer, io, session.get(), injected && !injected_ep ? nullptr : &ep);
    try {
      int rc = cmd->run(ctx);
      if (rc == 0) printer.flush();
      return rc;
    } catch (const ApiError& e) {
      if (is_transport(e)) throw;
      io.err << api_error_text(e, ctx.objects()) << "\n";
      return 1;
    }
  } catch (const CliError& e) {
    io.err << e.text() << "\n";
    return 1;
  } catch (const MultipleFailure& m) {
    // xe prints these on stdout.
    for (const auto& [uuid, msg] : m.failures) io.out << "operation failed on " << uuid << ": " << msg << "\n";
    return 1;
  } catch (const ApiError& e) {
    if (is_transport(e)) {
      io.err << transport_error_text(e, a.conn) << "\n";
      return 1;
    }
    io.err << format_api_error(e.description(), nullptr) << "\n";
    return 1;
  } catch (const std::exception& e) {
    io.err << "Unhandled exception\n" << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int run(const std::vector<std::string>& argv, const Environment& env, Io& io) {
  return run_impl(argv, &env, nullptr, nullptr, io, {true, false});
}

int run_with(const std::vector<std::string>& argv, Rpc& rpc, const api::Endpoint* ep, Io& io) {
  return run_impl(argv, nullptr, &rpc, ep, io, {false, false});
}

int run_in_daemon(const std::vector<std::string>& argv, Rpc& rpc, Io& io) {
  return run_impl(argv, nullptr, &rpc, nullptr, io, {false, true});
}

}  // namespace vmstack::cli
