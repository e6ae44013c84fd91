// ipvsadm command-line parsing: the same options, clustering and checks as
// ipvsadm 1.31's popt parser. The checks on values live in ipvsadm_check.cpp
// (shared with vmstack-lbd), the JSON form in ipvsadm_json.cpp.
#include "lb/ipvsadm.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "core/strings.h"
#include "lb/ipvsadm_check.h"

namespace vmstack::lb {
namespace {

using namespace detail;

constexpr uint32_t kDefaultPersistTimeout = 300;

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

// A number as ipvsadm's string_to_number reads it (strtol over the whole
// string), within the field's limits; else the field's message.
template <class T>
T number(Num f, const std::string& s) {
  errno = 0;
  char* end = nullptr;
  long long v = s.empty() ? -1 : std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || !num_ok(f, v)) fail(num_error(f, s));
  return static_cast<T>(v);
}

// host[:port] as ipvsadm's parse_service: all digits is not an address.
// Sets *has_port when a port was written.
std::optional<Endpoint> parse_service_addr(const std::string& s, bool* has_port, bool resolve) {
  if (s.empty() || s.find_first_not_of("0123456789") == std::string::npos) return std::nullopt;
  *has_port = false;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return std::nullopt;
    *has_port = true;
    return Endpoint::parse(s, false, resolve);
  }
  if (auto a = Addr::parse(s); a && a->is_v6()) return Endpoint{*a, 0};
  *has_port = s.find(':') != std::string::npos;
  return Endpoint::parse(s, true, resolve);
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
  if (options & (1u << bit))
    fail(std::string("multiple '") + option_name(bit) + "' options specified");
  options |= 1u << bit;
}

Command parse_or_throw(const std::vector<std::string>& args, std::string* socket_path, bool resolve) {
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
        auto ep = parse_service_addr(t.arg, &has_port, resolve);
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
            t.has_arg ? number<uint32_t>(Num::PersistTimeout, t.arg) : kDefaultPersistTimeout;
        break;
      case 'M':
        set_option(options, kNetmask);
        netmask_given = true;
        netmask_text = t.arg;
        break;
      case 'r': {
        set_option(options, kServer);
        c.has_dest = true;
        auto ep = parse_service_addr(t.arg, &dest_has_port, resolve);
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
        c.dest.weight = number<int>(Num::Weight, t.arg);
        break;
      }
      case 'x': {
        set_option(options, kUThreshold);
        c.dest.u_threshold = number<uint32_t>(Num::UThreshold, t.arg);
        break;
      }
      case 'y': {
        set_option(options, kLThreshold);
        c.dest.l_threshold = number<uint32_t>(Num::LThreshold, t.arg);
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
        c.syncid = number<int>(Num::SyncId, t.arg);
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
    c.timeouts.tcp = number<uint32_t>(Num::Timeout, pos[0]);
    c.timeouts.tcpfin = number<uint32_t>(Num::Timeout, pos[1]);
    c.timeouts.udp = number<uint32_t>(Num::Timeout, pos[2]);
    pos.erase(pos.begin(), pos.begin() + 3);
  }
  if (!pos.empty()) fail("unexpected argument " + pos.front());

  if (std::string e = option_error(c.op, options); !e.empty()) fail(e);

  // What a user-space data plane cannot do, said plainly.
  if (fwmark)
    fail("fwmark services (-f) need kernel IPVS (netfilter marks); use -t or -u");
  if (options & (1u << kOps))
    fail("one-packet scheduling (-o) needs kernel IPVS");

  if (netmask_given) {
    if (c.svc.key.vip.addr.is_v6()) {
      c.svc.v6_prefix = number<int>(Num::V6Prefix, netmask_text);
    } else {
      in_addr m{};
      if (inet_aton(netmask_text.c_str(), &m) == 0)
        fail(num_error(Num::Netmask, netmask_text));
      c.svc.netmask = ntohl(m.s_addr);
    }
  }

  if ((c.op == Op::AddService || c.op == Op::EditService) && !have_sched) c.svc.scheduler = "wlc";
  if (c.has_dest && (!dest_has_port || c.dest.addr.port == 0)) c.dest.addr.port = c.svc.key.vip.port;
  // The checks vmstack-lbd also applies to commands from its socket.
  if (std::string e = validate_command(c); !e.empty()) fail(e);
  return c;
}

}  // namespace

bool is_rule_change(Op op) {
  switch (op) {
    case Op::AddService: case Op::EditService: case Op::DelService: case Op::Clear:
    case Op::AddDest: case Op::EditDest: case Op::DelDest: case Op::SetTimeouts:
      return true;
    default:
      return false;
  }
}

ParseResult parse_ipvsadm_args(const std::vector<std::string>& args, bool resolve) {
  ParseResult r;
  try {
    // No arguments: ipvsadm lists the table.
    if (args.empty()) {
      Command c;
      c.op = Op::List;
      r.cmd = c;
      return r;
    }
    r.cmd = parse_or_throw(args, &r.socket_path, resolve);
  } catch (const ParseFail& f) {
    r.cmd.reset();
    r.error = f.msg;
    r.exit_code = f.code;
  }
  return r;
}

ParseResult parse_save_line(const std::string& line, bool resolve) {
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
  r = parse_ipvsadm_args(words, resolve);
  if (r.cmd && (r.cmd->op == Op::Restore || r.cmd->op == Op::Help || r.cmd->op == Op::Version)) {
    r.cmd.reset();
    r.error = "this command is not allowed in a restore file";
    r.exit_code = 2;
  }
  if (!r.cmd && r.error.empty()) r.error = "no command given";
  return r;
}

}  // namespace vmstack::lb
