// ldirectord-style health checking for vmstack-lb.
//
// HealthChecker runs the checks of an LdirectordConfig on one thread with
// non-blocking sockets and poll(): every real server is probed every
// `checkinterval` seconds; a probe is bounded by `checktimeout` (connect) or
// `negotiatetimeout` (negotiate). Results drive a HealthTarget (the service
// table) through a small reconcile step: the checker keeps what it has
// applied and only sends differences, so config reloads, quiescence and the
// fallback server all go through the same path.
//
//   up real                       -> present with its configured weight
//   down real, quiescent=no       -> removed
//   down real, quiescent=yes      -> present but quiesced (weight 0)
//   every real down + fallback=   -> fallback present (removed on recovery)
//   checktype=on                  -> always up;  checktype=off -> never added
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "lb/ldirectord_config.h"

namespace vmstack::lb::ha {

// What the health checker drives. lb-core's ServiceTable satisfies it through
// ServiceTableTarget (health_table_target.h); tests use a fake. Methods are
// called from the checker thread only; they may throw (logged, retried on the
// next change).
class HealthTarget {
 public:
  virtual ~HealthTarget() = default;
  // Create the virtual service, or update scheduler/persistence if present.
  virtual void ensure_virtual(const VirtualService& vs) = 0;
  // Delete the virtual service (config reload dropped it / checker stops).
  virtual void remove_virtual(const VirtualService& vs) = 0;
  // Add the real server, or update it. `quiesced`: keep it but give it no new
  // connections (effective weight 0) - ldirectord's quiescent=yes.
  virtual void set_real(const VirtualService& vs, const HostPort& real, int weight, bool quiesced) = 0;
  virtual void remove_real(const VirtualService& vs, const HostPort& real) = 0;
  // What the target already holds for `real` when the checker first sees
  // the virtual service (a daemon restarted with its saved rules). Such a
  // real is adopted: kept until its first check, removed if that fails.
  struct Present {
    int weight = 0;
    bool quiesced = false;
  };
  virtual std::optional<Present> find_real(const VirtualService&, const HostPort&) { return std::nullopt; }
};

enum class RealStatus { Unknown, Up, Down };
const char* to_string(RealStatus);

struct CheckResult {
  bool ok = false;
  std::string detail;  // "connected", "timeout", "connection refused", ...
};

// One blocking probe (used by the checker's loop and by tests/CLI).
CheckResult check_connect(const HostPort& ep, double timeout_s);
// HTTP check: `method path HTTP/1.0`; the response must be a 2xx/3xx status
// and, if `receive` is non-empty, contain it (plain substring match).
CheckResult check_http(const HostPort& ep, const std::string& host_header, const std::string& method,
                       const std::string& path, const std::string& receive, double timeout_s);

struct HealthEvent {
  std::string virtual_key;  // "tcp 10.0.0.1:80"
  HostPort real;
  bool up = false;
  bool fallback = false;  // the event is about the fallback server
  std::string detail;
};

class HealthChecker {
 public:
  struct Options {
    // File to watch when the config says autoreload=yes (and for reload()).
    std::string config_path;
    // How often the file is looked at for autoreload (mtime/size/content).
    double reload_poll_s = 1.0;
    // State changes (real up/down, fallback in/out). Checker thread.
    std::function<void(const HealthEvent&)> on_event;
    // Remove the virtual services from the target on stop() (ldirectord
    // "stop"). Default keeps them, so a restart does not drop traffic.
    bool remove_on_stop = false;
  };

  HealthChecker(LdirectordConfig cfg, HealthTarget& target, Options opts);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Creates the virtual services, starts the checker thread (first checks
  // run at once). stop() joins it; both idempotent.
  void start();
  void stop();

  // Replace the configuration (applied by the checker thread). Real servers
  // that stay keep their health state.
  void reload(LdirectordConfig cfg);
  // Re-read Options::config_path; on a parse error the old configuration
  // stays and the error is logged. Returns whether a new config was loaded.
  bool reload_from_file();

  struct RealReport {
    std::string virtual_key;
    HostPort real;
    RealStatus status = RealStatus::Unknown;
    bool fallback = false;     // row is the fallback server
    bool present = false;      // currently in the target
    bool quiesced = false;
    int weight = 0;            // weight applied (configured weight)
    std::string last_detail;   // last probe result
  };
  std::vector<RealReport> status() const;
  LdirectordConfig config() const;
  uint64_t rounds() const { return probes_done_.load(); }

 private:
  struct RealState;
  struct VirtState;
  struct Probe;
  void loop();
  void apply_config(LdirectordConfig cfg);     // under mu_
  void reconcile(VirtState& v);                // under mu_
  void adopt(VirtState& v);                    // under mu_
  void finish_probe(Probe& p, bool ok, std::string detail);  // under mu_
  void maybe_autoreload();
  void wake();

  HealthTarget& target_;
  Options opts_;
  mutable std::mutex mu_;
  LdirectordConfig cfg_;
  std::vector<std::unique_ptr<VirtState>> virts_;
  std::unique_ptr<LdirectordConfig> pending_;  // reload() hand-off
  std::vector<std::unique_ptr<Probe>> probes_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> probes_done_{0};
  UniqueFd wake_fd_;  // eventfd: reload()/stop() interrupt poll()
  // autoreload bookkeeping
  std::string last_text_;
  int64_t last_mtime_ns_ = 0;
  int64_t last_size_ = -1;
  double next_reload_poll_ = 0;
};

}  // namespace vmstack::lb::ha
