// Child processes without zombies or leaked descriptors.
//
// Subprocess owns one child: spawned with every descriptor other than
// 0/1/2 closed, optionally in a new session (so it survives our death and
// terminal signals never reach it), tracked with a pidfd so waits have
// timeouts and signals never hit a recycled pid. The destructor SIGKILLs and
// reaps a child still running; release() / hand_off_to_reaper() are the
// explicit ways to let it outlive the object.
//
// A Subprocess can also adopt() a process that is not our child (a QEMU
// started by an earlier daemon): it can then be signalled and its exit
// observed through the pidfd, but its exit status is unknowable.
//
// All member functions are safe to call concurrently (e.g. one thread blocked
// in wait() while another calls kill()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.h"

namespace vmstack {

// pidfd_open(2) via syscall; -1 with errno set when unsupported.
int pidfd_open_compat(pid_t pid, unsigned flags = 0);

// The pid of the process at the other end of a connected unix socket
// (SO_PEERCRED): for a client, the process that called listen() on the
// socket it reached, whatever name it reached it by. -1 when unknown.
pid_t socket_peer_pid(int fd);

struct SpawnOptions {
  enum class Output {
    inherit,  // our own stdout/stderr
    null,     // /dev/null
    file,     // append to *_path (created 0600)
    pipe,     // captured: read from Subprocess::stdout_pipe()/stderr_pipe()
    stdout_,  // stderr only: same destination as stdout (2>&1)
    fd,       // stdout only: a copy of stdout_fd, a file the caller opened (and checked)
  };
  Output stdout_mode = Output::inherit;
  std::string stdout_path;
  int stdout_fd = -1;            // Output::fd: the caller keeps ownership
  Output stderr_mode = Output::inherit;
  std::string stderr_path;
  bool truncate = false;         // file outputs: truncate instead of append
  bool stdin_pipe = false;       // else stdin is /dev/null
  bool new_session = false;      // setsid(): own session and process group
  std::string cwd;               // empty: inherit
  // Environment: when set, the child's whole environment; else ours, with
  // env_overrides applied (an empty value in overrides unsets the variable).
  std::optional<std::map<std::string, std::string>> env;
  std::map<std::string, std::string> env_overrides;
  bool search_path = true;       // argv[0] looked up in PATH when it has no '/'
  // Descriptors the child gets besides 0/1/2: (our fd, its number there).
  // Everything else is closed.
  std::vector<std::pair<int, int>> pass_fds;
  // Credentials the child runs with (-1: ours): supplementary groups are
  // replaced by `groups`, then the gid and uid set, before exec.
  int uid = -1;
  int gid = -1;
  std::vector<unsigned> groups;
  bool no_new_privs = false;     // PR_SET_NO_NEW_PRIVS: exec can never gain privileges
  // SIGKILL the child when the thread that spawned it dies (PR_SET_PDEATHSIG):
  // for helpers (a copy) that must not outlive a daemon killed mid-verb.
  bool die_with_parent = false;
};

class Subprocess {
 public:
  // Throws std::system_error when fork/exec fails (including "no such
  // program": the exec error is reported back synchronously).
  static Subprocess spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});
  // Track an existing process (ours or not). Throws std::system_error if the
  // process does not exist.
  static Subprocess adopt(pid_t pid);

  Subprocess();  // empty
  Subprocess(Subprocess&&) noexcept;
  Subprocess& operator=(Subprocess&&) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();  // SIGKILL (group when new_session) + reap if still our running child

  bool valid() const;
  pid_t pid() const;
  int pidfd() const;  // -1 when the kernel lacks pidfds
  bool is_child() const;        // false for adopted non-children
  bool own_process_group() const;  // spawned with new_session (pgid == pid)

  // Pipes (when requested); callers may move them out.
  UniqueFd& stdin_pipe();
  UniqueFd& stdout_pipe();
  UniqueFd& stderr_pipe();

  // Has the process exited? Reaps it if it is our child (non-blocking).
  bool try_wait();
  // Blocks until exit or timeout; true when it exited (and was reaped if ours).
  bool wait_for(std::chrono::milliseconds timeout);
  // Blocks until exit; returns the raw wait status (see exit_status()).
  int wait();
  bool exited() const;
  // Raw wait status (WIFEXITED etc.) once exited; nullopt while running or
  // for adopted non-children (unknowable).
  std::optional<int> exit_status() const;
  // "exited:<code>", "signal:<n>", "exited:unknown", or "running".
  std::string describe_status() const;

  // Sends sig to the process (via pidfd, so never to a recycled pid). No-op
  // once it has exited. Returns false if it could not be delivered.
  bool kill(int sig);
  // Sends sig to the whole process group (when spawned with new_session or
  // adopted as a group leader), falling back to kill(sig).
  bool kill_group(int sig);
  // Forget the child without killing or reaping it; returns its pid. The
  // caller (or PID 1 after we exit) must reap it.
  pid_t release();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Hands a child we no longer manage to a process-wide background reaper, so
// it never lingers as a zombie after it exits. reclaim_from_reaper(pid) takes
// it back (used when a Domain is re-attached in the same process).
// It is process-wide on purpose, the one exception to "no global mutable
// state outside the daemon's top object": the set of our children belongs to
// the process, not to any object. A guest's QEMU must stay reapable after the
// daemon object that started it is gone, and a new one in the same process
// (an in-process restart) must be able to take the child back.
void hand_off_to_reaper(Subprocess&& p);
std::optional<Subprocess> reclaim_from_reaper(pid_t pid);

struct CommandResult {
  int exit_code = -1;    // exit status; 128+signal when killed by a signal
  int term_signal = 0;   // the signal when killed by one
  bool timed_out = false;
  std::string out;
  std::string err;
  bool ok() const { return !timed_out && term_signal == 0 && exit_code == 0; }
};

// Runs argv to completion capturing stdout/stderr (stdin: `input`, or
// /dev/null when empty). On timeout the child (its own process group) is
// SIGKILLed and timed_out is set. Throws std::system_error if it cannot be
// started at all.
// `started`, if given, runs once the child is running (before its output is
// collected).
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60),
                          const std::string& input = {}, const SpawnOptions& base = {},
                          const std::function<void()>& started = {});

// Shell-style rendering of argv for logs and error messages.
std::string format_argv(const std::vector<std::string>& argv);

}  // namespace vmstack
