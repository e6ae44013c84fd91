// VM messages that ask rather than act (allowed devices, possible hosts,
// whether an operation or a boot would pass) and xapi's explicit setters of
// fields the lifecycle does not guard.
#include <set>

#include "core/error.h"
#include "model/lifecycle.h"
#include "ops/admission.h"
#include "ops/dispatch.h"
#include "ops/vm_queries.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

namespace {

// xapi's limits: 16 VBD and 7 VIF device slots for a guest.
constexpr int kVbdSlots = 16;
constexpr int kVifSlots = 7;

Array free_devices(model::Store& store, const std::string& vm, const char* cls, const char* field, int slots) {
  std::set<std::string> used;
  for (const auto& d : store.find(cls, "VM", vm)) used.insert(store.get_field(cls, d, field).as_string());
  Array out;
  for (int i = 0; i < slots; ++i)
    if (!used.count(std::to_string(i))) out.emplace_back(std::to_string(i));
  return out;
}

}  // namespace

void bind_vm_queries(Dispatcher& d, model::Store& store, Admission& admission, const std::string& host) {
  d.bind("VM.get_allowed_VBD_devices", [&store](const Call&, const Args& a) {
    store.get_field("VM", a.ref("vm"), "uuid");  // HANDLE_INVALID
    return Value(free_devices(store, a.ref("vm"), "VBD", "userdevice", kVbdSlots));
  });
  d.bind("VM.get_allowed_VIF_devices", [&store](const Call&, const Args& a) {
    store.get_field("VM", a.ref("vm"), "uuid");
    return Value(free_devices(store, a.ref("vm"), "VIF", "device", kVifSlots));
  });
  d.bind("VM.get_possible_hosts", [&store, &host](const Call&, const Args& a) {
    auto rec = store.get_record("VM", a.ref("vm"));
    Array out;
    if (!rec["is_a_template"].as_bool() && !rec["is_control_domain"].as_bool()) out.emplace_back(host);
    return Value(out);
  });
  d.bind("VM.assert_can_boot_here", [&store, &admission, &host](const Call&, const Args& a) {
    const auto& vm = a.ref("self");
    if (a.ref("host") != host) throw ApiError(errors::HANDLE_INVALID, {"host", a.ref("host")});
    check_vm_operation(store, vm, "start");  // templates, power state, other operations
    admission.check(vm);                     // HOST_DISABLED, HOST_NOT_ENOUGH_FREE_MEMORY
    return Value();
  });
  d.bind("VM.assert_operation_valid", [&store](const Call&, const Args& a) {
    auto rec = store.get_record("VM", a.ref("self"));
    if (auto e = model::vm_operation_error(a.ref("self"), rec, a.str("op"))) throw *e;
    return Value();
  });
  d.bind("VM.update_allowed_operations", [&store](const Call&, const Args& a) {
    refresh_allowed_operations(store, a.ref("self"));
    return Value();
  });
  // The record as it stands: vmstack applies no change to a running guest
  // that its record does not show.
  d.bind("VM.get_boot_record", [&store](const Call&, const Args& a) { return Value(store.get_record("VM", a.ref("self"))); });
  d.bind("VM.get_cooperative", [&store](const Call&, const Args& a) {
    store.get_field("VM", a.ref("self"), "uuid");
    return Value(true);  // QEMU's balloon has no target a guest could miss
  });
  d.bind("VM.compute_memory_overhead", [&store](const Call&, const Args& a) {
    store.get_field("VM", a.ref("vm"), "uuid");
    return Value(Admission::kOverhead);
  });
  for (const char* f : {"order", "start_delay", "shutdown_delay", "ha_always_run", "ha_restart_priority",
                        "has_vendor_device", "NVRAM", "bios_strings", "domain_type"}) {
    d.bind(std::string("VM.set_") + f, [&store, field = std::string(f)](const Call&, const Args& a) {
      update_vm(store, a.ref("self"), {{field, a.value("value")}});
      return Value();
    });
  }
  d.bind("VM.set_suspend_VDI", [&store](const Call&, const Args& a) {
    // xapi: only to the same VDI (its contents are checked to be identical).
    if (store.get_field("VM", a.ref("self"), "suspend_VDI").as_string() != a.ref("value"))
      throw ApiError(errors::OPERATION_NOT_ALLOWED, {"VM.set_suspend_VDI: the new VDI must be the current suspend VDI"});
    return Value();
  });
  d.bind("VM.set_blocked_operations", [&store](const Call&, const Args& a) {
    update_vm(store, a.ref("self"), {{"blocked_operations", a.map("value")}});
    return Value();
  });
  d.bind("VM.add_to_blocked_operations", [&store](const Call&, const Args& a) {
    store.modify("VM", a.ref("self"), [&](Struct& rec) {
      auto& m = rec["blocked_operations"].as_struct();
      if (m.count(a.str("key")))
        throw ApiError(errors::MAP_DUPLICATE_KEY, {"VM", "blocked_operations", a.ref("self"), a.str("key")});
      m[a.str("key")] = a.str("value");
      rec["allowed_operations"] = model::vm_allowed_operations(rec);
    });
    return Value();
  });
  d.bind("VM.remove_from_blocked_operations", [&store](const Call&, const Args& a) {
    store.modify("VM", a.ref("self"), [&](Struct& rec) {
      rec["blocked_operations"].as_struct().erase(a.str("key"));
      rec["allowed_operations"] = model::vm_allowed_operations(rec);
    });
    return Value();
  });
  d.bind("VM.add_to_NVRAM", [&store](const Call&, const Args& a) {
    store.modify("VM", a.ref("self"), [&](Struct& rec) {
      auto& m = rec["NVRAM"].as_struct();
      if (m.count(a.str("key"))) throw ApiError(errors::MAP_DUPLICATE_KEY, {"VM", "NVRAM", a.ref("self"), a.str("key")});
      m[a.str("key")] = a.str("value");
    });
    return Value();
  });
  d.bind("VM.remove_from_NVRAM", [&store](const Call&, const Args& a) {
    store.modify("VM", a.ref("self"), [&](Struct& rec) { rec["NVRAM"].as_struct().erase(a.str("key")); });
    return Value();
  });
}

}  // namespace vmstack::ops
