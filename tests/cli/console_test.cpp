// `xe console` on a terminal: raw mode while attached, Ctrl-] detaches, the
// terminal is restored afterwards. A pseudo-terminal stands in for the user.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/fd.h"
#include "xe_runner.h"

using namespace vmstack;
using namespace vmstack::cli;
using namespace vmstack::cli::testing;

namespace {

// Reads what is available on fd until `want` shows up or the time is up.
bool read_until(int fd, std::string& acc, const std::string& want, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  char buf[512];
  while (acc.find(want) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    acc.append(buf, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

TEST(XeConsole, TerminalIsRawWhileAttachedAndCtrlBracketDetaches) {
  TestDaemon d;
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY));
  if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
    GTEST_SKIP() << "no pseudo-terminals available here";
  UniqueFd slave(::open(::ptsname(master.get()), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(slave);
  termios before{};
  ASSERT_EQ(::tcgetattr(slave.get(), &before), 0);
  ASSERT_TRUE(before.c_lflag & ICANON);

  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  UniqueFd out_r(pipefd[0]), out_w(pipefd[1]);

  std::ostringstream out, err;
  std::istringstream in;
  int rc = -1;
  std::thread xe([&] {
    Io io{out, err, in, slave.get(), out_w.get()};
    Environment env{d.socket_path().c_str(), nullptr};
    rc = run({"console", "vm=beta"}, env, io);
  });

  std::string seen;
  ASSERT_TRUE(read_until(out_r.get(), seen, "console of ", std::chrono::seconds(10))) << seen;
  // Attached: the terminal is in raw mode (no line editing, no signals).
  termios during{};
  for (int i = 0; i < 100; ++i) {
    ::tcgetattr(slave.get(), &during);
    if (!(during.c_lflag & ICANON)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(during.c_lflag & ICANON);
  EXPECT_FALSE(during.c_lflag & ISIG);

  // Typed keys go to the guest without waiting for Enter.
  ASSERT_EQ(::write(master.get(), "hi", 2), 2);
  EXPECT_TRUE(read_until(out_r.get(), seen, "HI", std::chrono::seconds(10))) << seen;
  // Ctrl-] detaches; what was typed before it on the same read still goes.
  ASSERT_EQ(::write(master.get(), "x\x1d", 2), 2);
  xe.join();
  EXPECT_EQ(rc, 0) << err.str();
  out_w.reset();  // xe is done writing: read the rest up to EOF
  read_until(out_r.get(), seen, "<never>", std::chrono::seconds(5));
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.substr(seen.size() - 2), "\r\n") << "a fresh line after detaching";

  termios after{};
  ASSERT_EQ(::tcgetattr(slave.get(), &after), 0);
  EXPECT_TRUE(after.c_lflag & ICANON) << "terminal mode restored";
  EXPECT_TRUE(after.c_lflag & ECHO);
  EXPECT_EQ(d.live_sessions(), 0u);
}
