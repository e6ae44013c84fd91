// vmstack under hostile load, beside libvirtd under the same idle-connection
// and slowloris load, in one run (the "Hardening" issue, part 2). Starts a
// real vmstackd and a private session libvirtd (bench/private_libvirtd.h)
// and prints:
//   - the local call latency with no attack, then while an attacker on TCP
//     holds 4000 idle connections and 200 slowloris headers, sends 16 MiB
//     bodies with a forged session, bursts of wrong-password logins from 140
//     addresses and 140 event.from long polls: an xe-like call as local root
//     on the unix socket (login, VM.get_all, logout), `xe vm-list`, a TCP
//     client with a valid session, and vmstackd's peak RSS;
//   - the same 4000 idle + 200 slowloris connections on each daemon's unix
//     socket (libvirtd session mode has no TCP listener): `xe vm-list` vs
//     `virsh list --all`, each daemon's peak RSS and how many of the
//     attacker's connections it still held at the end;
//   - 5500 idle connections on each unix socket, more than either daemon
//     admits at once: does `xe vm-list` / `virsh list --all` still work?
// Figures, never assertions (tests/ops/hostile_load_test.cpp asserts the
// bounds). bench/README.md says what each figure means.
// Usage: hostile_load [--quick]   (run as root from the build tree)
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "api/client.h"
#include "core/process.h"
#include "free_port.h"
#include "guest_guard.h"
#include "hostile_load.h"
#include "private_libvirtd.h"

using namespace vmstack;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

long status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  long v = -1;
  while (in >> k)
    if (k == key + ":") {
      in >> v;
      break;
    }
  return v;
}

// Peak RSS over a phase: the kernel's high-water mark, reset at the start
// (clear_refs 5), and sampled VmRSS in case the reset is not allowed.
class PeakRss {
 public:
  explicit PeakRss(pid_t pid) : pid_(pid) {
    std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";
    sampler_ = std::thread([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), status_kib(pid_, "VmRSS"));
        std::this_thread::sleep_for(50ms);
      }
    });
  }
  ~PeakRss() { finish(); }
  double finish_mib() { return finish() / 1024.0; }

 private:
  long finish() {
    if (!stop_.exchange(true)) {
      sampler_.join();
      peak_ = std::max(peak_.load(), status_kib(pid_, "VmHWM"));
    }
    return peak_;
  }
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<long> peak_{0};
  std::thread sampler_;
};

struct Latencies {
  std::vector<double> ms;
  int failed = 0;
  std::string first_error;
  void fail(const std::string& why) {
    if (failed++ == 0) first_error = why;
  }
  double pct(double p) const {
    if (ms.empty()) return -1;
    auto v = ms;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
  }
  std::string line() const {
    char b[200];
    std::snprintf(b, sizeof b, "p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  (%zu ok, %d failed)", pct(0.5), pct(0.99),
                  ms.empty() ? -1 : *std::max_element(ms.begin(), ms.end()), ms.size(), failed);
    return b + (failed ? "; first failure: " + first_error.substr(0, 80) : std::string());
  }
};

std::string g_bin, g_state;
unsigned short g_port = 0;

std::string unix_sock() { return g_state + "/xapi.sock"; }

// What one `xe` invocation does, in process: connect, log in as local root,
// list the VMs, log out.
void local_call(Latencies& l) {
  auto t0 = Clock::now();
  try {
    api::Client c(api::Endpoint{unix_sock(), "", 0, false});
    auto s = c.call("session.login_with_password", {"root", "", "1.0", "bench"}).as_string();
    c.call("VM.get_all", {s});
    c.call("session.logout", {s});
    l.ms.push_back(ms_since(t0));
  } catch (const ApiError& e) {
    l.fail(e.what());
  }
}

void command(Latencies& l, const std::vector<std::string>& argv, const SpawnOptions& o = {},
             std::chrono::seconds timeout = 30s) {
  auto t0 = Clock::now();
  auto r = run_command(argv, timeout, {}, o);
  if (r.ok()) l.ms.push_back(ms_since(t0));
  else l.fail(r.timed_out ? "timed out after " + std::to_string(timeout.count()) + " s" : "exit: " + r.err);
}

SpawnOptions xe_opts() {
  SpawnOptions o;
  o.env_overrides["VMSTACK_SOCKET"] = unix_sock();
  return o;
}

// Runs `probes` every `every` for `d`; the attack (if any) runs meanwhile.
void probe_for(std::chrono::seconds d, std::chrono::milliseconds every, const std::function<void()>& probes) {
  auto end = Clock::now() + d;
  while (Clock::now() < end) {
    auto t0 = Clock::now();
    probes();
    auto left = every - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    if (left.count() > 0) std::this_thread::sleep_for(left);
  }
}

// An endless libvirt RPC message: a length prefix promising 4 KiB, then the
// program number and zeros, trickled a byte at a time.
std::string libvirt_slow_payload() {
  std::string s("\x00\x00\x10\x00\x20\x00\x80\x86\x00\x00\x00\x01", 12);
  s.append(4096, '\0');
  return s;
}

test::AttackPlan idle_and_slow(int idle, int slow) {
  test::AttackPlan p;
  p.idle = idle;
  p.slowloris = slow;
  p.trickle_every = 2000ms;
  return p;
}

void print_counts(const test::Attack& a) {
  const auto& n = a.counts();
  std::printf("    attacker: %ld connections held at the end (%ld opened, %ld re-opened after the server closed them, %ld "
              "refused with 503), %ld slowloris bytes",
              a.connections_open(), n.opened.load(), n.reopened.load(), n.refused.load(), n.trickled.load());
  if (n.bodies_sent) std::printf(", %ld/%ld forged bodies refused", n.bodies_refused.load(), n.bodies_sent.load());
  if (n.logins) std::printf(", %ld/%ld wrong logins refused", n.logins_refused.load(), n.logins.load());
  if (n.polls) std::printf(", %ld/%ld long polls answered", n.polls_answered.load(), n.polls.load());
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  if (argc > 2 || (argc == 2 && !quick)) {
    std::fprintf(stderr, "usage: hostile_load [--quick]   (bench/README.md; bench/setup.sh installs libvirt)\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto run_t0 = Clock::now();
  const auto phase = quick ? 10s : 30s;
  long fds = test::raise_fd_limit();
  if (fds < 10000) {
    std::fprintf(stderr, "hostile_load: needs RLIMIT_NOFILE >= 10000 (hard limit here: %ld)\n", fds);
    return 1;
  }
  g_bin = fs::canonical("/proc/self/exe").parent_path().string();
  std::string guest = test::guest_dir();
  char tmpl[] = "/tmp/vmstack-hostile-XXXXXX";
  g_state = ::mkdtemp(tmpl);
  g_port = test::free_tcp_port();
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = g_state + ".log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  o.env_overrides["VMSTACK_ROOT_PASSWORD"] = "bench-pw";
  auto daemon = Subprocess::spawn({g_bin + "/vmstackd", "--state-dir", g_state, "--accel", "tcg", "--guest-dir", guest,
                                   "--listen-http", "127.0.0.1:" + std::to_string(g_port)},
                                  o);
  bench::PrivateLibvirtd lv;
  int rc = 0;
  try {
    std::printf("vmstack hostile-load benchmark (%s run, %lld s per phase), libvirt measured in the same run\n",
                quick ? "quick" : "full", static_cast<long long>(phase.count()));
    std::printf("host: %u cores, load average at start %s", std::thread::hardware_concurrency(),
                run_command({"cat", "/proc/loadavg"}).out.c_str());
    std::string session;
    for (int i = 0; i < 300 && session.empty(); ++i) {
      try {
        api::Client c(api::Endpoint{unix_sock(), "", 0, false});
        session = c.call("session.login_with_password", {"root", "", "1.0", "bench"}).as_string();
      } catch (const ApiError&) {
        std::this_thread::sleep_for(100ms);
      }
    }
    if (session.empty()) throw std::runtime_error("vmstackd did not come up (see " + g_state + ".log)");
    api::Client tcp(api::Endpoint{"", "127.0.0.1", g_port, false});
    auto tcp_session = tcp.call("session.login_with_password", {"root", "bench-pw", "1.0", "bench"}).as_string();
    const bool have_lv = lv.start();
    std::printf("libvirt: %s\n", have_lv ? (lv.version + " (private session libvirtd, " + lv.uri + ")").c_str()
                                         : ("not measured: " + lv.why_not).c_str());

    // ---- baseline
    Latencies b_local, b_xe, b_virsh, b_true;
    for (int i = 0; i < (quick ? 10 : 30); ++i) {
      local_call(b_local);
      command(b_xe, {g_bin + "/xe", "vm-list"}, xe_opts());
      if (have_lv) command(b_virsh, lv.virsh_argv({"list", "--all"}));
      command(b_true, {"/bin/true"});
    }
    double v_rss0 = status_kib(daemon.pid(), "VmRSS") / 1024.0;
    double l_rss0 = have_lv ? status_kib(lv.pid(), "VmRSS") / 1024.0 : -1;
    std::printf("\nbaseline, no attack\n");
    std::printf("  vmstack local call (unix: login, VM.get_all, logout)  %s\n", b_local.line().c_str());
    std::printf("  xe vm-list                                           %s\n", b_xe.line().c_str());
    if (have_lv) std::printf("  virsh list --all                                     %s\n", b_virsh.line().c_str());
    std::printf("  /bin/true (process launch floor)                     %s\n", b_true.line().c_str());
    std::printf("  RSS: vmstackd %.1f MiB, libvirtd %.1f MiB\n", v_rss0, l_rss0);

    // ---- attack 1: everything, on vmstack's TCP listener
    std::printf("\nattack 1, vmstack over TCP: 4000 idle, 200 slowloris (1 byte / 2 s), 8 x 16 MiB bodies with a forged\n"
                "session, wrong-password logins from 140 addresses, 140 event.from long polls (10 s)\n");
    Latencies a_local, a_xe, a_tcp, a_true;
    double a_peak;
    {
      PeakRss peak(daemon.pid());
      test::AttackPlan p = idle_and_slow(4000, 200);
      p.tcp_port = g_port;
      p.big_bodies = 8;
      p.wrong_logins = 140;
      p.long_polls = 140;
      p.session = session;
      test::Attack attack(p);
      attack.start();
      std::this_thread::sleep_for(2s);  // let it build up
      int tick = 0;
      probe_for(phase, 250ms, [&] {
        local_call(a_local);
        if (tick % 4 == 0) {
          command(a_xe, {g_bin + "/xe", "vm-list"}, xe_opts());
          command(a_true, {"/bin/true"});
          auto t0 = Clock::now();
          try {
            tcp.call("VM.get_all", {tcp_session});
            a_tcp.ms.push_back(ms_since(t0));
          } catch (const ApiError& e) {
            a_tcp.fail(e.what());
          }
        }
        ++tick;
      });
      print_counts(attack);
      attack.stop();
      a_peak = peak.finish_mib();
    }
    std::printf("  vmstack local call (unix)                            %s\n", a_local.line().c_str());
    std::printf("  xe vm-list (unix)                                    %s\n", a_xe.line().c_str());
    std::printf("  TCP client with a valid session, VM.get_all          %s\n", a_tcp.line().c_str());
    std::printf("  /bin/true (launch floor; the attacker shares the CPU) %s\n", a_true.line().c_str());
    std::printf("  vmstackd peak RSS %.1f MiB (%+.1f MiB over the baseline)\n", a_peak, a_peak - v_rss0);
    std::this_thread::sleep_for(2s);  // let the daemon close what the attacker left

    // ---- attack 2: idle + slowloris on each daemon's unix socket
    std::printf("\nattack 2, like for like: 4000 idle + 200 slowloris connections on each daemon's unix socket\n");
    Latencies u_xe, u_local, l_virsh;
    double u_peak = -1, l_peak = -1;
    long u_held = -1, l_held = -1;
    {
      PeakRss peak(daemon.pid());
      test::AttackPlan p = idle_and_slow(4000, 200);
      p.unix_path = unix_sock();
      test::Attack attack(p);
      attack.start();
      std::this_thread::sleep_for(2s);
      probe_for(phase / 2, 500ms, [&] {
        local_call(u_local);
        command(u_xe, {g_bin + "/xe", "vm-list"}, xe_opts());
      });
      u_held = attack.connections_open();
      print_counts(attack);
      attack.stop();
      u_peak = peak.finish_mib();
    }
    std::printf("  vmstack local call                                   %s\n", u_local.line().c_str());
    std::printf("  xe vm-list                                           %s\n", u_xe.line().c_str());
    std::printf("  vmstackd peak RSS %.1f MiB; %ld attacker connections held at the end\n", u_peak, u_held);
    if (have_lv) {
      PeakRss peak(lv.pid());
      test::AttackPlan p = idle_and_slow(4000, 200);
      p.unix_path = lv.socket();
      p.slow_payload = libvirt_slow_payload();
      test::Attack attack(p);
      attack.start();
      std::this_thread::sleep_for(2s);
      probe_for(phase / 2, 500ms, [&] { command(l_virsh, lv.virsh_argv({"list", "--all"})); });
      l_held = attack.connections_open();
      print_counts(attack);
      attack.stop();
      l_peak = peak.finish_mib();
      std::printf("  virsh list --all                                     %s\n", l_virsh.line().c_str());
      std::printf("  libvirtd peak RSS %.1f MiB; %ld attacker connections held at the end\n", l_peak, l_held);
    }

    // ---- attack 3: more idle connections than either daemon admits at once
    // (vmstackd: 4096 per transport; libvirtd: max_clients 5000).
    std::printf("\nattack 3: 5500 idle connections on each daemon's unix socket, more than either admits at once\n");
    Latencies o_xe, o_virsh;
    {
      test::AttackPlan p = idle_and_slow(5500, 0);
      p.unix_path = unix_sock();
      test::Attack attack(p);
      attack.start();
      std::this_thread::sleep_for(3s);
      probe_for(phase / 2, 500ms, [&] { command(o_xe, {g_bin + "/xe", "vm-list"}, xe_opts(), 10s); });
      print_counts(attack);
    }
    std::printf("  xe vm-list                                           %s\n", o_xe.line().c_str());
    if (have_lv) {
      test::AttackPlan p = idle_and_slow(5500, 0);
      p.unix_path = lv.socket();
      test::Attack attack(p);
      attack.start();
      std::this_thread::sleep_for(3s);
      probe_for(phase / 2, 500ms, [&] { command(o_virsh, lv.virsh_argv({"list", "--all"}), {}, 10s); });
      print_counts(attack);
      std::printf("  virsh list --all                                     %s\n", o_virsh.line().c_str());
    }

    // ---- summary
    auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : -1.0; };
    std::printf("\nSummary (medians; ratio = under attack / baseline)\n");
    std::printf("  %-44s %12s %12s %8s\n", "figure", "baseline", "attacked", "ratio");
    auto row = [&](const char* what, double base, double att) {
      std::printf("  %-44s %9.1f ms %9.1f ms %7.2fx\n", what, base, att, ratio(att, base));
    };
    row("vmstack local call, TCP attack 1", b_local.pct(0.5), a_local.pct(0.5));
    row("vmstack local call worst, TCP attack 1", b_local.pct(1.0), a_local.pct(1.0));
    row("xe vm-list, TCP attack 1", b_xe.pct(0.5), a_xe.pct(0.5));
    row("/bin/true launch floor, TCP attack 1", b_true.pct(0.5), a_true.pct(0.5));
    row("xe vm-list, unix attack 2", b_xe.pct(0.5), u_xe.pct(0.5));
    if (have_lv) row("virsh list --all, unix attack 2", b_virsh.pct(0.5), l_virsh.pct(0.5));
    std::printf("  %-44s %9.1f MiB %8.1f MiB\n", "vmstackd peak RSS, attack 1", v_rss0, a_peak);
    std::printf("  %-44s %9.1f MiB %8.1f MiB\n", "vmstackd peak RSS, attack 2", v_rss0, u_peak);
    if (have_lv) std::printf("  %-44s %9.1f MiB %8.1f MiB\n", "libvirtd peak RSS, attack 2", l_rss0, l_peak);
    std::printf("  attacker connections held at the end of attack 2: vmstackd %ld, libvirtd %s\n", u_held,
                have_lv ? std::to_string(l_held).c_str() : "n/a");
    std::printf("  5500 idle (attack 3): xe vm-list %zu ok / %d failed, p50 %.1f ms; virsh list --all %s\n",
                o_xe.ms.size(), o_xe.failed, o_xe.pct(0.5),
                have_lv ? (std::to_string(o_virsh.ms.size()) + " ok / " + std::to_string(o_virsh.failed) +
                           " failed (" + (o_virsh.failed ? o_virsh.first_error : "p50 " + std::to_string(o_virsh.pct(0.5)).substr(0, 6) + " ms") + ")")
                              .c_str()
                        : "n/a");
    std::printf("  load average at end %s", run_command({"cat", "/proc/loadavg"}).out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hostile_load: %s\n", e.what());
    rc = 1;
  }
  lv.stop();
  daemon.kill(SIGTERM);
  if (!daemon.wait_for(30s)) daemon.kill(SIGKILL);
  std::error_code ec;
  fs::remove_all(g_state, ec);
  fs::remove(g_state + ".log", ec);
  std::printf("total %.0f s\n", ms_since(run_t0) / 1000);
  return rc;
}
