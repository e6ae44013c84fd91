#include "private_libvirtd.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace vmstack::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* kBenchUser = "vmstack-bench";  // bench/setup.sh creates it

std::string first_line_with(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l.find(word) != std::string::npos) return l;
  return "";
}

std::vector<std::string> argv_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  for (std::string a; std::getline(in, a, '\0');) out.push_back(a);
  return out;
}

}  // namespace

bool PrivateLibvirtd::start(const std::string& guest_kernel, const std::string& guest_initrd) {
  for (const char* tool : {"libvirtd", "virsh", "setpriv"})
    if (!run_command({"sh", "-c", std::string("command -v ") + tool}).ok())
      return fail(std::string(tool) + " not installed: run bench/setup.sh");
  const passwd* pw = ::getpwnam(kBenchUser);
  if (!pw) return fail(std::string("user ") + kBenchUser + " missing: run bench/setup.sh");
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  char tmpl[] = "/tmp/vmstack-bench-libvirt-XXXXXX";
  if (!::mkdtemp(tmpl)) return fail("mkdtemp failed");
  dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  for (const char* d : {"run", "config", "config/libvirt", "cache", "logs"}) {
    fs::create_directories(dir + "/" + d);
    if (::chown((dir + "/" + d).c_str(), uid, gid) != 0) return fail("chown failed");
  }
  ::chmod((dir + "/run").c_str(), 0700);
  // No virtlogd: QEMU's stdout/stderr go to a file libvirtd writes itself
  // (the default, "logd", auto-spawns a daemonised virtlogd we would have
  // to hunt down). vmstackd has no log daemon either.
  std::ofstream(dir + "/config/libvirt/qemu.conf") << "stdio_handler = \"file\"\n";
  if (::chown((dir + "/config/libvirt/qemu.conf").c_str(), uid, gid) != 0) return fail("chown failed");
  if (!guest_kernel.empty()) {
    kernel = dir + "/" + fs::path(guest_kernel).filename().string();
    initrd = dir + "/" + fs::path(guest_initrd).filename().string();
    std::error_code ec;
    fs::copy_file(guest_kernel, kernel, ec);
    if (!ec) fs::copy_file(guest_initrd, initrd, ec);
    if (ec) return fail("copying the guest kernel: " + ec.message());
    ::chmod(kernel.c_str(), 0644);
    ::chmod(initrd.c_str(), 0644);
  }

  SpawnOptions o;
  o.env = std::map<std::string, std::string>{
      {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"HOME", dir},
      {"XDG_RUNTIME_DIR", dir + "/run"},         {"XDG_CONFIG_HOME", dir + "/config"},
      {"XDG_CACHE_HOME", dir + "/cache"},        {"LC_ALL", "C"}};
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = dir + "/libvirtd.log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  o.new_session = true;
  o.cwd = dir;
  // setpriv execs libvirtd: the pid we hold is libvirtd's, our child.
  daemon = Subprocess::spawn({"setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(gid),
                              "--clear-groups", "libvirtd"},
                             o);
  const std::string sock = socket();
  uri = "qemu+unix:///session?socket=" + sock;
  for (int i = 0; i < 300 && !fs::exists(sock) && !daemon.try_wait(); ++i) std::this_thread::sleep_for(20ms);
  if (!fs::exists(sock)) return fail("libvirtd did not start (see " + dir + "/libvirtd.log)");
  auto r = virsh({"version"});
  if (!r.ok()) return fail("virsh cannot connect: " + r.err);
  version = first_line_with(r.out, "libvirt") + "; " + first_line_with(r.out, "hypervisor");
  return true;
}

std::vector<std::string> PrivateLibvirtd::virsh_argv(const std::vector<std::string>& args) const {
  std::vector<std::string> a{"virsh", "-q", "-c", uri};
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

CommandResult PrivateLibvirtd::virsh(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                                     const std::string& input) const {
  return run_command(virsh_argv(args), timeout, input);
}

pid_t PrivateLibvirtd::qemu_pid(const std::string& dom) const {
  std::ifstream in(dir + "/run/libvirt/qemu/run/" + dom + ".pid");
  pid_t p = 0;
  return (in >> p) && p > 0 ? p : 0;
}

void PrivateLibvirtd::stop() {
  if (dir.empty()) return;
  auto t0 = Clock::now();
  if (daemon.valid() && !daemon.exited()) {
    // Session guests outlive libvirtd: destroy what runs first.
    auto r = virsh({"list", "--name"}, 60s);
    std::istringstream in(r.out);
    for (std::string dom; std::getline(in, dom);)
      if (!dom.empty()) virsh({"destroy", dom}, 30s);
    daemon.kill(SIGTERM);
    if (!daemon.wait_for(15s)) {
      stop_forced = true;
      daemon.kill_group(SIGKILL);
      daemon.wait_for(5s);
    }
  }
  stop_s = std::chrono::duration<double>(Clock::now() - t0).count();
  kill_processes_mentioning(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  dir.clear();
}

void PrivateLibvirtd::kill_processes_mentioning(const std::string& d) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t p = std::stoi(name);
    if (p == ::getpid()) continue;
    for (const auto& a : argv_of(p))
      if (a.find(d) != std::string::npos) {
        ::kill(p, SIGKILL);
        break;
      }
  }
}

}  // namespace vmstack::bench
