// VM power verbs: start, shutdown, reboot, pause, suspend/resume. Each checks
// the power state (VM_BAD_POWER_STATE [vm, expected, actual]), takes the VM's
// operation lock, then lets Guests drive QEMU.
#include "core/error.h"
#include "ops/guests.h"
#include "ops/storage.h"
#include "ops/vm_state.h"
#include "ops/xapi.h"

namespace vmstack::ops {

namespace {

bool opt_bool(const Array& a, size_t i) { return a.size() > i && !a[i].is_nil() && a[i].as_bool(); }

// Registers VM.<name>(vm, ...) with its precondition and lock around `fn`.
void verb(MethodTable& t, const std::string& name, size_t arity, size_t min_arity, std::vector<std::string> states,
          std::function<void(CallCtx&, const std::string& vm, const Array&)> fn) {
  Method m;
  m.arity = arity;
  m.min_arity = min_arity;
  m.fn = [name, states = std::move(states), fn = std::move(fn)](CallCtx& x, const Array& a) {
    const auto& vm = a.at(0).as_string();
    auto& db = x.xapi.db();
    require_power_state(db, vm, states);
    OpLock lock(db, x.xapi.op_mutex(), vm, name, x.task);
    // Re-check under the lock: another verb may have finished in between.
    require_power_state(db, vm, states);
    fn(x, vm, a);
    return Value();
  };
  t.add("VM." + name, std::move(m));
}

}  // namespace

void register_vm_power(MethodTable& t) {
  auto start = [](CallCtx& x, const std::string& vm, const Array& a) { x.xapi.guests().start(vm, opt_bool(a, 1)); };
  verb(t, "start", 3, 1, {"Halted"}, start);
  // start_on(vm, host, paused, force): one host, so the host must be us.
  verb(t, "start_on", 4, 2, {"Halted"}, [](CallCtx& x, const std::string& vm, const Array& a) {
    const auto& host = a.at(1).as_string();
    if (!x.xapi.db().exists("host", host)) throw ApiError(errors::HANDLE_INVALID, {"host", host});
    x.xapi.guests().start(vm, opt_bool(a, 2));
  });
  verb(t, "clean_shutdown", 1, 1, {"Running"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().clean_shutdown(vm); });
  verb(t, "shutdown", 1, 1, {"Running"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().clean_shutdown(vm); });
  verb(t, "hard_shutdown", 1, 1, {"Running", "Paused", "Suspended"}, [](CallCtx& x, const std::string& vm, const Array&) {
    auto& db = x.xapi.db();
    if (db.get_field("VM", vm, "power_state").as_string() == "Suspended") {
      // Discard the memory image: the VM boots afresh next time.
      auto vdi = db.get_field("VM", vm, "suspend_VDI").as_string();
      if (db.exists("VDI", vdi)) x.xapi.storage().vdi_destroy(vdi);
    }
    x.xapi.guests().hard_shutdown(vm);
  });
  verb(t, "clean_reboot", 1, 1, {"Running"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().clean_reboot(vm); });
  verb(t, "hard_reboot", 1, 1, {"Running", "Paused"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().hard_reboot(vm); });
  verb(t, "pause", 1, 1, {"Running"}, [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().pause(vm); });
  verb(t, "unpause", 1, 1, {"Paused"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().unpause(vm); });
  verb(t, "suspend", 1, 1, {"Running"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().suspend(vm); });
  verb(t, "resume", 3, 1, {"Suspended"},
       [](CallCtx& x, const std::string& vm, const Array& a) { x.xapi.guests().resume(vm, opt_bool(a, 1)); });
  verb(t, "resume_on", 4, 2, {"Suspended"},
       [](CallCtx& x, const std::string& vm, const Array& a) { x.xapi.guests().resume(vm, opt_bool(a, 2)); });
  // The operator's last resort when the record and reality disagree.
  verb(t, "power_state_reset", 1, 1, {"Running", "Paused", "Suspended", "Halted"},
       [](CallCtx& x, const std::string& vm, const Array&) { x.xapi.guests().hard_shutdown(vm); });
}

}  // namespace vmstack::ops
