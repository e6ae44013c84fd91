// vmstackd's configuration: where state lives and how guests are run.
#pragma once

#include <cstddef>
#include <string>

namespace vmstack::ops {

struct Config {
  std::string state_dir = "/var/lib/vmstack";  // database, SRs, the API socket
  std::string run_dir;       // per-guest sockets and logs; default <state_dir>/run
  std::string db_path;       // default <state_dir>/vmstack.db
  std::string unix_socket;   // default <state_dir>/xapi.sock
  std::string tcp_address;   // empty: no TCP listener
  unsigned short tcp_port = 8080;
  std::string accel = "auto";  // auto (probe once, cached) | kvm | tcg
  std::string guest_dir;     // demo guest kernel/initrd (tools/guest-fixture.sh output)
  std::string qemu_binary = "qemu-system-x86_64";
  int clean_shutdown_timeout_s = 60;  // then the timeout path: forced shutdown
  unsigned api_threads = 8;
  // API connection limits (api::ServerLimits): per transport (TCP and the
  // unix socket each), and TCP connections per client IP.
  std::size_t max_connections = 4096;
  std::size_t max_connections_per_ip = 128;
  unsigned task_threads = 4;
  std::string root_password;  // initial password for "root" (first start only)

  // Fills the derived defaults above.
  void finalize();
};

}  // namespace vmstack::ops
