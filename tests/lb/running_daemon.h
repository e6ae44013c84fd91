// A vmstack-lbd core (lb::Daemon) started in process on a temporary state
// dir and control socket, for the daemon tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lb/control.h"
#include "lb/daemon.h"
#include "lb_test_util.h"
#include "log_capture.h"

namespace lbtest {

inline std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A started Daemon whose control thread runs until the object dies.
class Running {
 public:
  LogCapture logs;  // the first member: outlives the daemon and its threads
  std::unique_ptr<vmstack::lb::Daemon> daemon;

  Running(const TempDir& d, std::string metrics = {}) {
    vmstack::lb::DaemonOptions o;
    o.state_dir = d.file("state");
    o.control_socket = d.file("ctl.sock");
    o.metrics_listen = std::move(metrics);
    o.proxy.workers = 1;
    daemon = std::make_unique<vmstack::lb::Daemon>(o);
    daemon->start();
    thread_ = std::thread([this] { daemon->run(); });
  }
  ~Running() {
    daemon->stop();
    thread_.join();
    daemon->shutdown();
  }
  vmstack::lb::ControlReply run(const std::vector<std::string>& args) {
    vmstack::lb::ParseResult p = vmstack::lb::parse_ipvsadm_args(args);
    EXPECT_TRUE(p.cmd) << p.error;
    return vmstack::lb::control_call(daemon->control_socket(),
                                     {{"cmd", vmstack::lb::command_to_json(*p.cmd)}});
  }
  std::string log() const { return logs.text(); }

 private:
  std::thread thread_;
};

}  // namespace lbtest
