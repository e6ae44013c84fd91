#include "ops/recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/uuid.h"
#include "hv/hypervisor.h"
#include "ops/domains.h"
#include "ops/journal.h"
#include "ops/networks.h"
#include "ops/storage.h"
#include "ops/vm_admin.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

namespace fs = std::filesystem;

namespace {

std::string str(const Struct& facts, const char* key) {
  auto it = facts.find(key);
  return it != facts.end() && it->second.is_string() ? it->second.as_string() : std::string();
}

// VM-level intents first (they destroy what they made, records and images);
// then the image-level ones clean what no record came to claim.
int order(const std::string& op) { return op == "vdi_file" ? 1 : 0; }

// The VDIs a verb made: journaled by uuid before each was created, so one
// whose record never came is not here (its vdi_file intent removes its image).
Array vdis_made(const model::Store& store, const Struct& facts) {
  Array out;
  if (auto it = facts.find("vdis"); it != facts.end() && it->second.is_array()) out = it->second.as_array();
  if (auto it = facts.find("vdi_uuids"); it != facts.end() && it->second.is_array()) {
    for (const auto& u : it->second.as_array()) {
      try {
        out.emplace_back(store.ref_by_uuid("VDI", u.as_string()));
      } catch (const ApiError&) {
      }
    }
  }
  return out;
}

// The VDI a verb made or named: by ref, else by the uuid journaled first.
std::string vdi_named(const model::Store& store, const Struct& facts) {
  if (auto ref = str(facts, "vdi"); !ref.empty()) return ref;
  auto uuid = str(facts, "vdi_uuid");
  if (uuid.empty()) return {};
  try {
    return store.ref_by_uuid("VDI", uuid);
  } catch (const ApiError&) {
    return {};
  }
}

}  // namespace

void Recovery::run() {
  auto pending = journal_.pending();
  std::stable_sort(pending.begin(), pending.end(),
                   [](const auto& a, const auto& b) { return order(str(a.second, "op")) < order(str(b.second, "op")); });
  for (const auto& [id, facts] : pending) {
    const auto op = str(facts, "op"), target = str(facts, "target");
    spdlog::warn("finishing what an interrupted {} of {} left", op, target);
    try {
      if (op == "start") start(target);
      else if (op == "resume") resume(target, str(facts, "vdi"));
      else if (op == "suspend") suspend(target, vdi_named(store_, facts), str(facts, "saved") == "true");
      else if (op == "discard_image") discard_image(target, str(facts, "vdi"));
      else if (op == "copy") copy(str(facts, "new_vm_uuid"), vdis_made(store_, facts));
      else if (op == "provision") provision(vdis_made(store_, facts));
      else if (op == "destroy") {
        if (store_.exists("VM", target)) admin_.destroy(target);
      } else if (op == "vdi_file") storage_.forget_unrecorded_image(str(facts, "sr"), target);
      else spdlog::warn("unknown intent {} in the journal: dropped", op);
    } catch (const std::exception& e) {
      // Kept: the next start tries again (an SR that was unreachable may be
      // back), rather than forgetting what is still to be undone.
      spdlog::error("recovering the interrupted {} of {}: {} (tried again at the next start)", op, target, e.what());
      continue;
    }
    journal_.erase(id);
  }
  stop_orphans();
}

bool Recovery::adopt_if_alive(const std::string& vm) {
  if (domains_.find(vm)) return true;
  auto uuid = store_.get_field("VM", vm, "uuid").as_string();
  auto state = hv::load_live_state(domains_.run_dir_of(uuid));
  if (!state || state->driver != domains_.hypervisor().name()) return false;
  std::unique_ptr<hv::Domain> dom;
  try {
    dom = domains_.hypervisor().attach(*state);
  } catch (const std::exception& e) {
    spdlog::warn("VM {}: cannot adopt the domain its interrupted verb left: {}", vm, e.what());
  }
  if (!dom) return false;
  bool paused = dom->query_status() == hv::RunState::paused;
  domains_.adopt(vm, std::move(dom), paused);
  return true;
}

void Recovery::destroy_vdi(const std::string& vdi) {
  if (vdi.empty() || !store_.exists("VDI", vdi)) return;
  storage_.vdi_destroy(vdi);
}

// Interrupted start: the domain either came up (adopt it: the start
// happened) or not (no trace of it may stay: process, taps, live state).
void Recovery::start(const std::string& vm) {
  if (!store_.exists("VM", vm)) return;
  if (adopt_if_alive(vm)) return;
  auto uuid = store_.get_field("VM", vm, "uuid").as_string();
  domains_.hypervisor().stop_orphan(domains_.run_dir_of(uuid));
  hv::remove_live_state(domains_.run_dir_of(uuid));
  domains_.release_uid(vm);
  if (store_.get_field("VM", vm, "power_state").as_string() == "Halted")
    domains_.record_halted(vm, "start interrupted by a vmstackd crash");
}

// Interrupted resume: running from the image (the resume happened: the
// image goes) or still suspended (the image stays for the next resume).
// A QEMU still loading the image (its live state still names the incoming
// file, cleared once the state is in) has not resumed anything: the image is
// all there is of the guest, so the QEMU goes and the image stays.
void Recovery::resume(const std::string& vm, const std::string& vdi) {
  if (!store_.exists("VM", vm)) return;
  auto uuid = store_.get_field("VM", vm, "uuid").as_string();
  auto state = hv::load_live_state(domains_.run_dir_of(uuid));
  const bool loading = state && !state->spec.incoming_file.empty();
  if (!loading && adopt_if_alive(vm)) {
    destroy_vdi(vdi);
    return;
  }
  domains_.hypervisor().stop_orphan(domains_.run_dir_of(uuid));
  hv::remove_live_state(domains_.run_dir_of(uuid));
  domains_.release_uid(vm);
  networks_.unplug_vm(vm);
  if (store_.exists("VDI", vdi)) update_vm(store_, vm, {{"power_state", "Suspended"}, {"suspend_VDI", vdi}});
}

// Interrupted suspend: with a complete image it ends Suspended; without one
// the guest runs on (its save had stopped it) and the partial image goes.
void Recovery::suspend(const std::string& vm, const std::string& vdi, bool saved) {
  if (!store_.exists("VM", vm)) return;
  auto r = domains_.find(vm);
  if (saved && store_.exists("VDI", vdi)) {
    if (r) domains_.halt(vm, r, "suspended");
    storage_.vdi_refresh(vdi);
    update_vm(store_, vm, {{"power_state", "Suspended"}, {"suspend_VDI", vdi}});
    return;
  }
  destroy_vdi(vdi);
  if (!r) return;  // the domain is gone: reattach recorded it Halted with the reason
  std::lock_guard lk(r->mu);
  if (!r->dom) return;
  // QEMU may still be writing the image nobody will use: stop that first,
  // or it would stop the guest again when done, behind the record's back.
  r->dom->cancel_save(std::chrono::seconds(30));
  if (r->dom->query_status() == hv::RunState::paused) {
    r->dom->unpause();
    update_vm(store_, vm, {{"power_state", "Running"}});
  }
}

// Interrupted hard shutdown of a suspended VM: the image goes, the VM is
// Halted (whichever step the crash came between).
void Recovery::discard_image(const std::string& vm, const std::string& vdi) {
  destroy_vdi(vdi);
  if (!store_.exists("VM", vm) || store_.get_field("VM", vm, "power_state").as_string() != "Suspended") return;
  update_vm(store_, vm, {{"suspend_VDI", std::string(kNullRef)}});
  domains_.record_halted(vm, "hard shutdown");
}

// Interrupted clone/copy: the half-made VM and the disks made for it go
// (the copies of the vdi_copy in flight are the vdi_file intent's).
void Recovery::copy(const std::string& new_uuid, const Array& vdis) {
  std::string new_vm;
  try {
    new_vm = store_.ref_by_uuid("VM", new_uuid);
  } catch (const ApiError&) {
    // The crash came before the record.
  }
  if (!new_vm.empty()) {
    for (const auto& vbd : store_.find("VBD", "VM", new_vm)) store_.destroy("VBD", vbd);
    for (const auto& vif : store_.find("VIF", "VM", new_vm)) store_.destroy("VIF", vif);
    store_.destroy("VM", new_vm);
  }
  for (const auto& v : vdis) destroy_vdi(v.as_string());
}

// Interrupted provision: its disks go; the spec is still in other_config,
// so provisioning can run again.
void Recovery::provision(const Array& vdis) {
  for (const auto& v : vdis) {
    const auto& vdi = v.as_string();
    for (const auto& vbd : store_.find("VBD", "VDI", vdi)) store_.destroy("VBD", vbd);
    destroy_vdi(vdi);
  }
}

void Recovery::stop_orphans() {
  std::error_code ec;
  for (fs::directory_iterator it(domains_.run_dir_of(""), ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    auto uuid = it->path().filename().string();
    std::string vm;
    try {
      vm = store_.ref_by_uuid("VM", uuid);
    } catch (const ApiError&) {
    }
    // A domain a record accounts for is the Domains' business.
    if (!vm.empty() && domains_.find(vm)) continue;
    if (domains_.hypervisor().stop_orphan(it->path().string())) {
      spdlog::warn("stopped a domain in {} that no VM record accounted for", it->path().string());
      hv::remove_live_state(it->path().string());
      if (!vm.empty()) networks_.unplug_vm(vm);
    }
  }
}

}  // namespace vmstack::ops
