// Identity, the QMP control channel, the serial console and the display.
#include <sys/un.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "hv/argv/common.h"
#include "hv/qemu_argv.h"

namespace vmstack::hv::argv {

using detail::esc;

void identity(Args& a, const DomainSpec& s) {
  a.insert(a.end(), {"-name", "guest=" + esc(s.name.empty() ? s.uuid : s.name) + ",debug-threads=on"});
  if (!s.uuid.empty()) a.insert(a.end(), {"-uuid", s.uuid});
  a.insert(a.end(), {"-nodefaults", "-no-user-config"});
  a.insert(a.end(), {"-msg", "timestamp=on"});
}

void control(Args& a, const DomainSpec& s) {
  // QEMU binds its sockets by relative names, but the toolstack connects to
  // them by absolute path (<run_dir>/qemu/console.sock, the longest), and
  // sockaddr_un holds 108 bytes with the NUL: refuse here, naming the field.
  const size_t longest = s.run_dir.size() + 1 + std::strlen(kGuestDir) + 1 + std::strlen(kConsoleSocket);
  const size_t max_run_dir = sizeof(sockaddr_un::sun_path) - 1 - (longest - s.run_dir.size());
  if (longest + 1 > sizeof(sockaddr_un::sun_path))
    throw std::invalid_argument("DomainSpec.run_dir too long for unix sockets (max " + std::to_string(max_run_dir) +
                                " chars): " + s.run_dir);
  // Names relative to the guest dir, QEMU's working directory: a QEMU
  // running as its own user reaches its guest dir without being able to
  // traverse the (private) directories above it.
  // QEMU stays up when the guest powers off, so a guest shutdown is told
  // from a crash and the final state read; QMP drives everything.
  a.push_back("-no-shutdown");
  a.insert(a.end(), {"-chardev", "socket,id=qmp0,path=" + esc(std::string(kQmpSocket)) + ",server=on,wait=off"});
  a.insert(a.end(), {"-mon", "chardev=qmp0,mode=control"});
}

void console(Args& a) {
  // A unix socket for interactive use plus a log of everything printed.
  a.insert(a.end(), {"-chardev", "socket,id=console0,path=" + esc(std::string(kConsoleSocket)) +
                                     ",server=on,wait=off,logfile=" + esc(std::string(kConsoleLog)) +
                                     ",logappend=on"});
  a.insert(a.end(), {"-serial", "chardev:console0"});
}

void display(Args& a, const DomainSpec& s, const Machine& m) {
  a.insert(a.end(), {"-display", "none"});
  if ((!m.pv || s.vnc) && !m.microvm) a.insert(a.end(), {"-device", "VGA,id=video0"});
  // A unix socket in the guest dir: only root (the toolstack, relaying it to
  // authenticated API clients) reaches it; a TCP port, even on loopback,
  // would give every local user the guest's keyboard.
  if (s.vnc) a.insert(a.end(), {"-vnc", std::string("unix:") + kVncSocket});
}

void incoming(Args& a, const DomainSpec& s) {
  if (s.start_paused) a.push_back("-S");
  // The saved state comes in on a descriptor the toolstack opens and hands
  // over QMP (getfd + migrate-incoming): no file opened by name, no helper
  // process (the sandbox forbids exec).
  if (!s.incoming_file.empty()) a.insert(a.end(), {"-incoming", "defer"});
}

void sandbox(Args& a, const DomainSpec& s) {
  if (s.sandbox) a.insert(a.end(), {"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
}

}  // namespace vmstack::hv::argv
