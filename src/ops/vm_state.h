// VM power-state rules shared by the verbs: which operations each state
// allows (the allowed_operations field clients read), the precondition check
// that produces VM_BAD_POWER_STATE, and the per-VM operation lock recorded in
// current_operations.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "model/database.h"

namespace vmstack::ops {

// Recomputes VM.allowed_operations from power_state / is_a_template.
void set_allowed_operations(model::Database& db, const std::string& vm);

// Throws VM_BAD_POWER_STATE [vm, expected, actual] (lowercase, as xapi) unless
// the VM is in one of `allowed` (API spelling: "Halted"...). Templates throw
// VM_IS_TEMPLATE [vm] when `no_templates`.
void require_power_state(model::Database& db, const std::string& vm, const std::vector<std::string>& allowed,
                         bool no_templates = true);

// Holds VM.current_operations[task] = op for the duration of a verb; a second
// verb on the same VM meanwhile gets OTHER_OPERATION_IN_PROGRESS [VM, ref].
class OpLock {
 public:
  OpLock(model::Database& db, std::mutex& mu, const std::string& vm, const std::string& op, const std::string& task);
  ~OpLock();
  OpLock(const OpLock&) = delete;
  OpLock& operator=(const OpLock&) = delete;

 private:
  model::Database& db_;
  std::mutex& mu_;
  std::string vm_, key_;
};

}  // namespace vmstack::ops
