#include "core/process.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>

extern char** environ;

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace vmstack {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what, int err = errno) {
  throw std::system_error(err, std::generic_category(), what);
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  if (left > INT_MAX) return INT_MAX;
  return static_cast<int>(left);
}

// Returns true when fd became readable within timeout_ms (-1 = forever).
bool poll_readable(int fd, int timeout_ms) {
  struct pollfd p{fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string resolve_program(const std::string& prog, bool search) {
  if (!search || prog.find('/') != std::string::npos) return prog;
  const char* path = ::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + prog;
    struct stat st{};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return prog;  // execve will fail with ENOENT
}

UniqueFd open_output(const std::string& path, bool truncate) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) throw_errno("open " + path);
  return UniqueFd(fd);
}

UniqueFd open_null(int flags) {
  int fd = ::open("/dev/null", flags | O_CLOEXEC);
  if (fd < 0) throw_errno("open /dev/null");
  return UniqueFd(fd);
}

void make_pipe(UniqueFd& r, UniqueFd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  r.reset(p[0]);
  w.reset(p[1]);
}

// In the child, between fork and exec: async-signal-safe calls only.
void child_dup(int src, int target) {
  if (src == target) {
    int fl = ::fcntl(src, F_GETFD);
    if (fl >= 0) ::fcntl(src, F_SETFD, fl & ~FD_CLOEXEC);
  } else {
    while (::dup2(src, target) < 0 && errno == EINTR) {
    }
  }
}

// Closes every fd >= 3 but those in keep[0..n) (sorted ascending, all >= 3).
// close_range(2) is Linux 5.9+; fall back to a bounded loop.
void child_close_all_except(const int* keep, size_t n) {
  bool ok = true;
  unsigned from = 3;
  for (size_t i = 0; i <= n && ok; ++i) {
    unsigned to = i < n ? static_cast<unsigned>(keep[i]) : ~0u;
    if (to > from && ::syscall(SYS_close_range, from, i < n ? to - 1 : ~0u, 0u) != 0) ok = false;
    if (i < n) from = static_cast<unsigned>(keep[i]) + 1;
  }
  if (!ok) {
    long max = ::sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 3; fd < max; ++fd) {
      bool kept = false;
      for (size_t i = 0; i < n; ++i) kept = kept || keep[i] == fd;
      if (!kept) ::close(fd);
    }
  }
}

}  // namespace

pid_t socket_peer_pid(int fd) {
  struct ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred || cred.pid <= 0) return -1;
  return cred.pid;
}

int pidfd_open_compat(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

struct Subprocess::State {
  pid_t pid = -1;
  UniqueFd pidfd;
  bool child = true;
  bool group = false;
  mutable std::mutex mu;
  bool exited = false;
  bool released = false;
  std::optional<int> status;
  UniqueFd in, out, err;

  // mu held.
  bool try_wait_locked() {
    if (exited || released) return exited;
    if (child) {
      int st = 0;
      pid_t r;
      do {
        r = ::waitpid(pid, &st, WNOHANG);
      } while (r < 0 && errno == EINTR);
      if (r == pid) {
        exited = true;
        status = st;
      } else if (r < 0 && errno == ECHILD) {
        // Reaped behind our back (SIGCHLD ignored, or not ours after all).
        exited = true;
      }
      return exited;
    }
    if (pidfd.valid()) {
      if (poll_readable(pidfd.get(), 0)) exited = true;
    } else if (::kill(pid, 0) != 0 && errno == ESRCH) {
      exited = true;
    }
    return exited;
  }

  bool signal_locked(int sig) {
    if (exited || released) return false;
    if (pidfd.valid()) return ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0u) == 0;
    return ::kill(pid, sig) == 0;
  }
};

Subprocess::Subprocess() = default;
Subprocess::Subprocess(Subprocess&&) noexcept = default;
Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    Subprocess tmp(std::move(*this));  // disposes of our current child
    s_ = std::move(o.s_);
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (!s_) return;
  bool running_child;
  {
    std::lock_guard lk(s_->mu);
    running_child = s_->child && !s_->released && !s_->try_wait_locked();
  }
  if (running_child) {
    kill_group(SIGKILL);
    wait();
  }
}

Subprocess Subprocess::spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) throw std::invalid_argument("Subprocess::spawn: empty argv");
  using O = SpawnOptions::Output;

  std::string program = resolve_program(argv[0], opts.search_path);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  std::vector<std::string> envs;
  if (opts.env) {
    for (auto& [k, v] : *opts.env) envs.push_back(k + "=" + v);
  } else {
    for (char** e = environ; e && *e; ++e) {
      std::string kv = *e;
      std::string key = kv.substr(0, kv.find('='));
      if (!opts.env_overrides.count(key)) envs.push_back(std::move(kv));
    }
    for (auto& [k, v] : opts.env_overrides)
      if (!v.empty()) envs.push_back(k + "=" + v);
  }
  std::vector<char*> cenv;
  for (auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  auto st = std::make_unique<State>();
  UniqueFd child_in, child_out, child_err;
  if (opts.stdin_pipe) {
    make_pipe(child_in, st->in);
  } else {
    child_in = open_null(O_RDONLY);
  }
  auto setup = [&](O mode, const std::string& path, UniqueFd& child_end, UniqueFd& parent_end, const char* what) {
    switch (mode) {
      case O::inherit: break;
      case O::null: child_end = open_null(O_WRONLY); break;
      case O::file:
        if (path.empty()) throw std::invalid_argument(std::string("Subprocess::spawn: no path for ") + what);
        child_end = open_output(path, opts.truncate);
        break;
      case O::pipe: make_pipe(parent_end, child_end); break;
      case O::stdout_: break;
      case O::fd:
        if (what != std::string_view("stdout") || opts.stdout_fd < 0)
          throw std::invalid_argument(std::string("Subprocess::spawn: no descriptor for ") + what);
        child_end.reset(::fcntl(opts.stdout_fd, F_DUPFD_CLOEXEC, 3));
        if (!child_end) throw_errno("fcntl(F_DUPFD)");
        break;
    }
  };
  if (opts.stdout_mode == O::stdout_) throw std::invalid_argument("Subprocess::spawn: stdout cannot redirect to itself");
  setup(opts.stdout_mode, opts.stdout_path, child_out, st->out, "stdout");
  if (opts.stderr_mode == O::file && opts.stdout_mode == O::file && opts.stderr_path == opts.stdout_path) {
    // Same file: share the descriptor so appends interleave correctly.
  } else {
    setup(opts.stderr_mode, opts.stderr_path, child_err, st->err, "stderr");
  }
  bool err_to_out = opts.stderr_mode == O::stdout_ ||
                    (opts.stderr_mode == O::file && opts.stdout_mode == O::file && opts.stderr_path == opts.stdout_path);

  UniqueFd err_r, err_w;
  make_pipe(err_r, err_w);

  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
  const int in_fd = child_in.get();
  const int out_fd = child_out.get();
  const int err_fd = child_err.get();
  // The exec-error pipe lives above every fd the child is given, so passing
  // fds to their numbers can never clobber it.
  int max_target = 2;
  for (const auto& [src, target] : opts.pass_fds) {
    if (target < 3) throw std::invalid_argument("SpawnOptions.pass_fds: target fds start at 3");
    max_target = std::max(max_target, target);
  }
  UniqueFd report_hi(::fcntl(err_w.get(), F_DUPFD_CLOEXEC, max_target + 1));
  if (!report_hi) throw_errno("fcntl(F_DUPFD)");
  err_w = std::move(report_hi);
  const int report_fd = err_w.get();
  // Sources moved above the targets too (in the child), so dup2 of one pass
  // cannot overwrite the source of another.
  std::vector<std::pair<int, int>> passes = opts.pass_fds;
  std::vector<int> keep;
  for (const auto& p : passes) keep.push_back(p.second);
  keep.push_back(report_fd);
  std::sort(keep.begin(), keep.end());
  const std::vector<gid_t> groups(opts.groups.begin(), opts.groups.end());

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Child.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    if (opts.new_session) ::setsid();
    int e = 0;
    child_dup(in_fd, 0);
    if (out_fd >= 0) child_dup(out_fd, 1);
    if (err_to_out) {
      child_dup(1, 2);
    } else if (err_fd >= 0) {
      child_dup(err_fd, 2);
    }
    if (cwd && ::chdir(cwd) != 0) {
      e = errno;
      (void)!::write(report_fd, &e, sizeof e);
      ::_exit(127);
    }
    auto fail = [&] {
      e = errno;
      (void)!::write(report_fd, &e, sizeof e);
      ::_exit(127);
    };
    for (auto& p : passes)
      if ((p.first = ::fcntl(p.first, F_DUPFD, report_fd + 1)) < 0) fail();
    for (const auto& p : passes)
      if (::dup2(p.first, p.second) < 0) fail();
    child_close_all_except(keep.data(), keep.size());
    if (opts.die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
      // A parent that died before the prctl sends no signal: check.
      if (::getppid() != parent) ::_exit(127);
    }
    if (opts.gid >= 0 || opts.uid >= 0) {
      if (::setgroups(groups.size(), groups.data()) != 0) fail();
      if (opts.gid >= 0 && ::setresgid(opts.gid, opts.gid, opts.gid) != 0) fail();
      if (opts.uid >= 0 && ::setresuid(opts.uid, opts.uid, opts.uid) != 0) fail();
    }
    if (opts.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail();
    ::execve(program.c_str(), cargv.data(), cenv.data());
    e = errno;
    (void)!::write(report_fd, &e, sizeof e);
    ::_exit(127);
  }

  // Parent.
  err_w.reset();
  child_in.reset();
  child_out.reset();
  child_err.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_r.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int dummy;
    while (::waitpid(pid, &dummy, 0) < 0 && errno == EINTR) {
    }
    throw_errno("exec " + argv[0], child_errno);
  }
  st->pid = pid;
  st->child = true;
  st->group = opts.new_session;
  st->pidfd.reset(pidfd_open_compat(pid));
  Subprocess p;
  p.s_ = std::move(st);
  return p;
}

Subprocess Subprocess::adopt(pid_t pid) {
  if (pid <= 0) throw std::invalid_argument("Subprocess::adopt: bad pid");
  auto st = std::make_unique<State>();
  st->pid = pid;
  st->pidfd.reset(pidfd_open_compat(pid));
  if (!st->pidfd.valid() && errno == ESRCH) throw_errno("pidfd_open " + std::to_string(pid), ESRCH);
  if (!st->pidfd.valid() && ::kill(pid, 0) != 0 && errno == ESRCH) throw_errno("kill " + std::to_string(pid), ESRCH);
  siginfo_t si{};
  st->child = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0;
  st->group = ::getpgid(pid) == pid;
  Subprocess p;
  p.s_ = std::move(st);
  return p;
}

bool Subprocess::valid() const { return s_ && !s_->released; }
pid_t Subprocess::pid() const { return s_ ? s_->pid : -1; }
int Subprocess::pidfd() const { return s_ ? s_->pidfd.get() : -1; }
bool Subprocess::is_child() const { return s_ && s_->child; }
bool Subprocess::own_process_group() const { return s_ && s_->group; }
UniqueFd& Subprocess::stdin_pipe() { return s_->in; }
UniqueFd& Subprocess::stdout_pipe() { return s_->out; }
UniqueFd& Subprocess::stderr_pipe() { return s_->err; }

bool Subprocess::try_wait() {
  if (!s_) return true;
  std::lock_guard lk(s_->mu);
  return s_->try_wait_locked();
}

bool Subprocess::wait_for(std::chrono::milliseconds timeout) {
  if (!s_) return true;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (try_wait()) return true;
    int left = remaining_ms(deadline);
    if (left == 0) return false;
    if (s_->pidfd.valid()) {
      poll_readable(s_->pidfd.get(), left);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(left, 20)));
    }
  }
}

int Subprocess::wait() {
  while (!wait_for(std::chrono::hours(24))) {
  }
  return exit_status().value_or(-1);
}

bool Subprocess::exited() const {
  if (!s_) return true;
  std::lock_guard lk(s_->mu);
  return s_->exited;
}

std::optional<int> Subprocess::exit_status() const {
  if (!s_) return std::nullopt;
  std::lock_guard lk(s_->mu);
  return s_->status;
}

std::string Subprocess::describe_status() const {
  if (!s_) return "exited:unknown";
  std::lock_guard lk(s_->mu);
  if (!s_->exited) return "running";
  if (!s_->status) return "exited:unknown";
  int st = *s_->status;
  if (WIFEXITED(st)) return "exited:" + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "signal:" + std::to_string(WTERMSIG(st));
  return "exited:unknown";
}

bool Subprocess::kill(int sig) {
  if (!s_) return false;
  std::lock_guard lk(s_->mu);
  return s_->signal_locked(sig);
}

bool Subprocess::kill_group(int sig) {
  if (!s_) return false;
  std::lock_guard lk(s_->mu);
  if (s_->exited || s_->released) return false;
  if (s_->group) {
    // For our child the pid cannot be recycled before we reap it (we hold
    // mu, reaping needs it). For an adopted process check it is still there.
    if (s_->child || !s_->pidfd.valid() || !poll_readable(s_->pidfd.get(), 0)) {
      if (::killpg(s_->pid, sig) == 0) return true;
    }
  }
  return s_->signal_locked(sig);
}

pid_t Subprocess::release() {
  if (!s_) return -1;
  std::lock_guard lk(s_->mu);
  s_->released = true;
  return s_->pid;
}

// ---------------------------------------------------------------------------
// Background reaper for children handed off by their owners.

namespace {

class Reaper {
 public:
  ~Reaper() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    wake();
    if (thread_.joinable()) thread_.join();
    // Children still running at exit keep running: never kill them here.
    for (auto& [pid, p] : kids_) p.release();
  }

  void add(Subprocess&& p) {
    std::lock_guard lk(mu_);
    if (!wake_.valid()) wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    pid_t pid = p.pid();
    kids_.erase(pid);
    kids_.emplace(pid, std::move(p));
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    wake_locked();
  }

  std::optional<Subprocess> take(pid_t pid) {
    std::lock_guard lk(mu_);
    auto it = kids_.find(pid);
    if (it == kids_.end()) return std::nullopt;
    Subprocess p = std::move(it->second);
    kids_.erase(it);
    wake_locked();
    return p;
  }

 private:
  void wake() {
    std::lock_guard lk(mu_);
    wake_locked();
  }
  void wake_locked() {
    if (wake_.valid()) {
      uint64_t one = 1;
      (void)!::write(wake_.get(), &one, sizeof one);
    }
  }

  void run() {
    for (;;) {
      std::vector<struct pollfd> fds;
      bool need_timer = false;
      {
        std::lock_guard lk(mu_);
        if (stop_) return;
        for (auto it = kids_.begin(); it != kids_.end();) {
          if (it->second.try_wait()) {
            it = kids_.erase(it);
            continue;
          }
          if (it->second.pidfd() >= 0) {
            fds.push_back({it->second.pidfd(), POLLIN, 0});
          } else {
            need_timer = true;
          }
          ++it;
        }
        fds.push_back({wake_.get(), POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), need_timer ? 500 : -1);
      uint64_t v;
      (void)!::read(fds.back().fd, &v, sizeof v);
    }
  }

  std::mutex mu_;
  bool stop_ = false;
  UniqueFd wake_;
  std::map<pid_t, Subprocess> kids_;
  std::thread thread_;
};

Reaper& reaper() {
  static Reaper r;
  return r;
}

}  // namespace

void hand_off_to_reaper(Subprocess&& p) {
  if (!p.valid()) return;
  if (!p.is_child()) {
    p.release();
    return;
  }
  if (p.try_wait()) return;
  reaper().add(std::move(p));
}

std::optional<Subprocess> reclaim_from_reaper(pid_t pid) { return reaper().take(pid); }

// ---------------------------------------------------------------------------

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::string& input, const SpawnOptions& base, const std::function<void()>& started) {
  SpawnOptions opts = base;
  opts.stdout_mode = SpawnOptions::Output::pipe;
  opts.stderr_mode = SpawnOptions::Output::pipe;
  opts.stdin_pipe = !input.empty();
  opts.new_session = true;
  Subprocess p = Subprocess::spawn(argv, opts);
  if (started) started();
  auto deadline = Clock::now() + timeout;

  CommandResult res;
  UniqueFd out = std::move(p.stdout_pipe());
  UniqueFd err = std::move(p.stderr_pipe());
  UniqueFd in = std::move(p.stdin_pipe());
  for (int fd : {out.get(), err.get(), in.get()})
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t written = 0;

  auto drain = [](UniqueFd& fd, std::string& into) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) {
        into.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) fd.reset();  // EOF
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN) fd.reset();
      return;
    }
  };

  bool exited = false;
  while (out.valid() || err.valid() || !exited) {
    int left = remaining_ms(deadline);
    if (left == 0) break;
    std::vector<struct pollfd> fds;
    if (out.valid()) fds.push_back({out.get(), POLLIN, 0});
    if (err.valid()) fds.push_back({err.get(), POLLIN, 0});
    if (in.valid()) fds.push_back({in.get(), POLLOUT, 0});
    if (!exited && p.pidfd() >= 0) fds.push_back({p.pidfd(), POLLIN, 0});
    int wait_ms = (!exited && p.pidfd() < 0) ? std::min(left, 20) : left;
    if (exited) wait_ms = std::min(left, 50);  // grandchildren may hold the pipes; don't wait on them
    int r = ::poll(fds.data(), fds.size(), wait_ms);
    if (r < 0 && errno != EINTR) break;
    for (auto& f : fds) {
      if (!f.revents) continue;
      if (out.valid() && f.fd == out.get()) drain(out, res.out);
      else if (err.valid() && f.fd == err.get()) drain(err, res.err);
      else if (in.valid() && f.fd == in.get()) {
        ssize_t n = ::write(in.get(), input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in.reset();
      }
    }
    if (!exited && p.try_wait()) exited = true;
    if (exited && r == 0) break;  // exited and pipes quiet
  }
  if (!exited && !p.try_wait()) {
    res.timed_out = true;
    p.kill_group(SIGKILL);
  }
  if (out.valid()) drain(out, res.out);
  if (err.valid()) drain(err, res.err);
  int st = p.wait();
  if (WIFEXITED(st)) {
    res.exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    res.term_signal = WTERMSIG(st);
    res.exit_code = 128 + res.term_signal;
  }
  return res;
}

std::string format_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      s += a;
    } else {
      s += '\'';
      for (char c : a) {
        if (c == '\'') s += "'\\''";
        else s += c;
      }
      s += '\'';
    }
  }
  return s;
}

}  // namespace vmstack
