// The real vmstackd binary under everything at once, over TCP: 4000 idle
// connections, 200 slowloris headers, 16 MiB bodies with a forged session,
// bursts of wrong-password logins from 140 addresses and 140 event.from long
// polls. Meanwhile local root on the unix socket must get its answers in
// under a second, a TCP client with a valid session must still be served,
// and the daemon's peak RSS must stay bounded. bench/hostile_load.cpp prints
// the same scene's figures (and libvirtd's) instead of asserting them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api/client.h"
#include "core/process.h"
#include "daemon_fixture.h"
#include "free_port.h"
#include "guest_guard.h"
#include "hostile_load.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

const std::string kBin = VMSTACK_BIN_DIR;

// VmHWM (peak resident set) or VmRSS of a process, in KiB.
long status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  long v = -1;
  while (in >> k) {
    if (k == key + ":") {
      in >> v;
      break;
    }
  }
  return v;
}

double ms_since(steady::time_point t) { return std::chrono::duration<double, std::milli>(steady::now() - t).count(); }

TEST(HostileLoad, LocalRootStaysFastTcpClientsAreServedMemoryStaysBounded) {
  long fds = raise_fd_limit();  // the attack's ~4500 sockets, and the daemon's (it inherits the limit)
  if (fds < 10000) GTEST_SKIP() << "needs RLIMIT_NOFILE >= 10000 (hard limit here: " << fds << ")";
  TempDir dir;
  const unsigned short port = free_tcp_port();
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = dir.path() + "/vmstackd.log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  o.env_overrides["VMSTACK_ROOT_PASSWORD"] = "s3cret";
  auto daemon = Subprocess::spawn({kBin + "/vmstackd", "--state-dir", dir.path(), "--accel", "tcg", "--guest-dir",
                                   guest_dir(), "--listen-http", "127.0.0.1:" + std::to_string(port)},
                                  o);
  const std::string sock = dir.path() + "/xapi.sock";
  auto log = [&] {
    std::ifstream in(o.stdout_path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::string session;
  for (int i = 0; i < 300 && session.empty(); ++i) {
    ASSERT_FALSE(daemon.try_wait()) << "vmstackd exited:\n" << log();
    try {
      api::Client c(api::Endpoint{sock, "", 0, false});
      session = c.call("session.login_with_password", {"root", "", "1.0", "test"}).as_string();
    } catch (const ApiError&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  ASSERT_FALSE(session.empty()) << "vmstackd did not come up:\n" << log();
  // A TCP client that logged in before the attack (a login is one yescrypt).
  api::Client tcp(api::Endpoint{"", "127.0.0.1", port, false});
  auto tcp_session = tcp.call("session.login_with_password", {"root", "s3cret", "1.0", "test"}).as_string();
  ASSERT_FALSE(tcp.call("VM.get_all", {tcp_session}).as_array().empty());
  const long hwm_before = status_kib(daemon.pid(), "VmHWM");

  AttackPlan plan;
  plan.tcp_port = port;
  plan.idle = 4000;
  plan.slowloris = 200;
  plan.trickle_every = 2000ms;
  plan.big_bodies = 8;
  plan.wrong_logins = 140;
  plan.long_polls = 140;
  plan.session = session;
  Attack attack(plan);
  attack.start();

  // What an `xe` invocation does, every 250 ms: connect, log in as local
  // root, list, log out. And the TCP client's call every second.
  std::vector<double> local_ms, tcp_ms;
  std::vector<std::string> local_errors, tcp_errors;
  const auto end = steady::now() + 25s;
  auto next_tcp = steady::now();
  while (steady::now() < end) {
    auto t0 = steady::now();
    try {
      api::Client c(api::Endpoint{sock, "", 0, false});
      auto s = c.call("session.login_with_password", {"root", "", "1.0", "probe"}).as_string();
      c.call("VM.get_all", {s});
      c.call("session.logout", {s});
      local_ms.push_back(ms_since(t0));
    } catch (const ApiError& e) {
      local_errors.push_back(e.what());
    }
    if (steady::now() >= next_tcp) {
      next_tcp = steady::now() + 1s;
      auto t1 = steady::now();
      try {
        tcp.call("VM.get_all", {tcp_session});
        tcp_ms.push_back(ms_since(t1));
      } catch (const ApiError& e) {
        tcp_errors.push_back(e.what());
      }
    }
    std::this_thread::sleep_for(250ms);
  }
  const long open_at_end = attack.connections_open();
  const long hwm_after = status_kib(daemon.pid(), "VmHWM");
  attack.stop();
  const auto& n = attack.counts();

  auto worst = [](const std::vector<double>& v) { return v.empty() ? -1.0 : *std::max_element(v.begin(), v.end()); };
  std::printf(
      "[ hostile ] local root: %zu calls, worst %.0f ms; TCP client: %zu calls, worst %.0f ms\n"
      "[ hostile ] attack: %ld idle+slow connections open at the end (%ld opened, %ld re-opened, %ld refused), "
      "%ld bytes trickled, %ld/%ld big bodies refused, %ld/%ld logins refused, %ld/%ld long polls answered\n"
      "[ hostile ] vmstackd peak RSS %.1f MiB before, %.1f MiB after\n",
      local_ms.size(), worst(local_ms), tcp_ms.size(), worst(tcp_ms), open_at_end, n.opened.load(),
      n.reopened.load(), n.refused.load(), n.trickled.load(), n.bodies_refused.load(), n.bodies_sent.load(),
      n.logins_refused.load(), n.logins.load(), n.polls_answered.load(), n.polls.load(), hwm_before / 1024.0, hwm_after / 1024.0);

  // The attack really happened.
  EXPECT_GE(n.opened, 4000);
  EXPECT_GT(n.trickled, 200);
  EXPECT_GT(n.bodies_refused, 0);
  EXPECT_GT(n.logins_refused, 100);
  EXPECT_GE(n.polls_answered, 140) << "every poll timed out (10 s) and was answered at least once";
  // Local root was never refused and never slow; the TCP client was served.
  EXPECT_TRUE(local_errors.empty()) << local_errors.size() << " local calls failed, first: " << local_errors.front();
  EXPECT_GE(local_ms.size(), 40u);
  EXPECT_LT(worst(local_ms), 1000.0);
  EXPECT_TRUE(tcp_errors.empty()) << tcp_errors.size() << " TCP calls failed, first: " << tcp_errors.front();
  EXPECT_GE(tcp_ms.size(), 10u);
  EXPECT_LT(worst(tcp_ms), 5000.0);
  // 8 forged 16 MiB bodies, 140 wrong passwords: nowhere near their cost
  // in memory (1.96 GB and 1.6 GB before this work).
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer freed memory waits in its quarantine (256 MiB)
  // and is never given back: RSS says nothing about the daemon's own use.
  // The normal build's pass of this test holds the bound.
  std::printf("[ hostile ] AddressSanitizer build: the peak RSS bound is checked by the normal build only\n");
#else
  EXPECT_LT(hwm_after - hwm_before, 200 * 1024) << "peak RSS grew by " << (hwm_after - hwm_before) / 1024 << " MiB";
#endif
  EXPECT_FALSE(daemon.try_wait()) << "vmstackd died:\n" << log();
  daemon.kill(SIGTERM);
  EXPECT_TRUE(daemon.wait_for(20s)) << "vmstackd did not stop";
}

}  // namespace
}  // namespace vmstack::test
