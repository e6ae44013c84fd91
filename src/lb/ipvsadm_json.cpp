// The JSON form of an ipvsadm command, as vmstack-ipvsadm sends it to
// vmstack-lbd's control socket (and as the toolstack may send it directly).
// Reading is strict: the socket is an entry point of its own, so a number
// that is not an integer within its field's limits, an address that does not
// parse, or an unknown forwarding method is refused with the CLI's message
// instead of being converted (a JSON weight of 4294967297 must not become 1).
#include <limits>

#include "lb/ipvsadm.h"
#include "lb/ipvsadm_check.h"

namespace vmstack::lb {
namespace {

using detail::Num;
using json = nlohmann::json;

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

[[noreturn]] void invalid(std::string msg) { throw LbError(LbError::Code::Invalid, std::move(msg)); }

Endpoint endpoint(const json& j, const char* message) {
  if (!j.is_string()) invalid(message);
  auto e = Endpoint::parse(j.get<std::string>());  // never resolves names
  if (!e) invalid(message);
  return *e;
}

// obj[key] as field f (def when absent): an integer within the field's
// limits, else the CLI's message for that field with the value as sent.
template <class T>
T number(const json& obj, const char* key, T def, Num f) {
  auto it = obj.find(key);
  if (it == obj.end()) return def;
  long long v = -1;
  bool is_int = it->is_number_integer() &&
                !(it->is_number_unsigned() &&
                  it->template get<unsigned long long>() > uint64_t(std::numeric_limits<long long>::max()));
  if (is_int) v = it->template get<long long>();
  if (!is_int || !detail::num_ok(f, v)) invalid(detail::num_error(f, it->dump()));
  return static_cast<T>(v);
}

}  // namespace

nlohmann::json command_to_json(const Command& c) {
  json j;
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
      if (proto != "TCP" && proto != "UDP") invalid("bad protocol " + proto);
      c.svc.key.proto = proto == "TCP" ? Proto::TCP : Proto::UDP;
      c.svc.key.vip = endpoint(s.at("vip"), "illegal virtual server address[:port] specified");
      c.svc.scheduler = s.value("scheduler", std::string("wlc"));
      c.svc.persistent = s.value("persistent", false);
      c.svc.timeout = number<uint32_t>(s, "timeout", 300, Num::PersistTimeout);
      c.svc.netmask = number<uint32_t>(s, "netmask", 0xffffffff, Num::Netmask);
      c.svc.v6_prefix = number<int>(s, "v6_prefix", 128, Num::V6Prefix);
    }
    if (j.contains("dest")) {
      const auto& d = j["dest"];
      c.has_dest = true;
      c.dest.addr = endpoint(d.at("addr"), "illegal real server address[:port] specified");
      c.dest.weight = number<int>(d, "weight", 1, Num::Weight);
      std::string fwd = d.value("fwd", std::string("-m"));
      if (fwd != "-m" && fwd != "-g" && fwd != "-i")
        invalid("illegal forwarding method '" + fwd + "' specified (-m, -g or -i)");
      c.dest.fwd = fwd == "-g" ? FwdMethod::Route : fwd == "-i" ? FwdMethod::Tunnel : FwdMethod::Masq;
      c.dest.u_threshold = number<uint32_t>(d, "u_threshold", 0, Num::UThreshold);
      c.dest.l_threshold = number<uint32_t>(d, "l_threshold", 0, Num::LThreshold);
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
      c.timeouts.tcp = number<uint32_t>(t, "tcp", 0, Num::Timeout);
      c.timeouts.tcpfin = number<uint32_t>(t, "tcpfin", 0, Num::Timeout);
      c.timeouts.udp = number<uint32_t>(t, "udp", 0, Num::Timeout);
    }
    c.daemon_state = j.value("daemon_state", std::string());
    c.mcast_interface = j.value("mcast_interface", std::string());
    if (j.contains("syncid")) {
      c.syncid = number<int>(j, "syncid", 0, Num::SyncId);
      c.has_syncid = true;
    }
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw LbError(LbError::Code::Invalid, std::string("malformed command: ") + e.what());
  }
}

}  // namespace vmstack::lb
