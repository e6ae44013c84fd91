// The VM power verbs: start, shutdown, reboot, pause, suspend/resume, and
// the balloon. Preconditions and the operation lock are the dispatcher's
// (from the lifecycle table); these do the work through the hypervisor
// interface and keep the records in step.
#pragma once

#include <string>
#include <vector>

#include "hv/hypervisor.h"
#include "model/store.h"

namespace vmstack::ops {

class Admission;
class Dispatcher;
class Journal;
class Domains;
class Networks;
class Storage;

struct PowerSettings {
  std::string run_dir;      // per-VM run dirs live below it
  hv::Accel accel = hv::Accel::tcg;
  int clean_shutdown_timeout_s = 60;
  std::vector<std::string> boot_dirs;  // where PV_kernel / PV_ramdisk may point
  std::string qemu_args_dir;           // the operator's extra QEMU arguments per VM
};

class VmPower {
 public:
  // Start, suspend and resume are journaled (ops/journal.h) step by step.
  VmPower(model::Store& store, Domains& domains, Storage& storage, Networks& networks, Admission& admission,
          Journal& journal, PowerSettings settings)
      : store_(store),
        domains_(domains),
        storage_(storage),
        networks_(networks),
        admission_(admission),
        journal_(journal),
        settings_(std::move(settings)) {}

  void set_accel(hv::Accel a) { settings_.accel = a; }
  hv::Accel accel() const { return settings_.accel; }

  void start(const std::string& vm, bool paused);
  void clean_shutdown(const std::string& vm);
  // Clean if the guest runs and answers, else hard (VM.shutdown).
  void shutdown(const std::string& vm);
  void hard_shutdown(const std::string& vm);
  void clean_reboot(const std::string& vm);
  void hard_reboot(const std::string& vm);
  void pause(const std::string& vm);
  void unpause(const std::string& vm);
  void suspend(const std::string& vm);
  void resume(const std::string& vm, bool paused);
  // The balloon of a running VM follows memory_dynamic_max.
  void set_balloon(const std::string& vm, int64_t bytes);

  // The spec a VM is launched with: its record and its disks as its SRs'
  // drivers present them. NICs are added by the caller once their taps are
  // made (Networks::plug_vm), the one step with host side effects.
  hv::DomainSpec spec_for(const std::string& vm);

 private:
  // The guest's own user and its taps, the last steps before a launch.
  void plug(const std::string& vm, hv::DomainSpec& spec);
  // Launches (or restores) with NICs plugged; undoes the plug on failure,
  // reporting INTERNAL_ERROR ["<failure>: <the hypervisor's words>"].
  void launch(const std::string& vm, hv::DomainSpec spec, bool paused, const std::string& failure);

  model::Store& store_;
  Domains& domains_;
  Storage& storage_;
  Networks& networks_;
  Admission& admission_;
  Journal& journal_;
  PowerSettings settings_;
};

void bind_vm_power(Dispatcher& d, VmPower& power, model::Store& store);

}  // namespace vmstack::ops
