// vmstack-lb high availability, as one object the daemon owns.
//
// vmstack-lbd does:
//
//   vmstack::lb::ha::HaOptions ha_opts;
//   vmstack::lb::ha::add_ha_options(app, ha_opts);   // CLI11 flags below
//   ... app.parse(argc, argv) ...
//   vmstack::lb::ha::HaRuntime ha(table, ha_opts);   // throws on bad options
//   ha.start();                                       // after rules are restored
//   ... serve; /metrics appends ha.metrics_text() ...
//   ha.stop();                                        // before the table dies
//
// What it runs, each part only when its flags ask for it:
//   * --ldirectord=<cf>: ldirectord-style health checks that add/remove (or
//     quiesce) real servers in the ServiceTable, fallback server, autoreload.
//   * --vrrp-interface + --vrrp-vip: VRRP-style election. Master: VIPs added
//     to the interface (+ gratuitous ARP), table forwarding on, connection
//     sync sent. Backup: VIPs removed, forwarding off, sync received and
//     imported (persistence templates survive a switch).
//   * --start-daemon=master|backup without VRRP: a fixed sync role, like
//     `ipvsadm --start-daemon`; the forwarding gate is left alone. With VRRP
//     it picks the default priority (master 150, backup 100) and the role
//     follows the election.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace vmstack::lb {
class ServiceTable;
}

namespace vmstack::lb::ha {

struct HaOptions {
  // ---- roles ----
  std::string start_daemon;            // "", "master" or "backup"
  // ---- health checks ----
  std::string ldirectord_cf;           // path of an ldirectord.cf ("" = no checks)
  // ---- VRRP ----
  std::string vrrp_interface;          // "" = no VRRP
  std::vector<std::string> vrrp_vips;  // "10.0.0.100/24"
  int vrrp_id = 51;                    // 1..255
  int vrrp_priority = 0;               // 1..255; 0 = by role (master 150, backup 100)
  double vrrp_advert_int = 1.0;        // seconds
  bool vrrp_nopreempt = false;
  std::vector<std::string> vrrp_peers;  // unicast peers; empty = multicast
  std::string vrrp_src;                // source / tie-break address (default: interface's)
  std::string vrrp_mcast_group = "224.0.0.18";
  uint16_t vrrp_port = 5798;
  // ---- connection sync ----
  std::vector<std::string> sync_peers;  // "ip" or "ip:port"; empty = multicast
  std::string sync_mcast_group = "224.0.0.81";
  uint16_t sync_port = 8848;
  std::string sync_interface;          // multicast interface (default: VRRP's)
  int sync_id = 0;                     // --syncid, 0..255
  double sync_full_interval = 5.0;     // seconds between full snapshots

  // Whether any HA part was asked for (the daemon may skip HaRuntime if not).
  bool enabled() const;
};

// Registers --start-daemon, --ldirectord, --vrrp-*, --sync-* on `app`.
void add_ha_options(CLI::App& app, HaOptions& opts);

class HaRuntime {
 public:
  // Validates the options (std::invalid_argument with a message naming the
  // flag) and loads the ldirectord file (ha::ConfigError "file:line: ...").
  // Nothing runs until start(). Logs through spdlog's default logger.
  HaRuntime(ServiceTable& table, const HaOptions& opts);
  ~HaRuntime();  // stop()
  HaRuntime(const HaRuntime&) = delete;
  HaRuntime& operator=(const HaRuntime&) = delete;

  // Starts health checks, sync and VRRP (std::runtime_error when a socket
  // or the interface cannot be set up). stop() is idempotent; a master
  // sends a priority-0 advert so the backup takes over at once.
  void start();
  void stop();

  // "master", "backup", "init" (VRRP state), or the fixed --start-daemon
  // role without VRRP, or "none".
  std::string role() const;

  // Prometheus text exposition lines (with # HELP/# TYPE):
  //   vmstack_lb_ha_vrrp_state{state="master|backup|init"} 0/1
  //   vmstack_lb_ha_vrrp_transitions_total, _adverts_sent_total, _adverts_received_total
  //   vmstack_lb_ha_health_checks_total
  //   vmstack_lb_ha_real_up{virtual="tcp 10.0.0.1:80",real="10.0.1.1:80"} 0/1
  //   vmstack_lb_ha_sync_entries_sent_total, _received_total, _accepted_total
  //   vmstack_lb_ha_sync_templates_imported_total
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmstack::lb::ha
