// Runs the rest of a test in a network namespace of its own: the calling
// thread (and the threads and processes it starts afterwards: a daemon's
// workers, QEMU) see only the links the test makes, and everything made
// there disappears with the namespace. Restores the original namespace on
// destruction. Needs root (CAP_SYS_ADMIN), which the test suite has.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/fd.h"
#include "core/process.h"

namespace vmstack::test {

class NetnsGuard {
 public:
  NetnsGuard() : original_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (!original_) throw std::runtime_error(std::string("cannot open the current netns: ") + std::strerror(errno));
    if (::unshare(CLONE_NEWNET) != 0)
      throw std::runtime_error(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
    run_command({"ip", "link", "set", "lo", "up"});
  }
  ~NetnsGuard() { ::setns(original_.get(), CLONE_NEWNET); }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  UniqueFd original_;
};

}  // namespace vmstack::test
