// vmstack toolstack benchmark (issue #2). Starts a real vmstackd in a temp
// state dir and prints each figure beside its peer:
//   - VM.get_record calls/s over the unix socket, 1 and 8 clients;
//   - VM.start -> guest init marker, vs plain qemu-system-x86_64 with the same
//     kernel/initrd/memory/accelerator (and virsh when libvirt is installed);
//   - `xe vm-list` / `xe vm-param-get` wall time with 100 VMs defined;
//   - vmstackd RSS with 100 VMs defined and 5 running.
// Usage: toolstack_bench [--quick]   (run from the build tree: build/bin)
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "api/client.h"
#include "core/process.h"
#include "guest_guard.h"

using namespace vmstack;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const std::string kMarker = "vmstack-guest: init reached";
std::string g_bin, g_state, g_guest;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  long v = 0;
  while (in >> k)
    if (k == "VmRSS:") {
      in >> v;
      return v;
    }
  return -1;
}

api::Client client() {
  api::Endpoint ep;
  ep.unix_path = g_state + "/xapi.sock";
  return api::Client(ep);
}

std::string login(api::Client& c) { return c.call("session.login_with_password", {"root", "", "1.0", "bench"}).as_string(); }

// Reads the console stream until the marker; true when seen.
bool wait_marker(const std::string& session, const std::string& console, std::chrono::seconds deadline) {
  auto c = client();
  int fd[2];
  if (::pipe(fd) != 0) return false;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::string got;
    char buf[4096];
    auto end = Clock::now() + deadline;
    while (Clock::now() < end && got.find(kMarker) == std::string::npos) {
      pollfd p{fd[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t r = ::read(fd[0], buf, sizeof buf);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    done = got.find(kMarker) != std::string::npos;
    ::close(fd[0]);  // makes stream_get's writes fail: it returns
  });
  c.stream_get("/console?ref=" + console + "&session_id=" + session, fd[1]);
  reader.join();
  ::close(fd[1]);
  return done;
}

void bench_get_record(const std::string& vm, int clients, double seconds) {
  std::atomic<long> calls{0};
  std::vector<std::thread> ts;
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  for (int i = 0; i < clients; ++i)
    ts.emplace_back([&] {
      auto c = client();
      auto s = login(c);
      long n = 0;
      while (Clock::now() < end) {
        c.call("VM.get_record", {s, vm});
        ++n;
      }
      calls += n;
    });
  for (auto& t : ts) t.join();
  std::printf("  VM.get_record, %d client%s: %10.0f calls/s\n", clients, clients > 1 ? "s" : " ",
              static_cast<double>(calls) / seconds);
}

double command_ms(const std::vector<std::string>& argv, int runs) {
  std::vector<double> t;
  SpawnOptions o;
  o.env_overrides["VMSTACK_SOCKET"] = g_state + "/xapi.sock";
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    auto r = run_command(argv, 30s, {}, o);
    if (!r.ok()) std::fprintf(stderr, "%s failed: %s\n", argv[0].c_str(), r.err.c_str());
    t.push_back(ms_since(t0));
  }
  return median(t);
}

double xe_ms(const std::vector<std::string>& args, int runs) {
  std::vector<std::string> a{g_bin + "/xe"};
  a.insert(a.end(), args.begin(), args.end());
  return command_ms(a, runs);
}

// Plain QEMU with the toolstack's own PV boot path (same machine, kernel,
// initrd, memory, accelerator), serial on stdout: the floor we are measured against.
double plain_qemu_ms(const std::vector<std::string>& vmstack_argv) {
  std::vector<std::string> a;
  for (size_t i = 0; i < vmstack_argv.size(); ++i) {
    const auto& x = vmstack_argv[i];
    // Drop the toolstack's control plumbing; keep what shapes the guest.
    if (x == "-chardev" || x == "-mon" || x == "-pidfile" || x == "-serial" || x == "-drive" || x == "-device") {
      ++i;
      continue;
    }
    a.push_back(x);
  }
  a.insert(a.end(), {"-serial", "stdio"});
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::pipe;
  o.stderr_mode = SpawnOptions::Output::null;
  o.new_session = true;
  auto t0 = Clock::now();
  auto p = Subprocess::spawn(a, o);
  std::string got;
  char buf[4096];
  int fd = p.stdout_pipe().get();
  while (got.find(kMarker) == std::string::npos && ms_since(t0) < 60000) {
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  double ms = ms_since(t0);
  p.kill_group(SIGKILL);
  p.wait_for(5s);
  return got.find(kMarker) == std::string::npos ? -1 : ms;
}

std::vector<std::string> qemu_argv_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  for (std::string a; std::getline(in, a, '\0');) out.push_back(a);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // the console reader hangs up first
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  g_bin = fs::canonical("/proc/self/exe").parent_path().string();
  g_guest = test::guest_dir();
  if (g_guest.empty()) {
    std::fprintf(stderr, "toolstack_bench: the guest fixture could not be built (tools/guest-fixture.sh)\n");
    return 1;
  }
  char tmpl[] = "/tmp/vmstack-bench-XXXXXX";
  g_state = ::mkdtemp(tmpl);

  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = g_state + ".log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  auto daemon = Subprocess::spawn({g_bin + "/vmstackd", "--state-dir", g_state, "--accel", "tcg", "--guest-dir", g_guest}, o);
  for (int i = 0; i < 200 && !fs::exists(g_state + "/xapi.sock"); ++i) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(200ms);

  auto c = client();
  auto s = login(c);
  auto tmpl_ref = c.call("VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().at(0).as_string();
  std::vector<std::string> vms;
  for (int i = 0; i < 100; ++i) {
    auto vm = c.call("VM.clone", {s, tmpl_ref, "bench-" + std::to_string(i)}).as_string();
    c.call("VM.set_is_a_template", {s, vm, false});
    vms.push_back(vm);
  }
  std::printf("vmstack toolstack benchmark (%s, TCG guests)\n\n", quick ? "quick" : "full");

  std::printf("API throughput over the unix socket (XML-RPC, keep-alive):\n");
  bench_get_record(vms[0], 1, quick ? 1.0 : 3.0);
  bench_get_record(vms[0], 8, quick ? 1.0 : 3.0);

  std::printf("\nCLI wall time per call with 100 VMs defined (median of %d):\n", quick ? 5 : 20);
  int runs = quick ? 5 : 20;
  std::printf("  xe vm-list                 %7.1f ms   (libvirt: virsh list --all   ~27 ms, issue #2)\n",
              xe_ms({"vm-list"}, runs));
  std::printf("  xe vm-param-get            %7.1f ms   (libvirt: virsh dominfo      ~15 ms, issue #2)\n",
              xe_ms({"vm-param-get", "uuid=" + c.call("VM.get_uuid", {s, vms[50]}).as_string(), "param-name=power-state"},
                    runs));
  std::printf("  /bin/true, same spawner     %7.1f ms   (the launch floor inside both figures)\n",
              command_ms({"/bin/true"}, runs));

  std::printf("\nVM.start to guest init marker (same kernel, initrd, 256 MiB, 1 vCPU, TCG):\n");
  std::vector<double> vm_ms, qemu_ms;
  int boots = quick ? 2 : 5;
  std::vector<std::string> argv_seen;
  for (int i = 0; i < boots; ++i) {
    // A VM with a provisioned disk, as an operator's would have.
    auto vm = vms[static_cast<size_t>(i)];
    auto t0 = Clock::now();
    c.call("VM.start", {s, vm, false, false});
    std::string console;
    auto consoles = c.call("VM.get_consoles", {s, vm});  // named: outlives the loop
    for (const auto& con : consoles.as_array())
      if (c.call("console.get_protocol", {s, con}).as_string() == "vt100") console = con.as_string();
    bool ok = wait_marker(s, console, 60s);
    vm_ms.push_back(ok ? ms_since(t0) : -1);
    if (argv_seen.empty()) argv_seen = qemu_argv_of(static_cast<pid_t>(c.call("VM.get_domid", {s, vm}).as_int()));
    c.call("VM.hard_shutdown", {s, vm});
  }
  for (int i = 0; i < boots; ++i) qemu_ms.push_back(plain_qemu_ms(argv_seen));
  double v = median(vm_ms), q = median(qemu_ms);
  std::printf("  vmstack VM.start           %7.0f ms   (median of %d)\n", v, boots);
  std::printf("  plain qemu-system-x86_64   %7.0f ms   (same argv minus QMP/console plumbing)\n", q);
  std::printf("  toolstack overhead         %7.2fx\n", q > 0 ? v / q : 0.0);
  if (run_command({"sh", "-c", "command -v virsh"}).ok())
    std::printf("  virsh start: libvirt is installed; see bench/README.md to run bench/virsh_start.sh\n");
  else
    std::printf("  virsh start                    n/a   (libvirt not installed here; issue #2 measured ~4.6 s, 1.9 s with vmlinux)\n");

  std::printf("\nvmstackd resident memory:\n");
  std::printf("  100 VMs defined, 0 running %7.1f MiB\n", rss_kib(daemon.pid()) / 1024.0);
  for (int i = 0; i < 5; ++i) c.call("VM.start", {s, vms[static_cast<size_t>(i)], false, false});
  std::this_thread::sleep_for(1s);
  std::printf("  100 VMs defined, 5 running %7.1f MiB   (libvirtd: ~36 MB, issue #2)\n", rss_kib(daemon.pid()) / 1024.0);
  for (int i = 0; i < 5; ++i) c.call("VM.hard_shutdown", {s, vms[static_cast<size_t>(i)]});

  daemon.kill(SIGTERM);
  daemon.wait_for(10s);
  test::kill_guests_under(g_state);
  std::error_code ec;
  fs::remove_all(g_state, ec);
  fs::remove(g_state + ".log", ec);
  return 0;
}
