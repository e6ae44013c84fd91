// Validation of ipvsadm commands, shared by the CLI (after parsing argv or a
// restore line) and vmstack-lbd (after reading a command from the control
// socket). A command that reaches the daemon by any path is held to the CLI's
// rules: the daemon once stored a `-p 4294967295` sent straight to its
// socket, and the rules file it wrote could not be read back.
#include <climits>
#include <cstdint>

#include "core/names.h"
#include "lb/ipvsadm_check.h"

namespace vmstack::lb {
namespace detail {
namespace {

constexpr long long kMaxTimeout = 86400LL * 31;  // ipvsadm's MAX_TIMEOUT (31 days)

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

struct NumSpec {
  long long min, max;
  const char* message;  // a `%s' in it is replaced by the value as written
};
NumSpec spec(Num f) {
  switch (f) {
    case Num::PersistTimeout: return {1, kMaxTimeout, "invalid timeout value `%s' specified"};
    case Num::Timeout: return {0, kMaxTimeout, "invalid timeout value `%s' specified"};
    case Num::Netmask: return {0, UINT32_MAX, "illegal virtual server persistent mask specified"};
    case Num::V6Prefix: return {1, 128, "illegal ipv6 netmask specified"};
    case Num::Weight: return {0, 65535, "illegal weight specified"};
    case Num::UThreshold: return {0, INT_MAX, "illegal u_threshold specified"};
    case Num::LThreshold: return {0, INT_MAX, "illegal l_threshold specified"};
    case Num::SyncId: return {0, 255, "illegal syncid specified"};
  }
  return {0, -1, "illegal value specified"};
}

// Which options a command carries, as far as its fields tell (a command
// read from JSON has no argv). Only bits that a field records exactly are
// set, so a command the parser accepted is never refused here.
unsigned options_of(const Command& c) {
  unsigned o = 0;
  auto set = [&](bool on, int bit) {
    if (on) o |= 1u << bit;
  };
  set(c.list.numeric, kNumeric);
  set(c.list.conns, kConnection);
  set(c.has_service, kService);
  set(c.svc.persistent, kPersistent);
  set(c.has_dest, kServer);
  set(!c.mcast_interface.empty(), kMcast);
  set(c.list.timeout, kTimeout);
  set(c.list.daemon, kDaemon);
  set(c.list.stats, kStats);
  set(c.list.rate, kRate);
  set(c.list.thresholds, kThresholds);
  set(c.list.persistent_conn, kPersistentConn);
  set(c.list.nosort, kNoSort);
  set(c.has_syncid, kSyncId);
  set(c.list.exact, kExact);
  return o;
}

}  // namespace

const char* option_name(int bit) { return bit >= 0 && bit < kNumOpts ? kOptNames[bit] : "?"; }

std::string option_error(Op op, unsigned options) {
  const CmdRule* r = nullptr;
  for (const auto& rule : kRules)
    if (rule.op == op) r = &rule;
  if (!r) return {};
  int last = -1;
  for (int j = 0; j < kNumOpts; ++j) {
    bool given = options & (1u << j);
    char rule = r->table[j];
    if (!given) {
      if (rule == '+')
        return std::string("You need to supply the '") + kOptNames[j] + "' option for the '" +
               r->name + "' command";
      continue;
    }
    if (rule == 'x')
      return std::string("Illegal '") + kOptNames[j] + "' option with the '" + r->name + "' command";
    if (rule == '1') {
      if (last < 0) {
        last = j;
        continue;
      }
      return std::string("The option '") + kOptNames[j] + "' conflicts with the '" +
             kOptNames[last] + "' option in the '" + r->name + "' command";
    }
  }
  return {};
}

bool num_ok(Num f, long long v) {
  NumSpec s = spec(f);
  return v >= s.min && v <= s.max;
}

std::string num_error(Num f, std::string_view text) {
  std::string m = spec(f).message;
  if (auto at = m.find("%s"); at != std::string::npos) m.replace(at, 2, text);
  return m;
}

}  // namespace detail

std::string validate_command(const Command& c) {
  using namespace detail;
  if (std::string e = option_error(c.op, options_of(c)); !e.empty()) return e;
  auto bad = [](Num f, long long v) { return num_ok(f, v) ? std::string() : num_error(f, std::to_string(v)); };
  if (c.op == Op::StartDaemon && c.daemon_state != "master" && c.daemon_state != "backup")
    return "illegal start-daemon parameter specified";
  if (c.op == Op::StopDaemon && c.daemon_state != "master" && c.daemon_state != "backup")
    return "illegal start_daemon specified";
  if (!c.mcast_interface.empty() && !valid_ifname(c.mcast_interface))
    return c.mcast_interface.size() > 15 ? "multicast interface name too long"
                                          : "illegal multicast interface name specified";
  if (c.has_syncid)
    if (std::string e = bad(Num::SyncId, c.syncid); !e.empty()) return e;
  if (c.has_service) {
    // The timeout is checked even without -p: the CLI never sends another
    // value, and a stored one would be saved and read back.
    for (std::string e : {bad(Num::PersistTimeout, c.svc.timeout), bad(Num::V6Prefix, c.svc.v6_prefix)})
      if (!e.empty()) return e;
    if ((c.op == Op::AddService || c.op == Op::EditService) && c.svc.key.vip.port == 0 &&
        !c.svc.persistent)
      return "Zero port specified for non-persistent service";
  }
  if (c.has_dest) {
    for (std::string e : {bad(Num::Weight, c.dest.weight), bad(Num::UThreshold, c.dest.u_threshold),
                          bad(Num::LThreshold, c.dest.l_threshold)})
      if (!e.empty()) return e;
  }
  for (uint32_t t : {c.timeouts.tcp, c.timeouts.tcpfin, c.timeouts.udp})
    if (std::string e = bad(Num::Timeout, t); !e.empty()) return e;
  return {};
}

}  // namespace vmstack::lb
