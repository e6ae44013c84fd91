#include "ops/admission.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace vmstack::ops {

int64_t host_mem_total() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

Admission::Admission(model::Store& store, int64_t host_reserve, int64_t total)
    : store_(store), reserve_(host_reserve), total_(total > 0 ? total : host_mem_total()) {}

Admission::Ticket::~Ticket() {
  if (!a_) return;
  std::lock_guard lk(a_->mu_);
  a_->starting_.erase(vm_);
}

Admission::Ticket Admission::admit(const std::string& vm) {
  std::lock_guard lk(mu_);
  starting_[vm] = needed_locked(vm);
  return Ticket(*this, vm);
}

void Admission::check(const std::string& vm) {
  std::lock_guard lk(mu_);
  needed_locked(vm);
}

int64_t Admission::needed_locked(const std::string& vm) {
  // A disabled host takes no new guest (host.disable), as xapi's.
  for (const auto& h : store_.all("host"))
    if (!store_.get_field("host", h, "enabled").as_bool()) throw ApiError(errors::HOST_DISABLED, {h});
  int64_t needed = store_.get_field("VM", vm, "memory_static_max").as_int() + kOverhead;
  int64_t in_use = 0;
  store_.for_each("VM", [&](const std::string& ref, const Struct& rec) {
    const auto& ps = rec.at("power_state").as_string();
    if (ref != vm && !starting_.count(ref) && (ps == "Running" || ps == "Paused") &&
        !rec.at("is_control_domain").as_bool())
      in_use += rec.at("memory_static_max").as_int() + kOverhead;
  });
  for (const auto& [ref, bytes] : starting_)
    if (ref != vm) in_use += bytes;
  int64_t available = total_ - reserve_ - in_use;
  if (needed > available)
    throw ApiError(errors::HOST_NOT_ENOUGH_FREE_MEMORY,
                   {std::to_string(needed), std::to_string(available < 0 ? 0 : available)});
  return needed;
}

}  // namespace vmstack::ops
