// ipvsadm compatibility: argument parsing, execution against a ServiceTable,
// and output laid out like ipvsadm's (-L, --stats, --rate, -c, -S, --timeout).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lb/service_table.h"

namespace vmstack::lb {

enum class Op {
  None,
  AddService,   // -A
  EditService,  // -E
  DelService,   // -D
  Clear,        // -C
  Restore,      // -R  (the CLI reads stdin and sends a batch)
  Save,         // -S
  AddDest,      // -a
  EditDest,     // -e
  DelDest,      // -d
  List,         // -L / -l
  Zero,         // -Z
  SetTimeouts,  // --set
  StartDaemon,  // --start-daemon
  StopDaemon,   // --stop-daemon
  Help,         // -h
  Version,      // -v
};

// A command that changes the rule table (and so belongs in a state file):
// the service and destination edits, clear and the timeouts.
bool is_rule_change(Op op);

struct ListOptions {
  bool numeric = false;      // -n (always numeric output; accepted)
  bool stats = false;        // --stats
  bool rate = false;         // --rate
  bool conns = false;        // -c
  bool exact = false;        // --exact
  bool timeout = false;      // --timeout
  bool daemon = false;       // --daemon
  bool thresholds = false;   // --thresholds
  bool persistent_conn = false;  // --persistent-conn
  bool nosort = false;       // --nosort
};

struct Command {
  Op op = Op::None;
  bool has_service = false;
  ServiceConfig svc;            // key + scheduler/persistence for -A/-E
  bool has_dest = false;
  DestConfig dest;              // -r/-w/-x/-y/-m/-g/-i
  ListOptions list;
  Timeouts timeouts;            // --set
  std::string daemon_state;     // master | backup (start/stop daemon)
  std::string mcast_interface;  // --mcast-interface
  int syncid = 0;               // --syncid
  bool has_syncid = false;
};

struct ParseResult {
  std::optional<Command> cmd;
  std::string error;  // ipvsadm-style message when !cmd
  int exit_code = 0;  // what ipvsadm exits with for this error (2, or 255 for "try -h")
  // Options for the client itself (not part of the command).
  std::string socket_path;  // --socket PATH
};

// argv without the program name. Host and service names are resolved
// unless `resolve` is false (the daemon and the fuzzers never resolve).
ParseResult parse_ipvsadm_args(const std::vector<std::string>& args, bool resolve = true);
// Parse one line of `ipvsadm -S` output (for -R and the state file).
ParseResult parse_save_line(const std::string& line, bool resolve = true);

// Every check ipvsadm makes on a command's fields (which options the command
// needs or refuses, ranges, timeouts, weights, thresholds, netmasks, daemon
// state, syncid, multicast interface, zero ports): "" when the command is
// valid, else ipvsadm's message (the CLI prints it and exits 2). The parser
// calls it on every command it returns and vmstack-lbd on every command from
// its control socket, so both refuse exactly the same things.
std::string validate_command(const Command& c);

nlohmann::json command_to_json(const Command& c);
// Throws LbError (Invalid) for malformed JSON commands; numbers outside
// their field's limits and bad addresses get the CLI's message. The result
// still needs validate_command().
Command command_from_json(const nlohmann::json& j);

// ---- output ----
// with_header: the "IP Virtual Server version" line (-L without -t).
std::string format_list(const std::vector<ServiceInfo>& svcs, const ListOptions& o,
                       bool with_header = true);
std::string format_connections(const std::vector<ConnEntry>& conns, const ListOptions& o);
std::string format_save(const std::vector<ServiceInfo>& svcs, const Timeouts* t = nullptr);
std::string format_timeouts(const Timeouts& t);
std::string usage_text(const std::string& program = "vmstack-ipvsadm");
std::string version_text();

// ---- execution (daemon side) ----
struct ExecResult {
  int rc = 0;  // 0, or 255 like ipvsadm when the operation fails
  std::string out;
  std::string err;
};

struct ExecHooks {
  // --start-daemon / --stop-daemon / -L --daemon. Return text for -L
  // --daemon; throw LbError on failure. Unset: those commands fail with
  // "No daemon is running"-style errors (no connection sync available).
  std::function<void(const Command&)> start_daemon;
  std::function<void(const Command&)> stop_daemon;
  std::function<std::string()> list_daemon;
};

ExecResult execute_command(ServiceTable& table, const Command& c, const ExecHooks& hooks = {});
// Apply a batch (restore). All or nothing: on the first error ("line N:
// ...") the rules are put back as they were before the batch.
// `lines` (optional, same size as cmds) gives the line numbers for messages.
ExecResult execute_batch(ServiceTable& table, const std::vector<Command>& cmds,
                        const ExecHooks& hooks = {}, const std::vector<int>* lines = nullptr);
// Rules as a restore batch: the text of `ipvsadm -S -n` (plus a --set line).
std::string save_state(const ServiceTable& table);

struct LoadReport {
  size_t applied = 0;                // rule lines applied
  std::vector<std::string> skipped;  // one "line N: why" per line left out
  bool ok() const { return skipped.empty(); }
};
// Loads a state file's text into the table: the table is cleared (timeouts
// back to their defaults), then every line is parsed, validated and applied
// on its own. A line that fails any of these is skipped and every other line
// still loads: one bad line costs one rule, not the file. With a `source`
// (the file's path) each skipped line is logged as a warning naming the
// file, the line and why. Names are not resolved (the daemon writes the file
// numerically, and must not wait for DNS to start).
LoadReport load_state(ServiceTable& table, const std::string& text, const std::string& source = {});

}  // namespace vmstack::lb
