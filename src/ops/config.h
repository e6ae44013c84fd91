// vmstackd's configuration: where state lives and how guests are run.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

namespace vmstack::ops {

struct Config {
  std::string state_dir = "/var/lib/vmstack";  // database, SRs, the API socket
  std::string run_dir;       // per-guest sockets and logs; default <state_dir>/run
  std::string db_path;       // default <state_dir>/vmstack.db
  std::string unix_socket;   // default <state_dir>/xapi.sock
  std::string tcp_address;   // plain HTTP (--listen-http); empty: none
  unsigned short tcp_port = 8080;
  std::string tls_address;   // HTTPS (--listen); empty: none
  unsigned short tls_port = 443;
  std::string tls_cert;      // PEM files; default <state>/tls/vmstackd.{pem,key}, made at first start
  std::string tls_key;
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
  // Where PV_kernel / PV_ramdisk may point (checked after resolving
  // symlinks); default <state_dir>/boot and the demo guest dir.
  std::vector<std::string> boot_dirs;
  // Operator-only extra QEMU arguments: <qemu_args_dir>/<vm uuid>.args, one
  // argument per line, used only when the file is root's and writable by
  // root alone. Never settable through the API.
  std::string qemu_args_dir = "/etc/vmstack/qemu-args.d";
  // Memory kept for the host itself: a start that would leave less than this
  // of MemTotal beside every running guest's memory_static_max is refused
  // with HOST_NOT_ENOUGH_FREE_MEMORY.
  int64_t host_memory_reserve = int64_t{1} << 30;
  // Sessions unused this long are gone; past this many per user, a new login
  // replaces the least recently used one (xapi's limit).
  std::chrono::seconds session_timeout{std::chrono::hours(24)};
  // Each guest's QEMU runs as a user of its own: uid (and gid) base + a slot
  // free among the running guests; 0 runs QEMU as root (debugging only).
  int qemu_uid_base = 70000;
  size_t max_sessions_per_user = 500;

  // Fills the derived defaults above.
  void finalize();
  // Where API clients reach this daemon's /console route, for
  // console.location: "https://ADDR[:PORT]" (the HTTPS listener; a wildcard
  // address is shown as `hostname`), else "http://..." (plain HTTP), else ""
  // (unix socket only: the location is the bare "/console?ref=...").
  std::string console_base_url(const std::string& hostname) const;
};

}  // namespace vmstack::ops
