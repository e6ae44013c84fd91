// The running side of VMs: one hv::Domain per running or paused VM, kept
// beside the database record that clients see, and the reactions to what
// guests do by themselves (power off, reboot, their process dies). The
// verbs that drive domains are in vm_power.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "hv/hypervisor.h"
#include "model/store.h"
#include "ops/work_queue.h"

namespace vmstack::ops {

class Networks;

// One running domain and what the toolstack is doing to it.
struct RunningDomain {
  std::unique_ptr<hv::Domain> dom;
  std::mutex mu;
  std::condition_variable cv;
  // What the toolstack asked for, so guest events are read correctly:
  // `stopping` makes an exit expected; `awaiting_off` makes a guest
  // power-off the answer to a clean shutdown/reboot rather than news.
  bool stopping = false;
  bool awaiting_off = false;
  bool guest_off = false;
  bool halted = false;  // forgotten and recorded Halted: later halts are no-ops
};

class Domains {
 public:
  Domains(model::Store& store, hv::Hypervisor& hv, Networks& networks, std::string run_dir);
  ~Domains();  // forgets the domains; the guests keep running for the next daemon
  Domains(const Domains&) = delete;
  Domains& operator=(const Domains&) = delete;

  void set_host(const std::string& host_ref) { host_ = host_ref; }
  // console.location is this + "/console?ref=<console>" (Config::console_base_url).
  void set_console_base(const std::string& base) { console_base_ = base; }
  hv::Hypervisor& hypervisor() { return hv_; }
  std::string run_dir_of(const std::string& vm_uuid) const { return run_dir_ + "/" + vm_uuid; }
  // VM.destroy: the VM's run dir and everything in it (its guest dir,
  // console log, qemu.log) go with it. Only a uuid's: never the run root.
  void remove_run_dir(const std::string& vm_uuid);

  // After a daemon (re)start: adopt the domains of VMs recorded as running
  // (from their saved live state), mark the ones that are gone Halted with
  // the reason in other_config:last_shutdown_reason.
  void reattach_all();

  std::shared_ptr<RunningDomain> find(const std::string& vm);
  // Takes a freshly launched domain under management and records the VM running.
  std::shared_ptr<RunningDomain> adopt(const std::string& vm, std::unique_ptr<hv::Domain> dom, bool paused);
  // Stops the domain (if still there), forgets it, records Halted + the reason.
  void halt(const std::string& vm, const std::shared_ptr<RunningDomain>& r, const std::string& reason);
  // Records Halted for a VM with no domain (QEMU already gone).
  void record_halted(const std::string& vm, const std::string& reason);
  // Waits for the guest to power itself off after an ACPI power button
  // press, pressing again every few seconds; false at the timeout.
  bool wait_guest_off(RunningDomain& r, std::chrono::seconds timeout);

  // The user a VM's QEMU runs as: uid_base + the lowest slot no other
  // running or starting VM holds; the VM keeps it until it halts (or its
  // start fails: release_uid). -1 when QEMU runs as root (uid_base 0).
  int claim_uid(const std::string& vm);
  void release_uid(const std::string& vm);
  void set_uid_base(int base) { uid_base_ = base; }

  // The live state of a running VM (console paths, VNC port, devices).
  std::optional<hv::LiveState> live_state(const std::string& vm);
  size_t running_count();

 private:
  void watch(const std::string& vm, const std::shared_ptr<RunningDomain>& r);
  void on_event(const std::string& vm, const std::weak_ptr<RunningDomain>& w, hv::Domain::Event ev,
                const std::string& detail);
  void record_running(const std::string& vm, const hv::LiveState& s, bool paused);

  model::Store& store_;
  hv::Hypervisor& hv_;
  Networks& networks_;
  std::string run_dir_;
  std::string host_;
  std::string console_base_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RunningDomain>> running_;
  int uid_base_ = 0;
  std::map<std::string, int> uids_;  // vm -> its QEMU's uid; under mu_
  // Guest events are handled one at a time, off the domains' own threads
  // (a handler may destroy the domain whose thread called it).
  WorkQueue events_{1};
};

}  // namespace vmstack::ops
