// xe's command table: name -> (required/optional params, help, handler).
// The generic <class>-* commands are generated from the datamodel; the VM
// verbs, help, console and event-wait are declared beside their handlers.
#pragma once

#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "api/client.h"
#include "core/error.h"
#include "cli/args.h"
#include "cli/printer.h"
#include "cli/records.h"
#include "cli/session.h"

namespace vmstack::cli {

// Where a command reads and writes. The fds are used by `console`, which
// copies raw bytes; everything else goes through the streams.
struct Io {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  int in_fd = 0;
  int out_fd = 1;
};

class Context {
 public:
  Context(const Args& a, Printer& p, Io& io, Session* s, const api::Endpoint* ep)
      : args(a), printer(p), io(io), session_(s), objects_(s ? std::make_unique<ObjectCache>(*s) : nullptr), ep_(ep) {}

  const Args& args;
  Printer& printer;
  Io& io;

  Session& session() { return *session_; }
  ObjectCache& objects() { return *objects_; }
  // The daemon's address, for commands that open their own stream (console);
  // null when the session runs over an in-process transport.
  const api::Endpoint* endpoint() const { return ep_; }

 private:
  Session* session_;
  std::unique_ptr<ObjectCache> objects_;
  const api::Endpoint* ep_;
};

enum CommandFlags : unsigned {
  kStandard = 1,     // listed by plain `xe help`
  kVmSelectors = 2,  // takes <vm-selectors> (any VM field=value, vm=)
  kHidden = 4,       // not listed by help
  kNoSession = 8,    // runs without connecting (help)
};

// What the completer offers as parameter names beyond reqd/optn.
enum class KeySource {
  Fixed,     // only reqd + optn
  Filters,   // every field of `cls` (lists, selectors)
  Settable,  // RW fields of `cls` (param-set: scalars as k=, maps as k:)
};

struct Command {
  std::string name;
  std::vector<std::string> reqd;
  std::vector<std::string> optn;
  std::string help;
  unsigned flags = 0;
  const model::ClassDef* cls = nullptr;
  KeySource keys = KeySource::Fixed;
  std::function<int(Context&)> run;  // returns the exit code
  // The XenAPI messages the command makes ("VM.start"): `xe help` shows
  // their declaration from the datamodel (what they do, when they are
  // allowed, the errors they raise).
  std::vector<std::string> api = {};
};

class CommandTable {
 public:
  void add(Command c) { cmds_[c.name] = std::move(c); }
  const Command* find(const std::string& name) const {
    auto it = cmds_.find(name);
    return it == cmds_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, Command>& all() const { return cmds_; }

 private:
  std::map<std::string, Command> cmds_;
};

// The full table (built once per process; cheap).
const CommandTable& command_table();

// Registration, one family per file.
void add_generic_commands(CommandTable& t);
void add_vm_commands(CommandTable& t);
void add_misc_commands(CommandTable& t);
void add_transfer_commands(CommandTable& t);  // vdi-import, vdi-export
void add_network_commands(CommandTable& t);   // network-create/-destroy, vif-create/-destroy

// Filters from the command line: every key=value that is not a std param
// and not one of `own` (the command's own parameters).
std::vector<Filter> filters_from(const Args& a, const std::vector<std::string>& own);

// Parses xe's sizes: "268435456", "256MiB", "1GiB", "512KiB", "2TiB".
// Throws CliError naming `param` on junk.
int64_t parse_size(const std::string& param, const std::string& text);

// Exactly one VM from the VM selectors (xe's errors for none / several).
Object select_one_vm(Context& ctx, const std::vector<std::string>& own);

// An API error as xe prints it, references shown as "uuid (name-label)".
std::string api_error_text(const ApiError& e, ObjectCache& objects);

// "Multiple failure": one line per failed object, printed to stdout by xe.
struct MultipleFailure {
  std::vector<std::pair<std::string, std::string>> failures;  // (uuid, message)
};

}  // namespace vmstack::cli
