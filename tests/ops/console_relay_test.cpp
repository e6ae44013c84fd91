// relay_console against a stand-in for QEMU's socket chardev that behaves
// as QEMU does: each chunk goes to the attached client, then to the log.
// The real-guest path is covered by lifecycle_test and the e2e test; here
// the interleavings are scripted so the no-gap/no-repeat promise is checked
// on every run, not only when a race happens to strike.
#include "ops/console_relay.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/fd.h"
#include "daemon_fixture.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;

UniqueFd listen_unix(const std::string& path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(s.get(), 1) != 0)
    ADD_FAILURE() << "cannot listen on " << path;
  return s;
}

void append(const std::string& log, const std::string& text) {
  std::ofstream(log, std::ios::app | std::ios::binary) << text;
}

// Reads from fd until `want` bytes arrived, EOF, or the deadline.
std::string read_until(int fd, size_t want, std::chrono::milliseconds deadline) {
  std::string got;
  auto end = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  while (got.size() < want && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return got;
}

struct Relay {
  UniqueFd client, relay_end;
  std::atomic<bool> stopping{false};
  std::string why = "(still running)";
  std::thread thread;

  Relay(const std::string& sock, const std::string& log) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client.reset(sv[0]);
    relay_end.reset(sv[1]);
    thread = std::thread([this, sock, log] {
      // The stand-in for QEMU is this process: its pid serves the socket.
      why = ops::relay_console(relay_end.get(), sock, log, ::getpid(), stopping);
      relay_end.reset();  // the client sees EOF, as from the HTTP server
    });
  }
  ~Relay() {
    stopping = true;
    if (thread.joinable()) thread.join();
  }
};

TEST(ConsoleRelay, ReplaysThenFollowsWithoutGapOrRepeatAndCarriesInput) {
  TempDir dir;
  std::string sock = dir.path() + "/console.sock", log = dir.path() + "/console.log";
  UniqueFd listener = listen_unix(sock);
  std::string expected = "booting before anyone attached\n";
  append(log, expected);

  Relay relay(sock, log);
  // The replay arrives once the relay has connected (it connects first).
  EXPECT_EQ(read_until(relay.client.get(), expected.size(), 10s), expected);
  // Until QEMU accepts the connection, what the guest prints goes to the
  // log only: a relay that took its output from the socket loses this.
  std::string unaccepted = "printed before QEMU accepted the console\n";
  append(log, unaccepted);
  expected = unaccepted;
  UniqueFd qemu(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(qemu);
  // Then socket first, then log, many small chunks.
  for (int i = 0; i < 300; ++i) {
    std::string chunk = "line " + std::to_string(i) + "\n";
    ASSERT_EQ(::send(qemu.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(chunk.size()));
    append(log, chunk);
    expected += chunk;
    if (i % 50 == 0) std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(read_until(relay.client.get(), expected.size(), 10s), expected);

  // Keys from the client reach the guest.
  ASSERT_EQ(::write(relay.client.get(), "root\n", 5), 5);
  EXPECT_EQ(read_until(qemu.get(), 5, 10s), "root\n");

  // QEMU's last words are in the log when it closes the socket.
  append(log, "reboot: Power down\n");
  qemu.reset();
  std::string tail = read_until(relay.client.get(), 1 << 20, 10s);  // to EOF
  EXPECT_EQ(tail, "reboot: Power down\n");
  relay.thread.join();
  EXPECT_EQ(relay.why, "");
}

TEST(ConsoleRelay, StopsWhenTheDaemonStops) {
  TempDir dir;
  std::string sock = dir.path() + "/console.sock", log = dir.path() + "/console.log";
  UniqueFd listener = listen_unix(sock);
  append(log, "x");
  Relay relay(sock, log);
  UniqueFd qemu(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(read_until(relay.client.get(), 1, 10s), "x");
  relay.stopping = true;
  relay.thread.join();
  EXPECT_EQ(relay.why, "");
}

TEST(ConsoleRelay, SaysWhyWhenThereIsNoLogOrNoGuest) {
  TempDir dir;
  std::string sock = dir.path() + "/console.sock", log = dir.path() + "/console.log";
  std::atomic<bool> stopping{false};
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);

  std::string why = ops::relay_console(b.get(), sock, log, ::getpid(), stopping);
  EXPECT_NE(why.find("console log"), std::string::npos) << why;

  append(log, "");  // a log, but nothing listening on the socket
  why = ops::relay_console(b.get(), sock, log, ::getpid(), stopping);
  EXPECT_NE(why.find("cannot connect to the console"), std::string::npos) << why;
  why = ops::relay_stream(b.get(), sock, ::getpid(), stopping);
  EXPECT_NE(why.find("cannot connect to the console"), std::string::npos) << why;
}

// The log's name is in the guest's directory: a symlink (to a file only
// root may read), a second link to a file, a FIFO are refused, never read.
TEST(ConsoleRelay, RefusesALogThatIsNotAPlainFileOfOneLink) {
  TempDir dir;
  std::string sock = dir.path() + "/console.sock", log = dir.path() + "/console.log";
  const std::string secret = dir.path() + "/secret";
  append(secret, "root's secret\n");
  UniqueFd listener = listen_unix(sock);
  std::atomic<bool> stopping{false};
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);

  std::filesystem::create_symlink(secret, log);
  std::string why = ops::relay_console(b.get(), sock, log, ::getpid(), stopping);
  EXPECT_NE(why.find("cannot open the console log"), std::string::npos) << why;
  std::filesystem::remove(log);
  ASSERT_EQ(::link(secret.c_str(), log.c_str()), 0);
  why = ops::relay_console(b.get(), sock, log, ::getpid(), stopping);
  EXPECT_NE(why.find("refusing the console log"), std::string::npos) << why;
  std::filesystem::remove(log);
  ASSERT_EQ(::mkfifo(log.c_str(), 0600), 0);
  why = ops::relay_console(b.get(), sock, log, ::getpid(), stopping);  // returns: no writer to wait for
  EXPECT_NE(why.find("refusing the console log"), std::string::npos) << why;
  EXPECT_EQ(read_until(a.get(), 1, 200ms), "") << "nothing reached the client";
  pollfd pending{listener.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pending, 1, 0), 0) << "refused before connecting to the guest";
}

// The socket's name is in the guest's directory too: only the socket its
// QEMU serves (SO_PEERCRED pid) is relayed, never another process's.
TEST(ConsoleRelay, RefusesASocketAnotherProcessServes) {
  TempDir dir;
  std::string sock = dir.path() + "/console.sock", log = dir.path() + "/console.log";
  UniqueFd listener = listen_unix(sock);
  append(log, "x");
  std::atomic<bool> stopping{false};
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const pid_t qemu = ::getppid();  // any live process that is not the one serving the socket
  std::string why = ops::relay_console(b.get(), sock, log, qemu, stopping);
  EXPECT_NE(why.find("refusing the console socket of the VM: it is served by pid " + std::to_string(::getpid())),
            std::string::npos)
      << why;
  why = ops::relay_stream(b.get(), sock, qemu, stopping);
  EXPECT_NE(why.find("refusing the console socket"), std::string::npos) << why;
  EXPECT_EQ(read_until(a.get(), 1, 200ms), "") << "nothing reached the client";
}

}  // namespace
}  // namespace vmstack::test
