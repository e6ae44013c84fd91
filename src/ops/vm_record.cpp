#include "ops/vm_record.h"

#include "core/error.h"
#include "core/uuid.h"
#include "model/lifecycle.h"
#include "ops/metrics.h"

namespace vmstack::ops {

void update_vm(model::Store& store, const std::string& vm, const Struct& changes) {
  store.modify("VM", vm, [&](Struct& r) {
    for (const auto& [k, v] : changes) r[k] = v;
    r["allowed_operations"] = model::vm_allowed_operations(r);
  });
  // Every power-state change comes through here: the VM's metrics follow.
  if (changes.count("power_state") || changes.count("memory_dynamic_max")) sync_vm_metrics(store, vm);
}

void refresh_allowed_operations(model::Store& store, const std::string& vm) { update_vm(store, vm, {}); }

void check_vm_operation(model::Store& store, const std::string& vm, const std::string& op) {
  auto rec = store.read("VM", vm).record;  // HANDLE_INVALID for unknown refs
  if (auto e = model::vm_operation_error(vm, rec, op)) throw *e;
}

OpLock::OpLock(model::Store& store, const std::string& vm, const std::string& op, const std::string& task)
    : store_(store), vm_(vm), key_(task.empty() ? "OpaqueRef:" + make_uuid() : task) {
  store_.modify("VM", vm_, [&](Struct& rec) {
    if (auto e = model::vm_operation_error(vm_, rec, op)) throw *e;
    rec["current_operations"].as_struct()[key_] = op;
    rec["allowed_operations"] = model::vm_allowed_operations(rec);
  });
}

OpLock::~OpLock() {
  try {
    store_.modify("VM", vm_, [&](Struct& rec) {
      rec["current_operations"].as_struct().erase(key_);
      rec["allowed_operations"] = model::vm_allowed_operations(rec);
    });
  } catch (const ApiError&) {
    // The verb destroyed the VM itself: nothing left to unlock.
  }
}

}  // namespace vmstack::ops
