#include "vmstackd_process.h"

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "guest_guard.h"

namespace vmstack::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string trim_output(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

VmstackdProcess::VmstackdProcess() {
  char tmpl[] = "/tmp/vmstack-e2e-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  state_ = tmpl;
}

VmstackdProcess::~VmstackdProcess() {
  if (daemon_.valid() && !daemon_.exited()) shutdown_all();
  stop();
  kill_guests_under(state_);
  std::error_code ec;
  fs::remove_all(state_, ec);
  fs::remove(state_ + ".log", ec);
}

std::string VmstackdProcess::start(const std::map<std::string, std::string>& env, int tcp_port,
                                   const std::vector<std::string>& extra_args) {
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = state_ + ".log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  o.env_overrides["VMSTACK_ROOT_PASSWORD"] = "e2e-secret";
  for (const auto& [k, v] : env) o.env_overrides[k] = v;
  std::vector<std::string> argv{VMSTACK_BIN_DIR "/vmstackd", "--state-dir", state_, "--accel", "tcg", "--guest-dir",
                                guest_dir(), "--clean-shutdown-timeout", "30"};
  if (tcp_port > 0) argv.insert(argv.end(), {"--listen-http", "127.0.0.1:" + std::to_string(tcp_port)});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  daemon_ = Subprocess::spawn(argv, o);
  // ASan builds on a loaded 2-core CI machine start slowly: wait by the
  // clock, and fail at once (with the daemon's log) if it died.
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (daemon_.try_wait()) return "vmstackd exited (" + daemon_.describe_status() + "):\n" + log();
    if (xe({"host-list", "--minimal"}, 20s).ok()) return "";
    std::this_thread::sleep_for(100ms);
  }
  return "vmstackd did not come up in 90 s; its log:\n" + log();
}

bool VmstackdProcess::stop(int sig) {
  if (!daemon_.valid()) return true;
  daemon_.kill(sig);
  return daemon_.wait_for(15s);
}

CommandResult VmstackdProcess::xe(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), VMSTACK_BIN_DIR "/xe");
  SpawnOptions o;
  o.env_overrides["VMSTACK_SOCKET"] = state_ + "/xapi.sock";
  o.env_overrides["HOME"] = state_;  // no ~/.xe of the machine's user
  return run_command(args, timeout, {}, o);
}

void VmstackdProcess::shutdown_all() {
  std::stringstream ss(trim_output(xe({"vm-list", "--minimal"}, 30s).out));
  for (std::string uuid; std::getline(ss, uuid, ',');)
    if (!uuid.empty()) xe({"vm-shutdown", "uuid=" + uuid, "--force"}, 60s);
}

std::string VmstackdProcess::log() const {
  std::ifstream in(state_ + ".log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace vmstack::test
