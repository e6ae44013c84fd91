#include "ops/vm_power.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/strings.h"
#include "core/uuid.h"
#include "ops/admission.h"
#include "ops/boot_files.h"
#include "ops/dispatch.h"
#include "ops/domains.h"
#include "ops/journal.h"
#include "ops/networks.h"
#include "ops/storage.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {


std::string str_or(const Value& v, const std::string& def) {
  return v.is_string() && !v.as_string().empty() ? v.as_string() : def;
}

// A failure of the hypervisor itself (bad spec, missing kernel...) reaches
// the client as INTERNAL_ERROR with the hypervisor's own words.
[[noreturn]] void rethrow_hv(const std::string& what, const std::exception& e) {
  throw ApiError(errors::INTERNAL_ERROR, {what + ": " + e.what()});
}

std::shared_ptr<RunningDomain> need_running(Domains& d, const std::string& vm, const char* expected) {
  auto r = d.find(vm);
  if (!r) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, expected, "halted"});
  return r;
}

// The domain of a record found running, under r.mu: the guest may have
// powered itself off (halt() clears dom) between find() and the lock.
hv::Domain& live_dom(RunningDomain& r, const std::string& vm, const char* expected) {
  if (r.halted || !r.dom) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, expected, "halted"});
  return *r.dom;
}

}  // namespace

hv::DomainSpec VmPower::spec_for(const std::string& vm) {
  auto rec = store_.get_record("VM", vm);
  hv::DomainSpec s;
  s.uuid = rec["uuid"].as_string();
  s.name = rec["name_label"].as_string();
  s.run_dir = settings_.run_dir + "/" + s.uuid;
  s.accel = settings_.accel;
  s.vcpus_max = static_cast<int>(rec["VCPUs_max"].as_int());
  s.vcpus_at_startup = static_cast<int>(rec["VCPUs_at_startup"].as_int());
  s.memory_static_max = rec["memory_static_max"].as_int();
  s.memory_target = rec["memory_dynamic_max"].as_int();
  // Boot files only from the operator's boot directories.
  if (!rec["PV_kernel"].as_string().empty())
    s.kernel = resolve_boot_file(settings_.boot_dirs, "PV_kernel", rec["PV_kernel"].as_string());
  if (!rec["PV_ramdisk"].as_string().empty())
    s.ramdisk = resolve_boot_file(settings_.boot_dirs, "PV_ramdisk", rec["PV_ramdisk"].as_string());
  s.cmdline = rec["PV_args"].as_string();
  const auto& platform = rec["platform"];
  s.machine = str_or(platform["machine"], "");
  if (s.kernel.empty()) {
    // HVM: BIOS boot in HVM_boot_params' order, VNC unless platform:vnc=false.
    s.boot_order = str_or(rec["HVM_boot_params"]["order"], "cd");
    s.vnc = str_or(platform["vnc"], "true") != "false";
  } else {
    s.vnc = str_or(platform["vnc"], "false") == "true";
  }
  // The operator's escape hatch lives in root's files, never in the record.
  s.extra_args = operator_qemu_args(settings_.qemu_args_dir, s.uuid);
  for (const auto& vbd_ref : rec["VBDs"].as_array()) {
    auto vbd = store_.get_record("VBD", vbd_ref.as_string());
    bool cd = vbd["type"].as_string() == "CD";
    auto vdi = vbd["VDI"].as_string();
    hv::DiskSpec d;
    d.cdrom = cd;
    d.device = vbd["userdevice"].as_string();
    if (vbd["empty"].as_bool() || !store_.exists("VDI", vdi)) {
      if (!cd) continue;  // an empty CD drive still appears to the guest
      s.disks.push_back(d);
      continue;
    }
    auto src = storage_.disk_source(vdi);
    d.path = src.path;
    d.format = src.format;
    d.readonly = cd || vbd["mode"].as_string() == "RO" || store_.get_field("VDI", vdi, "read_only").as_bool();
    d.bootable = vbd["bootable"].as_bool();
    s.disks.push_back(d);
  }
  return s;
}

void VmPower::launch(const std::string& vm, hv::DomainSpec spec, bool paused, const std::string& failure) {
  std::unique_ptr<hv::Domain> dom;
  try {
    dom = domains_.hypervisor().launch(spec);
  } catch (const std::exception& e) {
    networks_.unplug_vm(vm);
    domains_.release_uid(vm);
    rethrow_hv(failure, e);
  }
  crash_point("launch.after_hypervisor");
  auto pid = dom->state().pid;
  domains_.adopt(vm, std::move(dom), paused);
  spdlog::info("VM {} running: pid {}{}", vm, pid, spec.incoming_file.empty() ? "" : " (resumed)");
}

void VmPower::plug(const std::string& vm, hv::DomainSpec& spec) {
  spec.uid = spec.gid = domains_.claim_uid(vm);
  try {
    spec.nics = networks_.plug_vm(vm, spec.uid);
  } catch (...) {
    domains_.release_uid(vm);
    throw;
  }
}

void VmPower::start(const std::string& vm, bool paused) {
  auto ticket = admission_.admit(vm);
  // Everything that can fail without side effects first: the taps come last.
  auto spec = spec_for(vm);
  spec.start_paused = paused;
  auto intent = journal_.begin("start", vm);
  plug(vm, spec);
  crash_point("start.before_launch");
  // A fresh boot starts a fresh console log (suspend/resume keeps it).
  std::error_code ec;
  fs::remove(hv::guest_dir_of(spec.run_dir) + "/console.log", ec);
  launch(vm, std::move(spec), paused, "QEMU failed to start");
}

void VmPower::clean_shutdown(const std::string& vm) {
  auto r = domains_.find(vm);
  if (!r) return domains_.record_halted(vm, "clean shutdown (QEMU already gone)");
  {
    std::lock_guard lk(r->mu);
    r->awaiting_off = true;
    r->guest_off = false;
    try {
      if (r->dom) r->dom->powerdown();
    } catch (const std::exception& e) {
      spdlog::warn("VM {}: system_powerdown: {}", vm, e.what());
    }
  }
  crash_point("shutdown.after_powerdown");
  auto timeout = std::chrono::seconds(settings_.clean_shutdown_timeout_s);
  if (domains_.wait_guest_off(*r, timeout))
    domains_.halt(vm, r, "clean shutdown");
  else
    // The guest ignored the ACPI power button (no acpid, hung): as xl
    // shutdown -F does, fall back to pulling the plug, and say so.
    domains_.halt(vm, r, "clean shutdown timed out after " + std::to_string(timeout.count()) + "s; forced");
}

void VmPower::shutdown(const std::string& vm) {
  auto ps = store_.get_field("VM", vm, "power_state").as_string();
  if (ps == "Running") return clean_shutdown(vm);
  hard_shutdown(vm);
}

void VmPower::hard_shutdown(const std::string& vm) {
  if (store_.get_field("VM", vm, "power_state").as_string() == "Suspended") {
    // Discard the memory image: the VM boots afresh next time. Journaled:
    // a crash between the two steps must not leave a Suspended VM whose
    // image is gone.
    auto vdi = store_.get_field("VM", vm, "suspend_VDI").as_string();
    auto intent = journal_.begin("discard_image", vm);
    intent.set("vdi", vdi);
    if (store_.exists("VDI", vdi)) storage_.vdi_destroy(vdi);
    crash_point("discard_image.after_destroy");
    update_vm(store_, vm, {{"suspend_VDI", std::string(kNullRef)}});
    domains_.record_halted(vm, "hard shutdown");
    return;
  }
  auto r = domains_.find(vm);
  if (!r) return domains_.record_halted(vm, "hard shutdown");
  domains_.halt(vm, r, "hard shutdown");
}

void VmPower::clean_reboot(const std::string& vm) {
  auto r = need_running(domains_, vm, "running");
  {
    std::lock_guard lk(r->mu);
    auto& dom = live_dom(*r, vm, "running");
    r->awaiting_off = true;
    r->guest_off = false;
    dom.powerdown();
  }
  // A guest that powered off at our request is reset and started again; one
  // that ignored the button is reset anyway after the timeout (hard reboot).
  domains_.wait_guest_off(*r, std::chrono::seconds(settings_.clean_shutdown_timeout_s));
  std::lock_guard lk(r->mu);
  if (r->halted || !r->dom) return;  // a hard shutdown overrode the reboot
  r->awaiting_off = false;
  r->guest_off = false;
  r->dom->reset();
  r->dom->unpause();
  update_vm(store_, vm, {{"power_state", "Running"}, {"start_time", DateTime::now()}});
}

void VmPower::hard_reboot(const std::string& vm) {
  auto r = need_running(domains_, vm, "running");
  std::lock_guard lk(r->mu);
  if (r->halted || !r->dom) throw ApiError(errors::VM_BAD_POWER_STATE, {vm, "paused, running", "halted"});
  r->dom->reset();
  r->dom->unpause();
  update_vm(store_, vm, {{"power_state", "Running"}, {"start_time", DateTime::now()}});
}

void VmPower::pause(const std::string& vm) {
  auto r = need_running(domains_, vm, "running");
  {
    std::lock_guard lk(r->mu);
    live_dom(*r, vm, "running").pause();
  }
  update_vm(store_, vm, {{"power_state", "Paused"}});
}

void VmPower::unpause(const std::string& vm) {
  auto r = need_running(domains_, vm, "paused");
  {
    std::lock_guard lk(r->mu);
    live_dom(*r, vm, "paused").unpause();
  }
  update_vm(store_, vm, {{"power_state", "Running"}});
}

void VmPower::suspend(const std::string& vm) {
  auto r = need_running(domains_, vm, "running");
  // The memory image goes beside the VM's disks: the SR of its first disk,
  // else the pool's suspend_image_SR.
  std::string sr;
  for (const auto& vbd : store_.find("VBD", "VM", vm)) {
    auto vdi = store_.get_field("VBD", vbd, "VDI").as_string();
    if (store_.exists("VDI", vdi) && store_.get_field("VBD", vbd, "type").as_string() == "Disk") {
      sr = store_.get_field("VDI", vdi, "SR").as_string();
      break;
    }
  }
  if (sr.empty()) sr = store_.get_field("pool", store_.all("pool").at(0), "suspend_image_SR").as_string();
  if (!store_.exists("SR", sr)) throw ApiError(errors::VM_REQUIRES_SR, {vm, sr});
  auto intent = journal_.begin("suspend", vm);
  const auto vdi_uuid = make_uuid();
  intent.set("vdi_uuid", vdi_uuid);
  auto vdi = storage_.suspend_vdi_create(sr, store_.get_field("VM", vm, "name_label").as_string(), vdi_uuid);
  intent.set("vdi", vdi);
  crash_point("suspend.after_image_created");
  auto path = storage_.disk_source(vdi).path;
  try {
    std::lock_guard lk(r->mu);
    auto& dom = live_dom(*r, vm, "running");
    r->stopping = true;
    dom.save(path, 300s);
  } catch (const std::exception& e) {
    {
      std::lock_guard lk(r->mu);
      r->stopping = false;
    }
    storage_.vdi_destroy(vdi);
    rethrow_hv("suspend failed", e);
  }
  // The image is complete: from here an interrupted suspend ends Suspended.
  intent.set("saved", "true");
  crash_point("suspend.after_save");
  storage_.vdi_refresh(vdi);
  domains_.halt(vm, r, "suspended");
  crash_point("suspend.after_halt");
  update_vm(store_, vm, {{"power_state", "Suspended"}, {"suspend_VDI", vdi}});
}

void VmPower::resume(const std::string& vm, bool paused) {
  auto vdi = store_.get_field("VM", vm, "suspend_VDI").as_string();
  if (!store_.exists("VDI", vdi)) throw ApiError(errors::HANDLE_INVALID, {"VDI", vdi});
  auto ticket = admission_.admit(vm);
  auto spec = spec_for(vm);
  spec.incoming_file = storage_.disk_source(vdi).path;
  spec.start_paused = paused;
  auto intent = journal_.begin("resume", vm);
  intent.set("vdi", vdi);
  plug(vm, spec);
  launch(vm, std::move(spec), paused, "resume failed");
  crash_point("resume.after_launch");
  // The image has served its purpose; a later suspend writes a new one.
  storage_.vdi_destroy(vdi);
}

void VmPower::set_balloon(const std::string& vm, int64_t bytes) {
  auto r = domains_.find(vm);
  if (!r) return;
  std::lock_guard lk(r->mu);
  if (!r->dom) return;
  r->dom->set_balloon(bytes);
  store_.set_field("VM", vm, "memory_target", bytes);
}

void bind_vm_power(Dispatcher& d, VmPower& p, model::Store& store) {
  d.bind("VM.start", [&p](const Call&, const Args& a) {
    p.start(a.ref("vm"), a.boolean("start_paused"));
    return Value();
  });
  // start_on(vm, host, ...): one host, so the host must be this one.
  d.bind("VM.start_on", [&p, &store](const Call&, const Args& a) {
    if (!store.exists("host", a.ref("host"))) throw ApiError(errors::HANDLE_INVALID, {"host", a.ref("host")});
    p.start(a.ref("vm"), a.boolean("start_paused"));
    return Value();
  });
  auto simple = [&](const char* name, void (VmPower::*fn)(const std::string&)) {
    d.bind(std::string("VM.") + name, [&p, fn](const Call&, const Args& a) {
      (p.*fn)(a.ref("vm"));
      return Value();
    });
  };
  simple("clean_shutdown", &VmPower::clean_shutdown);
  simple("shutdown", &VmPower::shutdown);
  simple("hard_shutdown", &VmPower::hard_shutdown);
  simple("clean_reboot", &VmPower::clean_reboot);
  simple("hard_reboot", &VmPower::hard_reboot);
  simple("pause", &VmPower::pause);
  simple("unpause", &VmPower::unpause);
  simple("suspend", &VmPower::suspend);
  // The operator's last resort when the record and reality disagree.
  simple("power_state_reset", &VmPower::hard_shutdown);
  d.bind("VM.resume", [&p](const Call&, const Args& a) {
    p.resume(a.ref("vm"), a.boolean("start_paused"));
    return Value();
  });
  d.bind("VM.resume_on", [&p, &store](const Call&, const Args& a) {
    if (!store.exists("host", a.ref("host"))) throw ApiError(errors::HANDLE_INVALID, {"host", a.ref("host")});
    p.resume(a.ref("vm"), a.boolean("start_paused"));
    return Value();
  });
}

}  // namespace vmstack::ops
