// The QEMU driver: one QEMU process per domain (its own session, our child,
// reaped through a pidfd so it outlives a daemon restart), driven over QMP.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "hv/hypervisor.h"

namespace vmstack::hv {

class QmpClient;  // hv/qmp.h

class QemuDomain final : public Domain {
 public:
  ~QemuDomain() override;  // closes QMP; does NOT stop the guest

  const LiveState& state() const override;
  bool alive() const override;
  RunState query_status() override;
  void pause() override;     // QMP stop
  void unpause() override;   // QMP cont
  void powerdown() override; // system_powerdown
  void reset() override;     // system_reset
  void set_balloon(int64_t bytes) override;
  // stop + migrate to an fd of `path`; on failure or timeout the migration is
  // cancelled and a guest that was running is resumed.
  void save(const std::string& path, std::chrono::milliseconds timeout) override;
  void cancel_save(std::chrono::milliseconds timeout) override;
  void stop() override;  // QMP quit, SIGKILL to the group after a grace period, reaped
  bool wait_exit(std::chrono::milliseconds timeout) override;
  void add_disk(const DiskSpec& d) override;
  void remove_disk(const std::string& id) override;
  void add_nic(const NicSpec& n) override;
  void remove_nic(const std::string& id) override;
  void change_cd(const std::string& id, const std::string& path) override;
  void set_event_handler(EventHandler handler) override;
  std::string log_tail(size_t max_bytes = 4096) const override;

  // Raw QMP for what the interface does not wrap (tests, diagnostics).
  // Never null while the domain exists; commands fail once QEMU is gone.
  QmpClient& qmp();

  struct Impl;

 private:
  friend class QemuHypervisor;
  QemuDomain();
  std::shared_ptr<Impl> impl_;  // shared with the monitor thread
};

class QemuHypervisor final : public Hypervisor {
 public:
  // binary: empty = $VMSTACK_QEMU or "qemu-system-x86_64".
  explicit QemuHypervisor(std::string binary = {});
  std::string name() const override { return "qemu"; }
  std::unique_ptr<Domain> launch(const DomainSpec& spec) override;
  // With an explicit startup deadline (default 30 s: QMP socket up, and for
  // spec.incoming_file the saved state fully loaded).
  std::unique_ptr<QemuDomain> launch_qemu(const DomainSpec& spec, std::chrono::milliseconds timeout);
  std::unique_ptr<Domain> attach(const LiveState& state) override;
  std::unique_ptr<QemuDomain> attach_qemu(const LiveState& state);
  bool stop_orphan(const std::string& run_dir) override;
  const std::string& binary() const { return binary_; }

 private:
  std::string binary_;
};

// The host's TSC frequency in kHz (what a guest reads with rdtsc, under TCG
// and KVM alike), measured once against CLOCK_MONOTONIC_RAW; 0 if unknown.
int64_t host_tsc_khz();

// Boots a tiny guest with KVM under a deadline; answers which accelerator can
// run a standard guest here. Cached by the caller.
struct AccelProbe {
  Accel accel;
  std::string detail;  // e.g. "kvm: guest did not reach init within 8s; using tcg"
};
AccelProbe probe_accelerator(const std::string& kernel, const std::string& ramdisk,
                             std::chrono::milliseconds deadline = std::chrono::seconds(8));

// The probe's core, usable with either accelerator (tests, diagnostics):
// boots kernel+ramdisk in a temporary run dir and waits for the fixture's
// marker ("vmstack-guest: init reached") on the console; gives up early when
// QEMU dies or the guest crashes/resets.
struct BootCheck {
  bool reached = false;
  std::string detail;  // why not, when !reached
  std::chrono::milliseconds took{0};
};
BootCheck boot_check(Accel accel, const std::string& kernel, const std::string& ramdisk,
                     std::chrono::milliseconds deadline);

}  // namespace vmstack::hv
