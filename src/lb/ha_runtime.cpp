#include "lb/ha_runtime.h"

#include <arpa/inet.h>

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "lb/health_checker.h"
#include "lb/health_table_target.h"
#include "lb/ldirectord_config.h"
#include "lb/service_table.h"
#include "lb/sync.h"
#include "lb/vrrp_node.h"

namespace vmstack::lb::ha {

namespace {

constexpr int kMasterDefaultPriority = 150;
constexpr int kBackupDefaultPriority = 100;

[[noreturn]] void bad(const std::string& flag, const std::string& msg) {
  throw std::invalid_argument(flag + ": " + msg);
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

// "a.b.c.d" or "a.b.c.d/len" with 0 < len <= 32.
void check_cidr(const std::string& flag, const std::string& v) {
  auto slash = v.find('/');
  if (!is_ipv4(v.substr(0, slash))) bad(flag, "not an IPv4 address: '" + v + "'");
  if (slash == std::string::npos) return;
  std::string len = v.substr(slash + 1);
  char* end = nullptr;
  long n = len.empty() ? -1 : std::strtol(len.c_str(), &end, 10);
  if (len.empty() || *end != '\0' || n < 1 || n > 32) bad(flag, "invalid prefix length in '" + v + "'");
}

// "a.b.c.d" or "a.b.c.d:port".
void check_peer(const std::string& flag, const std::string& v) {
  auto colon = v.find(':');
  if (!is_ipv4(v.substr(0, colon))) bad(flag, "not an IPv4 address: '" + v + "'");
  if (colon == std::string::npos) return;
  std::string p = v.substr(colon + 1);
  char* end = nullptr;
  long n = p.empty() ? -1 : std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || n < 1 || n > 65535) bad(flag, "invalid port in '" + v + "'");
}

bool is_multicast(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 28) == 0xe;
}

std::string prom_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

std::string lower_state(VrrpState s) {
  switch (s) {
    case VrrpState::Init: return "init";
    case VrrpState::Backup: return "backup";
    case VrrpState::Master: return "master";
  }
  return "init";
}

}  // namespace

bool HaOptions::enabled() const {
  return !start_daemon.empty() || !ldirectord_cf.empty() || !vrrp_interface.empty() || !sync_peers.empty();
}

void add_ha_options(CLI::App& app, HaOptions& o) {
  auto* g = app.add_option_group("High availability", "health checks, VRRP failover, connection sync");
  g->add_option("--start-daemon", o.start_daemon,
                "connection sync role like ipvsadm --start-daemon (master|backup); with VRRP it "
                "sets the default priority and the role follows the election")
      ->check(CLI::IsMember({"master", "backup"}));
  g->add_option("--ldirectord", o.ldirectord_cf, "ldirectord.cf-style health check configuration");
  g->add_option("--vrrp-interface", o.vrrp_interface, "interface for the virtual IPs (enables VRRP)");
  g->add_option("--vrrp-vip", o.vrrp_vips, "virtual IP addr/prefix held by the master (repeatable)")
      ->allow_extra_args(false);
  g->add_option("--vrrp-id", o.vrrp_id, "virtual router id 1..255")->capture_default_str();
  g->add_option("--vrrp-priority", o.vrrp_priority,
                "priority 1..255 (default: 150 with --start-daemon=master, else 100)");
  g->add_option("--vrrp-advert-int", o.vrrp_advert_int, "advertisement interval, seconds")
      ->capture_default_str();
  g->add_flag("--vrrp-nopreempt", o.vrrp_nopreempt, "a higher priority backup does not take over a live master");
  g->add_option("--vrrp-peer", o.vrrp_peers, "unicast peer address (repeatable; default multicast)")
      ->allow_extra_args(false);
  g->add_option("--vrrp-src", o.vrrp_src, "our address for adverts and tie-breaks (default: interface's)");
  g->add_option("--vrrp-mcast-group", o.vrrp_mcast_group, "multicast group for adverts")->capture_default_str();
  g->add_option("--vrrp-port", o.vrrp_port, "UDP port for adverts")->capture_default_str();
  g->add_option("--sync-peer", o.sync_peers, "unicast connection sync peer ip[:port] (repeatable)")
      ->allow_extra_args(false);
  g->add_option("--sync-port", o.sync_port, "UDP port for connection sync")->capture_default_str();
  g->add_option("--sync-mcast-group", o.sync_mcast_group, "multicast group for connection sync")
      ->capture_default_str();
  g->add_option("--sync-interface", o.sync_interface, "multicast interface for connection sync");
  g->add_option("--sync-id,--syncid", o.sync_id, "sync id 0..255; master and backup must agree")
      ->capture_default_str();
  g->add_option("--sync-full-interval", o.sync_full_interval, "seconds between full sync snapshots")
      ->capture_default_str();
}

struct HaRuntime::Impl {
  ServiceTable& table;
  HaOptions opts;

  bool vrrp_on = false;
  bool sync_on = false;
  std::optional<LdirectordConfig> ldcfg;
  ServiceTableTarget target;
  std::unique_ptr<HealthChecker> checker;
  std::unique_ptr<VrrpNode> vrrp;
  std::unique_ptr<SyncMaster> sync_master;
  std::unique_ptr<SyncBackup> sync_backup;
  int conn_sub = 0;
  mutable std::mutex run_mu;  // start/stop vs. the readers below
  bool running = false;
  // What the forwarding/sync gate currently says (VRRP master or fixed role).
  std::atomic<bool> master{false};
  std::atomic<uint64_t> transitions{0};
  std::atomic<uint64_t> health_events{0};
  std::atomic<uint64_t> templates_imported{0};

  Impl(ServiceTable& t, const HaOptions& o) : table(t), opts(o), target(t) {
    validate();
    if (!opts.ldirectord_cf.empty()) {
      ldcfg = load_ldirectord_config(opts.ldirectord_cf);  // ConfigError "file:line: ..."
    }
  }

  void validate() {
    const auto& o = opts;
    if (!o.start_daemon.empty() && o.start_daemon != "master" && o.start_daemon != "backup")
      bad("--start-daemon", "expected master or backup, got '" + o.start_daemon + "'");
    vrrp_on = !o.vrrp_interface.empty();
    if (!vrrp_on) {
      if (!o.vrrp_vips.empty()) bad("--vrrp-vip", "needs --vrrp-interface");
      if (!o.vrrp_peers.empty()) bad("--vrrp-peer", "needs --vrrp-interface");
    } else {
      if (o.vrrp_vips.empty()) bad("--vrrp-interface", "needs at least one --vrrp-vip");
      for (const auto& v : o.vrrp_vips) check_cidr("--vrrp-vip", v);
      for (const auto& p : o.vrrp_peers)
        if (!is_ipv4(p)) bad("--vrrp-peer", "not an IPv4 address: '" + p + "'");
      if (!o.vrrp_src.empty() && !is_ipv4(o.vrrp_src)) bad("--vrrp-src", "not an IPv4 address: '" + o.vrrp_src + "'");
      if (o.vrrp_peers.empty() && !is_multicast(o.vrrp_mcast_group))
        bad("--vrrp-mcast-group", "not an IPv4 multicast address: '" + o.vrrp_mcast_group + "'");
    }
    if (o.vrrp_id < 1 || o.vrrp_id > 255) bad("--vrrp-id", "must be 1..255");
    if (o.vrrp_priority < 0 || o.vrrp_priority > 255) bad("--vrrp-priority", "must be 1..255");
    if (!(o.vrrp_advert_int >= 0.01 && o.vrrp_advert_int <= 40.95))
      bad("--vrrp-advert-int", "must be 0.01..40.95 seconds");
    if (o.vrrp_port == 0) bad("--vrrp-port", "must be 1..65535");
    for (const auto& p : o.sync_peers) check_peer("--sync-peer", p);
    if (o.sync_id < 0 || o.sync_id > 255) bad("--sync-id", "must be 0..255");
    if (o.sync_port == 0) bad("--sync-port", "must be 1..65535");
    if (!(o.sync_full_interval >= 0 && o.sync_full_interval <= 3600))
      bad("--sync-full-interval", "must be 0..3600 seconds");
    sync_on = !o.start_daemon.empty() || !o.sync_peers.empty();
    if (sync_on && o.sync_peers.empty() && !is_multicast(o.sync_mcast_group))
      bad("--sync-mcast-group", "not an IPv4 multicast address: '" + o.sync_mcast_group + "'");
    if (!vrrp_on && !o.sync_peers.empty() && o.start_daemon.empty())
      bad("--sync-peer", "needs --start-daemon=master|backup or VRRP to know which way to sync");
  }

  int priority() const {
    if (opts.vrrp_priority > 0) return opts.vrrp_priority;
    return opts.start_daemon == "master" ? kMasterDefaultPriority : kBackupDefaultPriority;
  }

  SyncConfig sync_config() const {
    SyncConfig c;
    c.sync_id = static_cast<uint8_t>(opts.sync_id);
    c.mcast_group = opts.sync_mcast_group;
    c.port = opts.sync_port;
    c.interface = opts.sync_interface.empty() ? opts.vrrp_interface : opts.sync_interface;
    c.peers = opts.sync_peers;
    c.full_sync_interval_s = opts.sync_full_interval;
    return c;
  }

  // VRRP thread: the node has already added the VIPs (to Master) or is
  // about to remove them (from Master).
  void on_vrrp(VrrpState from, VrrpState to) {
    transitions.fetch_add(1);
    bool m = to == VrrpState::Master;
    master = m;
    spdlog::info("ha: VRRP {} -> {}: forwarding {}", to_string(from), to_string(to), m ? "on" : "off");
    table.set_forwarding(m);
    // A new master pushes everything it knows at once, so a backup that
    // just lost the election (or started late) is current.
    if (m && sync_master) sync_master->sync_now();
  }

  void start() {
    std::lock_guard lk(run_mu);
    if (running) return;
    try {
      start_parts();
    } catch (...) {
      stop_parts();
      throw;
    }
    running = true;
  }

  void start_parts() {
    if (ldcfg) {
      HealthChecker::Options ho;
      // Watched only when the file says autoreload=yes.
      ho.config_path = opts.ldirectord_cf;
      ho.on_event = [this](const HealthEvent&) { health_events.fetch_add(1); };
      checker = std::make_unique<HealthChecker>(*ldcfg, target, ho);
      checker->start();
    }
    if (sync_on) {
      bool send = vrrp_on || opts.start_daemon == "master";
      bool recv = vrrp_on || opts.start_daemon == "backup";
      if (send) {
        sync_master = std::make_unique<SyncMaster>(sync_config(), [this] {
          // Only the active master speaks; a VRRP backup keeps its sender idle.
          return master.load() ? table.connections() : std::vector<ConnEntry>{};
        });
        sync_master->start();
        conn_sub = table.subscribe_connections([this](const ConnEntry& e) {
          if (master.load(std::memory_order_relaxed)) sync_master->push(e);
        });
      }
      if (recv) {
        sync_backup = std::make_unique<SyncBackup>(sync_config(), [this](const std::vector<ConnEntry>& v) {
          // A master ignores what it hears (its own multicast echo, or a
          // stale ex-master): its table is the source of truth.
          if (vrrp_on && master.load()) return size_t{0};
          // Templates are what keeps a client on its real server after a
          // switch: count them on their own so operators (and tests) can
          // see that persistence has reached the backup.
          std::vector<ConnEntry> tmpl, conns;
          for (const auto& e : v) (e.is_template ? tmpl : conns).push_back(e);
          size_t t = tmpl.empty() ? 0 : table.import_connections(tmpl);
          templates_imported.fetch_add(t);
          return t + (conns.empty() ? 0 : table.import_connections(conns));
        });
        sync_backup->start();
      }
    }
    if (vrrp_on) {
      VrrpNodeConfig vc;
      vc.interface = opts.vrrp_interface;
      vc.vrid = static_cast<uint8_t>(opts.vrrp_id);
      vc.priority = static_cast<uint8_t>(priority());
      vc.advert_int_s = opts.vrrp_advert_int;
      vc.preempt = !opts.vrrp_nopreempt;
      vc.vips = opts.vrrp_vips;
      vc.unicast_peers = opts.vrrp_peers;
      vc.mcast_group = opts.vrrp_mcast_group;
      vc.port = opts.vrrp_port;
      vc.src_addr = opts.vrrp_src;
      VrrpNode::Callbacks cb;
      cb.on_state = [this](VrrpState f, VrrpState t) { on_vrrp(f, t); };
      // Until elected we are a backup: the data plane must not answer for
      // an address that another node may hold.
      master = false;
      table.set_forwarding(false);
      vrrp = std::make_unique<VrrpNode>(vc, cb);
      vrrp->start();
    } else if (!opts.start_daemon.empty()) {
      master = opts.start_daemon == "master";
      spdlog::info("ha: connection sync {} (no VRRP: forwarding left on)", opts.start_daemon);
    }
  }

  void stop_parts() {
    if (vrrp) {
      vrrp->stop(true);  // priority 0 advert: the backup takes over after Skew_Time
      vrrp.reset();
    }
    if (conn_sub) {
      table.unsubscribe(conn_sub);
      conn_sub = 0;
    }
    if (sync_master) sync_master->stop();
    if (sync_backup) sync_backup->stop();
    if (checker) checker->stop();
  }

  void stop() {
    std::lock_guard lk(run_mu);
    if (!running) return;
    running = false;
    stop_parts();
  }

  std::string role() const {
    std::lock_guard lk(run_mu);
    if (vrrp) return lower_state(vrrp->state());
    if (vrrp_on) return "init";
    if (!opts.start_daemon.empty()) return opts.start_daemon;
    return "none";
  }

  std::string metrics() const {
    std::lock_guard lk(run_mu);
    std::ostringstream o;
    if (vrrp_on) {
      VrrpState st = vrrp ? vrrp->state() : VrrpState::Init;
      o << "# HELP vmstack_lb_ha_vrrp_state VRRP state of this node (1 = current).\n"
        << "# TYPE vmstack_lb_ha_vrrp_state gauge\n";
      for (auto s : {VrrpState::Init, VrrpState::Backup, VrrpState::Master})
        o << "vmstack_lb_ha_vrrp_state{state=\"" << lower_state(s) << "\"} " << (s == st ? 1 : 0) << "\n";
      o << "# HELP vmstack_lb_ha_vrrp_priority Configured VRRP priority.\n"
        << "# TYPE vmstack_lb_ha_vrrp_priority gauge\n"
        << "vmstack_lb_ha_vrrp_priority " << priority() << "\n";
      o << "# HELP vmstack_lb_ha_vrrp_transitions_total VRRP state changes.\n"
        << "# TYPE vmstack_lb_ha_vrrp_transitions_total counter\n"
        << "vmstack_lb_ha_vrrp_transitions_total " << transitions.load() << "\n";
      o << "# HELP vmstack_lb_ha_vrrp_adverts_sent_total VRRP advertisements sent.\n"
        << "# TYPE vmstack_lb_ha_vrrp_adverts_sent_total counter\n"
        << "vmstack_lb_ha_vrrp_adverts_sent_total " << (vrrp ? vrrp->adverts_sent() : 0) << "\n";
      o << "# HELP vmstack_lb_ha_vrrp_adverts_received_total Valid VRRP advertisements received.\n"
        << "# TYPE vmstack_lb_ha_vrrp_adverts_received_total counter\n"
        << "vmstack_lb_ha_vrrp_adverts_received_total " << (vrrp ? vrrp->adverts_received() : 0) << "\n";
    }
    if (checker) {
      o << "# HELP vmstack_lb_ha_health_checks_total Health probes completed.\n"
        << "# TYPE vmstack_lb_ha_health_checks_total counter\n"
        << "vmstack_lb_ha_health_checks_total " << checker->rounds() << "\n";
      o << "# HELP vmstack_lb_ha_health_transitions_total Real server up/down and fallback changes.\n"
        << "# TYPE vmstack_lb_ha_health_transitions_total counter\n"
        << "vmstack_lb_ha_health_transitions_total " << health_events.load() << "\n";
      o << "# HELP vmstack_lb_ha_real_up Health of a real server (1 up, 0 down or unknown).\n"
        << "# TYPE vmstack_lb_ha_real_up gauge\n";
      for (const auto& r : checker->status()) {
        o << "vmstack_lb_ha_real_up{virtual=\"" << prom_escape(r.virtual_key) << "\",real=\""
          << prom_escape(r.real.str()) << "\"" << (r.fallback ? ",fallback=\"1\"" : "") << "} "
          << (r.status == RealStatus::Up ? 1 : 0) << "\n";
      }
    }
    if (sync_master || sync_backup) {
      o << "# HELP vmstack_lb_ha_sync_entries_sent_total Connection entries sent to the backup.\n"
        << "# TYPE vmstack_lb_ha_sync_entries_sent_total counter\n"
        << "vmstack_lb_ha_sync_entries_sent_total " << (sync_master ? sync_master->entries_sent() : 0) << "\n";
      o << "# HELP vmstack_lb_ha_sync_entries_received_total Connection entries received from a master.\n"
        << "# TYPE vmstack_lb_ha_sync_entries_received_total counter\n"
        << "vmstack_lb_ha_sync_entries_received_total "
        << (sync_backup ? sync_backup->entries_received() : 0) << "\n";
      o << "# HELP vmstack_lb_ha_sync_entries_accepted_total Received entries imported into the table.\n"
        << "# TYPE vmstack_lb_ha_sync_entries_accepted_total counter\n"
        << "vmstack_lb_ha_sync_entries_accepted_total "
        << (sync_backup ? sync_backup->entries_accepted() : 0) << "\n";
      o << "# HELP vmstack_lb_ha_sync_templates_imported_total Persistence templates imported from a master.\n"
        << "# TYPE vmstack_lb_ha_sync_templates_imported_total counter\n"
        << "vmstack_lb_ha_sync_templates_imported_total " << templates_imported.load() << "\n";
    }
    return o.str();
  }
};

HaRuntime::HaRuntime(ServiceTable& table, const HaOptions& opts)
    : impl_(std::make_unique<Impl>(table, opts)) {}

HaRuntime::~HaRuntime() { stop(); }

void HaRuntime::start() { impl_->start(); }
void HaRuntime::stop() { impl_->stop(); }
std::string HaRuntime::role() const { return impl_->role(); }
std::string HaRuntime::metrics_text() const { return impl_->metrics(); }

}  // namespace vmstack::lb::ha
