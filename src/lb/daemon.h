// vmstack-lbd's core, without main(): the service table, the saved rules,
// the data plane, the control socket, the metrics endpoint and the
// once-a-second housekeeping, all driven from one Asio io_context (the
// control plane runs on one thread; the data plane has its own workers).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "lb/ipvsadm.h"
#include "lb/proxy.h"
#include "lb/service_table.h"

namespace boost::asio {
class io_context;
}

namespace vmstack::lb {

struct DaemonOptions {
  std::string state_dir = "/var/lib/vmstack-lb";
  std::string control_socket;  // "" = default_control_socket()
  std::string metrics_listen;  // "addr:port", "" = no metrics endpoint
  ProxyOptions proxy;
  uint64_t nofile = 1048576;   // RLIMIT_NOFILE wanted (2 descriptors per TCP connection)
};

class Daemon {
 public:
  explicit Daemon(DaemonOptions opts);
  ~Daemon();  // shutdown()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  ServiceTable& table() { return table_; }
  Proxy& proxy() { return *proxy_; }
  boost::asio::io_context& io();

  // HA glue, set before start(): --start-daemon/--stop-daemon/-L --daemon
  // and extra /metrics text. Both run on the control thread.
  void set_hooks(ExecHooks hooks) { hooks_ = std::move(hooks); }
  void set_extra_metrics(std::function<std::string()> f) { extra_metrics_ = std::move(f); }

  // Reloads the saved rules, starts the data plane, the control socket and
  // the metrics endpoint. Throws std::runtime_error (nothing left running).
  void start();
  // Serves until stop() or SIGINT/SIGTERM.
  void run();
  // Makes run() return; callable from any thread.
  void stop();
  // Stops the data plane and closes sockets (after run() returned).
  void shutdown();

  // One control request (see control.h); runs on the control thread.
  nlohmann::json handle(const nlohmann::json& request);
  std::string metrics_text();
  Endpoint metrics_endpoint() const;
  const std::string& control_socket() const { return control_path_; }
  const std::string& state_file() const;

 private:
  struct Io;
  void save_if_dirty(std::string* warning = nullptr);
  std::string listener_warning(const Command& c) const;

  DaemonOptions opts_;
  ServiceTable table_;
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<Io> io_;
  ExecHooks hooks_;
  std::function<std::string()> extra_metrics_;
  std::string control_path_;
  std::atomic<bool> dirty_{false};
  bool started_ = false;
  int change_sub_ = 0;
};

}  // namespace vmstack::lb
