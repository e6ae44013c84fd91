// The real vmstackd binary in a temp state dir, driven through the real xe
// binary: what the end-to-end tests share.
#pragma once

#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/process.h"

namespace vmstack::test {

class VmstackdProcess {
 public:
  // A fresh state dir under /tmp; removed (with every guest under it) at the end.
  VmstackdProcess();
  ~VmstackdProcess();
  VmstackdProcess(const VmstackdProcess&) = delete;
  VmstackdProcess& operator=(const VmstackdProcess&) = delete;

  // Starts vmstackd (with `env` added to its environment and, when
  // tcp_port > 0, listening there too) and waits until xe gets an answer.
  // Returns "" or why it did not come up, with its log.
  std::string start(const std::map<std::string, std::string>& env = {}, int tcp_port = 0,
                    const std::vector<std::string>& extra_args = {});
  // SIGTERM (or `sig`) and wait; true when it exited.
  bool stop(int sig = SIGTERM);
  Subprocess& process() { return daemon_; }

  CommandResult xe(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // Hard-shuts every VM down (the end of a test leaves no guest running).
  void shutdown_all();

  const std::string& state_dir() const { return state_; }
  std::string log() const;

 private:
  std::string state_;
  std::vector<std::string> args_;
  Subprocess daemon_;
};

std::string trim_output(std::string s);

}  // namespace vmstack::test
