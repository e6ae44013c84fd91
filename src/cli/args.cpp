#include "cli/args.h"
#include "core/strings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

#include "cli/xe_errors.h"

namespace vmstack::cli {

namespace {

bool parse_bool_text(std::string_view v, bool& out) {
  auto l = lower(v);
  if (l == "true" || l == "yes" || l == "on" || l == "1") return out = true, true;
  if (l == "false" || l == "no" || l == "off" || l == "0") return out = false, true;
  return false;
}

unsigned short parse_port(const std::string& v) {
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
  if (ec != std::errc() || ptr != v.data() + v.size() || p == 0 || p > 65535)
    throw syntax_error("invalid port: " + v);
  return static_cast<unsigned short>(p);
}

// Keys that configure the connection rather than the command (newcli accepts
// them as key=value too).
bool apply_conn_key(const std::string& key, const std::string& value, ConnOptions& c) {
  if (key == "server") c.server = value;
  else if (key == "port") c.port = parse_port(value);
  else if (key == "username") c.username = value;
  else if (key == "password") c.password = value, c.have_password = true;
  else if (key == "passwordfile") c.password_file = value;
  else if (key == "nossl") {
    bool b = true;
    parse_bool_text(value, b);
    c.nossl = b;
  } else
    return false;
  return true;
}

}  // namespace

bool Args::has(std::string_view key) const {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == key; });
}

std::optional<std::string> Args::get(std::string_view key) const {
  for (auto it = params.rbegin(); it != params.rend(); ++it)
    if (it->first == key) return it->second;
  return std::nullopt;
}

std::string Args::get_or(std::string_view key, std::string def) const {
  auto v = get(key);
  return v ? *v : std::move(def);
}

bool Args::flag(std::string_view key) const {
  auto v = get(key);
  if (!v) return false;
  bool b = false;
  if (!parse_bool_text(*v, b)) throw failure("Failed to parse parameter '" + std::string(key) + "': expecting a boolean (true or false)");
  return b;
}

Args parse_args(const std::vector<std::string>& argv) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    auto need_value = [&]() -> const std::string& {
      if (i + 1 >= argv.size()) throw syntax_error("option " + arg + " needs a value");
      return argv[++i];
    };
    // -h is xe's old spelling of -s.
    if (arg == "-s" || arg == "-h") { a.conn.server = need_value(); continue; }
    if (arg == "-p") { a.conn.port = parse_port(need_value()); continue; }
    if (arg == "-u") { a.conn.username = need_value(); continue; }
    if (arg == "-pw") { a.conn.password = need_value(); a.conn.have_password = true; continue; }
    if (arg == "-pwf") { a.conn.password_file = need_value(); continue; }
    if (arg == "--nossl") { a.conn.nossl = true; continue; }
    if (arg == "--debug" || arg == "--debug-on-fail") continue;  // accepted, no effect
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      // --minimal, --force, --multiple, --all ... ; "--key=value" is tolerated too.
      auto body = arg.substr(2);
      auto eq = body.find('=');
      if (eq == std::string::npos) a.params.emplace_back(body, "true");
      else a.params.emplace_back(body.substr(0, eq), body.substr(eq + 1));
      continue;
    }
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      if (a.command.empty()) { a.command = arg; continue; }
      // `xe help vm-start`: the help command takes a bare word.
      if (a.command == "help") { a.params.emplace_back("cmd", arg); continue; }
      throw syntax_error(arg);
    }
    if (eq == 0) throw syntax_error(arg);
    std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (apply_conn_key(key, value, a.conn)) continue;
    a.params.emplace_back(std::move(key), std::move(value));
  }
  return a;
}

void apply_rc_file(const std::string& text, ConnOptions& conn, const ConnOptions& cmd) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    // The command line wins over ~/.xe.
    if (key == "server" && !cmd.server.empty()) continue;
    if (key == "port" && cmd.port) continue;
    if (key == "username" && !cmd.username.empty()) continue;
    if (key == "password" && (cmd.have_password || !cmd.password_file.empty())) continue;
    try {
      apply_conn_key(key, value, conn);
    } catch (const CliError&) {
      // a bad port in ~/.xe is ignored, as xe does with unknown keys
    }
  }
}

}  // namespace vmstack::cli
