// The hypervisor interface: what the toolstack (ops/) asks of a running
// guest, whatever runs it. QemuHypervisor (hv/qemu_hypervisor.h) starts one
// QEMU per guest and drives it over QMP; FakeHypervisor (hv/fake_hypervisor.h)
// keeps domains in memory so lifecycle logic is tested in milliseconds.
//
// Every running domain has a LiveState: the spec it was launched with (device
// ids resolved), its process, sockets, console log and VNC port. It is saved
// in the domain's run dir (domain.json) when the domain starts and whenever
// its devices change, and re-attach, hotplug and (later) migration work from
// it: nothing is re-derived from names or URLs.
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

enum class Accel { kvm, tcg };
const char* to_string(Accel a);

struct DiskSpec {
  std::string id;        // device id, unique in the domain ("vbd0"); filled from `device` when empty
  std::string path;      // image (empty: an empty CD drive)
  std::string format = "qcow2";  // qcow2 | raw: the SR driver's fact, never the API caller's
  bool cdrom = false;
  bool readonly = false;
  bool bootable = false;
  std::string device;    // VBD.userdevice ("0", "1", "3" for CD...)
  std::string port;      // hotplugged: the root port it sits on ("hp0"); empty when cold-plugged
  int fdset = 0;         // deprivileged: the QEMU fd set the image was passed in (0: none)
};

struct NicSpec {
  std::string id;      // device id ("vif0"); filled from `device` when empty
  std::string mac;     // "aa:bb:cc:dd:ee:ff"
  std::string tap;     // host tap device the NIC is backed by (made by the network backend)
  std::string model = "virtio-net-pci";
  int64_t mtu = 0;     // 0: QEMU's default
  std::string device;  // VIF.device ("0")
  std::string port;    // hotplugged: the root port it sits on; empty when cold-plugged
};

struct DomainSpec {
  std::string uuid;
  std::string name;
  // Per-domain dir, the toolstack's own (0700): domain.json, qemu.pid,
  // qemu.log; the hypervisor works in guest_dir_of(run_dir) below it.
  std::string run_dir;
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
  bool vnc = false;  // VNC console: a unix socket in the run dir (no TCP port any local user could reach)
  bool start_paused = false;
  std::string incoming_file;  // restore: load the state saved by Domain::save()
  std::vector<std::string> extra_args;  // platform:qemu-args escape hatch
  // Machine type. Empty = automatic: "microvm" for PV specs (kernel set) that
  // need no CD drive and no VNC, else "q35" (BIOS). Explicit: q35 | pc |
  // microvm. docs/hv.md has the measurements behind the choice.
  std::string machine;
  // microvm PV guests: appended to the kernel command line as
  // tsc_early_khz=<tsc_khz> unless the cmdline already sets it (microvm has
  // no HPET/PM timer and its TSC calibration against the PIT hangs
  // occasionally under TCG). 0 = the QEMU driver fills it in at launch.
  int64_t tsc_khz = 0;
  // Empty PCIe root ports ("hp0", "hp1", ...) for disks and NICs added while
  // the guest runs: on PCIe machines (q35, microvm) a device can only be
  // hotplugged into a root port, never onto the root bus.
  int hotplug_slots = 2;
  // Deprivileged: the hypervisor runs as this uid/gid (a user of its own per
  // guest) and never opens a host file by name: disk images come in as
  // descriptors the toolstack opened (QEMU fd sets), boot files as private
  // copies or links in its guest dir. -1: as the toolstack's own user.
  int uid = -1;
  int gid = -1;
  // A seccomp filter (QEMU -sandbox): no obsolete syscalls, no privilege
  // changes, no fork/exec, no scheduler or resource changes.
  bool sandbox = true;
};

// A domain's run dir is split in two. The run dir itself is the toolstack's
// (root's, 0700) and holds only what root writes and later trusts:
// domain.json, qemu.pid, qemu.log (QEMU's stdout/stderr, opened by root).
// The guest dir below it, <run_dir>/qemu, is the hypervisor's working
// directory and the only place its (deprivileged) user may write: its
// sockets, its console log, the boot files root placed for it. Root never
// follows a name in the guest dir without checking what it found there
// (O_NOFOLLOW and a single link for files, the peer's pid for sockets).
inline constexpr const char* kGuestDir = "qemu";
inline std::string guest_dir_of(const std::string& run_dir) { return run_dir + "/" + kGuestDir; }

// Fills the device ids of disks and NICs that have none ("vbd<userdevice>",
// "vif<device>"), making them unique. Launch does it; exposed for tests.
void assign_device_ids(DomainSpec& spec);

struct LiveState {
  DomainSpec spec;  // as launched, device ids resolved; devices hotplugged since included
  std::string driver = "qemu";  // which Hypervisor runs it
  pid_t pid = 0;               // the process serving the sockets below (their SO_PEERCRED pid)
  std::string qmp_socket;      // these four are in the guest dir
  std::string console_socket;  // serial console, unix socket (server) the domain owns
  std::string console_log;     // everything the serial console printed
  std::string vnc_socket;      // VNC (RFB) unix socket, empty when no VNC
  int64_t started = 0;         // epoch seconds
};

// <run_dir>/domain.json: written atomically (temp file + rename), never
// through a name someone else planted (O_EXCL|O_NOFOLLOW on the temp file).
void save_live_state(const LiveState& s);
// nullopt if absent or unreadable, or when it is not a regular file of our
// own user with a single link (nothing root wrote: not to be trusted).
std::optional<LiveState> load_live_state(const std::string& run_dir);
void remove_live_state(const std::string& run_dir);
// JSON forms (also the input of the argv golden tests).
std::string spec_to_json(const DomainSpec& s);
DomainSpec spec_from_json(const std::string& text);  // throws std::runtime_error

enum class RunState { running, paused, shutdown, suspended, unknown };

class Domain {
 public:
  // guest_shutdown: the guest powered off (the domain stays, stopped; the
  // toolstack then resets+unpauses it for a reboot, or stops it); detail is
  // the reason (e.g. "guest-shutdown"). guest_reset: the guest rebooted in
  // place. exited: the domain's process is gone (detail "exited:<status>"
  // or "signal:<n>").
  enum class Event { guest_shutdown, guest_reset, exited };
  using EventHandler = std::function<void(Event, const std::string& detail)>;

  virtual ~Domain() = default;  // forgets the domain; does NOT stop the guest

  virtual const LiveState& state() const = 0;
  virtual bool alive() const = 0;
  virtual RunState query_status() = 0;
  virtual void pause() = 0;
  virtual void unpause() = 0;
  virtual void powerdown() = 0;  // ACPI power button
  virtual void reset() = 0;      // hard reboot in place
  virtual void set_balloon(int64_t bytes) = 0;
  // Stops the guest and writes its state to `path` (restore: launch with
  // spec.incoming_file). On failure a guest that was running runs on.
  virtual void save(const std::string& path, std::chrono::milliseconds timeout) = 0;
  // Stops a save still in progress that nobody waits for any more (a daemon
  // killed during save() leaves QEMU writing); returns once none runs. The
  // guest stays stopped: the caller decides whether it runs on.
  virtual void cancel_save(std::chrono::milliseconds timeout) = 0;
  // Ends the domain (gracefully, then by force) and reaps its process.
  virtual void stop() = 0;
  // Waits until the process exits or the deadline passes; true if it exited.
  virtual bool wait_exit(std::chrono::milliseconds timeout) = 0;

  // Device hotplug; each updates state() and the saved live state.
  virtual void add_disk(const DiskSpec& d) = 0;
  virtual void remove_disk(const std::string& id) = 0;
  virtual void add_nic(const NicSpec& n) = 0;
  virtual void remove_nic(const std::string& id) = 0;
  // Inserts `path` into CD drive `id` (empty path: ejects).
  virtual void change_cd(const std::string& id, const std::string& path) = 0;

  // Called from the domain's own thread; events before the handler is set
  // are queued and delivered when it is set. The handler may destroy the
  // Domain; after ~Domain() returns no further event is delivered.
  virtual void set_event_handler(EventHandler handler) = 0;
  // The last bytes of the domain's own log, for error messages.
  virtual std::string log_tail(size_t max_bytes = 4096) const = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual std::string name() const = 0;
  // Starts a domain (restores one when spec.incoming_file is set) and saves
  // its live state. Throws std::runtime_error with the hypervisor's own words.
  virtual std::unique_ptr<Domain> launch(const DomainSpec& spec) = 0;
  // Re-adopts a domain started by an earlier daemon from its live state;
  // nullptr if it is gone.
  virtual std::unique_ptr<Domain> attach(const LiveState& state) = 0;
  // Stops a domain still running in `run_dir` that nobody holds (left by a
  // daemon killed between starting it and recording it). True if there was one.
  virtual bool stop_orphan(const std::string& run_dir) = 0;
};

}  // namespace vmstack::hv
