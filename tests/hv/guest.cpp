#include "guest.h"

#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/process.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace hvtest {

using Clock = std::chrono::steady_clock;

const Guest& guest() {
  static Guest g;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string script = std::string(VMSTACK_SOURCE_DIR) + "/tools/guest-fixture.sh";
    if (!std::filesystem::exists(script)) {
      g.why = script + " not found";
      return;
    }
    vmstack::CommandResult r;
    try {
      r = vmstack::run_command({script}, std::chrono::minutes(10));
    } catch (const std::exception& e) {
      g.why = std::string("cannot run ") + script + ": " + e.what();
      return;
    }
    if (!r.ok()) {
      std::string err = r.err.size() > 800 ? r.err.substr(r.err.size() - 800) : r.err;
      g.why = script + " failed (exit " + std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") + "): " + err;
      return;
    }
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    g.dir = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    g.vmlinux = g.dir + "/vmlinux";
    g.vmlinuz = g.dir + "/vmlinuz";
    g.initrd = g.dir + "/initrd.img";
    g.cmdline = read_file(g.dir + "/cmdline");
    while (!g.cmdline.empty() && (g.cmdline.back() == '\n' || g.cmdline.back() == ' ')) g.cmdline.pop_back();
    if (g.cmdline.empty()) g.cmdline = "console=ttyS0 quiet panic=-1";
    for (auto& f : {g.vmlinux, g.initrd}) {
      if (!std::filesystem::exists(f)) {
        g.why = f + " missing after running the fixture script";
        return;
      }
    }
    g.ok = true;
  });
  return g;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vmstack-hvtest-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void QemuTracker::track(int pid) {
  int fd = vmstack::pidfd_open_compat(pid);
  if (fd >= 0) pidfds_.push_back(fd);
}

QemuTracker::~QemuTracker() {
  for (int fd : pidfds_) {
    struct pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0u);
    ::close(fd);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool wait_for_text(const std::string& path, const std::string& needle, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  do {
    if (read_file(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  } while (Clock::now() < end);
  return read_file(path).find(needle) != std::string::npos;
}

int connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  struct sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    ::close(fd);
    if (Clock::now() >= end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool console_roundtrip(int fd, const std::string& line, const std::string& expect, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  std::string got;
  auto next_send = Clock::now();
  while (Clock::now() < end) {
    if (Clock::now() >= next_send) {
      std::string l = line + "\n";
      if (::send(fd, l.data(), l.size(), MSG_NOSIGNAL) < 0) return false;
      next_send = Clock::now() + std::chrono::milliseconds(700);
    }
    struct pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got.append(buf, static_cast<size_t>(n));
      if (got.find(expect) != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace hvtest
