// The serial console of a running guest, relayed to one client.
#pragma once

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
// Returns "" after a session, or why none could start.
std::string relay_console(int client, const std::string& socket_path, const std::string& log_path,
                          const std::atomic<bool>& stopping);

// Relays bytes both ways between `client` and the unix socket at
// `socket_path` (a VNC console: RFB is the client's business) until either
// side closes or `stopping` is set. Returns "" or why it could not connect.
std::string relay_stream(int client, const std::string& socket_path, const std::atomic<bool>& stopping);

}  // namespace vmstack::ops
