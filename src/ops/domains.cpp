#include "ops/domains.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>
#include <set>

#include "core/crash_point.h"
#include "core/error.h"
#include "core/uuid.h"
#include "ops/networks.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
constexpr auto kPowerButtonRepeat = 3s;
}  // namespace

Domains::Domains(model::Store& store, hv::Hypervisor& hv, Networks& networks, std::string run_dir)
    : store_(store), hv_(hv), networks_(networks), run_dir_(std::move(run_dir)) {}

Domains::~Domains() {
  // Drop the domains (joining their monitor threads) before events_ is
  // joined, so no monitor can post into a queue being torn down. Guests keep
  // running: the next daemon re-attaches to them.
  std::map<std::string, std::shared_ptr<RunningDomain>> gone;
  {
    std::lock_guard lk(mu_);
    gone.swap(running_);
  }
  for (auto& [vm, r] : gone) {
    std::lock_guard lk(r->mu);
    r->dom.reset();
  }
}

std::shared_ptr<RunningDomain> Domains::find(const std::string& vm) {
  std::lock_guard lk(mu_);
  auto it = running_.find(vm);
  return it == running_.end() ? nullptr : it->second;
}

size_t Domains::running_count() {
  std::lock_guard lk(mu_);
  return running_.size();
}

int Domains::claim_uid(const std::string& vm) {
  if (uid_base_ <= 0) return -1;
  std::lock_guard lk(mu_);
  auto it = uids_.find(vm);
  if (it != uids_.end()) return it->second;
  std::set<int> taken;
  for (const auto& [v, uid] : uids_) taken.insert(uid);
  int uid = uid_base_;
  while (taken.count(uid)) ++uid;
  uids_[vm] = uid;
  return uid;
}

void Domains::release_uid(const std::string& vm) {
  std::lock_guard lk(mu_);
  uids_.erase(vm);
}

std::optional<hv::LiveState> Domains::live_state(const std::string& vm) {
  auto r = find(vm);
  if (!r) return std::nullopt;
  std::lock_guard lk(r->mu);
  if (!r->dom) return std::nullopt;
  return r->dom->state();
}

void Domains::watch(const std::string& vm, const std::shared_ptr<RunningDomain>& r) {
  {
    std::lock_guard lk(mu_);
    running_[vm] = r;
    // Its QEMU's user stays its own while it runs (after a restart too).
    if (int uid = r->dom->state().spec.uid; uid >= 0) uids_[vm] = uid;
  }
  std::weak_ptr<RunningDomain> w = r;
  r->dom->set_event_handler([this, vm, w](hv::Domain::Event ev, const std::string& detail) {
    events_.post([this, vm, w, ev, detail] { on_event(vm, w, ev, detail); });
  });
}

std::shared_ptr<RunningDomain> Domains::adopt(const std::string& vm, std::unique_ptr<hv::Domain> dom, bool paused) {
  auto r = std::make_shared<RunningDomain>();
  r->dom = std::move(dom);
  auto state = r->dom->state();
  watch(vm, r);
  record_running(vm, state, paused);
  return r;
}

void Domains::record_running(const std::string& vm, const hv::LiveState& s, bool paused) {
  auto rec = store_.get_record("VM", vm);
  bool pv = !rec["PV_kernel"].as_string().empty();
  update_vm(store_, vm,
            {{"power_state", paused ? "Paused" : "Running"},
             {"domid", static_cast<int64_t>(s.pid)},
             {"qmp_socket", s.qmp_socket},
             {"resident_on", host_.empty() ? std::string(kNullRef) : host_},
             {"start_time", DateTime::now()},
             {"memory_target", rec["memory_dynamic_max"]},
             {"domain_type", pv ? "pv" : "hvm"},
             {"suspend_VDI", std::string(kNullRef)}});
  for (const auto& c : store_.find("console", "VM", vm)) store_.destroy("console", c);
  // Clients open the location (GET or xapi's CONNECT, with session_id=);
  // the guest's own sockets, root's business, are noted in other_config.
  auto console = [&](const char* protocol, Struct other) {
    auto ref = store_.create("console", {{"protocol", protocol}, {"VM", vm}, {"other_config", std::move(other)}});
    store_.set_field("console", ref, "location", console_base_ + "/console?ref=" + ref);
  };
  console("vt100", Struct{{"log", s.console_log}, {"socket", s.console_socket}});
  if (!s.vnc_socket.empty()) console("rfb", Struct{{"socket", s.vnc_socket}});
  for (const auto& vbd : store_.find("VBD", "VM", vm)) store_.set_field("VBD", vbd, "currently_attached", true);
}

void Domains::record_halted(const std::string& vm, const std::string& reason) {
  if (!store_.exists("VM", vm)) return;
  auto oc = store_.get_field("VM", vm, "other_config");
  if (!reason.empty()) oc["last_shutdown_reason"] = reason;
  update_vm(store_, vm,
            {{"power_state", "Halted"},
             {"domid", int64_t{-1}},
             {"qmp_socket", ""},
             {"resident_on", std::string(kNullRef)},
             {"memory_target", int64_t{0}},
             {"other_config", oc}});
  for (const auto& c : store_.find("console", "VM", vm)) store_.destroy("console", c);
  for (const auto& vbd : store_.find("VBD", "VM", vm)) store_.set_field("VBD", vbd, "currently_attached", false);
  networks_.unplug_vm(vm);
}

void Domains::remove_run_dir(const std::string& vm_uuid) {
  if (!looks_like_uuid(vm_uuid)) return;
  std::error_code ec;
  fs::remove_all(run_dir_of(vm_uuid), ec);  // never follows a symlink
  if (ec) spdlog::warn("cannot remove {}: {}", run_dir_of(vm_uuid), ec.message());
}

void Domains::halt(const std::string& vm, const std::shared_ptr<RunningDomain>& r, const std::string& reason) {
  {
    std::lock_guard lk(mu_);
    auto it = running_.find(vm);
    if (it != running_.end() && it->second == r) running_.erase(it);
  }
  std::string run_dir;
  {
    std::lock_guard lk(r->mu);
    if (r->halted) return;  // a hard shutdown got there first
    r->halted = true;
    r->stopping = true;
    // Wakes a clean shutdown waiting for the guest: it is over either way.
    r->guest_off = true;
    r->cv.notify_all();
    if (r->dom) {
      run_dir = r->dom->state().spec.run_dir;
      try {
        r->dom->stop();
      } catch (const std::exception& e) {
        spdlog::warn("VM {}: stop: {}", vm, e.what());
      }
      crash_point("halt.after_stop");
      r->dom.reset();
    }
  }
  if (!run_dir.empty()) hv::remove_live_state(run_dir);
  release_uid(vm);
  record_halted(vm, reason);
  spdlog::info("VM {} halted: {}", vm, reason);
}

void Domains::on_event(const std::string& vm, const std::weak_ptr<RunningDomain>& w, hv::Domain::Event ev,
                       const std::string& detail) {
  auto r = w.lock();
  if (!r || find(vm) != r) return;  // already halted by a verb
  switch (ev) {
    case hv::Domain::Event::guest_shutdown: {
      {
        std::lock_guard lk(r->mu);
        r->guest_off = true;
        if (r->awaiting_off || r->stopping) {
          r->cv.notify_all();
          return;  // the waiting verb decides what happens next
        }
      }
      // The guest powered off (or rebooted via power-off) by itself.
      std::string action = "destroy";
      try {
        action = store_.get_field("VM", vm, "actions_after_shutdown").as_string();
      } catch (const ApiError&) {
      }
      if (action == "restart") {
        std::lock_guard lk(r->mu);
        r->guest_off = false;
        if (r->halted || !r->dom) return;  // a verb halted it meanwhile
        try {
          r->dom->reset();
          r->dom->unpause();
          return;
        } catch (const std::exception& e) {
          spdlog::warn("VM {}: restart after shutdown failed: {}", vm, e.what());
        }
      }
      halt(vm, r, "guest shut down (" + detail + ")");
      return;
    }
    case hv::Domain::Event::guest_reset:
      spdlog::info("VM {}: guest reset ({})", vm, detail);
      return;
    case hv::Domain::Event::exited: {
      {
        std::lock_guard lk(r->mu);
        if (r->stopping) return;
        if (r->awaiting_off) {
          // Exited on its own during a clean shutdown: that is the answer.
          r->guest_off = true;
          r->cv.notify_all();
          return;
        }
      }
      halt(vm, r, "QEMU exited unexpectedly (" + detail + ")");
      return;
    }
  }
}

bool Domains::wait_guest_off(RunningDomain& r, std::chrono::seconds timeout) {
  // A guest still booting (or whose acpid is not listening yet) drops the
  // button press; press again every few seconds until it acts or time is up.
  const auto end = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lk(r.mu);
  while (!r.guest_off) {
    auto next = std::min(end, std::chrono::steady_clock::now() + kPowerButtonRepeat);
    if (r.cv.wait_until(lk, next, [&] { return r.guest_off; })) break;
    if (std::chrono::steady_clock::now() >= end) return false;
    try {
      if (r.dom) r.dom->powerdown();
    } catch (const std::exception& e) {
      spdlog::warn("system_powerdown: {}", e.what());
    }
  }
  return true;
}

void Domains::reattach_all() {
  for (const auto& vm : store_.all("VM")) {
    auto rec = store_.get_record("VM", vm);
    const auto& ps = rec["power_state"].as_string();
    if ((ps != "Running" && ps != "Paused") || rec["is_control_domain"].as_bool()) continue;  // Domain-0 is the host
    auto state = hv::load_live_state(run_dir_of(rec["uuid"].as_string()));
    std::unique_ptr<hv::Domain> dom;
    std::string why;
    if (!state) {
      why = "its live state (" + run_dir_of(rec["uuid"].as_string()) + "/domain.json) was gone when vmstackd restarted";
    } else if (state->driver != hv_.name()) {
      why = "it ran under the " + state->driver + " driver, not " + hv_.name();
    } else {
      try {
        dom = hv_.attach(*state);
      } catch (const std::exception& e) {
        spdlog::warn("VM {}: re-attach failed: {}", vm, e.what());
      }
      if (!dom) why = "QEMU (pid " + std::to_string(state->pid) + ") was gone when vmstackd restarted";
    }
    if (!dom) {
      if (state) hv::remove_live_state(state->spec.run_dir);
      record_halted(vm, why);
      continue;
    }
    auto status = dom->query_status();
    auto r = std::make_shared<RunningDomain>();
    r->dom = std::move(dom);
    watch(vm, r);
    if (status == hv::RunState::shutdown) {
      // Powered off while nobody watched: finish what the event would have done.
      halt(vm, r, "guest shut down while vmstackd was not running");
      continue;
    }
    update_vm(store_, vm, {{"power_state", status == hv::RunState::paused ? "Paused" : "Running"},
                           {"domid", static_cast<int64_t>(state->pid)},
                           {"qmp_socket", state->qmp_socket}});
    spdlog::info("VM {} re-attached (pid {})", vm, state->pid);
  }
}

}  // namespace vmstack::ops
