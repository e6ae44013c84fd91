#include "lb/ldirectord_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/strings.h"

namespace vmstack::lb::ha {

std::string HostPort::str() const {
  if (v6) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

std::optional<HostPort> parse_hostport(const std::string& text, bool allow_no_port) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return std::nullopt;
      port = text.substr(close + 2);
      if (port.empty()) return std::nullopt;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string::npos && text.find(':') != colon) {
      // Bare IPv6 without brackets: only valid with no port.
      host = text;
    } else if (colon != std::string::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    } else {
      host = text;
    }
  }
  HostPort ep;
  char buf[INET6_ADDRSTRLEN];
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    inet_ntop(AF_INET, &a4, buf, sizeof buf);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    ep.v6 = true;
  } else {
    return std::nullopt;
  }
  ep.addr = buf;
  if (port.empty()) {
    if (!allow_no_port) return std::nullopt;
    ep.port = 0;
    return ep;
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return std::nullopt;
  unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return std::nullopt;
  ep.port = static_cast<uint16_t>(p);
  return ep;
}

const char* to_string(CheckType c) {
  switch (c) {
    case CheckType::Connect: return "connect";
    case CheckType::Negotiate: return "negotiate";
    case CheckType::Off: return "off";
    case CheckType::On: return "on";
  }
  return "?";
}
const char* to_string(ServiceKind s) {
  switch (s) {
    case ServiceKind::None: return "none";
    case ServiceKind::Http: return "http";
    case ServiceKind::Tcp: return "tcp";
  }
  return "?";
}
const char* to_string(Protocol p) { return p == Protocol::Tcp ? "tcp" : "udp"; }

std::string VirtualService::key() const { return std::string(to_string(protocol)) + " " + vip.str(); }

ConfigError::ConfigError(std::string source, int line, const std::string& msg)
    : std::runtime_error(source + ":" + std::to_string(line) + ": " + msg), line_(line), msg_(msg) {}

namespace {

// The schedulers vmstack-lb implements (LVS's mh/fo/ovf are not among them).
const std::set<std::string> kSchedulers = {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq"};
// Keys ldirectord knows that vmstack-lb accepts and ignores.
const std::set<std::string> kIgnored = {
    "emailalert", "emailalertfreq", "emailalertstatus", "emailalertfrom", "callback",
    "execute",    "fork",           "supervised",       "smtp",           "maintenancedir",
    "cleanstop",  "readdquiescent", "checkcount",       "fallbackcommand", "monitorfile",
    "netmask",    "login",          "passwd",           "database",       "secret",
    "cipher",     "hostname"};

// Per-virtual values that may be unset until global defaults are applied.
struct PendingVirtual {
  VirtualService vs;
  std::optional<double> checkinterval, checktimeout, negotiatetimeout;
  std::optional<bool> quiescent;
  std::optional<unsigned> failurecount;
  bool service_set = false;
  bool checktype_set = false;
};

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  LdirectordConfig run(const std::string& text) {
    std::istringstream in(text);
    std::string raw;
    int lineno = 0;
    while (std::getline(in, raw)) {
      ++lineno;
      line_ = lineno;
      if (!raw.empty() && raw.back() == '\r') raw.pop_back();
      std::string line = strip_comment(raw);
      if (trim(line).empty()) continue;
      bool indented = line[0] == ' ' || line[0] == '\t';
      auto eq = line.find('=');
      if (eq == std::string::npos) fail("expected key=value, got '" + trim(line) + "'");
      std::string key = lower(trim(line.substr(0, eq)));
      std::string value = trim(line.substr(eq + 1));
      if (key.empty()) fail("missing key before '='");
      if (key == "virtual") {
        if (indented) fail("virtual= must not be indented");
        start_virtual(value);
      } else if (indented) {
        if (!cur_) fail("indented key '" + key + "' outside a virtual= block");
        virtual_key(key, value);
      } else {
        finish_virtual();
        global_key(key, value);
      }
    }
    finish_virtual();
    resolve();
    return std::move(cfg_);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) { throw ConfigError(source_, line_, msg); }
  void warn(const std::string& msg) {
    cfg_.warnings.push_back(source_ + ":" + std::to_string(line_) + ": " + msg);
  }

  // Drops a '#' comment that is not inside double quotes.
  std::string strip_comment(const std::string& s) {
    bool q = false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '"') q = !q;
      else if (s[i] == '#' && !q) return s.substr(0, i);
    }
    return s;
  }

  std::string unquote(const std::string& v) {
    if (!v.empty() && v[0] == '"') {
      if (v.size() < 2 || v.back() != '"') fail("unterminated quoted string: " + v);
      return v.substr(1, v.size() - 2);
    }
    if (v.find('"') != std::string::npos) fail("stray quote in value: " + v);
    return v;
  }

  double seconds(const std::string& key, const std::string& v) {
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(d) || d <= 0 || d > 86400)
      fail(key + ": expected a positive number of seconds, got '" + v + "'");
    return d;
  }

  unsigned uint_value(const std::string& key, const std::string& v, unsigned lo, unsigned hi) {
    if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), ::isdigit))
      fail(key + ": expected an integer, got '" + v + "'");
    unsigned long n = std::stoul(v);
    if (n < lo || n > hi)
      fail(key + ": " + v + " out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<unsigned>(n);
  }

  bool yesno(const std::string& key, const std::string& v) {
    std::string l = lower(unquote(v));
    if (l == "yes") return true;
    if (l == "no") return false;
    fail(key + ": expected yes or no, got '" + v + "'");
  }

  // "ip:port [masq]" for fallback=.
  HostPort fallback_value(const std::string& v, uint16_t default_port) {
    auto toks = tokens(v);
    if (toks.empty()) fail("fallback: missing address");
    if (toks.size() > 2) fail("fallback: expected 'ip:port [masq]', got '" + v + "'");
    auto ep = parse_hostport(toks[0], true);
    if (!ep) fail("fallback: invalid address '" + toks[0] + "' (expected numeric ip[:port])");
    if (toks.size() == 2) check_method(toks[1]);
    if (ep->port == 0) ep->port = default_port;
    return *ep;
  }

  void check_method(const std::string& m) {
    std::string l = lower(m);
    if (l == "masq") return;
    if (l == "gate" || l == "ipip")
      fail("forwarding method '" + m + "' needs kernel IPVS; vmstack-lb's user-space proxy only does masq (NAT)");
    fail("unknown forwarding method '" + m + "' (expected masq)");
  }

  // Splits on whitespace and commas; "quoted strings" are one token (kept
  // with their quotes so callers can tell them apart).
  std::vector<std::string> tokens(const std::string& v) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < v.size()) {
      char c = v[i];
      if (c == ' ' || c == '\t' || c == ',') { ++i; continue; }
      if (c == '"') {
        auto close = v.find('"', i + 1);
        if (close == std::string::npos) fail("unterminated quoted string: " + v.substr(i));
        out.push_back(v.substr(i, close - i + 1));
        i = close + 1;
        continue;
      }
      size_t j = i;
      while (j < v.size() && v[j] != ' ' && v[j] != '\t' && v[j] != ',' && v[j] != '"') ++j;
      out.push_back(v.substr(i, j - i));
      i = j;
    }
    return out;
  }

  void global_key(const std::string& key, const std::string& value) {
    if (key == "checkinterval") g_checkinterval_ = seconds(key, value);
    else if (key == "checktimeout" || key == "connecttimeout") g_checktimeout_ = seconds(key, value);
    else if (key == "negotiatetimeout") g_negotiatetimeout_ = seconds(key, value);
    else if (key == "quiescent") cfg_.quiescent = yesno(key, value);
    else if (key == "autoreload") cfg_.autoreload = yesno(key, value);
    else if (key == "fallback") cfg_.fallback = fallback_value(value, 0);
    else if (key == "logfile") cfg_.logfile = unquote(value);
    else if (key == "failurecount") g_failurecount_ = uint_value(key, value, 1, 1000);
    else if (kIgnored.count(key)) warn("'" + key + "' is not supported by vmstack-lb and is ignored");
    else if (is_virtual_only(key)) fail("'" + key + "' is only valid inside a virtual= block (indent it)");
    else fail("unknown global key '" + key + "'");
  }

  static bool is_virtual_only(const std::string& k) {
    static const std::set<std::string> s = {"real", "service", "scheduler", "protocol", "checktype",
                                            "request", "receive", "persistent", "virtualhost",
                                            "httpmethod", "checkport"};
    return s.count(k) > 0;
  }

  void start_virtual(const std::string& value) {
    finish_virtual();
    auto v = unquote(value);
    auto ep = parse_hostport(v);
    if (!ep) {
      if (!v.empty() && std::all_of(v.begin(), v.end(), ::isdigit))
        fail("virtual=" + v + ": firewall-mark virtual services are not supported");
      fail("virtual: invalid address '" + v + "' (expected numeric ip:port)");
    }
    cur_ = PendingVirtual{};
    cur_->vs.vip = *ep;
    cur_->vs.line = line_;
  }

  void virtual_key(const std::string& key, const std::string& value) {
    auto& p = *cur_;
    auto& vs = p.vs;
    if (key == "real") {
      add_real(value);
    } else if (key == "service") {
      std::string s = lower(unquote(value));
      if (s == "http") vs.service = ServiceKind::Http;
      else if (s == "tcp") vs.service = ServiceKind::Tcp;
      else if (s == "none") vs.service = ServiceKind::None;
      else fail("service: unsupported service '" + s + "' (supported: http, tcp, none)");
      p.service_set = true;
    } else if (key == "scheduler") {
      std::string s = lower(unquote(value));
      if (!kSchedulers.count(s))
        fail("scheduler: unknown scheduler '" + s + "' (supported: rr wrr lc wlc lblc lblcr dh sh sed nq)");
      vs.scheduler = s;
    } else if (key == "protocol") {
      std::string s = lower(unquote(value));
      if (s == "tcp") vs.protocol = Protocol::Tcp;
      else if (s == "udp") vs.protocol = Protocol::Udp;
      else if (s == "fwm") fail("protocol: firewall marks are not supported");
      else fail("protocol: expected tcp or udp, got '" + s + "'");
    } else if (key == "checktype") {
      std::string s = lower(unquote(value));
      if (s == "connect") vs.checktype = CheckType::Connect;
      else if (s == "negotiate") vs.checktype = CheckType::Negotiate;
      else if (s == "off") vs.checktype = CheckType::Off;
      else if (s == "on") vs.checktype = CheckType::On;
      else fail("checktype: unsupported check type '" + s + "' (supported: connect, negotiate, off, on)");
      p.checktype_set = true;
    } else if (key == "request") {
      vs.request = unquote(value);
    } else if (key == "receive") {
      vs.receive = unquote(value);
    } else if (key == "virtualhost") {
      vs.virtualhost = unquote(value);
    } else if (key == "httpmethod") {
      std::string m = upper(unquote(value));
      if (m != "GET" && m != "HEAD") fail("httpmethod: expected GET or HEAD, got '" + m + "'");
      vs.httpmethod = m;
    } else if (key == "persistent") {
      vs.persistent = uint_value(key, unquote(value), 1, 31 * 86400);
    } else if (key == "fallback") {
      vs.fallback = fallback_value(value, vs.vip.port);
    } else if (key == "quiescent") {
      p.quiescent = yesno(key, value);
    } else if (key == "checkinterval") {
      p.checkinterval = seconds(key, value);
    } else if (key == "checktimeout" || key == "connecttimeout") {
      p.checktimeout = seconds(key, value);
    } else if (key == "negotiatetimeout") {
      p.negotiatetimeout = seconds(key, value);
    } else if (key == "checkport") {
      vs.checkport = static_cast<uint16_t>(uint_value(key, unquote(value), 1, 65535));
    } else if (key == "failurecount") {
      p.failurecount = uint_value(key, value, 1, 1000);
    } else if (kIgnored.count(key)) {
      warn("'" + key + "' is not supported by vmstack-lb and is ignored");
    } else if (key == "autoreload" || key == "logfile") {
      fail("'" + key + "' is a global key and must not be indented");
    } else {
      fail("unknown key '" + key + "' in virtual=" + vs.vip.str());
    }
  }

  void add_real(const std::string& value) {
    auto& vs = cur_->vs;
    auto toks = tokens(value);
    if (toks.empty()) fail("real: missing address");
    RealServer r;
    r.line = line_;
    auto ep = parse_hostport(toks[0], true);
    if (!ep) {
      if (toks[0].find("->") != std::string::npos)
        fail("real: address ranges (a->b) are not supported");
      fail("real: invalid address '" + toks[0] + "' (expected numeric ip:port)");
    }
    if (ep->port == 0) ep->port = vs.vip.port;
    r.ep = *ep;
    size_t i = 1;
    if (i < toks.size() && toks[i][0] != '"') {
      check_method(toks[i]);
      ++i;
    }
    if (i < toks.size() && toks[i][0] != '"') {
      r.weight = static_cast<int>(uint_value("real weight", toks[i], 0, 65535));
      ++i;
    }
    if (i < toks.size()) {
      if (toks[i][0] != '"') fail("real: unexpected '" + toks[i] + "'");
      r.request = toks[i].substr(1, toks[i].size() - 2);
      ++i;
      if (i >= toks.size() || toks[i][0] != '"')
        fail("real: a quoted request must be followed by a quoted receive string");
      r.receive = toks[i].substr(1, toks[i].size() - 2);
      ++i;
    }
    if (i < toks.size()) fail("real: unexpected '" + toks[i] + "'");
    for (const auto& o : vs.reals)
      if (o.ep == r.ep) fail("real " + r.ep.str() + " listed twice (first on line " + std::to_string(o.line) + ")");
    if (r.ep.v6 != vs.vip.v6) fail("real " + r.ep.str() + ": address family differs from the virtual's");
    vs.reals.push_back(std::move(r));
  }

  void finish_virtual() {
    if (!cur_) return;
    auto& p = *cur_;
    for (const auto& o : pending_)
      if (o.vs.vip == p.vs.vip && o.vs.protocol == p.vs.protocol) {
        line_ = p.vs.line;
        fail("virtual " + p.vs.key() + " defined twice (first on line " + std::to_string(o.vs.line) + ")");
      }
    if (p.vs.protocol == Protocol::Udp && !p.vs.checkport &&
        (p.vs.checktype == CheckType::Connect || p.vs.checktype == CheckType::Negotiate)) {
      line_ = p.vs.line;
      fail("virtual " + p.vs.key() + ": connect/negotiate checks of a UDP service need checkport= "
           "(a TCP port to probe) or checktype=on|off");
    }
    pending_.push_back(std::move(p));
    cur_.reset();
  }

  void resolve() {
    cfg_.checkinterval = g_checkinterval_.value_or(10);
    cfg_.checktimeout = g_checktimeout_.value_or(5);
    cfg_.negotiatetimeout = g_negotiatetimeout_.value_or(g_checktimeout_.value_or(30));
    for (auto& p : pending_) {
      auto vs = std::move(p.vs);
      vs.checkinterval = p.checkinterval.value_or(cfg_.checkinterval);
      vs.checktimeout = p.checktimeout.value_or(cfg_.checktimeout);
      vs.negotiatetimeout =
          p.negotiatetimeout.value_or(p.checktimeout ? *p.checktimeout : cfg_.negotiatetimeout);
      vs.quiescent = p.quiescent.value_or(cfg_.quiescent);
      vs.failurecount = p.failurecount.value_or(g_failurecount_.value_or(1));
      if (!vs.fallback && cfg_.fallback) {
        HostPort fb = *cfg_.fallback;  // port-less global fallback: the virtual's port
        if (fb.port == 0) fb.port = vs.vip.port;
        vs.fallback = std::move(fb);
      }
      if (vs.fallback && vs.fallback->v6 != vs.vip.v6) {
        line_ = vs.line;
        fail("virtual " + vs.key() + ": fallback " + vs.fallback->str() + " has a different address family");
      }
      // ldirectord: a negotiate check with no service defaults to http.
      if (vs.checktype == CheckType::Negotiate && vs.service == ServiceKind::None)
        vs.service = vs.protocol == Protocol::Tcp ? ServiceKind::Http : ServiceKind::Tcp;
      cfg_.virtuals.push_back(std::move(vs));
    }
  }

  std::string source_;
  int line_ = 0;
  LdirectordConfig cfg_;
  std::optional<PendingVirtual> cur_;
  std::vector<PendingVirtual> pending_;
  std::optional<double> g_checkinterval_, g_checktimeout_, g_negotiatetimeout_;
  std::optional<unsigned> g_failurecount_;
};

}  // namespace

LdirectordConfig parse_ldirectord_config(const std::string& text, const std::string& source) {
  return Parser(source).run(text);
}

LdirectordConfig load_ldirectord_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ConfigError(path, 0, "cannot read file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_ldirectord_config(ss.str(), path);
}

}  // namespace vmstack::lb::ha
