// Network namespaces, veth pairs and setup commands for the lb tests that
// build a topology (e2e_test, ha_failover_test), all RAII: whatever fails
// halfway through a setup (a command, an exception, a failed ASSERT), every
// namespace and veth created so far is removed by a destructor. Declare the
// processes and sockets that live inside a namespace after it, so they are
// gone before it is deleted.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/process.h"

namespace lbtest {

// A setup step failed. The message names the command and carries its stderr.
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs argv (no shell) and returns its stdout; throws SetupError
// ("`ip netns add x` exited 1: <stderr>") unless it succeeds.
inline std::string run_checked(const std::vector<std::string>& argv) {
  vmstack::CommandResult r;
  try {
    r = vmstack::run_command(argv, std::chrono::seconds(20));
  } catch (const std::exception& e) {
    throw SetupError("`" + vmstack::format_argv(argv) + "` could not run: " + e.what());
  }
  if (r.ok()) return r.out;
  std::string status = r.timed_out          ? "timed out"
                       : r.term_signal != 0 ? "was killed by signal " + std::to_string(r.term_signal)
                                            : "exited " + std::to_string(r.exit_code);
  std::string err = r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  throw SetupError("`" + vmstack::format_argv(argv) + "` " + status + (err.empty() ? "" : ": " + err));
}

// Runs argv for cleanup: failures are ignored (the thing may already be gone).
inline void run_quietly(const std::vector<std::string>& argv) noexcept {
  try {
    vmstack::run_command(argv, std::chrono::seconds(20));
  } catch (...) {
  }
}

// Whether this process may create network namespaces at all (root, and the
// kernel/container allows unshare(CLONE_NEWNET)). Probed on a throwaway
// thread, so the caller's namespace is untouched. When false, *why says why:
// the only reason a topology test may skip instead of fail.
inline bool netns_available(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root to create network namespaces";
    return false;
  }
  int err = 0;
  std::thread([&] { err = ::unshare(CLONE_NEWNET) == 0 ? 0 : errno; }).join();
  if (err != 0) {
    *why = std::string("network namespaces are not available here: unshare(CLONE_NEWNET): ") + std::strerror(err);
    return false;
  }
  return true;
}

// A named network namespace (`ip netns add`, loopback up) for the lifetime
// of the object; `ip netns del` in the destructor. The constructor throws
// SetupError (after deleting what it created) when a step fails.
class NetNs {
 public:
  explicit NetNs(std::string name) : name_(std::move(name)) {
    run_quietly({"ip", "netns", "del", name_});  // leftover of a killed earlier run
    run_checked({"ip", "netns", "add", name_});
    try {
      run_checked({"ip", "-n", name_, "link", "set", "lo", "up"});
    } catch (...) {
      run_quietly({"ip", "netns", "del", name_});
      throw;
    }
  }
  ~NetNs() { run_quietly({"ip", "netns", "del", name_}); }
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  const std::string& name() const { return name_; }
  // `ip -n <name> args...`, checked.
  std::string ip(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"ip", "-n", name_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_checked(argv);
  }
  // Runs `fn` on a thread that has entered this namespace; everything it
  // creates (sockets, threads) lives there.
  void run(const std::function<void()>& fn) const {
    std::exception_ptr err;
    std::thread t([&] {
      try {
        vmstack::UniqueFd ns(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0)
          throw std::runtime_error("setns " + name_ + ": " + std::strerror(errno));
        fn();
      } catch (...) {
        err = std::current_exception();
      }
    });
    t.join();
    if (err) std::rethrow_exception(err);
  }

 private:
  std::string name_;
};

// A veth pair `a_name` in namespace `a` <-> `b_name` in namespace `b`,
// created directly in place (it never exists in the test's own namespace)
// and deleted by the destructor.
class VethPair {
 public:
  VethPair(const NetNs& a, std::string a_name, const NetNs& b, std::string b_name)
      : ns_(a.name()), name_(std::move(a_name)) {
    a.ip({"link", "add", name_, "type", "veth", "peer", "name", b_name, "netns", b.name()});
  }
  ~VethPair() { run_quietly({"ip", "-n", ns_, "link", "del", name_}); }  // takes the peer with it
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;

 private:
  std::string ns_, name_;
};

// Switches the calling thread into a network namespace, and back.
class InNetns {
 public:
  explicit InNetns(const std::string& name) {
    orig_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    vmstack::UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
    ok_ = orig_ && target && ::setns(target.get(), CLONE_NEWNET) == 0;
  }
  ~InNetns() {
    if (ok_) ::setns(orig_.get(), CLONE_NEWNET);
  }
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  vmstack::UniqueFd orig_;
  bool ok_ = false;
};

}  // namespace lbtest
