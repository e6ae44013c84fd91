// The running side of VMs: one hv::Domain (a QEMU process) per running or
// paused VM, the power-state verbs that drive it, and the reactions to what
// the guest does by itself (powers off, QEMU dies). The database record is
// the truth clients see; this class keeps it in step with the processes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "hv/domain.h"
#include "ops/work_queue.h"

namespace vmstack::ops {

class Xapi;

class Guests {
 public:
  explicit Guests(Xapi& x);
  ~Guests();
  Guests(const Guests&) = delete;
  Guests& operator=(const Guests&) = delete;

  // After a daemon (re)start: adopt the QEMUs of VMs recorded as running,
  // mark the ones whose QEMU is gone Halted (reason in other_config).
  void reattach_all();

  // Power verbs. Preconditions (power state, op lock) are checked by the
  // callers in vm_ops.cpp; these do the work and update the record.
  void start(const std::string& vm, bool paused);
  void clean_shutdown(const std::string& vm);
  void hard_shutdown(const std::string& vm);
  void clean_reboot(const std::string& vm);
  void hard_reboot(const std::string& vm);
  void pause(const std::string& vm);
  void unpause(const std::string& vm);
  void suspend(const std::string& vm);
  void resume(const std::string& vm, bool paused);
  void set_balloon(const std::string& vm, int64_t bytes);

  // The serial console of a running VM (unix socket path, log path).
  bool console_paths(const std::string& vm, std::string& socket, std::string& log);
  size_t running_count();

  hv::Accel accel() const { return accel_; }
  void set_accel(hv::Accel a) { accel_ = a; }

 private:
  struct Running {
    std::unique_ptr<hv::Domain> dom;
    std::mutex mu;
    std::condition_variable cv;
    // What the toolstack asked for, so guest events are read correctly:
    // `stopping` makes an exit expected; `awaiting_off` makes a guest
    // power-off the answer to a clean shutdown/reboot rather than news.
    bool stopping = false;
    bool awaiting_off = false;
    bool guest_off = false;
  };

  hv::QemuSpec spec_for(const std::string& vm);
  std::shared_ptr<Running> find(const std::string& vm);
  std::shared_ptr<Running> adopt(const std::string& vm, std::unique_ptr<hv::Domain> dom);
  void on_event(const std::string& vm, const std::weak_ptr<Running>& w, hv::Domain::Event ev,
                const std::string& detail);
  // Kills QEMU (if still there), forgets it, records Halted + the reason.
  void halt(const std::string& vm, const std::shared_ptr<Running>& r, const std::string& reason);
  void record_running(const std::string& vm, const hv::DomainInfo& info, bool paused);
  void record_halted(const std::string& vm, const std::string& reason);
  // Waits for the guest to power itself off after an ACPI power button press.
  bool wait_guest_off(Running& r, std::chrono::seconds timeout);

  Xapi& x_;
  hv::Accel accel_ = hv::Accel::tcg;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Running>> running_;
  // Guest events are handled one at a time, off the Domains' monitor threads
  // (a handler may destroy the Domain whose thread called it).
  WorkQueue events_{1};
};

}  // namespace vmstack::ops
