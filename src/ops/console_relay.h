// The serial console of a running guest, relayed to one client.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>

namespace vmstack::ops {

// Relays the guest's serial console to `client` until either side closes or
// `stopping` is set: first everything the guest printed since boot, then what
// it prints live; bytes from the client go to the guest.
//
// Output is read only from QEMU's console log (tailed through inotify), never
// from the chardev socket: QEMU writes each chunk to the attached socket and
// then to the log, so replaying the log and then switching to the socket
// would miss or repeat whatever QEMU wrote between the two. The socket is for
// input; what QEMU sends on it is drained and dropped.
//
// Both names are in the guest's own directory, which an escaped guest
// controls: the log is opened without following a symlink and only if it is
// a regular file with a single link; with peer_pid > 0 (the domain's QEMU,
// LiveState::pid) the socket must be served by that process (SO_PEERCRED).
// peer_pid 0: no check (tests serving their own socket).
//
// Returns "" after a session, or why none could start.
std::string relay_console(int client, const std::string& socket_path, const std::string& log_path, pid_t peer_pid,
                          const std::atomic<bool>& stopping);

// Relays bytes both ways between `client` and the unix socket at
// `socket_path` (a VNC console: RFB is the client's business) until either
// side closes or `stopping` is set; peer_pid as for relay_console. Returns
// "" or why it could not connect.
std::string relay_stream(int client, const std::string& socket_path, pid_t peer_pid, const std::atomic<bool>& stopping);

}  // namespace vmstack::ops
