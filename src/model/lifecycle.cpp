#include "model/lifecycle.h"

#include <algorithm>

#include "core/strings.h"

namespace vmstack::model {

namespace {

const std::vector<std::string> kAll = {"Halted", "Paused", "Running", "Suspended"};

std::vector<OperationRule> build_rules() {
  // power states in the order xapi reports them in VM_BAD_POWER_STATE.
  const std::vector<std::string> halted{"Halted"}, running{"Running"}, paused{"Paused"}, suspended{"Suspended"};
  std::vector<OperationRule> r = {
      {"start", halted},
      {"start_on", halted, false, false, false},
      {"provision", halted, true, false},
      {"make_into_template", halted},
      {"changing_VCPUs", halted, true},
      {"changing_static_range", halted, true},
      {"changing_memory_limits", halted, true},
      {"changing_dynamic_range", {"Halted", "Running"}, true},
      {"unpause", paused},
      {"resume", suspended},
      {"resume_on", suspended, false, false, false},
      {"clean_reboot", running},
      {"clean_shutdown", running},
      {"pause", running},
      {"suspend", running},
      {"clone", halted, true, true},
      {"copy", halted, true, true},
      {"destroy", {"Halted", "Suspended"}, true},
      {"export", {"Halted", "Suspended"}, true, true},
      {"hard_reboot", {"Paused", "Running"}},
      {"shutdown", {"Paused", "Suspended", "Running"}, false, false, false},
      {"hard_shutdown", {"Paused", "Suspended", "Running"}},
      {"power_state_reset", kAll, false, false, false},
  };
  return r;
}

std::string lower_states(const std::vector<std::string>& states) {
  std::vector<std::string> l;
  for (const auto& s : states) l.push_back(lower(s));
  return join(l, ", ");
}

bool is_true(const Value& v) { return v.is_bool() && v.as_bool(); }

}  // namespace

const std::vector<OperationRule>& vm_operation_rules() {
  static const std::vector<OperationRule> rules = build_rules();  // immutable table
  return rules;
}

const OperationRule* vm_operation_rule(std::string_view op) {
  for (const auto& r : vm_operation_rules())
    if (r.op == op) return &r;
  return nullptr;
}

bool allowed_concurrently(std::string_view op, const Struct& current) {
  if (current.empty()) return true;
  auto all_in = [&](std::initializer_list<std::string_view> group) {
    auto in = [&](std::string_view o) { return std::find(group.begin(), group.end(), o) != group.end(); };
    if (!in(op)) return false;
    for (const auto& [task, cur] : current)
      if (!cur.is_string() || !in(cur.as_string())) return false;
    return true;
  };
  if (all_in({"clone", "copy", "export"})) return true;
  // An operator can always pull the plug on a VM whose clean shutdown,
  // reboot or start hangs: a hard shutdown overrides them (as in xapi).
  auto current_has = [&](std::initializer_list<std::string_view> ops) {
    for (const auto& [task, cur] : current)
      if (cur.is_string() && std::find(ops.begin(), ops.end(), cur.as_string()) != ops.end()) return true;
    return false;
  };
  if (op == "hard_shutdown") return !current_has({"hard_shutdown"});
  if (op == "hard_reboot") return !current_has({"hard_shutdown", "hard_reboot"});
  return false;
}

std::optional<ApiError> vm_operation_error(const std::string& vm_ref, const Struct& vm, std::string_view op) {
  const OperationRule* rule = vm_operation_rule(op);
  if (!rule) return ApiError(errors::OPERATION_NOT_ALLOWED, {"unknown VM operation " + std::string(op)});
  auto field = [&](const char* k) -> const Value& {
    static const Value nil;  // immutable sentinel
    auto it = vm.find(k);
    return it == vm.end() ? nil : it->second;
  };
  if (is_true(field("is_control_domain")))
    return ApiError(errors::OPERATION_NOT_ALLOWED,
                    {"VM " + vm_ref + " is the control domain (the host itself): no " + std::string(op) + " on it"});
  // An operator's block (blocked_operations: op -> error code) wins over
  // everything but the control domain, as in xapi.
  if (const Value& blocked = field("blocked_operations"); blocked.is_struct()) {
    auto it = blocked.as_struct().find(std::string(op));
    if (it != blocked.as_struct().end()) return ApiError(errors::OPERATION_BLOCKED, {vm_ref, it->second.to_display()});
  }
  if (is_true(field("is_a_template"))) {
    bool ok = is_true(field("is_default_template")) ? rule->on_default_templates : rule->on_templates;
    if (!ok) return ApiError(errors::VM_IS_TEMPLATE, {vm_ref, std::string(op)});
  }
  const Value& ps = field("power_state");
  std::string state = ps.is_string() ? ps.as_string() : "Halted";
  if (std::find(rule->power_states.begin(), rule->power_states.end(), state) == rule->power_states.end())
    return ApiError(errors::VM_BAD_POWER_STATE, {vm_ref, lower_states(rule->power_states), lower(state)});
  const Value& cur = field("current_operations");
  if (cur.is_struct() && !allowed_concurrently(op, cur.as_struct())) {
    const auto& [task, cop] = *cur.as_struct().begin();
    return ApiError(errors::OTHER_OPERATION_IN_PROGRESS, {"VM", vm_ref, cop.to_display(), task});
  }
  return std::nullopt;
}

Array vm_allowed_operations(const Struct& vm) {
  Array out;
  for (const auto& r : vm_operation_rules())
    if (r.listed && !vm_operation_error("", vm, r.op)) out.emplace_back(r.op);
  return out;
}

}  // namespace vmstack::model
