// vmstackd: the vmstack toolstack daemon. Owns the object model and the
// guests' QEMU processes, serves the XenAPI on a unix socket (and optionally
// TCP). Guests keep running when it stops; the next start re-attaches.
#include <malloc.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <algorithm>
#include <charconv>
#include <thread>

#include "ops/daemon.h"

namespace {

// Each API connection is an fd, and so are each guest's sockets: the usual
// soft limit of 1024 would be reached long before the connection budgets.
// Raise it towards the hard limit, and say so if even that is too low.
void raise_fd_limit(const vmstack::ops::Config& cfg) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  // Both transports, plus guests; an HTTPS connection costs three (the
  // client's socket and both ends of its relay).
  const rlim_t want = (cfg.tls_address.empty() ? 2 : 5) * static_cast<rlim_t>(cfg.max_connections) + 1024;
  rlim_t target = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rl.rlim_cur = target;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (target < want)
    spdlog::warn("fd limit {} is below the {} the connection budgets may need; raise it (ulimit -n) or lower "
                 "--max-connections",
                 target, want);
}

}  // namespace

int main(int argc, char** argv) {
  // A get_all_records answer is a few hundred KiB built and freed per call.
  // glibc's defaults hand such blocks back to the kernel (munmap, or
  // madvise in the worker threads' arenas) and fault them in again on the
  // next call, which on these VMs costs more than building the answer:
  // keep blocks up to 4 MiB in the heap and trim only past 16 MiB free.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  // glibc gives threads up to 8 arenas per core, each keeping its own free
  // memory: with a dozen workers, task and stream threads that is most of
  // the daemon's RSS. One arena per core is as fast here (2 cores) and
  // halves the resident size (measured: 26.6 -> 14.5 MiB, 100 VMs defined,
  // 5 running; bench/README.md).
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  vmstack::ops::Config cfg;
  std::string listen, listen_http;
  std::string log_level = "info";
  CLI::App app{"vmstackd - the vmstack toolstack daemon (XenAPI over XML-RPC/JSON-RPC)"};
  app.set_version_flag("--version", "vmstackd 0.1.0");
  app.add_option("--state-dir", cfg.state_dir, "State directory: database, SRs, API socket")->capture_default_str();
  app.add_option("--run-dir", cfg.run_dir, "Per-guest sockets and logs (default <state-dir>/run)");
  app.add_option("--socket", cfg.unix_socket, "API unix socket (default <state-dir>/xapi.sock)");
  app.add_option("--listen", listen,
                 "Also serve the API over HTTPS on ADDR:PORT (e.g. 0.0.0.0:443); a self-signed certificate is made "
                 "at first start unless --tls-cert/--tls-key name the operator's own");
  app.add_option("--listen-http", listen_http, "Also serve the API over plain HTTP on ADDR:PORT (e.g. 127.0.0.1:8080)");
  app.add_option("--tls-cert", cfg.tls_cert, "HTTPS certificate chain, PEM (default <state-dir>/tls/vmstackd.pem)");
  app.add_option("--tls-key", cfg.tls_key, "HTTPS private key, PEM (default <state-dir>/tls/vmstackd.key)");
  app.add_option("--accel", cfg.accel, "Accelerator: auto (probe once, cached), kvm or tcg")
      ->check(CLI::IsMember({"auto", "kvm", "tcg"}))
      ->capture_default_str();
  app.add_option("--guest-dir", cfg.guest_dir, "Demo guest kernel/initrd (default ~/.cache/vmstack/guest)");
  app.add_option("--qemu", cfg.qemu_binary, "QEMU binary")->capture_default_str();
  app.add_option("--clean-shutdown-timeout", cfg.clean_shutdown_timeout_s,
                 "Seconds a guest gets to power off after the ACPI button before it is forced")
      ->capture_default_str();
  app.add_option("--boot-dir", cfg.boot_dirs,
                 "A directory PV_kernel/PV_ramdisk may point into (repeatable; default <state-dir>/boot and the "
                 "demo guest dir)");
  app.add_option("--qemu-uid-base", cfg.qemu_uid_base,
                 "Each guest's QEMU runs as uid/gid base+slot (a user of its own); 0 runs QEMU as root (debugging only)")
      ->check(CLI::Range(0, 2000000000))
      ->capture_default_str();
  int64_t session_timeout_s = cfg.session_timeout.count();
  app.add_option("--session-timeout", session_timeout_s, "Seconds a session may go unused before it expires")
      ->check(CLI::Range(int64_t{60}, int64_t{365} * 86400))
      ->capture_default_str();
  int64_t reserve_mib = cfg.host_memory_reserve >> 20;
  app.add_option("--host-memory-reserve", reserve_mib,
                 "MiB of the host's memory no guest may claim (starts beyond it get HOST_NOT_ENOUGH_FREE_MEMORY)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--qemu-args-dir", cfg.qemu_args_dir,
                 "Operator-only extra QEMU arguments: <dir>/<vm uuid>.args, one per line, root's files only")
      ->capture_default_str();
  app.add_option("--api-threads", cfg.api_threads, "API worker threads started up front")->capture_default_str();
  app.add_option("--max-connections", cfg.max_connections,
                 "API connections at once, per transport (TCP and the unix socket each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-connections-per-ip", cfg.max_connections_per_ip, "TCP API connections at once from one client IP")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  cfg.host_memory_reserve = reserve_mib << 20;
  cfg.session_timeout = std::chrono::seconds(session_timeout_s);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (const char* pw = std::getenv("VMSTACK_ROOT_PASSWORD")) {
    cfg.root_password = pw;
    // Never handed on: every QEMU and helper inherits our environment.
    ::unsetenv("VMSTACK_ROOT_PASSWORD");
  }
  // ADDR:PORT of --listen / --listen-http; false (after saying why) on junk.
  auto parse_listen = [](const char* option, const std::string& text, std::string& address, unsigned short& port) {
    auto colon = text.rfind(':');
    unsigned long p = 0;
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      std::string digits = text.substr(colon + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
      ok = ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() && p <= 65535;
    }
    if (!ok) {
      std::cerr << "vmstackd: " << option << " " << text << ": want ADDR:PORT with a port from 0 to 65535\n";
      return false;
    }
    address = text.substr(0, colon);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') address = address.substr(1, address.size() - 2);
    port = static_cast<unsigned short>(p);
    return true;
  };
  if (!listen.empty() && !parse_listen("--listen", listen, cfg.tls_address, cfg.tls_port)) return 2;
  if (!listen_http.empty() && !parse_listen("--listen-http", listen_http, cfg.tcp_address, cfg.tcp_port)) return 2;

  // Everything vmstackd creates is private to root unless said otherwise:
  // the database (password hashes), guest disks, console logs.
  ::umask(077);

  // Signals are taken synchronously by this thread; workers never see them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  raise_fd_limit(cfg);

  try {
    vmstack::ops::Daemon daemon(cfg);
    daemon.init();
    daemon.serve();
    spdlog::info("vmstackd ready: unix socket {}{}{}", daemon.config().unix_socket,
                 cfg.tcp_address.empty() ? "" : ", http " + cfg.tcp_address + ":" + std::to_string(daemon.tcp_port()),
                 cfg.tls_address.empty() ? "" : ", https " + cfg.tls_address + ":" + std::to_string(daemon.tls_port()));
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    }
    spdlog::info("vmstackd stopping on signal {}; guests keep running", sig);
  } catch (const std::exception& e) {
    spdlog::error("vmstackd: {}", e.what());
    return 1;
  }
  return 0;
}
