// A running guest: one QEMU process (its own process group), driven over QMP.
// The toolstack (ops/) fills a QemuSpec from the VM record and keeps the
// Domain; after a daemon restart Domain::attach() re-adopts a live QEMU from
// the pid and QMP socket path stored in the VM record.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmstack::hv {

class QmpClient;  // hv/qmp.h

enum class Accel { kvm, tcg };
const char* to_string(Accel a);

struct DiskSpec {
  std::string path;
  std::string format = "qcow2";  // qcow2 | raw
  bool cdrom = false;
  bool readonly = false;
  bool bootable = false;
  std::string device;            // VBD.userdevice ("0", "1", "3" for CD...)
};

struct NicSpec {
  std::string mac;     // "aa:bb:cc:dd:ee:ff"
  std::string tap;     // tap device name; empty = user-mode networking off (no NIC backend)
  std::string model = "virtio-net-pci";
};

struct QemuSpec {
  std::string uuid;
  std::string name;
  std::string run_dir;  // per-VM dir: qmp.sock, console.sock, console.log, qemu.log, qemu.pid
  Accel accel = Accel::tcg;
  int vcpus_max = 1;
  int vcpus_at_startup = 1;
  int64_t memory_static_max = 256LL << 20;  // bytes
  int64_t memory_target = 256LL << 20;      // balloon target (dynamic_max) in bytes
  // PV-style direct kernel boot when kernel is non-empty; otherwise HVM (BIOS).
  std::string kernel;
  std::string ramdisk;
  std::string cmdline;
  std::string boot_order = "cd";  // HVM_boot_params["order"]: c=disk d=cdrom n=network
  std::vector<DiskSpec> disks;
  std::vector<NicSpec> nics;
  bool vnc = false;       // VNC console (HVM): bound to 127.0.0.1, port chosen by QEMU
  bool start_paused = false;
  std::string incoming_file;  // resume: load state saved by save_to_file()
  std::vector<std::string> extra_args;  // platform:qemu-args escape hatch
  // Additions (hv):
  // Machine type. Empty = automatic: "microvm" for PV specs (kernel set) that
  // need no CD drive and no VNC, else "q35" (BIOS). Explicit: q35 | pc |
  // microvm (microvm: PV only, no CD drive, no VGA). docs/hv.md has the
  // measurements behind the choice.
  std::string machine;
  std::string qemu_binary;  // launch(): empty = $VMSTACK_QEMU or "qemu-system-x86_64"
  // microvm PV guests: appended to the kernel command line as
  // tsc_early_khz=<tsc_khz> unless the cmdline already sets it (microvm has
  // no HPET/PM timer and its TSC calibration against the PIT hangs
  // occasionally under TCG). 0 = launch() fills it in from host_tsc_khz().
  int64_t tsc_khz = 0;
};

// The machine type build_qemu_argv() uses for spec (resolves the automatic
// choice described at QemuSpec::machine).
std::string machine_for(const QemuSpec& spec);

// The host's TSC frequency in kHz (what a guest reads with rdtsc, under TCG
// and KVM alike), measured once against CLOCK_MONOTONIC_RAW; 0 if unknown.
int64_t host_tsc_khz();

// Pure: the argv QEMU is started with (argv[0] is the binary). Unit-tested.
std::vector<std::string> build_qemu_argv(const QemuSpec& spec, const std::string& qemu_binary = "qemu-system-x86_64");

struct DomainInfo {
  pid_t pid = 0;
  std::string qmp_socket;
  std::string console_socket;  // serial console, unix socket (server) QEMU owns
  std::string console_log;     // everything the serial console printed
  int vnc_port = -1;           // TCP port on 127.0.0.1, -1 when no VNC
};

enum class RunState { running, paused, shutdown, suspended, unknown };

class Domain {
 public:
  // Starts QEMU (as our child, setsid'd so it survives us), waits for its QMP
  // socket, negotiates capabilities. Throws std::runtime_error with QEMU's
  // stderr on failure.
  static std::unique_ptr<Domain> launch(const QemuSpec& spec);
  // Same with an explicit startup deadline (default 30s: QMP socket up, and
  // for incoming_file the saved state fully loaded).
  static std::unique_ptr<Domain> launch(const QemuSpec& spec, std::chrono::milliseconds timeout);
  // Re-adopt a QEMU started by an earlier daemon. nullopt-like nullptr if dead.
  static std::unique_ptr<Domain> attach(const DomainInfo& info);
  ~Domain();  // closes QMP; does NOT kill the guest

  const DomainInfo& info() const;
  bool alive() const;
  RunState query_status();
  void pause();     // QMP stop
  void unpause();   // QMP cont
  void powerdown(); // ACPI power button (system_powerdown)
  void reset();     // system_reset (hard reboot in place)
  void set_balloon(int64_t bytes);
  void save_to_file(const std::string& path);  // stop + migrate to file, waits for completion
  // Same with a deadline (default 300s). On failure or timeout the migration
  // is cancelled, a guest that was running is resumed, and runtime_error is thrown.
  void save_to_file(const std::string& path, std::chrono::milliseconds timeout);
  // Ends the process (QMP quit, then SIGKILL after a grace period) and reaps it.
  void kill();
  // Waits until QEMU exits or the deadline passes; true if it exited. Reaps
  // it when it is our child.
  bool wait_exit(std::chrono::milliseconds timeout);
  // Guests run with -no-shutdown: when the guest powers off, QEMU stays up,
  // stopped, and the handler gets guest_shutdown (detail = QMP's reason, e.g.
  // "guest-shutdown"); the toolstack then either reset()+unpause() (a
  // requested reboot) or kill(). guest_reset: the guest rebooted in place.
  // exited: the QEMU process is gone (detail "exited:<status>" or
  // "signal:<n>"). Called from the Domain's monitor thread; set it before the
  // guest can act (launch starts monitoring immediately, events before the
  // handler is set are queued and delivered when it is set). The handler may
  // destroy the Domain; after ~Domain() returns no further event is
  // delivered (the destructor waits for a handler running on another thread).
  enum class Event { guest_shutdown, guest_reset, exited };
  void set_event_handler(std::function<void(Event, const std::string& detail)> handler);

  // Additions (hv): raw QMP access for things not wrapped here (CD change,
  // hotplug...). Never null while the Domain exists; commands fail once QEMU
  // is gone.
  QmpClient& qmp();
  // Last bytes of qemu.log (QEMU's stdout/stderr) for error messages.
  std::string log_tail(size_t max_bytes = 4096) const;

 private:
  Domain();
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the monitor thread
};

// Boots a tiny guest with KVM under a deadline; answers which accelerator can
// run a standard guest here. Cached by the caller.
struct AccelProbe {
  Accel accel;
  std::string detail;  // e.g. "kvm: guest did not reach init within 8s; using tcg"
};
AccelProbe probe_accelerator(const std::string& kernel, const std::string& ramdisk,
                             std::chrono::milliseconds deadline = std::chrono::seconds(8));

// Addition (hv): the probe's core, usable with either accelerator (tests,
// diagnostics). Boots kernel+ramdisk in a temporary run dir and waits for
// the fixture's marker ("vmstack-guest: init reached") on the console;
// gives up early when QEMU dies or the guest crashes/resets.
struct BootCheck {
  bool reached = false;
  std::string detail;  // why not, when !reached
  std::chrono::milliseconds took{0};
};
BootCheck boot_check(Accel accel, const std::string& kernel, const std::string& ramdisk,
                     std::chrono::milliseconds deadline);

}  // namespace vmstack::hv
