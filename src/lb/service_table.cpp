#include "lb/service_table.h"

#include <algorithm>

#include "lb/scheduler.h"

namespace vmstack::lb {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------ Counters
StatsSnapshot Counters::snapshot() const {
  StatsSnapshot s;
  s.conns = conns.load(std::memory_order_relaxed);
  s.inpkts = inpkts.load(std::memory_order_relaxed);
  s.outpkts = outpkts.load(std::memory_order_relaxed);
  s.inbytes = inbytes.load(std::memory_order_relaxed);
  s.outbytes = outbytes.load(std::memory_order_relaxed);
  return s;
}

void Counters::zero() {
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;
}

// ------------------------------------------------------------ RateEstimator
void RateEstimator::sample(const StatsSnapshot& s, Clock::time_point now) {
  std::lock_guard lk(mu_);
  ring_.push_back({s, now});
  while (ring_.size() > size_t(window_) + 1) ring_.erase(ring_.begin());
}

RateSnapshot RateEstimator::rate() const {
  std::lock_guard lk(mu_);
  RateSnapshot r;
  if (ring_.size() < 2) return r;
  const auto& a = ring_.front();
  const auto& b = ring_.back();
  double dt = std::chrono::duration<double>(b.t - a.t).count();
  if (dt <= 0) return r;
  auto d = [&](uint64_t x, uint64_t y) { return y >= x ? double(y - x) / dt : 0.0; };
  r.cps = d(a.s.conns, b.s.conns);
  r.inpps = d(a.s.inpkts, b.s.inpkts);
  r.outpps = d(a.s.outpkts, b.s.outpkts);
  r.inbps = d(a.s.inbytes, b.s.inbytes);
  r.outbps = d(a.s.outbytes, b.s.outbytes);
  return r;
}

void RateEstimator::reset() {
  std::lock_guard lk(mu_);
  ring_.clear();
}

// ------------------------------------------------------------ Destination
Destination::Destination(const DestConfig& cfg)
    : addr_(cfg.addr),
      fwd_(cfg.fwd),
      weight_(cfg.weight),
      u_threshold_(cfg.u_threshold),
      l_threshold_(cfg.l_threshold) {}

DestConfig Destination::config() const {
  DestConfig c;
  c.addr = addr_;
  c.fwd = fwd_;
  c.weight = config_weight();
  c.u_threshold = u_threshold();
  c.l_threshold = l_threshold();
  return c;
}

void Destination::apply(const DestConfig& cfg) {
  fwd_ = cfg.fwd;
  weight_ = cfg.weight;
  u_threshold_ = cfg.u_threshold;
  l_threshold_ = cfg.l_threshold;
  update_overload();
}

// LVS threshold rule: set the overloaded flag when active+inactive reaches
// the upper threshold; clear it below the lower threshold, or below 3/4 of
// the upper one when no lower threshold is set.
void Destination::update_overload() {
  uint32_t u = u_threshold(), l = l_threshold(), total = total_conns();
  if (u != 0 && total >= u) {
    overloaded_ = true;
    return;
  }
  if (l != 0) {
    if (total < l) overloaded_ = false;
  } else if (u != 0) {
    if (uint64_t(total) * 4 < uint64_t(u) * 3) overloaded_ = false;
  } else {
    overloaded_ = false;
  }
}

void Destination::conn_opened(bool active) {
  (active ? active_ : inact_).fetch_add(1, std::memory_order_relaxed);
  uint32_t u = u_threshold();
  if (u != 0 && total_conns() >= u) overloaded_.store(true, std::memory_order_relaxed);
}

void Destination::conn_deactivated() {
  active_.fetch_sub(1, std::memory_order_relaxed);
  inact_.fetch_add(1, std::memory_order_relaxed);
}

void Destination::conn_closed(bool active) {
  (active ? active_ : inact_).fetch_sub(1, std::memory_order_relaxed);
  if (overloaded()) update_overload();
}

// ------------------------------------------------------------ Service
Service::Service(const ServiceConfig& cfg) : key_(cfg.key), cfg_(cfg) {
  sched_ = make_scheduler(cfg.scheduler);
  if (!sched_) throw LbError(LbError::Code::NoScheduler);
}

Service::~Service() = default;

ServiceConfig Service::config() const {
  std::lock_guard lk(mu_);
  return cfg_;
}

std::vector<DestPtr> Service::dests() const {
  std::lock_guard lk(mu_);
  return dests_;
}

Addr Service::persist_key(const Addr& client) const {
  return client.masked(cfg_.netmask, cfg_.v6_prefix);
}

DestPtr Service::schedule(const Endpoint& client, bool* persistent_out) {
  std::lock_guard lk(mu_);
  auto now = Clock::now();
  if (persistent_out) *persistent_out = false;
  SchedInput in{client.addr, key_.vip.addr, now};
  if (!cfg_.persistent) return sched_->schedule(dests_, in);

  Addr k = persist_key(client.addr);
  auto it = templates_.find(k);
  if (it != templates_.end()) {
    Template& t = it->second;
    bool alive = t.refs > 0 || now - t.last_used <= std::chrono::seconds(cfg_.timeout);
    bool present = std::find(dests_.begin(), dests_.end(), t.dest) != dests_.end();
    // A template keeps sending the client to its server even when the server
    // is quiesced (weight 0), as LVS does; a removed server drops it.
    if (alive && present) {
      t.last_used = now;
      ++t.refs;
      if (persistent_out) *persistent_out = true;
      return t.dest;
    }
    t.dest->persist_changed(-1);
    templates_.erase(it);
  }
  DestPtr d = sched_->schedule(dests_, in);
  if (!d) return nullptr;
  templates_[k] = Template{d, now, 1};
  d->persist_changed(+1);
  if (persistent_out) *persistent_out = true;
  return d;
}

void Service::release_persist(const Endpoint& client) {
  std::lock_guard lk(mu_);
  auto it = templates_.find(persist_key(client.addr));
  if (it == templates_.end()) return;
  if (it->second.refs > 0) --it->second.refs;
  it->second.last_used = Clock::now();
}

std::vector<ConnEntry> Service::templates() const {
  std::lock_guard lk(mu_);
  std::vector<ConnEntry> out;
  auto now = Clock::now();
  for (const auto& [addr, t] : templates_) {
    ConnEntry e;
    e.proto = key_.proto;
    e.client = Endpoint{addr, 0};
    e.vip = key_.vip;
    e.dest = t.dest->addr();
    e.state = "NONE";
    e.is_template = true;
    auto left = std::chrono::seconds(cfg_.timeout) - (now - t.last_used);
    if (t.refs > 0) left = std::chrono::seconds(cfg_.timeout);
    e.expires_ms = left.count() > 0
                       ? uint32_t(std::chrono::duration_cast<std::chrono::milliseconds>(left).count())
                       : 0;
    out.push_back(e);
  }
  return out;
}

void Service::expire_templates() {
  std::lock_guard lk(mu_);
  auto now = Clock::now();
  for (auto it = templates_.begin(); it != templates_.end();) {
    const Template& t = it->second;
    if (t.refs == 0 && now - t.last_used > std::chrono::seconds(cfg_.timeout)) {
      t.dest->persist_changed(-1);
      it = templates_.erase(it);
    } else {
      ++it;
    }
  }
}

// ------------------------------------------------------------ ServiceTable
ServiceTable::ServiceTable() = default;
ServiceTable::~ServiceTable() = default;

ServicePtr ServiceTable::must_find(const ServiceKey& key, LbError::Code missing) const {
  auto it = services_.find(key);
  if (it == services_.end()) throw LbError(missing);
  return it->second;
}

static void validate_service(const ServiceConfig& cfg) {
  if (!is_known_scheduler(cfg.scheduler)) throw LbError(LbError::Code::NoScheduler);
  if (cfg.key.vip.port == 0)
    throw LbError(LbError::Code::Invalid,
                  "Invalid operation: port 0 (all ports) services need kernel IPVS");
}

static void validate_dest(const ServiceConfig& svc, const DestConfig& d) {
  if (d.fwd == FwdMethod::Route)
    throw LbError(LbError::Code::NeedsKernel,
                  "Direct routing (-g) needs kernel IPVS: vmstack-lb forwards in user space "
                  "and only does NAT (-m)");
  if (d.fwd == FwdMethod::Tunnel)
    throw LbError(LbError::Code::NeedsKernel,
                  "IP tunneling (-i) needs kernel IPVS: vmstack-lb forwards in user space "
                  "and only does NAT (-m)");
  if (d.weight < 0) throw LbError(LbError::Code::Invalid, "Invalid weight: must be >= 0");
  if (d.u_threshold != 0 && d.l_threshold > d.u_threshold)
    throw LbError(LbError::Code::Invalid,
                  "Illegal lower threshold: must not exceed the upper threshold");
  if (d.addr.addr.family != svc.key.vip.addr.family)
    throw LbError(LbError::Code::Invalid,
                  "Invalid operation: real server and virtual service address families differ");
}

void ServiceTable::add_service(const ServiceConfig& cfg) {
  validate_service(cfg);
  {
    std::lock_guard lk(mu_);
    if (services_.count(cfg.key)) throw LbError(LbError::Code::ServiceExists);
    services_[cfg.key] = std::make_shared<Service>(cfg);
  }
  fire_changed();
}

void ServiceTable::edit_service(const ServiceConfig& cfg) {
  {
    std::lock_guard lk(mu_);
    ServicePtr s = must_find(cfg.key, LbError::Code::NoService);
    validate_service(cfg);
    std::lock_guard sl(s->mu_);
    if (cfg.scheduler != s->cfg_.scheduler) {
      s->sched_ = make_scheduler(cfg.scheduler);
      s->sched_->update(s->dests_);
    }
    if (!cfg.persistent) {
      for (auto& [a, t] : s->templates_) t.dest->persist_changed(-1);
      s->templates_.clear();
    }
    s->cfg_ = cfg;
  }
  fire_changed();
}

void ServiceTable::delete_service(const ServiceKey& key) {
  {
    std::lock_guard lk(mu_);
    must_find(key, LbError::Code::NoService);
    services_.erase(key);
  }
  fire_changed();
}

void ServiceTable::clear() {
  {
    std::lock_guard lk(mu_);
    services_.clear();
  }
  fire_changed();
}

void ServiceTable::add_dest(const ServiceKey& key, const DestConfig& d) {
  {
    std::lock_guard lk(mu_);
    ServicePtr s = must_find(key, LbError::Code::ServiceNotDefined);
    std::lock_guard sl(s->mu_);
    validate_dest(s->cfg_, d);
    for (auto& x : s->dests_)
      if (x->addr() == d.addr) throw LbError(LbError::Code::DestExists);
    s->dests_.push_back(std::make_shared<Destination>(d));
    s->sched_->update(s->dests_);
  }
  fire_changed();
}

void ServiceTable::edit_dest(const ServiceKey& key, const DestConfig& d) {
  {
    std::lock_guard lk(mu_);
    ServicePtr s = must_find(key, LbError::Code::ServiceNotDefined);
    std::lock_guard sl(s->mu_);
    validate_dest(s->cfg_, d);
    auto it = std::find_if(s->dests_.begin(), s->dests_.end(),
                           [&](const DestPtr& x) { return x->addr() == d.addr; });
    if (it == s->dests_.end()) throw LbError(LbError::Code::NoDest);
    (*it)->apply(d);
    s->sched_->update(s->dests_);
  }
  fire_changed();
}

void ServiceTable::delete_dest(const ServiceKey& key, const Endpoint& dest) {
  {
    std::lock_guard lk(mu_);
    ServicePtr s = must_find(key, LbError::Code::ServiceNotDefined);
    std::lock_guard sl(s->mu_);
    auto it = std::find_if(s->dests_.begin(), s->dests_.end(),
                           [&](const DestPtr& x) { return x->addr() == dest; });
    if (it == s->dests_.end()) throw LbError(LbError::Code::NoDest);
    DestPtr gone = *it;
    s->dests_.erase(it);
    for (auto t = s->templates_.begin(); t != s->templates_.end();) {
      if (t->second.dest == gone) {
        gone->persist_changed(-1);
        t = s->templates_.erase(t);
      } else {
        ++t;
      }
    }
    s->sched_->update(s->dests_);
  }
  fire_changed();
}

void ServiceTable::set_dest_weight(const ServiceKey& key, const Endpoint& dest, int weight) {
  {
    std::lock_guard lk(mu_);
    ServicePtr s = must_find(key, LbError::Code::ServiceNotDefined);
    std::lock_guard sl(s->mu_);
    if (weight < 0) throw LbError(LbError::Code::Invalid, "Invalid weight: must be >= 0");
    auto it = std::find_if(s->dests_.begin(), s->dests_.end(),
                           [&](const DestPtr& x) { return x->addr() == dest; });
    if (it == s->dests_.end()) throw LbError(LbError::Code::NoDest);
    (*it)->weight_ = weight;
    s->sched_->update(s->dests_);
  }
  fire_changed();
}

void ServiceTable::set_dest_healthy(const ServiceKey& key, const Endpoint& dest, bool healthy) {
  std::lock_guard lk(mu_);
  ServicePtr s = must_find(key, LbError::Code::ServiceNotDefined);
  std::lock_guard sl(s->mu_);
  auto it = std::find_if(s->dests_.begin(), s->dests_.end(),
                         [&](const DestPtr& x) { return x->addr() == dest; });
  if (it == s->dests_.end()) throw LbError(LbError::Code::NoDest);
  if ((*it)->healthy() == healthy) return;
  (*it)->set_healthy(healthy);
  s->sched_->update(s->dests_);
  // Not a rule change: the state file keeps the configured weight.
}

void ServiceTable::zero(const std::optional<ServiceKey>& key) {
  std::lock_guard lk(mu_);
  auto zero_one = [](const ServicePtr& s) {
    s->stats.zero();
    s->rate.reset();
    for (auto& d : s->dests()) {
      d->stats.zero();
      d->rate.reset();
    }
  };
  if (key) {
    zero_one(must_find(*key, LbError::Code::NoService));
  } else {
    for (auto& [k, s] : services_) zero_one(s);
  }
}

void ServiceTable::set_timeouts(const Timeouts& t) {
  {
    std::lock_guard lk(mu_);
    // ipvsadm --set: 0 means "leave unchanged".
    if (t.tcp) timeouts_.tcp = t.tcp;
    if (t.tcpfin) timeouts_.tcpfin = t.tcpfin;
    if (t.udp) timeouts_.udp = t.udp;
  }
  fire_changed();
}

Timeouts ServiceTable::timeouts() const {
  std::lock_guard lk(mu_);
  return timeouts_;
}

static ServiceInfo info_of(const Service& s) {
  ServiceInfo si;
  si.cfg = s.config();
  si.stats = s.stats.snapshot();
  si.rate = s.rate.rate();
  for (const auto& d : s.dests()) {
    DestInfo di;
    di.cfg = d->config();
    di.effective_weight = d->weight();
    di.healthy = d->healthy();
    di.activeconns = d->active_conns();
    di.inactconns = d->inact_conns();
    di.persistconns = d->persist_conns();
    di.overloaded = d->overloaded();
    di.stats = d->stats.snapshot();
    di.rate = d->rate.rate();
    si.dests.push_back(di);
  }
  return si;
}

std::vector<ServiceInfo> ServiceTable::list() const {
  std::vector<ServicePtr> svcs = services();
  std::vector<ServiceInfo> out;
  out.reserve(svcs.size());
  for (auto& s : svcs) out.push_back(info_of(*s));
  return out;
}

std::optional<ServiceInfo> ServiceTable::get(const ServiceKey& key) const {
  ServicePtr s = find(key);
  if (!s) return std::nullopt;
  return info_of(*s);
}

bool ServiceTable::has_service(const ServiceKey& key) const { return find(key) != nullptr; }

bool ServiceTable::has_dest(const ServiceKey& key, const Endpoint& dest) const {
  ServicePtr s = find(key);
  if (!s) return false;
  for (auto& d : s->dests())
    if (d->addr() == dest) return true;
  return false;
}

ServicePtr ServiceTable::find(const ServiceKey& key) const {
  std::lock_guard lk(mu_);
  auto it = services_.find(key);
  return it == services_.end() ? nullptr : it->second;
}

std::vector<ServicePtr> ServiceTable::services() const {
  std::lock_guard lk(mu_);
  std::vector<ServicePtr> out;
  for (auto& [k, s] : services_) out.push_back(s);
  return out;
}

// ------------------------------------------------------------ connections
std::vector<ConnEntry> ServiceTable::connections() const {
  std::vector<ConnEntry> out;
  std::function<std::vector<ConnEntry>()> src;
  {
    std::lock_guard lk(sub_mu_);
    src = conn_source_;
  }
  if (src) out = src();
  for (auto& s : services()) {
    auto t = s->templates();
    out.insert(out.end(), t.begin(), t.end());
  }
  auto now = Clock::now();
  std::lock_guard lk(imp_mu_);
  for (const auto& im : imported_) {
    if (im.expires <= now) continue;
    ConnEntry e = im.e;
    e.expires_ms = uint32_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(im.expires - now).count());
    out.push_back(e);
  }
  return out;
}

size_t ServiceTable::import_connections(const std::vector<ConnEntry>& entries) {
  size_t accepted = 0;
  auto now = Clock::now();
  for (const auto& e : entries) {
    ServicePtr s = find(ServiceKey{e.proto, e.vip});
    if (!s) continue;
    DestPtr dest;
    for (auto& d : s->dests())
      if (d->addr() == e.dest) dest = d;
    if (!dest) continue;
    if (e.is_template) {
      std::lock_guard sl(s->mu_);
      if (!s->cfg_.persistent) continue;
      Addr k = s->persist_key(e.client.addr);
      auto it = s->templates_.find(k);
      // last_used such that the template expires in e.expires_ms.
      auto last = now - std::chrono::seconds(s->cfg_.timeout) +
                  std::chrono::milliseconds(e.expires_ms);
      if (it == s->templates_.end()) {
        s->templates_[k] = Service::Template{dest, last, 0};
        dest->persist_changed(+1);
      } else if (it->second.dest != dest) {
        it->second.dest->persist_changed(-1);
        it->second.dest = dest;
        dest->persist_changed(+1);
        it->second.last_used = last;
      } else {
        it->second.last_used = std::max(it->second.last_used, last);
      }
      ++accepted;
    } else {
      std::lock_guard lk(imp_mu_);
      ConnEntry c = e;
      c.synced = true;
      auto exp = now + std::chrono::milliseconds(e.expires_ms);
      auto it = std::find_if(imported_.begin(), imported_.end(), [&](const Imported& x) {
        return x.e.proto == c.proto && x.e.client == c.client && x.e.vip == c.vip;
      });
      if (it != imported_.end())
        *it = Imported{c, exp};
      else
        imported_.push_back(Imported{c, exp});
      ++accepted;
    }
  }
  return accepted;
}

int ServiceTable::subscribe_connections(ConnListener fn) {
  std::lock_guard lk(sub_mu_);
  int id = next_id_++;
  conn_subs_[id] = std::move(fn);
  have_conn_subs_ = true;
  return id;
}

void ServiceTable::set_connection_source(std::function<std::vector<ConnEntry>()> src) {
  std::lock_guard lk(sub_mu_);
  conn_source_ = std::move(src);
}

void ServiceTable::notify_connection(const ConnEntry& e) {
  if (!have_conn_subs_.load(std::memory_order_relaxed)) return;
  std::vector<ConnListener> subs;
  {
    std::lock_guard lk(sub_mu_);
    for (auto& [id, f] : conn_subs_) subs.push_back(f);
  }
  for (auto& f : subs) f(e);
}

// ------------------------------------------------------------ forwarding gate
void ServiceTable::set_forwarding(bool on) {
  if (forwarding_.exchange(on) == on) return;
  std::vector<std::function<void(bool)>> subs;
  {
    std::lock_guard lk(sub_mu_);
    for (auto& [id, f] : fwd_subs_) subs.push_back(f);
  }
  for (auto& f : subs) f(on);
}

bool ServiceTable::forwarding() const { return forwarding_.load(); }

int ServiceTable::subscribe_forwarding(std::function<void(bool)> fn) {
  std::lock_guard lk(sub_mu_);
  int id = next_id_++;
  fwd_subs_[id] = std::move(fn);
  return id;
}

int ServiceTable::subscribe_changes(std::function<void()> fn) {
  std::lock_guard lk(sub_mu_);
  int id = next_id_++;
  change_subs_[id] = std::move(fn);
  return id;
}

void ServiceTable::unsubscribe(int id) {
  std::lock_guard lk(sub_mu_);
  change_subs_.erase(id);
  fwd_subs_.erase(id);
  conn_subs_.erase(id);
  have_conn_subs_ = !conn_subs_.empty();
}

void ServiceTable::fire_changed() {
  std::vector<std::function<void()>> subs;
  {
    std::lock_guard lk(sub_mu_);
    for (auto& [id, f] : change_subs_) subs.push_back(f);
  }
  for (auto& f : subs) f();
}

void ServiceTable::tick() {
  auto now = Clock::now();
  for (auto& s : services()) {
    s->expire_templates();
    s->rate.sample(s->stats.snapshot(), now);
    for (auto& d : s->dests()) d->rate.sample(d->stats.snapshot(), now);
  }
  std::lock_guard lk(imp_mu_);
  imported_.erase(std::remove_if(imported_.begin(), imported_.end(),
                                 [&](const Imported& x) { return x.expires <= now; }),
                  imported_.end());
}

}  // namespace vmstack::lb
