// Executing ipvsadm commands against a ServiceTable (daemon side), restore
// batches and the state file (which is `ipvsadm -S -n` text plus --set).
#include <spdlog/spdlog.h>

#include <sstream>

#include "lb/ipvsadm.h"

namespace vmstack::lb {
namespace {

constexpr int kFailRc = 255;  // ipvsadm exits with -1 when the kernel refuses

std::string run_list(ServiceTable& table, const Command& c, const ExecHooks& hooks) {
  if (c.list.conns) return format_connections(table.connections(), c.list);
  if (c.list.timeout) return format_timeouts(table.timeouts());
  if (c.list.daemon) return hooks.list_daemon ? hooks.list_daemon() : std::string();
  if (c.has_service) {
    auto s = table.get(c.svc.key);
    if (!s) throw LbError(LbError::Code::NoService);
    return format_list({*s}, c.list, false);
  }
  return format_list(table.list(), c.list);
}

std::string run(ServiceTable& table, const Command& c, const ExecHooks& hooks) {
  switch (c.op) {
    case Op::AddService: table.add_service(c.svc); return {};
    case Op::EditService: table.edit_service(c.svc); return {};
    case Op::DelService: table.delete_service(c.svc.key); return {};
    case Op::Clear: table.clear(); return {};
    case Op::AddDest: table.add_dest(c.svc.key, c.dest); return {};
    case Op::EditDest: table.edit_dest(c.svc.key, c.dest); return {};
    case Op::DelDest: table.delete_dest(c.svc.key, c.dest.addr); return {};
    case Op::Zero:
      table.zero(c.has_service ? std::optional<ServiceKey>(c.svc.key) : std::nullopt);
      return {};
    case Op::SetTimeouts: table.set_timeouts(c.timeouts); return {};
    case Op::List: return run_list(table, c, hooks);
    case Op::Save: return format_save(table.list());
    case Op::StartDaemon:
      if (!hooks.start_daemon)
        throw LbError(LbError::Code::Invalid,
                      "connection sync is not available: vmstack-lbd was built without lb-ha");
      hooks.start_daemon(c);
      return {};
    case Op::StopDaemon:
      if (!hooks.stop_daemon) throw LbError(LbError::Code::NoDaemon);
      hooks.stop_daemon(c);
      return {};
    case Op::Help: return usage_text();
    case Op::Version: return version_text();
    case Op::None: return {};
    case Op::Restore:
      throw LbError(LbError::Code::Invalid, "restore is sent as a batch of commands");
  }
  return {};
}

}  // namespace

ExecResult execute_command(ServiceTable& table, const Command& c, const ExecHooks& hooks) {
  ExecResult r;
  try {
    r.out = run(table, c, hooks);
  } catch (const LbError& e) {
    r.rc = kFailRc;
    r.err = std::string(e.what()) + "\n";
  } catch (const std::exception& e) {
    // Hooks (HA) may throw plain exceptions: same treatment.
    r.rc = kFailRc;
    r.err = std::string(e.what()) + "\n";
  }
  return r;
}

ExecResult execute_batch(ServiceTable& table, const std::vector<Command>& cmds,
                        const ExecHooks& hooks, const std::vector<int>* lines) {
  const std::string before = save_state(table);
  ExecResult all;
  for (size_t i = 0; i < cmds.size(); ++i) {
    ExecResult r = execute_command(table, cmds[i], hooks);
    all.out += r.out;
    if (r.rc != 0) {
      int line = lines && i < lines->size() ? (*lines)[i] : int(i + 1);
      // All or nothing: put the rules back as they were.
      LoadReport rb = load_state(table, before);
      all.rc = r.rc;
      all.err = "line " + std::to_string(line) + ": " + r.err;
      if (rb.ok()) {
        all.err += "nothing restored: the rules are unchanged\n";
      } else {
        all.err += "rolling back failed too:";
        for (const auto& e : rb.skipped) all.err += " " + e + ";";
        all.err += "\n";
      }
      return all;
    }
  }
  return all;
}

std::string save_state(const ServiceTable& table) {
  Timeouts t = table.timeouts();
  return format_save(table.list(), &t);
}

LoadReport load_state(ServiceTable& table, const std::string& text, const std::string& source) {
  LoadReport rep;
  table.clear();
  table.set_timeouts(Timeouts{});  // defaults unless the file says otherwise
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::string why;
    ParseResult p = parse_save_line(line, false);
    if (!p.cmd) {
      why = p.error;
    } else if (p.cmd->op == Op::None) {
      continue;  // blank or comment
    } else if (!is_rule_change(p.cmd->op)) {
      why = "only rule commands belong in a state file";
    } else if (ExecResult r = execute_command(table, *p.cmd); r.rc != 0) {
      why = r.err;
      while (!why.empty() && why.back() == '\n') why.pop_back();
    } else {
      ++rep.applied;
      continue;
    }
    if (!source.empty())
      spdlog::warn("{}: line {} skipped: {} [{}]", source, n, why, line.substr(0, 200));
    rep.skipped.push_back("line " + std::to_string(n) + ": " + why);
  }
  return rep;
}

}  // namespace vmstack::lb
