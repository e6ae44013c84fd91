// help, console and event-wait.
#include <unistd.h>

#include <chrono>

#include "cli/commands.h"
#include "cli/console.h"
#include "cli/xe_errors.h"
#include "core/error.h"
#include "core/strings.h"
#include "model/lifecycle.h"

namespace vmstack::cli {

namespace {

// xe's help layout: command names joined by ", " in lines of about 74
// columns, indented by four spaces.
std::vector<std::string> wrap_names(const std::vector<std::string>& names) {
  std::vector<std::string> lines;
  if (names.empty()) return lines;
  const std::string indent = "    ";
  std::string cur = indent + names.front();
  for (size_t i = 1; i < names.size(); ++i) {
    if (cur.size() + names[i].size() > 74) {
      lines.push_back(cur);
      cur = indent + names[i];
    } else {
      cur += ", " + names[i];
    }
  }
  lines.push_back(cur);
  return lines;
}

constexpr const char* kVmSelectorsInfo =
    " VMs can be specified by filtering the full list of VMs on the values of zero or more fields. For example, "
    "specifying 'uuid=<some_uuid>' will select only the VM with that uuid, and 'power-state=halted' will select "
    "only VMs whose 'power-state' field is equal to 'halted'. The special pseudo-field 'vm' matches either of "
    "name-label or uuid. Where multiple VMs are matching, the option '--multiple' must be specified to perform the "
    "operation. The full list of fields that can be matched can be obtained by the command 'xe vm-list "
    "params=all'. If no parameters to select VMs are given, the operation will be performed on all VMs.";

}  // namespace

std::string usage_text() {
  return "Usage:\n"
         "  xe <command>\n"
         "    [ -s <server> ]            vmstackd host, over TCP (default: the local unix socket,\n"
         "                               $VMSTACK_SOCKET or " +
         std::string(kDefaultSocket) +
         ")\n"
         "    [ -p <port> ]              TCP port (default: 8080)\n"
         "    [ -u <username> -pw <password> | -pwf <password file> ]\n"
         "                               User authentication (password or file)\n"
         "    [ <other arguments> ... ]  Command-specific options\n"
         "\n"
         "To get help on a specific command:\n"
         "  xe help <command>\n";
}

// What the datamodel declares of a message xe calls, in one paragraph.
std::string message_help(const std::string& wire_name) {
  const auto* m = model::datamodel().message(wire_name);
  if (!m) return {};
  std::string s = wire_name + ": " + m->doc;
  if (!m->operation.empty()) {
    if (const auto* rule = model::vm_operation_rule(m->operation)) {
      std::vector<std::string> states;
      for (const auto& st : rule->power_states) states.push_back(lower(st));
      s += (s.empty() || s.back() == '.' ? " " : ". ") + std::string("Allowed when the VM is ") + join(states, ", ") +
           (rule->on_templates ? "; on templates too." : "; not on templates.");
    }
  }
  if (!m->errors.empty()) s += (s.back() == '.' ? " " : ". ") + std::string("Errors: ") + join(m->errors, ", ") + ".";
  return s;
}

void print_command_help(Printer& p, const Command& c) {
  std::vector<std::string> optn = c.optn;
  std::string desc = c.help;
  if (c.flags & kVmSelectors) {
    optn.push_back("<vm-selectors>");
    desc += kVmSelectorsInfo;
  }
  std::vector<std::pair<std::string, std::string>> rows{{"command name        ", c.name},
                                                        {"reqd params     ", join(c.reqd, ", ")},
                                                        {"optional params ", join(optn, ", ")},
                                                        {"description     ", desc}};
  for (const auto& api : c.api)
    if (auto h = message_help(api); !h.empty()) rows.push_back({"XenAPI          ", h});
  p.table({rows});
}

int do_help(Context& ctx) {
  const auto& table = command_table();
  std::vector<std::string> asked;
  for (const auto& [k, v] : ctx.args.params)
    if (k == "cmd") asked.push_back(v);
  if (!asked.empty()) {
    for (const auto& name : asked) {
      const Command* c = table.find(name);
      if (c) print_command_help(ctx.printer, *c);
      else ctx.printer.line("Unknown command '" + name + "'");
    }
    return 0;
  }
  bool all = ctx.args.flag("all");
  std::vector<std::string> hosts, vms, others;
  for (const auto& [name, c] : table.all()) {
    if (c.flags & kHidden) continue;
    if (!all && !(c.flags & kStandard)) continue;
    if (!all) others.push_back(name);
    else if (name.rfind("host-", 0) == 0) hosts.push_back(name);
    else if (name.rfind("vm-", 0) == 0) vms.push_back(name);
    else others.push_back(name);
  }
  if (ctx.printer.minimal()) {
    std::vector<std::string> names = hosts;
    names.insert(names.end(), vms.begin(), vms.end());
    names.insert(names.end(), others.begin(), others.end());
    ctx.printer.list(names);
    return 0;
  }
  std::string head = usage_text() + "\n";
  if (all) {
    ctx.printer.line(head + "Full command list\n-----------------");
    ctx.printer.list(wrap_names(hosts));
    ctx.printer.line("");
    ctx.printer.list(wrap_names(vms));
    ctx.printer.line("");
    ctx.printer.list(wrap_names(others));
  } else {
    ctx.printer.line(head + "To get a full listing of commands:\n  xe help --all\n\nCommon command list\n"
                            "-------------------");
    ctx.printer.list(wrap_names(others));
  }
  return 0;
}

namespace {

int do_console(Context& ctx) {
  Object vm = select_one_vm(ctx, {});
  std::string console_ref;
  const Value& consoles = vm.record.count("consoles") ? vm.record.at("consoles") : Value();
  if (consoles.is_array())
    for (const auto& c : consoles.as_array()) {
      const Struct* rec = ctx.objects().find("console", c.as_string());
      if (rec && rec->count("protocol") && rec->at("protocol").to_display() == "vt100") {
        console_ref = c.as_string();
        break;
      }
    }
  if (console_ref.empty()) throw failure("No text console available");
  if (!ctx.endpoint()) throw failure("console needs a connection to the daemon's socket");

  // From here on Ctrl-C (stdin not a terminal) or a kill ends the console
  // through the proxy loop, so the session is still logged out.
  SignalFd signals;
  UniqueFd sock = connect_endpoint(*ctx.endpoint());
  std::string status, early;
  int code = open_stream(sock.get(), "/console?ref=" + console_ref + "&session_id=" + ctx.session().ref(), status,
                         early);
  if (code == 404) {
    ctx.io.err << "Server replied with HTTP 404: the console is not available\n";
    return 1;
  }
  if (code != 200) {
    ctx.io.err << "Server said: " << status << "\n";
    return 1;
  }
  ctx.io.out.flush();
  if (!early.empty() && ::write(ctx.io.out_fd, early.data(), early.size()) < 0) return 1;
  bool interactive = ::isatty(ctx.io.in_fd);
  ProxyEnd end;
  {
    RawTerminal raw(ctx.io.in_fd);
    end = proxy(ctx.io.in_fd, ctx.io.out_fd, sock.get(), interactive, signals.fd());
  }
  if (interactive) {
    static const char crlf[] = "\r\n";
    if (::write(ctx.io.out_fd, crlf, 2) < 0) return 1;
  }
  return end == ProxyEnd::Interrupted ? 1 : 0;
}

// event-wait class=<prefix> field=value ... : returns once some object of
// the class matches every condition (value "/=x" means "not x").
int do_event_wait(Context& ctx) {
  std::string cls_name = *ctx.args.get("class");
  const model::ClassDef* cls = class_for_prefix(cls_name);
  if (!cls) cls = model::datamodel().cls_ci(cls_name);
  if (!cls || !cls->stored) throw failure("Cli listening for class '" + cls_name + "' not currently implemented");
  auto fields = cli_fields(*cls);
  auto filters = filters_from(ctx.args, {"class", "timeout"});
  for (const auto& f : filters) check_filter_key(fields, f.key);

  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> deadline;
  if (auto t = ctx.args.get("timeout")) {
    double secs = 0;
    try {
      secs = std::stod(*t);
    } catch (const std::exception&) {
      throw failure("Failed to parse parameter 'timeout': expecting a number of seconds");
    }
    deadline = clock::now() + std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
  }
  // event.from with an empty token first reports every current object, so
  // a condition that already holds returns at once, and the token it hands
  // back makes sure no change is missed after that.
  std::string token;
  for (;;) {
    double wait = 30.0;
    if (deadline) {
      auto left = std::chrono::duration<double>(*deadline - clock::now()).count();
      if (left <= 0 && !token.empty()) throw failure("Timed out waiting for a matching " + cls_name);
      wait = std::max(0.0, std::min(wait, left));
    }
    Value r = ctx.session().call("event.from", Array{Array{Value(cls->name)}, token, wait});
    token = r["token"].to_display();
    ObjectCache fresh(ctx.session());  // references may point at objects created meanwhile
    for (const auto& ev : r["events"].as_array()) {
      const Value& snap = ev["snapshot"];
      if (!snap.is_struct() || ev["operation"].to_display() == "del") continue;
      bool ok = true;
      for (const auto& f : filters)
        if (!matches(snap.as_struct(), fields, f, fresh)) {
          ok = false;
          break;
        }
      if (ok) return 0;
    }
  }
}

}  // namespace

void add_misc_commands(CommandTable& t) {
  t.add({"help", {}, {"all"}, "Print help on one command (xe help <command>) or list the commands.",
         kNoSession, nullptr, KeySource::Fixed, do_help});
  t.add({"console", {}, {"vm"},
         "Attach to the serial console of a running VM. Press Ctrl-] to detach. When stdin is not a terminal, "
         "the input is sent to the guest and its output printed until the daemon closes the stream.",
         kVmSelectors | kStandard, model::datamodel().cls("VM"), KeySource::Filters, do_console});
  t.add({"event-wait", {"class"}, {"timeout"},
         "Wait for the event that satisfies the conditions given on the command line (field=value, or "
         "field=/=value for 'not equal'); with timeout=<seconds>, give up after that long.",
         0, nullptr, KeySource::Fixed, do_event_wait});
}

}  // namespace vmstack::cli
