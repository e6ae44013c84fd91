// ipvsadm command-line parsing (same options, clustering and checks as
// ipvsadm 1.31's popt parser) and the JSON form sent to vmstack-lbd.
#include "lb/ipvsadm.h"

#include <arpa/inet.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>

#include "core/strings.h"

namespace vmstack::lb {
namespace {

constexpr uint32_t kMaxTimeout = 86400 * 31;  // ipvsadm's MAX_TIMEOUT (31 days)
constexpr uint32_t kDefaultPersistTimeout = 300;

// Option bits in ipvsadm's order, so the legality table below reads like
// ipvsadm's commands_v_options.
enum OptBit : int {
  kNumeric, kConnection, kService, kScheduler, kPersistent, kNetmask, kServer, kForward,
  kWeight, kUThreshold, kLThreshold, kMcast, kTimeout, kDaemon, kStats, kRate, kThresholds,
  kPersistentConn, kNoSort, kSyncId, kExact, kOps, kNumOpts
};
const char* const kOptNames[kNumOpts] = {
    "numeric",    "connection",  "service-address", "scheduler",   "persistent",
    "netmask",    "real-server", "forwarding-method", "weight",    "u-threshold",
    "l-threshold", "mcast-interface", "timeout",    "daemon",      "stats",
    "rate",       "thresholds",  "persistent-conn", "nosort",      "syncid",
    "exact",      "ops"};

// Per command: '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional.
struct CmdRule {
  Op op;
  const char* name;
  const char* table;  // kNumOpts characters
};
const CmdRule kRules[] = {
    {Op::AddService, "add-service", "xx+   xxxxxxxxxxxxxxx "},
    {Op::EditService, "edit-service", "xx+   xxxxxxxxxxxxxxx "},
    {Op::DelService, "delete-service", "xx+xxxxxxxxxxxxxxxxxxx"},
    {Op::Clear, "flush", "xxxxxxxxxxxxxxxxxxxxxx"},
    {Op::List, "list", " 11xxxxxxxxx11       x"},
    {Op::AddDest, "add-server", "xx+xxx+    xxxxxxxxxxx"},
    {Op::DelDest, "delete-server", "xx+xxx+xxxxxxxxxxxxxxx"},
    {Op::EditDest, "edit-server", "xx+xxx+    xxxxxxxxxxx"},
    {Op::SetTimeouts, "set", "xxxxxxxxxxxxxxxxxxxxxx"},
    {Op::StartDaemon, "start-daemon", "xxxxxxxxxxx xxxxxxx xx"},
    {Op::StopDaemon, "stop-daemon", "xxxxxxxxxxxxxxxxxxx xx"},
    {Op::Restore, "restore", "xxxxxxxxxxxxxxxxxxxxxx"},
    {Op::Save, "save", " xxxxxxxxxxxxxxxxxxxxx"},
    {Op::Zero, "zero", "xx xxxxxxxxxxxxxxxxxxx"},
};

const CmdRule* rule_for(Op op) {
  for (const auto& r : kRules)
    if (r.op == op) return &r;
  return nullptr;
}

enum class Arg { None, Required, Optional };
// Tags: the short option letter, or >= 128 for long-only options.
enum Tag : int {
  kTagSet = 128, kTagStartDaemon, kTagStopDaemon, kTagMcast, kTagTimeout, kTagDaemon,
  kTagStats, kTagRate, kTagThresholds, kTagPersistentConn, kTagSort, kTagNoSort, kTagSyncId,
  kTagSocket
};
struct OptSpec {
  char short_name;  // 0: long only
  const char* long_name;
  Arg arg;
  int tag;
};
const OptSpec kSpecs[] = {
    {'A', "add-service", Arg::None, 'A'},     {'E', "edit-service", Arg::None, 'E'},
    {'D', "delete-service", Arg::None, 'D'},  {'C', "clear", Arg::None, 'C'},
    {'L', "list", Arg::None, 'L'},            {'l', nullptr, Arg::None, 'L'},
    {'Z', "zero", Arg::None, 'Z'},            {'a', "add-server", Arg::None, 'a'},
    {'e', "edit-server", Arg::None, 'e'},     {'d', "delete-server", Arg::None, 'd'},
    {0, "set", Arg::None, kTagSet},           {'h', "help", Arg::None, 'h'},
    {'v', "version", Arg::None, 'v'},         {'R', "restore", Arg::None, 'R'},
    {'S', "save", Arg::None, 'S'},            {0, "start-daemon", Arg::Required, kTagStartDaemon},
    {0, "stop-daemon", Arg::Required, kTagStopDaemon},
    {'t', "tcp-service", Arg::Required, 't'}, {'u', "udp-service", Arg::Required, 'u'},
    {'f', "fwmark-service", Arg::Required, 'f'},
    {'s', "scheduler", Arg::Required, 's'},   {'p', "persistent", Arg::Optional, 'p'},
    {'M', "netmask", Arg::Required, 'M'},     {'r', "real-server", Arg::Required, 'r'},
    {'m', "masquerading", Arg::None, 'm'},    {'i', "ipip", Arg::None, 'i'},
    {'g', "gatewaying", Arg::None, 'g'},      {'w', "weight", Arg::Required, 'w'},
    {'x', "u-threshold", Arg::Required, 'x'}, {'y', "l-threshold", Arg::Required, 'y'},
    {'n', "numeric", Arg::None, 'n'},         {'c', "connection", Arg::None, 'c'},
    {0, "mcast-interface", Arg::Required, kTagMcast},
    {0, "syncid", Arg::Required, kTagSyncId}, {0, "timeout", Arg::None, kTagTimeout},
    {0, "daemon", Arg::None, kTagDaemon},     {0, "stats", Arg::None, kTagStats},
    {0, "rate", Arg::None, kTagRate},         {0, "thresholds", Arg::None, kTagThresholds},
    {0, "persistent-conn", Arg::None, kTagPersistentConn},
    {0, "nosort", Arg::None, kTagNoSort},     {0, "sort", Arg::None, kTagSort},
    {'X', "exact", Arg::None, 'X'},           {'6', "ipv6", Arg::None, '6'},
    {'o', "ops", Arg::None, 'o'},
    // vmstack extension: which daemon to talk to.
    {0, "socket", Arg::Required, kTagSocket},
};

const OptSpec* find_short(char c) {
  for (const auto& s : kSpecs)
    if (s.short_name == c) return &s;
  return nullptr;
}
const OptSpec* find_long(std::string_view n) {
  for (const auto& s : kSpecs)
    if (s.long_name && n == s.long_name) return &s;
  return nullptr;
}

// Thrown inside the parser; turned into a ParseResult.
struct ParseFail {
  std::string msg;
  int code = 2;
};

[[noreturn]] void fail(std::string msg, int code = 2) { throw ParseFail{std::move(msg), code}; }

// strtol over the whole string within [min, max]; -1 otherwise (ipvsadm's
// string_to_number).
long to_number(const std::string& s, long min, long max) {
  if (s.empty()) return -1;
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v < min || v > max) return -1;
  return v;
}

uint32_t parse_timeout_value(const std::string& s, long min, long max) {
  long v = to_number(s, min, max);
  if (v < 0) fail("invalid timeout value `" + s + "' specified");
  return uint32_t(v);
}

// host[:port] as ipvsadm's parse_service: all digits is not an address.
// Sets *has_port when a port was written.
std::optional<Endpoint> parse_service_addr(const std::string& s, bool* has_port) {
  if (s.empty() || s.find_first_not_of("0123456789") == std::string::npos) return std::nullopt;
  *has_port = false;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return std::nullopt;
    *has_port = true;
    return Endpoint::parse(s, false, true);
  }
  if (auto a = Addr::parse(s); a && a->is_v6()) return Endpoint{*a, 0};
  *has_port = s.find(':') != std::string::npos;
  return Endpoint::parse(s, true, true);
}

struct Token {
  const OptSpec* spec;
  std::string arg;
  bool has_arg = false;
  std::string text;  // as written, for messages
};

// Splits argv into options (with popt's rules: clustered short options, an
// attached or following argument, optional arguments taken only when the
// next word does not start with '-') and positional words.
void tokenize(const std::vector<std::string>& args, std::vector<Token>* opts,
              std::vector<std::string>* positional) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto take_next = [&](const OptSpec* sp, Token& t) {
      if (sp->arg == Arg::Required) {
        if (i + 1 >= args.size()) fail(t.text + ": missing argument", 255);
        t.arg = args[++i];
        t.has_arg = true;
      } else if (sp->arg == Arg::Optional && i + 1 < args.size() && !args[i + 1].empty() &&
                 args[i + 1][0] != '-') {
        t.arg = args[++i];
        t.has_arg = true;
      }
    };
    if (a == "--") {
      for (++i; i < args.size(); ++i) positional->push_back(args[i]);
      break;
    }
    if (a.size() > 2 && starts_with(a, "--")) {
      std::string name = a.substr(2), val;
      bool has_val = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        val = name.substr(eq + 1);
        name.resize(eq);
        has_val = true;
      }
      const OptSpec* sp = find_long(name);
      if (!sp) fail("--" + name + ": unknown option", 255);
      Token t{sp, val, has_val, "--" + name};
      if (has_val && sp->arg == Arg::None) fail(t.text + ": option does not take an argument", 255);
      if (!has_val) take_next(sp, t);
      opts->push_back(std::move(t));
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      for (size_t j = 1; j < a.size(); ++j) {
        const OptSpec* sp = find_short(a[j]);
        if (!sp) fail(std::string("-") + a[j] + ": unknown option", 255);
        Token t{sp, {}, false, std::string("-") + a[j]};
        if (sp->arg != Arg::None) {
          if (j + 1 < a.size()) {
            t.arg = a.substr(j + 1);
            t.has_arg = true;
          } else {
            take_next(sp, t);
          }
          opts->push_back(std::move(t));
          break;
        }
        opts->push_back(std::move(t));
      }
      continue;
    }
    positional->push_back(a);
  }
}

void set_command(Command& c, Op op) {
  if (c.op != Op::None) fail("multiple commands specified");
  c.op = op;
}

void set_option(unsigned& options, int bit) {
  if (options & (1u << bit)) fail(std::string("multiple '") + kOptNames[bit] + "' options specified");
  options |= 1u << bit;
}

void check_options(Op op, unsigned options) {
  const CmdRule* r = rule_for(op);
  if (!r) return;
  int last = -1;
  for (int j = 0; j < kNumOpts; ++j) {
    bool given = options & (1u << j);
    char rule = r->table[j];
    if (!given) {
      if (rule == '+')
        fail(std::string("You need to supply the '") + kOptNames[j] + "' option for the '" +
             r->name + "' command");
      continue;
    }
    if (rule == 'x')
      fail(std::string("Illegal '") + kOptNames[j] + "' option with the '" + r->name + "' command");
    if (rule == '1') {
      if (last < 0) {
        last = j;
        continue;
      }
      fail(std::string("The option '") + kOptNames[j] + "' conflicts with the '" + kOptNames[last] +
           "' option in the '" + r->name + "' command");
    }
  }
}

Command parse_or_throw(const std::vector<std::string>& args, std::string* socket_path) {
  std::vector<Token> toks;
  std::vector<std::string> pos;
  tokenize(args, &toks, &pos);

  Command c;
  unsigned options = 0;
  bool have_sched = false, dest_has_port = false, netmask_given = false;
  std::string netmask_text;
  bool fwmark = false;

  for (auto& t : toks) {
    switch (t.spec->tag) {
      case 'A': set_command(c, Op::AddService); break;
      case 'E': set_command(c, Op::EditService); break;
      case 'D': set_command(c, Op::DelService); break;
      case 'C': set_command(c, Op::Clear); break;
      case 'L': set_command(c, Op::List); break;
      case 'Z': set_command(c, Op::Zero); break;
      case 'a': set_command(c, Op::AddDest); break;
      case 'e': set_command(c, Op::EditDest); break;
      case 'd': set_command(c, Op::DelDest); break;
      case 'R': set_command(c, Op::Restore); break;
      case 'S': set_command(c, Op::Save); break;
      case kTagSet: set_command(c, Op::SetTimeouts); break;
      case 'h': set_command(c, Op::Help); break;
      case 'v': set_command(c, Op::Version); break;
      case kTagStartDaemon:
      case kTagStopDaemon: {
        bool start = t.spec->tag == kTagStartDaemon;
        set_command(c, start ? Op::StartDaemon : Op::StopDaemon);
        if (t.arg != "master" && t.arg != "backup")
          fail(start ? "illegal start-daemon parameter specified"
                     : "illegal start_daemon specified");
        c.daemon_state = t.arg;
        break;
      }
      case 't':
      case 'u': {
        set_option(options, kService);
        c.has_service = true;
        c.svc.key.proto = t.spec->tag == 't' ? Proto::TCP : Proto::UDP;
        bool has_port = false;
        auto ep = parse_service_addr(t.arg, &has_port);
        if (!ep) fail("illegal virtual server address[:port] specified");
        c.svc.key.vip = *ep;
        if (ep->addr.is_v6()) c.svc.v6_prefix = 128;
        break;
      }
      case 'f':
        set_option(options, kService);
        fwmark = true;
        break;
      case 's':
        set_option(options, kScheduler);
        c.svc.scheduler = t.arg;
        have_sched = true;
        break;
      case 'p':
        set_option(options, kPersistent);
        c.svc.persistent = true;
        c.svc.timeout =
            t.has_arg ? parse_timeout_value(t.arg, 1, kMaxTimeout) : kDefaultPersistTimeout;
        break;
      case 'M':
        set_option(options, kNetmask);
        netmask_given = true;
        netmask_text = t.arg;
        break;
      case 'r': {
        set_option(options, kServer);
        c.has_dest = true;
        auto ep = parse_service_addr(t.arg, &dest_has_port);
        if (!ep) fail("illegal real server address[:port] specified");
        c.dest.addr = *ep;
        break;
      }
      case 'm':
      case 'i':
      case 'g':
        set_option(options, kForward);
        c.dest.fwd = t.spec->tag == 'm' ? FwdMethod::Masq
                     : t.spec->tag == 'i' ? FwdMethod::Tunnel
                                          : FwdMethod::Route;
        break;
      case 'w': {
        set_option(options, kWeight);
        long w = to_number(t.arg, 0, 65535);
        if (w < 0) fail("illegal weight specified");
        c.dest.weight = int(w);
        break;
      }
      case 'x': {
        set_option(options, kUThreshold);
        long v = to_number(t.arg, 0, INT_MAX);
        if (v < 0) fail("illegal u_threshold specified");
        c.dest.u_threshold = uint32_t(v);
        break;
      }
      case 'y': {
        set_option(options, kLThreshold);
        long v = to_number(t.arg, 0, INT_MAX);
        if (v < 0) fail("illegal l_threshold specified");
        c.dest.l_threshold = uint32_t(v);
        break;
      }
      case 'c': set_option(options, kConnection); c.list.conns = true; break;
      case 'n': set_option(options, kNumeric); c.list.numeric = true; break;
      case kTagMcast:
        set_option(options, kMcast);
        c.mcast_interface = t.arg;
        break;
      case kTagSyncId: {
        set_option(options, kSyncId);
        long v = to_number(t.arg, 0, 255);
        if (v < 0) fail("illegal syncid specified");
        c.syncid = int(v);
        c.has_syncid = true;
        break;
      }
      case kTagTimeout: set_option(options, kTimeout); c.list.timeout = true; break;
      case kTagDaemon: set_option(options, kDaemon); c.list.daemon = true; break;
      case kTagStats: set_option(options, kStats); c.list.stats = true; break;
      case kTagRate: set_option(options, kRate); c.list.rate = true; break;
      case kTagThresholds: set_option(options, kThresholds); c.list.thresholds = true; break;
      case kTagPersistentConn:
        set_option(options, kPersistentConn);
        c.list.persistent_conn = true;
        break;
      case kTagNoSort: set_option(options, kNoSort); c.list.nosort = true; break;
      case kTagSort: break;  // the default; accepted for compatibility
      case 'X': set_option(options, kExact); c.list.exact = true; break;
      case '6':
        if (!fwmark) fail("-6 used before -f");
        break;
      case 'o': set_option(options, kOps); break;
      case kTagSocket:
        if (socket_path) *socket_path = t.arg;
        break;
      default: fail(t.text + ": unknown option", 255);
    }
  }

  if (c.op == Op::None) fail("", 255);  // "Try ... -h"
  if (c.op == Op::Help || c.op == Op::Version) return c;

  if (c.op == Op::SetTimeouts) {
    if (pos.size() < 3) fail("--set option requires 3 timeout values");
    c.timeouts.tcp = parse_timeout_value(pos[0], 0, kMaxTimeout);
    c.timeouts.tcpfin = parse_timeout_value(pos[1], 0, kMaxTimeout);
    c.timeouts.udp = parse_timeout_value(pos[2], 0, kMaxTimeout);
    pos.erase(pos.begin(), pos.begin() + 3);
  }
  if (!pos.empty()) fail("unexpected argument " + pos.front());

  check_options(c.op, options);

  // What a user-space data plane cannot do, said plainly.
  if (fwmark)
    fail("fwmark services (-f) need kernel IPVS (netfilter marks); use -t or -u");
  if (options & (1u << kOps))
    fail("one-packet scheduling (-o) needs kernel IPVS");

  if (netmask_given) {
    if (c.svc.key.vip.addr.is_v6()) {
      long p = to_number(netmask_text, 1, 128);
      if (p < 0) fail("illegal ipv6 netmask specified");
      c.svc.v6_prefix = int(p);
    } else {
      in_addr m{};
      if (inet_aton(netmask_text.c_str(), &m) == 0)
        fail("illegal virtual server persistent mask specified");
      c.svc.netmask = ntohl(m.s_addr);
    }
  }

  if (c.op == Op::AddService || c.op == Op::EditService) {
    if (c.svc.key.vip.port == 0 && !c.svc.persistent)
      fail("Zero port specified for non-persistent service");
    if (!have_sched) c.svc.scheduler = "wlc";
  }
  if (c.has_dest && (!dest_has_port || c.dest.addr.port == 0)) c.dest.addr.port = c.svc.key.vip.port;
  return c;
}

}  // namespace

ParseResult parse_ipvsadm_args(const std::vector<std::string>& args) {
  ParseResult r;
  try {
    // No arguments: ipvsadm lists the table.
    if (args.empty()) {
      Command c;
      c.op = Op::List;
      r.cmd = c;
      return r;
    }
    r.cmd = parse_or_throw(args, &r.socket_path);
  } catch (const ParseFail& f) {
    r.cmd.reset();
    r.error = f.msg;
    r.exit_code = f.code;
  }
  return r;
}

ParseResult parse_save_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) {
    if (w[0] == '#') break;  // comment to end of line
    words.push_back(w);
  }
  ParseResult r;
  if (words.empty()) {
    r.cmd = Command{};  // blank line or comment: Op::None
    return r;
  }
  r = parse_ipvsadm_args(words);
  if (r.cmd && (r.cmd->op == Op::Restore || r.cmd->op == Op::Help || r.cmd->op == Op::Version)) {
    r.cmd.reset();
    r.error = "this command is not allowed in a restore file";
    r.exit_code = 2;
  }
  if (!r.cmd && r.error.empty()) r.error = "no command given";
  return r;
}

// ------------------------------------------------------------------ JSON
namespace {

const char* op_name(Op op) {
  switch (op) {
    case Op::None: return "none";
    case Op::AddService: return "add-service";
    case Op::EditService: return "edit-service";
    case Op::DelService: return "delete-service";
    case Op::Clear: return "clear";
    case Op::Restore: return "restore";
    case Op::Save: return "save";
    case Op::AddDest: return "add-server";
    case Op::EditDest: return "edit-server";
    case Op::DelDest: return "delete-server";
    case Op::List: return "list";
    case Op::Zero: return "zero";
    case Op::SetTimeouts: return "set";
    case Op::StartDaemon: return "start-daemon";
    case Op::StopDaemon: return "stop-daemon";
    case Op::Help: return "help";
    case Op::Version: return "version";
  }
  return "none";
}

Op op_from_name(const std::string& n) {
  for (Op op : {Op::None, Op::AddService, Op::EditService, Op::DelService, Op::Clear, Op::Restore,
                Op::Save, Op::AddDest, Op::EditDest, Op::DelDest, Op::List, Op::Zero,
                Op::SetTimeouts, Op::StartDaemon, Op::StopDaemon, Op::Help, Op::Version})
    if (n == op_name(op)) return op;
  throw LbError(LbError::Code::Invalid, "unknown command '" + n + "'");
}

Endpoint endpoint_from_json(const nlohmann::json& j) {
  auto e = Endpoint::parse(j.get<std::string>());
  if (!e) throw LbError(LbError::Code::Invalid, "bad address " + j.dump());
  return *e;
}

}  // namespace

nlohmann::json command_to_json(const Command& c) {
  nlohmann::json j;
  j["op"] = op_name(c.op);
  if (c.has_service) {
    j["service"] = {{"proto", proto_name(c.svc.key.proto)},
                    {"vip", c.svc.key.vip.str()},
                    {"scheduler", c.svc.scheduler},
                    {"persistent", c.svc.persistent},
                    {"timeout", c.svc.timeout},
                    {"netmask", c.svc.netmask},
                    {"v6_prefix", c.svc.v6_prefix}};
  }
  if (c.has_dest) {
    j["dest"] = {{"addr", c.dest.addr.str()},
                 {"weight", c.dest.weight},
                 {"fwd", fwd_switch(c.dest.fwd)},
                 {"u_threshold", c.dest.u_threshold},
                 {"l_threshold", c.dest.l_threshold}};
  }
  const ListOptions& l = c.list;
  j["list"] = {{"numeric", l.numeric}, {"stats", l.stats},       {"rate", l.rate},
               {"conns", l.conns},     {"exact", l.exact},       {"timeout", l.timeout},
               {"daemon", l.daemon},   {"thresholds", l.thresholds},
               {"persistent_conn", l.persistent_conn},           {"nosort", l.nosort}};
  if (c.op == Op::SetTimeouts)
    j["timeouts"] = {{"tcp", c.timeouts.tcp}, {"tcpfin", c.timeouts.tcpfin}, {"udp", c.timeouts.udp}};
  if (!c.daemon_state.empty()) j["daemon_state"] = c.daemon_state;
  if (!c.mcast_interface.empty()) j["mcast_interface"] = c.mcast_interface;
  if (c.has_syncid) j["syncid"] = c.syncid;
  return j;
}

Command command_from_json(const nlohmann::json& j) {
  try {
    Command c;
    c.op = op_from_name(j.at("op").get<std::string>());
    if (j.contains("service")) {
      const auto& s = j["service"];
      c.has_service = true;
      std::string proto = s.at("proto").get<std::string>();
      if (proto != "TCP" && proto != "UDP")
        throw LbError(LbError::Code::Invalid, "bad protocol " + proto);
      c.svc.key.proto = proto == "TCP" ? Proto::TCP : Proto::UDP;
      c.svc.key.vip = endpoint_from_json(s.at("vip"));
      c.svc.scheduler = s.value("scheduler", std::string("wlc"));
      c.svc.persistent = s.value("persistent", false);
      c.svc.timeout = s.value("timeout", 300u);
      c.svc.netmask = s.value("netmask", 0xffffffffu);
      c.svc.v6_prefix = s.value("v6_prefix", 128);
    }
    if (j.contains("dest")) {
      const auto& d = j["dest"];
      c.has_dest = true;
      c.dest.addr = endpoint_from_json(d.at("addr"));
      c.dest.weight = d.value("weight", 1);
      std::string fwd = d.value("fwd", std::string("-m"));
      c.dest.fwd = fwd == "-g" ? FwdMethod::Route : fwd == "-i" ? FwdMethod::Tunnel : FwdMethod::Masq;
      c.dest.u_threshold = d.value("u_threshold", 0u);
      c.dest.l_threshold = d.value("l_threshold", 0u);
    }
    if (j.contains("list")) {
      const auto& l = j["list"];
      c.list.numeric = l.value("numeric", false);
      c.list.stats = l.value("stats", false);
      c.list.rate = l.value("rate", false);
      c.list.conns = l.value("conns", false);
      c.list.exact = l.value("exact", false);
      c.list.timeout = l.value("timeout", false);
      c.list.daemon = l.value("daemon", false);
      c.list.thresholds = l.value("thresholds", false);
      c.list.persistent_conn = l.value("persistent_conn", false);
      c.list.nosort = l.value("nosort", false);
    }
    if (j.contains("timeouts")) {
      const auto& t = j["timeouts"];
      c.timeouts.tcp = t.value("tcp", 0u);
      c.timeouts.tcpfin = t.value("tcpfin", 0u);
      c.timeouts.udp = t.value("udp", 0u);
    }
    c.daemon_state = j.value("daemon_state", std::string());
    c.mcast_interface = j.value("mcast_interface", std::string());
    if (j.contains("syncid")) {
      c.syncid = j["syncid"].get<int>();
      c.has_syncid = true;
    }
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw LbError(LbError::Code::Invalid, std::string("malformed command: ") + e.what());
  }
}

}  // namespace vmstack::lb
