// The VM lifecycle table: for each operation (vm_operations), the power
// states it is allowed in, whether templates allow it, and which operations
// may run beside it. The one place these rules live: a verb is refused from
// it (VM_BAD_POWER_STATE, VM_IS_TEMPLATE, OTHER_OPERATION_IN_PROGRESS with
// xapi's parameters) and VM.allowed_operations is computed from it.
// Mirrors xapi's xapi_vm_lifecycle.ml for the operations vmstack implements.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/value.h"

namespace vmstack::model {

struct OperationRule {
  std::string op;                         // a vm_operations value
  std::vector<std::string> power_states;  // allowed in, in xapi's order (API spelling: "Halted")
  bool on_templates = false;              // allowed on (non-default) templates
  bool on_default_templates = false;      // allowed on the built-in templates too
  // Shown in allowed_operations (xapi lists only real operations there;
  // start_on, resume_on and shutdown are variants of listed ones).
  bool listed = true;
};

const std::vector<OperationRule>& vm_operation_rules();
const OperationRule* vm_operation_rule(std::string_view op);  // nullptr if unknown

// Why `op` may not start on the VM `vm_ref` whose stored record is `vm`
// (power_state, is_a_template, is_default_template, current_operations), or
// nullopt when it may:
//   VM_IS_TEMPLATE [vm, op]
//   VM_BAD_POWER_STATE [vm, "halted, suspended", "running"] (allowed states, lowercase, xapi's order)
//   OTHER_OPERATION_IN_PROGRESS [VM, vm, current op, its task]
std::optional<ApiError> vm_operation_error(const std::string& vm_ref, const Struct& vm, std::string_view op);

// Whether `op` may run while the operations in `current` (task -> op) do
// (xapi's is_allowed_concurrently): the long copies (clone, copy, export)
// together, and a hard shutdown over anything but another hard shutdown.
bool allowed_concurrently(std::string_view op, const Struct& current);

// VM.allowed_operations for a record: every listed operation with no error.
Array vm_allowed_operations(const Struct& vm);

}  // namespace vmstack::model
