// docs/api-reference.md from the declarations: what a client author needs
// (classes, fields, messages with parameters, results, errors, async and the
// lifecycle rules) in one page, never edited by hand.
#include <sstream>

#include "core/strings.h"
#include "model/datamodel.h"
#include "model/lifecycle.h"

namespace vmstack::model {

namespace {

const char* qual_name(Qual q) {
  switch (q) {
    case Qual::RO_runtime: return "RO";
    case Qual::RO_constructor: return "RO (constructor)";
    case Qual::RW: return "RW";
  }
  return "?";
}

// Markdown table cells: no raw pipes or newlines.
std::string cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string anchor(const std::string& s) { return lower(s); }

std::string default_text(const Field& f) {
  if (f.derived()) return "(computed)";
  const Value& v = f.default_value;
  if (v.is_string()) return v.as_string().empty() ? "\"\"" : "\"" + v.as_string() + "\"";
  if (v.is_array()) return "{}";
  if (v.is_struct()) return "{}";
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  return v.to_display();
}

std::string states_text(const OperationRule& r) {
  std::vector<std::string> l;
  for (const auto& s : r.power_states) l.push_back(lower(s));
  return join(l, ", ");
}

void message_section(std::ostringstream& o, const Message& m) {
  o << "#### " << m.wire_name() << "\n\n" << m.doc << "\n\n";
  std::vector<std::string> params;
  if (m.session) params.push_back("`session_id` (session ref)");
  for (const auto& p : m.params) {
    std::string s = "`" + p.name + "` (" + p.type.to_string() + ")";
    if (!p.doc.empty()) s += ": " + p.doc;
    if (p.default_value) s += " (may be omitted; default " + p.default_value->to_display() + ")";
    params.push_back(s);
  }
  o << "- Parameters: " << (params.empty() ? "none" : "") << "\n";
  for (const auto& p : params) o << "  - " << p << "\n";
  o << "- Result: " << (m.result ? m.result->to_string() : "void") << "\n";
  if (!m.errors.empty()) {
    o << "- Errors: ";
    for (size_t i = 0; i < m.errors.size(); ++i) o << (i ? ", " : "") << "`" << m.errors[i] << "`";
    o << "\n";
  }
  if (!m.operation.empty()) {
    const OperationRule* r = vm_operation_rule(m.operation);
    o << "- Lifecycle: operation `" << m.operation << "`";
    if (r) {
      o << ", allowed when " << states_text(*r);
      o << (r->on_templates ? (r->on_default_templates ? "; on templates too" : "; on templates too (not built-in ones)")
                            : "; not on templates");
    }
    o << "\n";
  }
  o << "- Async: " << (m.async ? "yes (`Async." + m.wire_name() + "` returns a task)" : "no") << "\n\n";
}

}  // namespace

std::string api_reference_markdown(const Datamodel& dm) {
  std::ostringstream o;
  o << "# vmstack XenAPI reference\n\n"
    << "Generated from the datamodel declarations (src/model/classes/*.cpp, src/model/lifecycle.cpp) by\n"
    << "`build/bin/vmstack-gen-docs > docs/api-reference.md`; do not edit by hand (a test fails when this\n"
    << "file is stale). Every call takes the session reference first unless marked otherwise; errors come\n"
    << "back as XenAPI failures `[CODE, params...]` (see [api.md](api.md)).\n\n";
  o << "## Classes\n\n";
  for (const auto& c : dm.classes) o << "- [" << c.name << "](#class-" << anchor(c.name) << "): " << c.doc << "\n";
  o << "\n## VM lifecycle\n\n"
    << "Each VM verb names an operation; the operation's row says in which power states it may start (else\n"
    << "`VM_BAD_POWER_STATE [vm, allowed, actual]`), whether templates allow it (else `VM_IS_TEMPLATE [vm, op]`).\n"
    << "While it runs it is recorded in `VM.current_operations`; another operation meanwhile gets\n"
    << "`OTHER_OPERATION_IN_PROGRESS [VM, vm, op, task]`, except that clone, copy and export may run together\n"
    << "and a hard shutdown (or hard reboot) may override any other operation but itself.\n"
    << "`VM.allowed_operations` lists the operations whose row allows the current state.\n\n"
    << "| operation | allowed in | templates |\n|---|---|---|\n";
  for (const auto& r : vm_operation_rules())
    o << "| " << r.op << " | " << states_text(r) << " | "
      << (r.on_templates ? (r.on_default_templates ? "yes" : "yes (not built-in)") : "no") << " |\n";
  o << "\n";
  for (const auto& c : dm.classes) {
    o << "## Class: " << c.name << "\n\n" << c.doc << ".";
    if (!c.persistent) o << " Not persistent: objects live in the daemon's memory only.";
    if (!c.cli_prefix.empty()) o << " xe prefix: `" << c.cli_prefix << "-`.";
    o << "\n\n";
    if (!c.fields.empty()) {
      o << "### Fields\n\n| field | type | qualifier | default | description |\n|---|---|---|---|---|\n";
      for (const auto& f : c.fields)
        o << "| " << f.name << " | " << cell(f.type.to_string()) << " | " << qual_name(f.qual) << " | "
          << cell(default_text(f)) << " | " << cell(f.doc) << " |\n";
      o << "\n";
    }
    bool any_declared = false;
    for (const auto& m : c.messages) any_declared = any_declared || m.impl == Impl::custom;
    if (any_declared) {
      o << "### Messages\n\n";
      for (const auto& m : c.messages)
        if (m.impl == Impl::custom) message_section(o, m);
    }
    // Refused messages, one line per reason, in declaration order.
    std::vector<std::pair<std::string, std::vector<std::string>>> refused;
    for (const auto& m : c.messages) {
      if (m.impl != Impl::refused) continue;
      if (refused.empty() || refused.back().first != m.refusal) refused.push_back({m.refusal, {}});
      refused.back().second.push_back("`" + m.name + "`");
    }
    if (!refused.empty()) {
      o << "### Not available on this host\n\nThese xapi messages answer `OPERATION_NOT_ALLOWED [\"<Class>.<message>: "
           "<reason>\"]`, whatever their arguments (after a valid session).\n\n";
      for (const auto& [reason, names] : refused) o << "- " << reason << ": " << join(names, ", ") << "\n";
      o << "\n";
    }
    std::vector<const Message*> gen;
    for (const auto& m : c.messages)
      if (m.impl != Impl::custom && m.impl != Impl::refused) gen.push_back(&m);
    if (!gen.empty()) {
      o << "### Generated accessors\n\nSynchronous only (no `Async.` form).\n\n| message | parameters | result |\n|---|---|---|\n";
      for (const auto* m : gen) {
        std::vector<std::string> ps;
        for (const auto& p : m->params) ps.push_back(p.name + ": " + p.type.to_string());
        o << "| " << m->wire_name() << " | " << cell(join(ps, ", ")) << " | "
          << cell(m->result ? m->result->to_string() : "void") << " |\n";
      }
      o << "\n";
    }
  }
  o << "## Enums\n\n| enum | values |\n|---|---|\n";
  for (const auto& e : dm.enums) o << "| " << e.name << " | " << cell(join(e.values, ", ")) << " |\n";
  return o.str();
}

}  // namespace vmstack::model
