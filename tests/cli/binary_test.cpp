// The built `xe` binary, spawned as a user would run it, against the
// in-process test daemon (VMSTACK_SOCKET points at its socket).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/wait.h>
#include <csignal>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/fd.h"
#include "core/process.h"
#include "free_port.h"
#include "test_daemon.h"

using namespace vmstack;
using namespace vmstack::cli::testing;

namespace {

constexpr const char* kXe = XE_BINARY;
constexpr const char* kCompletionScript = XE_COMPLETION_SCRIPT;

CommandResult xe(const std::string& socket, const std::vector<std::string>& args, const std::string& input = {}) {
  std::vector<std::string> argv = {kXe};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions o;
  o.env_overrides["VMSTACK_SOCKET"] = socket;
  o.env_overrides["HOME"] = "/nonexistent";  // no ~/.xe from the machine running the tests
  return run_command(argv, std::chrono::seconds(20), input, o);
}

// A unix socket path that exists but where nobody listens: connect() gets
// ECONNREFUSED, as for a daemon that died and left its socket behind.
std::string dead_socket(const std::filesystem::path& dir) {
  std::string path = (dir / "dead.sock").string();
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "";
  return path;  // closed without listen()
}

}  // namespace

TEST(XeBinary, ListsOverTheSocketFromTheEnvironment) {
  TestDaemon d;
  auto r = xe(d.socket_path(), {"vm-list", "params=name-label", "power-state=halted", "--minimal"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "alpha\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(d.live_sessions(), 0u);
}

TEST(XeBinary, ApiErrorsGoToStderrWithExitCode1) {
  TestDaemon d;
  auto r = xe(d.socket_path(), {"vm-start", "vm=beta"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  std::string vm_uuid = d.db().get_field("VM", d.beta, "uuid").as_string();
  EXPECT_NE(r.err.find("\nvm: " + vm_uuid + " (beta)\nexpected: halted\nactual: running\n"), std::string::npos) << r.err;
  auto u = xe(d.socket_path(), {"no-such-command"});
  EXPECT_EQ(u.exit_code, 1);
  EXPECT_EQ(u.err, "Unknown command: no-such-command\nFor usage run: 'xe help'\n");
}

TEST(XeBinary, ConnectionRefusedIsReportedAsXeDoes) {
  TestDaemon d;  // only for its temp dir
  std::string dead = dead_socket(d.dir());
  ASSERT_FALSE(dead.empty());
  auto r = xe(dead, {"vm-list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "Error: Connection refused (calling connect )\n");
  EXPECT_EQ(r.out, "");
  auto missing = xe((d.dir() / "absent.sock").string(), {"vm-list"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "Error: No such file or directory (calling connect )\n");
  unsigned short port = vmstack::test::free_tcp_port();
  ASSERT_NE(port, 0);
  auto tcp = xe(dead, {"-s", "127.0.0.1", "-p", std::to_string(port), "-u", "u", "-pw", "p", "vm-list"});
  EXPECT_EQ(tcp.exit_code, 1);
  EXPECT_EQ(tcp.err, "Error: Connection refused (calling connect )\n");
}

TEST(XeBinary, ConsoleCopiesBothWaysWhenStdinIsNotATerminal) {
  TestDaemon d;
  std::string seen_target;
  d.console_handler = [&, echo = d.console_handler](const std::string& target, int fd) {
    seen_target = target;
    echo(target, fd);
  };
  auto r = xe(d.socket_path(), {"console", "vm=beta"}, "hello\nquit\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("console of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HELLO\nQUIT\n"), std::string::npos) << r.out;
  EXPECT_EQ(seen_target.rfind("/console?ref=" + d.beta_console + "&session_id=OpaqueRef:", 0), 0u) << seen_target;
  EXPECT_EQ(d.live_sessions(), 0u);
  // A VM without a text console.
  auto none = xe(d.socket_path(), {"console", "vm=alpha"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, "Error: No text console available\n");
}

TEST(XeBinary, HiddenCompleteMode) {
  TestDaemon d;
  auto r = xe(d.socket_path(), {"--complete", "vm-shut"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "vm-shutdown\n");
  auto v = xe(d.socket_path(), {"--complete", "vm-start", "vm=al"});
  EXPECT_EQ(v.out, "vm=alpha\n");
  // No daemon: still answers what it knows, and nothing for names.
  auto off = xe((d.dir() / "absent.sock").string(), {"--complete", "vm-start", "vm="});
  EXPECT_EQ(off.exit_code, 0);
  EXPECT_EQ(off.out, "");
}

TEST(XeBinary, BashCompletionScript) {
  if (::access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "bash is not installed";
  TestDaemon d;
  std::string bindir = std::filesystem::path(kXe).parent_path().string();
  // Simulates what bash does on <TAB>: COMP_LINE/COMP_POINT set, _xe called,
  // COMPREPLY printed one per line.
  auto complete_line = [&](const std::string& line) {
    std::string script = std::string("source '") + kCompletionScript +
                         "'\nCOMP_LINE='" + line + "'\nCOMP_POINT=${#COMP_LINE}\n"
                         "COMP_WORDBREAKS=$' \\t\\n\"\\'><=;|&(:'\n"
                         "_xe\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    SpawnOptions o;
    o.env_overrides["PATH"] = bindir + ":/usr/bin:/bin";
    o.env_overrides["VMSTACK_SOCKET"] = d.socket_path();
    o.env_overrides["HOME"] = "/nonexistent";
    return run_command({"/bin/bash", "--norc", "--noprofile", "-c", script}, std::chrono::seconds(20), "", o);
  };
  auto cmd = complete_line("xe vm-sta");
  EXPECT_EQ(cmd.exit_code, 0) << cmd.err;
  EXPECT_EQ(cmd.out, "vm-start\n");
  // '=' is a word break for bash: the reply is the part after it.
  auto val = complete_line("xe vm-start vm=al");
  EXPECT_EQ(val.out, "alpha\n") << val.err;
  auto key = complete_line("xe vm-start power-st");
  EXPECT_EQ(key.out, "power-state=\n");
}

TEST(XeBinary, InterruptedConsoleStillLogsOut) {
  TestDaemon d;
  SpawnOptions o;
  o.env_overrides["VMSTACK_SOCKET"] = d.socket_path();
  o.env_overrides["HOME"] = "/nonexistent";
  o.stdin_pipe = true;  // kept open: the console would run forever
  o.stdout_mode = SpawnOptions::Output::pipe;
  o.stderr_mode = SpawnOptions::Output::null;
  auto p = Subprocess::spawn({kXe, "console", "vm=beta"}, o);
  // Wait for the banner: the console is attached.
  std::string seen;
  char buf[256];
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (seen.find("console of ") == std::string::npos && std::chrono::steady_clock::now() < end) {
    pollfd pf{p.stdout_pipe().get(), POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    ssize_t n = ::read(p.stdout_pipe().get(), buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  ASSERT_NE(seen.find("console of "), std::string::npos) << seen;
  EXPECT_EQ(d.live_sessions(), 1u);
  p.kill(SIGTERM);
  ASSERT_TRUE(p.wait_for(std::chrono::seconds(10)));
  auto st = p.exit_status();
  ASSERT_TRUE(st && WIFEXITED(*st)) << p.describe_status();
  EXPECT_EQ(WEXITSTATUS(*st), 1);
  EXPECT_EQ(d.live_sessions(), 0u) << "the session was logged out";
}
