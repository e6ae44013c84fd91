// A private libvirtd for the benchmarks to measure vmstack against, in the
// same run: libvirtd run as root is always the system daemon (/etc/libvirt,
// /var/lib/libvirt, /run/libvirt: the host's). Run as the unprivileged
// `vmstack-bench` user (bench/setup.sh creates it) with XDG_* pointing into a
// temp dir it is a session daemon whose config, state, sockets, logs and
// domain definitions all live in that dir: nothing of the host's is touched,
// and removing the dir removes every trace. virsh (as root) talks to it over
// its socket: qemu+unix:///session?socket=... Session mode is libvirt's
// lightest (no cgroups, no namespaces, no relabelling, no network/firewall
// setup), so comparisons do not flatter vmstack. See bench/README.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/process.h"

namespace vmstack::bench {

class PrivateLibvirtd {
 public:
  std::string dir, uri, why_not, version;
  std::string kernel, initrd;  // copies of the guest fixture the bench user can read (when given)
  Subprocess daemon;

  PrivateLibvirtd() = default;
  PrivateLibvirtd(const PrivateLibvirtd&) = delete;
  PrivateLibvirtd& operator=(const PrivateLibvirtd&) = delete;
  ~PrivateLibvirtd() { stop(); }

  // Starts it in a fresh temp dir; false (and why_not) when it cannot. The
  // guest kernel and initrd, when given, are copied where the bench user can
  // read them (`kernel`, `initrd`).
  bool start(const std::string& guest_kernel = {}, const std::string& guest_initrd = {});
  bool ok() const { return why_not.empty() && daemon.valid(); }
  pid_t pid() const { return daemon.pid(); }
  // Its RPC socket (what virsh connects to).
  std::string socket() const { return dir + "/run/libvirt/libvirt-sock"; }

  std::vector<std::string> virsh_argv(const std::vector<std::string>& args) const;
  CommandResult virsh(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(120), const std::string& input = {}) const;

  std::string log_path(const std::string& dom) const { return dir + "/logs/" + dom + ".log"; }
  // The running domain's QEMU pid (libvirt writes its pid file), or 0.
  pid_t qemu_pid(const std::string& dom) const;

  // How the last stop() went, for the teardown line.
  double stop_s = 0;
  bool stop_forced = false;
  // Destroys running domains, stops libvirtd (SIGTERM, then SIGKILL after
  // 15 s), kills anything left that mentions the dir, removes the dir.
  void stop();

  // Any process whose argv mentions `d` (a QEMU left over after a failure):
  // libvirt's QEMUs are not our children, so SIGKILL is all we can do.
  static void kill_processes_mentioning(const std::string& d);

 private:
  bool fail(const std::string& why) {
    why_not = why;
    return false;
  }
};

}  // namespace vmstack::bench
