// vmstack-lbd: the vmstack load balancer daemon. Rules come from
// vmstack-ipvsadm over the control socket and are saved in the state dir;
// the data plane is a user-space NAT proxy; health checks, VRRP failover
// and connection sync come from lb-ha (HaRuntime).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "lb/control.h"
#include "lb/daemon.h"
#include "lb/ha_runtime.h"

using namespace vmstack::lb;

namespace {

// Owns the HaRuntime and lets `ipvsadm --start-daemon/--stop-daemon` change
// its sync role at run time (by rebuilding it with the new options).
class HaGlue {
 public:
  HaGlue(Daemon& d, ha::HaOptions opts) : d_(d), opts_(std::move(opts)) {
    ExecHooks h;
    h.start_daemon = [this](const Command& c) { start_daemon(c); };
    h.stop_daemon = [this](const Command& c) { stop_daemon(c); };
    h.list_daemon = [this] { return list_daemon(); };
    d_.set_hooks(std::move(h));
    d_.set_extra_metrics([this] { return rt_ ? rt_->metrics_text() : std::string(); });
  }
  void start() { rebuild(); }
  void stop() {
    if (rt_) rt_->stop();
    rt_.reset();
  }

 private:
  void rebuild() {
    stop();
    if (!opts_.enabled()) return;
    auto rt = std::make_unique<ha::HaRuntime>(d_.table(), opts_);
    rt->start();
    rt_ = std::move(rt);
  }
  // Applies new options; on failure the previous ones are put back.
  void change(const ha::HaOptions& next) {
    ha::HaOptions prev = opts_;
    opts_ = next;
    try {
      rebuild();
    } catch (...) {
      opts_ = prev;
      try {
        rebuild();
      } catch (const std::exception& e) {
        spdlog::error("restoring the previous HA setup failed: {}", e.what());
      }
      throw;
    }
  }
  void start_daemon(const Command& c) {
    if (opts_.start_daemon == c.daemon_state) throw LbError(LbError::Code::DaemonExists);
    ha::HaOptions next = opts_;
    next.start_daemon = c.daemon_state;
    if (!c.mcast_interface.empty()) next.sync_interface = c.mcast_interface;
    if (c.has_syncid) next.sync_id = c.syncid;
    change(next);
  }
  void stop_daemon(const Command& c) {
    if (opts_.start_daemon != c.daemon_state) throw LbError(LbError::Code::NoDaemon);
    ha::HaOptions next = opts_;
    next.start_daemon.clear();
    change(next);
  }
  std::string list_daemon() const {
    if (opts_.start_daemon.empty() || !rt_) return {};
    std::string role = rt_->role();
    if (role != "master" && role != "backup") role = opts_.start_daemon;
    std::string mcast = !opts_.sync_interface.empty() ? opts_.sync_interface
                        : !opts_.vrrp_interface.empty() ? opts_.vrrp_interface
                                                        : "default";
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s sync daemon (mcast=%s, syncid=%d)\n", role.c_str(),
                  mcast.c_str(), opts_.sync_id);
    return buf;
  }

  Daemon& d_;
  ha::HaOptions opts_;
  std::unique_ptr<ha::HaRuntime> rt_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vmstack-lbd: LVS-style load balancer daemon with a user-space NAT data plane.\n"
      "Configure it with vmstack-ipvsadm (ipvsadm syntax)."};
  DaemonOptions o;
  std::string splice = "auto";
  o.control_socket = default_control_socket();
  app.add_option("--state-dir", o.state_dir, "Where the rules are saved (file 'rules')")
      ->capture_default_str();
  app.add_option("--control-socket,--socket", o.control_socket,
                 "Unix socket for vmstack-ipvsadm (env VMSTACK_LB_SOCKET)")
      ->capture_default_str();
  app.add_option("--metrics-listen", o.metrics_listen,
                 "addr:port of the Prometheus endpoint (GET /metrics); off when empty");
  app.add_option("--workers", o.proxy.workers, "Data-plane threads (0: one per CPU, at most 4)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--splice", splice, "TCP zero-copy: auto (bulk transfers), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  app.add_option("--nofile", o.nofile, "RLIMIT_NOFILE to ask for (2 per TCP connection)")
      ->capture_default_str();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  ha::HaOptions ha_opts;
  ha::add_ha_options(app, ha_opts);
  CLI11_PARSE(app, argc, argv);
  // The daemon and the lb library log through spdlog's default logger: on
  // stderr, as "[time] [vmstack-lbd] [level] message".
  spdlog::set_default_logger(spdlog::stderr_color_mt("vmstack-lbd"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  o.proxy.splice = splice == "always" ? SpliceMode::Always
                   : splice == "never" ? SpliceMode::Never
                                       : SpliceMode::Auto;

  Daemon d(o);
  std::unique_ptr<HaGlue> ha;
  try {
    ha = std::make_unique<HaGlue>(d, ha_opts);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  try {
    d.start();
    ha->start();  // after the rules are back, so health checks see them
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("serving (control {}, {} workers{})", d.control_socket(), d.proxy().worker_count(),
               o.metrics_listen.empty() ? std::string()
                                        : ", metrics http://" + d.metrics_endpoint().str() + "/metrics");
  d.run();
  ha->stop();  // a master hands over (priority-0 advert) before the data plane stops
  d.shutdown();
  return 0;
}
