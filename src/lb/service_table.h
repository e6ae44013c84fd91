// vmstack-lb: the virtual service table (what `ipvsadm -L` shows).
//
// Thread-safety: every public member of ServiceTable may be called from any
// thread. Rule changes take an internal mutex; the data path (schedule,
// counters) uses per-service locks and atomics so it never blocks on the
// control plane for long.
//
// API for the HA side (health checks, VRRP, connection sync), see the
// "HA integration" section below:
//   * health checks:   set_dest_weight (persistent, like `-e -w`),
//                      set_dest_healthy (non-persistent quiesce: effective weight 0),
//                      delete_dest / add_dest (remove / re-add a real server),
//                      has_service / has_dest / list.
//   * connection sync: connections() lists entries (live + templates + imported),
//                      import_connections() stores entries received from a master,
//                      subscribe_connections() is called on every new connection /
//                      state change so a sync master can send updates.
//   * VRRP:            set_forwarding(true|false) starts/stops the data plane
//                      (listeners only run when "master"); subscribe_forwarding().
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lb/types.h"

namespace vmstack::lb {

class Scheduler;

// Relaxed atomic counters (per service and per real server).
struct Counters {
  std::atomic<uint64_t> conns{0}, inpkts{0}, outpkts{0}, inbytes{0}, outbytes{0};
  StatsSnapshot snapshot() const;
  void zero();
};

// Sliding-window rate estimator: sample() once a second, rate over the last
// `window` seconds (LVS uses a 2 s EWMA; we use a plain window, default 10 s).
class RateEstimator {
 public:
  explicit RateEstimator(int window_s = 10) : window_(window_s) {}
  void sample(const StatsSnapshot& s, std::chrono::steady_clock::time_point now);
  RateSnapshot rate() const;
  void reset();

 private:
  struct Sample {
    StatsSnapshot s;
    std::chrono::steady_clock::time_point t;
  };
  int window_;
  std::vector<Sample> ring_;  // oldest first, at most window_+1
  mutable std::mutex mu_;
};

// A real server. Shared by the service (while configured) and by every live
// connection to it (so a deleted destination stays valid until its
// connections finish, like the LVS "trash").
class Destination {
 public:
  explicit Destination(const DestConfig& cfg);

  const Endpoint& addr() const { return addr_; }
  FwdMethod fwd() const { return fwd_; }
  // Configured weight (-w) and the effective one (0 while unhealthy).
  int config_weight() const { return weight_.load(std::memory_order_relaxed); }
  int weight() const { return healthy_.load(std::memory_order_relaxed) ? config_weight() : 0; }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  uint32_t u_threshold() const { return u_threshold_.load(std::memory_order_relaxed); }
  uint32_t l_threshold() const { return l_threshold_.load(std::memory_order_relaxed); }
  bool overloaded() const { return overloaded_.load(std::memory_order_relaxed); }
  // Can take new connections: weight > 0 and not overloaded.
  bool available() const { return weight() > 0 && !overloaded(); }
  DestConfig config() const;

  uint32_t active_conns() const { return active_.load(std::memory_order_relaxed); }
  uint32_t inact_conns() const { return inact_.load(std::memory_order_relaxed); }
  uint32_t persist_conns() const { return persist_.load(std::memory_order_relaxed); }
  uint32_t total_conns() const { return active_conns() + inact_conns(); }

  // Connection accounting (data path). A new connection is active (TCP) or
  // inactive (UDP); TCP moves to inactive on the first FIN.
  void conn_opened(bool active);
  void conn_deactivated();  // active -> inactive
  void conn_closed(bool active);
  void persist_changed(int delta) { persist_.fetch_add(delta, std::memory_order_relaxed); }

  // Test hooks for scripted scheduler workloads.
  void set_counts(uint32_t active, uint32_t inact) {
    active_ = active;
    inact_ = inact;
    update_overload();
  }

  // Replace weight/thresholds (address is fixed). ServiceTable::edit_dest is
  // the locked, scheduler-notifying way; tests use this directly.
  void apply(const DestConfig& cfg);

  Counters stats;
  RateEstimator rate;

 private:
  friend class ServiceTable;
  friend class Service;
  void set_healthy(bool h) { healthy_ = h; }
  void update_overload();

  Endpoint addr_;
  FwdMethod fwd_;
  std::atomic<int> weight_;
  std::atomic<bool> healthy_{true};
  std::atomic<uint32_t> u_threshold_, l_threshold_;
  std::atomic<bool> overloaded_{false};
  std::atomic<uint32_t> active_{0}, inact_{0}, persist_{0};
};
using DestPtr = std::shared_ptr<Destination>;

struct DestInfo {
  DestConfig cfg;           // weight = configured weight
  int effective_weight = 0; // what -L shows (0 while health-quiesced)
  bool healthy = true;
  uint32_t activeconns = 0, inactconns = 0, persistconns = 0;
  bool overloaded = false;
  StatsSnapshot stats;
  RateSnapshot rate;
};

struct ServiceInfo {
  ServiceConfig cfg;
  std::vector<DestInfo> dests;
  StatsSnapshot stats;
  RateSnapshot rate;
};

// A virtual service: config, real servers, scheduler, persistence templates.
class Service {
 public:
  explicit Service(const ServiceConfig& cfg);
  ~Service();

  ServiceKey key() const { return key_; }
  ServiceConfig config() const;

  // Pick a real server for a new connection from `client` (data path).
  // Honours persistence templates. Returns nullptr when no server is
  // available. `persistent_out` is set when a template was used/created;
  // the caller must then call release_persist(client) when the connection ends.
  DestPtr schedule(const Endpoint& client, bool* persistent_out = nullptr);
  void release_persist(const Endpoint& client);

  std::vector<DestPtr> dests() const;
  std::vector<ConnEntry> templates() const;
  void expire_templates();

  Counters stats;
  RateEstimator rate;

 private:
  friend class ServiceTable;
  struct Template {
    DestPtr dest;
    std::chrono::steady_clock::time_point last_used;
    uint32_t refs = 0;  // live connections controlled by this template
  };
  Addr persist_key(const Addr& client) const;

  ServiceKey key_;
  mutable std::mutex mu_;  // guards everything below
  ServiceConfig cfg_;
  std::vector<DestPtr> dests_;
  std::unique_ptr<Scheduler> sched_;
  std::map<Addr, Template> templates_;
};
using ServicePtr = std::shared_ptr<Service>;

class ServiceTable {
 public:
  ServiceTable();
  ~ServiceTable();
  ServiceTable(const ServiceTable&) = delete;
  ServiceTable& operator=(const ServiceTable&) = delete;

  // ---- rules (ipvsadm -A/-E/-D/-a/-e/-d/-C/-Z/--set); throw LbError ----
  void add_service(const ServiceConfig& cfg);
  void edit_service(const ServiceConfig& cfg);
  void delete_service(const ServiceKey& key);
  void clear();
  void add_dest(const ServiceKey& svc, const DestConfig& d);
  void edit_dest(const ServiceKey& svc, const DestConfig& d);
  void delete_dest(const ServiceKey& svc, const Endpoint& dest);
  void zero(const std::optional<ServiceKey>& svc = std::nullopt);
  void set_timeouts(const Timeouts& t);
  Timeouts timeouts() const;

  // ---- queries ----
  std::vector<ServiceInfo> list() const;  // sorted by (proto, vip)
  std::optional<ServiceInfo> get(const ServiceKey& key) const;
  bool has_service(const ServiceKey& key) const;
  bool has_dest(const ServiceKey& svc, const Endpoint& dest) const;
  ServicePtr find(const ServiceKey& key) const;  // data path handle
  std::vector<ServicePtr> services() const;

  // ---- HA integration: health checks ----
  // Persistent weight change (same as `ipvsadm -e ... -w w`; weight 0 = quiesce).
  void set_dest_weight(const ServiceKey& svc, const Endpoint& dest, int weight);
  // Non-persistent health override: an unhealthy destination keeps its
  // configured weight in the rules/state file but schedules as weight 0
  // (ldirectord "quiescent=yes"). Throws LbError when missing.
  void set_dest_healthy(const ServiceKey& svc, const Endpoint& dest, bool healthy);

  // ---- HA integration: connection sync ----
  // Live connections (from the registered source), persistence templates and
  // imported entries (not yet expired).
  std::vector<ConnEntry> connections() const;
  // Store entries received from a sync master. Templates become real
  // persistence templates (so a failover keeps client affinity); other
  // entries are kept for display (`-L -c`, synced=true) until they expire.
  // Entries for unknown services/destinations are ignored. Returns how many
  // were accepted.
  size_t import_connections(const std::vector<ConnEntry>& entries);
  using ConnListener = std::function<void(const ConnEntry&)>;
  // Called from data-path threads on new connections and state changes:
  // keep it short and non-blocking (queue and return).
  int subscribe_connections(ConnListener fn);
  // The data plane registers how to list live connections.
  void set_connection_source(std::function<std::vector<ConnEntry>()> src);
  void notify_connection(const ConnEntry& e);  // data plane -> listeners
  // Cheap check so the data plane builds ConnEntry values only when a sync
  // master listens.
  bool has_connection_subscribers() const {
    return have_conn_subs_.load(std::memory_order_relaxed);
  }

  // ---- HA integration: master/backup gate ----
  // true (default): the data plane forwards (listeners open). false: backup,
  // listeners closed. Listeners are called (outside locks) on change.
  void set_forwarding(bool on);
  bool forwarding() const;
  int subscribe_forwarding(std::function<void(bool)> fn);

  // Rule changes (add/edit/delete/clear/restore/set). Called outside locks.
  int subscribe_changes(std::function<void()> fn);
  void unsubscribe(int id);

  // Housekeeping, called about once a second by the daemon: rate samples,
  // template / imported entry expiry.
  void tick();

 private:
  void fire_changed();
  ServicePtr must_find(const ServiceKey& key, LbError::Code missing) const;

  mutable std::mutex mu_;
  std::map<ServiceKey, ServicePtr> services_;
  Timeouts timeouts_;
  std::atomic<bool> forwarding_{true};

  struct Imported {
    ConnEntry e;
    std::chrono::steady_clock::time_point expires;
  };
  mutable std::mutex imp_mu_;
  std::vector<Imported> imported_;

  mutable std::mutex sub_mu_;
  int next_id_ = 1;
  std::map<int, std::function<void()>> change_subs_;
  std::map<int, std::function<void(bool)>> fwd_subs_;
  std::map<int, ConnListener> conn_subs_;
  std::atomic<bool> have_conn_subs_{false};
  std::function<std::vector<ConnEntry>()> conn_source_;
};

}  // namespace vmstack::lb
