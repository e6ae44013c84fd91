// A hypervisor whose domains live in memory: the toolstack's lifecycle logic
// (ops/) runs against it in milliseconds, and tests script what a guest does
// (powers off by itself, ignores the power button, crashes) and what fails
// (launch, save). Behaves like the QEMU driver where the toolstack can tell:
// events arrive on another thread, a powered-off guest stays until stopped,
// a saved guest is left stopped, live state is saved in the run dir.
#pragma once

#include <chrono>
#include <functional>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hv/hypervisor.h"

namespace vmstack::hv {

class FakeHypervisor final : public Hypervisor {
 public:
  // What the fake guests and the fake hypervisor do; change it any time.
  struct Behaviour {
    bool acpi = true;  // the guest powers off when the power button is pressed
    std::chrono::milliseconds powerdown_delay{20};
    std::string fail_launch;  // non-empty: launch throws this
    std::string fail_save;    // non-empty: save throws this (the guest runs on)
  };

  FakeHypervisor();
  ~FakeHypervisor() override;
  FakeHypervisor(const FakeHypervisor&) = delete;
  FakeHypervisor& operator=(const FakeHypervisor&) = delete;

  std::string name() const override { return "fake"; }
  std::unique_ptr<Domain> launch(const DomainSpec& spec) override;
  std::unique_ptr<Domain> attach(const LiveState& state) override;
  bool stop_orphan(const std::string& run_dir) override;

  void set_behaviour(const Behaviour& b);

  // ---- what a test drives and reads (by domain uuid).
  // The guest powers itself off (QEMU: SHUTDOWN with guest=true).
  void guest_shutdown(const std::string& uuid);
  // The guest reboots itself (QEMU: RESET with guest=true).
  void guest_reset(const std::string& uuid);
  // The domain's process dies ("signal:9").
  void crash(const std::string& uuid);
  bool alive(const std::string& uuid) const;
  size_t alive_count() const;
  RunState status(const std::string& uuid) const;
  // Every operation the toolstack asked of the domain, in order: "launch",
  // "pause", "unpause", "powerdown", "reset", "balloon:<bytes>", "save", "cancel_save",
  // "stop", "add_disk:<id>", "remove_disk:<id>", "add_nic:<id>",
  // "remove_nic:<id>", "change_cd:<id>:<path>".
  std::vector<std::string> calls(const std::string& uuid) const;
  // The spec of the domain's latest launch.
  DomainSpec last_spec(const std::string& uuid) const;

  struct Guest;  // shared by the domain handles of one guest (internal)

 private:
  friend class FakeDomain;
  // Runs fn on the event thread after `delay` (events reach handlers there).
  void schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  void run_events();
  // Queues an event for the guest's handler (held until one is set).
  void deliver(const std::shared_ptr<Guest>& g, Domain::Event e, const std::string& detail);
  void guest_shutdown_event(const std::shared_ptr<Guest>& g, const std::string& detail);
  // The domain's process ends: alive=false, then `exited`.
  void exit_guest(const std::shared_ptr<Guest>& g, const std::string& detail);
  std::shared_ptr<Guest> find(const std::string& uuid) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Behaviour behaviour_;
  std::map<std::string, std::shared_ptr<Guest>> guests_;  // by uuid, latest launch
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> timers_;
  int next_pid_ = 100000;
  bool stopping_ = false;
  std::thread events_;  // last: started after everything it uses
};

}  // namespace vmstack::hv
