#include "ops/guests.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/uuid.h"
#include "ops/storage.h"
#include "ops/vm_state.h"
#include "ops/xapi.h"

namespace vmstack::ops {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto kPowerButtonRepeat = 3s;

DateTime now() { return DateTime{static_cast<int64_t>(std::time(nullptr))}; }

std::string str_or(const Value& v, const std::string& def) { return v.is_string() && !v.as_string().empty() ? v.as_string() : def; }

// A failure of QEMU itself (bad argv, missing kernel...) reaches the client
// as INTERNAL_ERROR with QEMU's own words, never swallowed.
[[noreturn]] void rethrow_hv(const std::string& what, const std::exception& e) {
  throw ApiError(errors::INTERNAL_ERROR, {what + ": " + e.what()});
}

}  // namespace

Guests::Guests(Xapi& x) : x_(x) {}

Guests::~Guests() {
  // Drop the Domains (joining their monitor threads) before events_ is joined,
  // so no monitor can post into a queue being torn down. Guests keep running:
  // the next daemon re-attaches to them.
  std::map<std::string, std::shared_ptr<Running>> gone;
  {
    std::lock_guard lk(mu_);
    gone.swap(running_);
  }
  for (auto& [vm, r] : gone) {
    std::lock_guard lk(r->mu);
    r->dom.reset();
  }
}

std::shared_ptr<Guests::Running> Guests::find(const std::string& vm) {
  std::lock_guard lk(mu_);
  auto it = running_.find(vm);
  return it == running_.end() ? nullptr : it->second;
}

size_t Guests::running_count() {
  std::lock_guard lk(mu_);
  return running_.size();
}

hv::QemuSpec Guests::spec_for(const std::string& vm) {
  auto& db = x_.db();
  auto rec = db.get_record("VM", vm);
  hv::QemuSpec s;
  s.uuid = rec["uuid"].as_string();
  s.name = rec["name_label"].as_string();
  s.run_dir = x_.config().run_dir + "/" + s.uuid;
  s.accel = accel_;
  s.qemu_binary = x_.config().qemu_binary;
  s.vcpus_max = static_cast<int>(rec["VCPUs_max"].as_int());
  s.vcpus_at_startup = static_cast<int>(rec["VCPUs_at_startup"].as_int());
  s.memory_static_max = rec["memory_static_max"].as_int();
  s.memory_target = rec["memory_dynamic_max"].as_int();
  s.kernel = rec["PV_kernel"].as_string();
  s.ramdisk = rec["PV_ramdisk"].as_string();
  s.cmdline = rec["PV_args"].as_string();
  const auto& platform = rec["platform"];
  s.machine = str_or(platform["machine"], s.machine);
  if (s.kernel.empty()) {
    // HVM: BIOS boot in HVM_boot_params' order, VNC unless platform:vnc=false.
    s.boot_order = str_or(rec["HVM_boot_params"]["order"], "cd");
    s.vnc = str_or(platform["vnc"], "true") != "false";
  } else {
    s.vnc = str_or(platform["vnc"], "false") == "true";
  }
  if (platform["qemu-args"].is_string()) {
    // Whitespace-separated extra arguments: the operator's escape hatch.
    std::string word;
    for (char c : platform["qemu-args"].as_string() + " ") {
      if (c == ' ' || c == '\t') {
        if (!word.empty()) s.extra_args.push_back(word);
        word.clear();
      } else {
        word.push_back(c);
      }
    }
  }
  for (const auto& vbd_ref : rec["VBDs"].as_array()) {
    auto vbd = db.get_record("VBD", vbd_ref.as_string());
    bool cd = vbd["type"].as_string() == "CD";
    auto vdi = vbd["VDI"].as_string();
    if (vbd["empty"].as_bool() || !db.exists("VDI", vdi)) {
      if (!cd) continue;  // an empty CD drive still appears to the guest
      hv::DiskSpec d;
      d.cdrom = true;
      d.device = vbd["userdevice"].as_string();
      s.disks.push_back(d);
      continue;
    }
    auto v = db.get_record("VDI", vdi);
    hv::DiskSpec d;
    d.path = v["location"].as_string();
    d.format = str_or(v["sm_config"]["format"], cd ? "raw" : "qcow2");
    d.cdrom = cd;
    d.readonly = cd || vbd["mode"].as_string() == "RO" || v["read_only"].as_bool();
    d.bootable = vbd["bootable"].as_bool();
    d.device = vbd["userdevice"].as_string();
    s.disks.push_back(d);
  }
  return s;
}

std::shared_ptr<Guests::Running> Guests::adopt(const std::string& vm, std::unique_ptr<hv::Domain> dom) {
  auto r = std::make_shared<Running>();
  r->dom = std::move(dom);
  {
    std::lock_guard lk(mu_);
    running_[vm] = r;
  }
  std::weak_ptr<Running> w = r;
  r->dom->set_event_handler([this, vm, w](hv::Domain::Event ev, const std::string& detail) {
    events_.post([this, vm, w, ev, detail] { on_event(vm, w, ev, detail); });
  });
  return r;
}

void Guests::record_running(const std::string& vm, const hv::DomainInfo& info, bool paused) {
  auto& db = x_.db();
  auto rec = db.get_record("VM", vm);
  bool pv = !rec["PV_kernel"].as_string().empty();
  Struct changes{{"power_state", paused ? "Paused" : "Running"},
                 {"domid", static_cast<int64_t>(info.pid)},
                 {"qmp_socket", info.qmp_socket},
                 {"resident_on", x_.host_ref()},
                 {"start_time", now()},
                 {"memory_target", rec["memory_dynamic_max"]},
                 {"domain_type", pv ? "pv" : "hvm"},
                 {"suspend_VDI", std::string(kNullRef)}};
  db.update("VM", vm, changes);
  set_allowed_operations(db, vm);
  for (const auto& c : db.find("console", "VM", vm)) db.destroy("console", c);
  db.create("console", {{"protocol", "vt100"}, {"location", "unix:" + info.console_socket}, {"VM", vm},
                        {"other_config", Struct{{"log", info.console_log}}}});
  if (info.vnc_port >= 0)
    db.create("console", {{"protocol", "rfb"}, {"location", "vnc://127.0.0.1:" + std::to_string(info.vnc_port)}, {"VM", vm}});
  for (const auto& vbd : db.find("VBD", "VM", vm)) db.set_field("VBD", vbd, "currently_attached", true);
}

void Guests::record_halted(const std::string& vm, const std::string& reason) {
  auto& db = x_.db();
  if (!db.exists("VM", vm)) return;
  auto oc = db.get_field("VM", vm, "other_config");
  if (!reason.empty()) oc["last_shutdown_reason"] = reason;
  db.update("VM", vm, {{"power_state", "Halted"},
                       {"domid", int64_t{-1}},
                       {"qmp_socket", ""},
                       {"resident_on", std::string(kNullRef)},
                       {"memory_target", int64_t{0}},
                       {"other_config", oc}});
  set_allowed_operations(db, vm);
  for (const auto& c : db.find("console", "VM", vm)) db.destroy("console", c);
  for (const auto& vbd : db.find("VBD", "VM", vm)) db.set_field("VBD", vbd, "currently_attached", false);
}

void Guests::halt(const std::string& vm, const std::shared_ptr<Running>& r, const std::string& reason) {
  {
    std::lock_guard lk(mu_);
    auto it = running_.find(vm);
    if (it != running_.end() && it->second == r) running_.erase(it);
  }
  {
    std::lock_guard lk(r->mu);
    r->stopping = true;
    if (r->dom) {
      try {
        r->dom->kill();
      } catch (const std::exception& e) {
        spdlog::warn("VM {}: kill: {}", vm, e.what());
      }
      r->dom.reset();
    }
  }
  record_halted(vm, reason);
  spdlog::info("VM {} halted: {}", vm, reason);
}

void Guests::on_event(const std::string& vm, const std::weak_ptr<Running>& w, hv::Domain::Event ev,
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
        action = x_.db().get_field("VM", vm, "actions_after_shutdown").as_string();
      } catch (const ApiError&) {
      }
      if (action == "restart") {
        std::lock_guard lk(r->mu);
        r->guest_off = false;
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

void Guests::start(const std::string& vm, bool paused) {
  auto spec = spec_for(vm);
  spec.start_paused = paused;
  // A fresh boot starts a fresh console log (suspend/resume keeps it).
  std::error_code ec;
  fs::remove(spec.run_dir + "/console.log", ec);
  std::unique_ptr<hv::Domain> dom;
  try {
    dom = hv::Domain::launch(spec);
  } catch (const std::exception& e) {
    rethrow_hv("QEMU failed to start", e);
  }
  auto info = dom->info();
  adopt(vm, std::move(dom));
  record_running(vm, info, paused);
  spdlog::info("VM {} started: pid {}", vm, info.pid);
}

bool Guests::wait_guest_off(Running& r, std::chrono::seconds timeout) {
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

void Guests::clean_shutdown(const std::string& vm) {
  auto r = find(vm);
  if (!r) return record_halted(vm, "clean shutdown (QEMU already gone)");
  {
    std::lock_guard lk(r->mu);
    r->awaiting_off = true;
    r->guest_off = false;
    try {
      r->dom->powerdown();
    } catch (const std::exception& e) {
      spdlog::warn("VM {}: system_powerdown: {}", vm, e.what());
    }
  }
  auto timeout = std::chrono::seconds(x_.config().clean_shutdown_timeout_s);
  if (wait_guest_off(*r, timeout))
    halt(vm, r, "clean shutdown");
  else
    // The guest ignored the ACPI power button (no acpid, hung): as xl
    // shutdown -F does, fall back to pulling the plug, and say so.
    halt(vm, r, "clean shutdown timed out after " + std::to_string(timeout.count()) + "s; forced");
}

void Guests::hard_shutdown(const std::string& vm) {
  auto r = find(vm);
  if (!r) return record_halted(vm, "hard shutdown");
  halt(vm, r, "hard shutdown");
}

void Guests::clean_reboot(const std::string& vm) {
  auto r = find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "running", "halted"});
  {
    std::lock_guard lk(r->mu);
    r->awaiting_off = true;
    r->guest_off = false;
    r->dom->powerdown();
  }
  // A guest that powered off at our request is reset and started again; one
  // that ignored the button is reset anyway after the timeout (hard reboot).
  wait_guest_off(*r, std::chrono::seconds(x_.config().clean_shutdown_timeout_s));
  std::lock_guard lk(r->mu);
  r->awaiting_off = false;
  r->guest_off = false;
  r->dom->reset();
  r->dom->unpause();
  x_.db().update("VM", vm, {{"power_state", "Running"}, {"start_time", now()}});
}

void Guests::hard_reboot(const std::string& vm) {
  auto r = find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "running", "halted"});
  std::lock_guard lk(r->mu);
  r->dom->reset();
  r->dom->unpause();
  x_.db().update("VM", vm, {{"power_state", "Running"}, {"start_time", now()}});
  set_allowed_operations(x_.db(), vm);
}

void Guests::pause(const std::string& vm) {
  auto r = find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "running", "halted"});
  {
    std::lock_guard lk(r->mu);
    r->dom->pause();
  }
  x_.db().set_field("VM", vm, "power_state", "Paused");
  set_allowed_operations(x_.db(), vm);
}

void Guests::unpause(const std::string& vm) {
  auto r = find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "paused", "halted"});
  {
    std::lock_guard lk(r->mu);
    r->dom->unpause();
  }
  x_.db().set_field("VM", vm, "power_state", "Running");
  set_allowed_operations(x_.db(), vm);
}

void Guests::suspend(const std::string& vm) {
  auto r = find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "running", "halted"});
  auto& db = x_.db();
  // The memory image goes beside the VM's disks: the SR of its first disk,
  // else the pool's suspend_image_SR.
  std::string sr;
  for (const auto& vbd : db.find("VBD", "VM", vm)) {
    auto vdi = db.get_field("VBD", vbd, "VDI").as_string();
    if (db.exists("VDI", vdi) && db.get_field("VBD", vbd, "type").as_string() == "Disk") {
      sr = db.get_field("VDI", vdi, "SR").as_string();
      break;
    }
  }
  if (sr.empty()) sr = db.get_field("pool", db.all("pool").at(0), "suspend_image_SR").as_string();
  if (!db.exists("SR", sr)) throw ApiError(errors::VM_REQUIRES_SR, {vm, sr});
  auto vdi = x_.storage().suspend_vdi_create(sr, db.get_field("VM", vm, "name_label").as_string());
  auto path = db.get_field("VDI", vdi, "location").as_string();
  try {
    std::lock_guard lk(r->mu);
    r->stopping = true;
    r->dom->save_to_file(path);
  } catch (const std::exception& e) {
    {
      std::lock_guard lk(r->mu);
      r->stopping = false;
    }
    std::error_code ec;
    fs::remove(path, ec);
    db.destroy("VDI", vdi);
    rethrow_hv("suspend failed", e);
  }
  std::error_code ec;
  db.update("VDI", vdi, {{"virtual_size", static_cast<int64_t>(fs::file_size(path, ec))},
                         {"physical_utilisation", static_cast<int64_t>(fs::file_size(path, ec))}});
  halt(vm, r, "suspended");
  db.update("VM", vm, {{"power_state", "Suspended"}, {"suspend_VDI", vdi}});
  set_allowed_operations(db, vm);
}

void Guests::resume(const std::string& vm, bool paused) {
  auto& db = x_.db();
  auto vdi = db.get_field("VM", vm, "suspend_VDI").as_string();
  if (!db.exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
  auto spec = spec_for(vm);
  spec.incoming_file = db.get_field("VDI", vdi, "location").as_string();
  spec.start_paused = true;
  std::unique_ptr<hv::Domain> dom;
  try {
    dom = hv::Domain::launch(spec);
    if (!paused) dom->unpause();
  } catch (const std::exception& e) {
    rethrow_hv("resume failed", e);
  }
  auto info = dom->info();
  adopt(vm, std::move(dom));
  record_running(vm, info, paused);
  // The image has served its purpose; a later suspend writes a new one.
  x_.storage().vdi_destroy(vdi);
}

void Guests::set_balloon(const std::string& vm, int64_t bytes) {
  auto r = find(vm);
  if (!r) return;
  std::lock_guard lk(r->mu);
  r->dom->set_balloon(bytes);
  x_.db().set_field("VM", vm, "memory_target", bytes);
}

bool Guests::console_paths(const std::string& vm, std::string& socket, std::string& log) {
  auto r = find(vm);
  if (!r) return false;
  std::lock_guard lk(r->mu);
  if (!r->dom) return false;
  socket = r->dom->info().console_socket;
  log = r->dom->info().console_log;
  return true;
}

void Guests::reattach_all() {
  auto& db = x_.db();
  for (const auto& [vm, rec] : db.all_records("VM")) {
    const auto& ps = rec.at("power_state").as_string();
    if (ps != "Running" && ps != "Paused") continue;
    hv::DomainInfo info;
    info.pid = static_cast<pid_t>(rec.at("domid").as_int());
    info.qmp_socket = rec.at("qmp_socket").as_string();
    auto dir = fs::path(info.qmp_socket).parent_path().string();
    info.console_socket = dir + "/console.sock";
    info.console_log = dir + "/console.log";
    for (const auto& c : db.find("console", "VM", vm)) {
      auto loc = db.get_field("console", c, "location").as_string();
      if (loc.rfind("vnc://127.0.0.1:", 0) == 0) info.vnc_port = std::stoi(loc.substr(16));
    }
    std::unique_ptr<hv::Domain> dom;
    if (info.pid > 0 && !info.qmp_socket.empty()) {
      try {
        dom = hv::Domain::attach(info);
      } catch (const std::exception& e) {
        spdlog::warn("VM {}: re-attach failed: {}", vm, e.what());
      }
    }
    if (!dom) {
      record_halted(vm, "QEMU (pid " + std::to_string(info.pid) + ") was gone when vmstackd restarted");
      continue;
    }
    auto state = dom->query_status();
    auto r = adopt(vm, std::move(dom));
    if (state == hv::RunState::shutdown) {
      // Powered off while nobody watched: finish what the event would have done.
      halt(vm, r, "guest shut down while vmstackd was not running");
      continue;
    }
    db.set_field("VM", vm, "power_state", state == hv::RunState::paused ? "Paused" : "Running");
    set_allowed_operations(db, vm);
    spdlog::info("VM {} re-attached (pid {})", vm, info.pid);
  }
}

}  // namespace vmstack::ops
