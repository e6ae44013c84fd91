#include "core/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

using namespace vmstack;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool pid_is_zombie_or_gone(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return true;
  std::string line;
  std::getline(f, line);
  auto rp = line.rfind(')');
  return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z';
}

std::string tmpdir() {
  char tmpl[] = "/tmp/vmstack-proc-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  if (!d) throw std::runtime_error("mkdtemp");
  return d;
}

}  // namespace

TEST(UniqueFd, ClosesAndMoves) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  {
    UniqueFd a(p[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), p[0]);
  }
  EXPECT_EQ(::fcntl(p[0], F_GETFD), -1);
  UniqueFd w(p[1]);
  int raw = w.release();
  EXPECT_FALSE(w.valid());
  EXPECT_EQ(::close(raw), 0);
}

TEST(RunCommand, CapturesOutputAndExitCode) {
  auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"}, 5s);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
  auto ok = run_command({"true"});
  EXPECT_TRUE(ok.ok());
}

TEST(RunCommand, FeedsInput) {
  auto r = run_command({"cat"}, 5s, "hello\nworld\n");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "hello\nworld\n");
}

TEST(RunCommand, LargeOutputDoesNotDeadlock) {
  auto r = run_command({"sh", "-c", "head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2"}, 10s);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), 1000000u);
  EXPECT_EQ(r.err.size(), 300000u);
}

TEST(RunCommand, TimeoutKillsWholeGroup) {
  auto start = std::chrono::steady_clock::now();
  // The grandchild (sleep) holds the pipes too; the group kill must end it.
  auto r = run_command({"sh", "-c", "sleep 30 & sleep 30"}, 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_LT(took, 3s);
}

TEST(RunCommand, MissingProgramThrows) {
  try {
    run_command({"/nonexistent/program-xyz"});
    FAIL() << "expected throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
  EXPECT_THROW(run_command({"no-such-program-vmstack-xyz"}), std::system_error);
}

TEST(RunCommand, ReportsSignal) {
  auto r = run_command({"sh", "-c", "kill -TERM $$"}, 5s);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
}

TEST(Subprocess, EnvAndCwd) {
  SpawnOptions o;
  o.env_overrides = {{"VMSTACK_TEST_VAR", "xyz"}, {"HOME", ""}};
  o.cwd = "/tmp";
  auto r = run_command({"sh", "-c", "echo $VMSTACK_TEST_VAR; pwd; echo ${HOME-unset}"}, 5s, {}, o);
  EXPECT_EQ(r.out, "xyz\n/tmp\nunset\n");
  SpawnOptions e;
  e.env = std::map<std::string, std::string>{{"ONLY", "1"}, {"PATH", "/usr/bin:/bin"}};
  auto r2 = run_command({"/usr/bin/env"}, 5s, {}, e);
  EXPECT_NE(r2.out.find("ONLY=1"), std::string::npos);
  EXPECT_EQ(r2.out.find("HOME="), std::string::npos);
}

TEST(Subprocess, NoDescriptorsLeak) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // deliberately not CLOEXEC
  auto r = run_command({"sh", "-c", "ls /proc/self/fd | wc -l"}, 5s);
  ::close(p[0]);
  ::close(p[1]);
  // 0,1,2 and the fd ls uses to read the directory.
  EXPECT_EQ(std::stoi(r.out), 4);
}

TEST(Subprocess, WaitWithTimeoutAndKill) {
  auto p = Subprocess::spawn({"sleep", "30"});
  EXPECT_GT(p.pid(), 0);
  EXPECT_TRUE(p.is_child());
  EXPECT_FALSE(p.wait_for(100ms));
  EXPECT_EQ(p.describe_status(), "running");
  EXPECT_TRUE(p.kill(SIGKILL));
  EXPECT_TRUE(p.wait_for(5s));
  EXPECT_EQ(p.describe_status(), "signal:9");
  EXPECT_FALSE(p.kill(SIGKILL));  // no-op once gone
  pid_t pid = p.pid();
  EXPECT_TRUE(pid_is_zombie_or_gone(pid));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);  // already reaped
}

TEST(Subprocess, ExitStatus) {
  auto p = Subprocess::spawn({"sh", "-c", "exit 7"});
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  EXPECT_EQ(p.describe_status(), "exited:7");
}

TEST(Subprocess, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto p = Subprocess::spawn({"sleep", "30"});
    pid = p.pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // reaped: pid no longer exists
}

TEST(Subprocess, NewSessionAndOutputFile) {
  auto dir = tmpdir();
  SpawnOptions o;
  o.new_session = true;
  o.stdout_mode = SpawnOptions::Output::file;
  o.stdout_path = dir + "/log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  auto p = Subprocess::spawn({"sh", "-c", "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$; echo e >&2"}, o);
  p.wait();
  auto log = read_file(dir + "/log");
  std::string pid = std::to_string(p.pid());
  EXPECT_NE(log.find("sid=" + pid + " pid=" + pid), std::string::npos) << log;
  EXPECT_NE(log.find("e\n"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// Output to a file the caller opened (and checked) itself: the child's
// stdout and stderr go there, the name is never looked up again.
TEST(Subprocess, OutputToACallersDescriptor) {
  auto dir = tmpdir();
  UniqueFd log(::open((dir + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  ASSERT_TRUE(log);
  ASSERT_EQ(::write(log.get(), "header\n", 7), 7);
  std::filesystem::rename(dir + "/log", dir + "/moved");  // the descriptor, not the name, decides
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::fd;
  o.stdout_fd = log.get();
  o.stderr_mode = SpawnOptions::Output::stdout_;
  auto p = Subprocess::spawn({"sh", "-c", "echo out; echo err >&2"}, o);
  p.wait();
  EXPECT_EQ(read_file(dir + "/moved"), "header\nout\nerr\n");
  EXPECT_FALSE(std::filesystem::exists(dir + "/log"));
  o.stdout_fd = -1;
  EXPECT_THROW(Subprocess::spawn({"true"}, o), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

TEST(Subprocess, KillGroupReachesGrandchildren) {
  SpawnOptions o;
  o.new_session = true;
  o.stdout_mode = SpawnOptions::Output::pipe;
  auto p = Subprocess::spawn({"sh", "-c", "sleep 30 & echo $!; wait"}, o);
  char buf[64] = {};
  ssize_t n = ::read(p.stdout_pipe().get(), buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  pid_t grandchild = std::atoi(buf);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(p.kill_group(SIGKILL));
  p.wait();
  // The grandchild is reparented to PID 1 which reaps it eventually.
  for (int i = 0; i < 300 && !pid_is_zombie_or_gone(grandchild); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(pid_is_zombie_or_gone(grandchild));
}

TEST(Subprocess, ConcurrentWaitAndKill) {
  auto p = Subprocess::spawn({"sleep", "30"});
  std::thread waiter([&] { EXPECT_TRUE(p.wait_for(10s)); });
  std::this_thread::sleep_for(50ms);
  p.kill(SIGTERM);
  waiter.join();
  EXPECT_EQ(p.describe_status(), "signal:15");
}

TEST(Subprocess, AdoptNonChildSeesExit) {
  // Start a process that is not our child: sh's background job, orphaned.
  auto r = run_command({"sh", "-c", "setsid sleep 0.5 >/dev/null 2>&1 & echo $!"}, 5s);
  pid_t pid = std::atoi(r.out.c_str());
  ASSERT_GT(pid, 0);
  auto p = Subprocess::adopt(pid);
  EXPECT_FALSE(p.is_child());
  EXPECT_TRUE(p.wait_for(5s));
  EXPECT_EQ(p.describe_status(), "exited:unknown");
}

TEST(Subprocess, AdoptMissingThrows) {
  EXPECT_THROW(Subprocess::adopt(999999999), std::system_error);
}

TEST(Subprocess, ReleaseAndReaper) {
  auto p = Subprocess::spawn({"sleep", "0.2"});
  pid_t pid = p.pid();
  hand_off_to_reaper(std::move(p));
  // It exits on its own; the reaper must collect it.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    std::this_thread::sleep_for(10ms);
    gone = ::kill(pid, 0) != 0;
  }
  EXPECT_TRUE(gone);
}

TEST(Subprocess, ReclaimFromReaper) {
  auto p = Subprocess::spawn({"sleep", "30"});
  pid_t pid = p.pid();
  hand_off_to_reaper(std::move(p));
  auto back = reclaim_from_reaper(pid);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid(), pid);
  EXPECT_FALSE(reclaim_from_reaper(pid).has_value());
  back->kill(SIGKILL);
  back->wait();
  EXPECT_EQ(back->describe_status(), "signal:9");
}

TEST(Subprocess, ReleaseLeavesChildRunning) {
  auto p = Subprocess::spawn({"sleep", "30"});
  pid_t pid = p.pid();
  EXPECT_EQ(p.release(), pid);
  { Subprocess gone(std::move(p)); }
  EXPECT_EQ(::kill(pid, 0), 0);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(FormatArgv, Quotes) {
  EXPECT_EQ(format_argv({"qemu", "-name", "a b", "it's"}), "qemu -name 'a b' 'it'\\''s'");
}

TEST(Subprocess, PassesChosenDescriptorsAtChosenNumbers) {
  // Two files passed at 100 and 5 (5 may already be one of ours): the child
  // reads both through those numbers and sees no other descriptor.
  char a[] = "/tmp/vmstack-pass-a-XXXXXX", b[] = "/tmp/vmstack-pass-b-XXXXXX";
  UniqueFd fa(::mkstemp(a)), fb(::mkstemp(b));
  ASSERT_TRUE(fa && fb);
  ASSERT_EQ(::write(fa.get(), "first", 5), 5);
  ASSERT_EQ(::write(fb.get(), "second", 6), 6);
  ::lseek(fa.get(), 0, SEEK_SET);
  ::lseek(fb.get(), 0, SEEK_SET);
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::pipe;
  o.pass_fds = {{fa.get(), 100}, {fb.get(), 5}};
  auto p = Subprocess::spawn({"sh", "-c", "cat /proc/$$/fd/100; echo; cat /proc/$$/fd/5; echo; ls /proc/$$/fd | sort -n | tr '\\n' ' '"}, o);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(p.stdout_pipe().get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  p.wait();
  ::unlink(a);
  ::unlink(b);
  EXPECT_EQ(out.substr(0, 13), "first\nsecond\n") << out;
  // The shell's own descriptors: 0-2 and the two passed, nothing else.
  EXPECT_EQ(out.substr(13), "0 1 2 5 100 ") << "nothing else leaks";
  o.pass_fds = {{fa.get(), 2}};
  EXPECT_THROW(Subprocess::spawn({"true"}, o), std::invalid_argument);
}

TEST(Subprocess, RunsWithOtherCredentialsAndNoNewPrivileges) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing credentials needs root";
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::pipe;
  o.uid = 70999;
  o.gid = 70998;
  o.groups = {70997};
  o.no_new_privs = true;
  auto p = Subprocess::spawn({"sh", "-c", "grep -E '^(Uid|Gid|Groups|NoNewPrivs):' /proc/self/status"}, o);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p.stdout_pipe().get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  p.wait();
  EXPECT_NE(out.find("Uid:\t70999\t70999\t70999\t70999"), std::string::npos) << out;
  EXPECT_NE(out.find("Gid:\t70998\t70998\t70998\t70998"), std::string::npos) << out;
  EXPECT_NE(out.find("Groups:\t70997"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
}

TEST(Subprocess, DiesWithTheThreadThatSpawnedIt) {
  pid_t pid = 0;
  std::thread t([&] {
    SpawnOptions o;
    o.die_with_parent = true;
    auto p = Subprocess::spawn({"sleep", "60"}, o);
    pid = p.pid();
    hand_off_to_reaper(std::move(p));  // we do not kill it ourselves
  });
  t.join();  // the spawning thread is gone: the kernel sends SIGKILL
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = pid_is_zombie_or_gone(pid);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone);
}
