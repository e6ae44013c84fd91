// Writes to a VM's record that keep VM.allowed_operations in step with the
// lifecycle table (model/lifecycle.h), and the per-VM operation lock kept in
// VM.current_operations. Both are atomic read-modify-writes on the store.
#pragma once

#include <string>

#include "core/value.h"
#include "model/store.h"

namespace vmstack::ops {

// Applies `changes` to the VM and recomputes allowed_operations, in one
// atomic write.
void update_vm(model::Store& store, const std::string& vm, const Struct& changes);
void refresh_allowed_operations(model::Store& store, const std::string& vm);

// Throws the lifecycle table's error (VM_IS_TEMPLATE, VM_BAD_POWER_STATE,
// OTHER_OPERATION_IN_PROGRESS) if `op` may not start on the VM now.
void check_vm_operation(model::Store& store, const std::string& vm, const std::string& op);

// Holds VM.current_operations[task] = op for the duration of a verb, taken
// only if the lifecycle table allows `op` now (checked and recorded in the
// same atomic write, so two verbs can never both pass the check). Another
// verb meanwhile gets OTHER_OPERATION_IN_PROGRESS [VM, vm, op, task] unless
// the table lets them run together.
class OpLock {
 public:
  OpLock(model::Store& store, const std::string& vm, const std::string& op, const std::string& task);
  ~OpLock();
  OpLock(const OpLock&) = delete;
  OpLock& operator=(const OpLock&) = delete;
  const std::string& key() const { return key_; }

 private:
  model::Store& store_;
  std::string vm_, key_;
};

}  // namespace vmstack::ops
