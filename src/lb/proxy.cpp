// Data plane: Proxy (lifecycle, rule following) and the parts of a Worker
// common to TCP and UDP (event loop, listeners, expiry, connection list).
#include "lb/proxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "lb/proxy_worker.h"

namespace vmstack::lb {
namespace detail {

Millis now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Millis(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

const char* state_name(ConnState s) {
  switch (s) {
    case ConnState::SynSent: return "SYN_SENT";
    case ConnState::Established: return "ESTABLISHED";
    case ConnState::FinWait: return "FIN_WAIT";
    case ConnState::Udp: return "UDP";
  }
  return "NONE";
}

size_t UdpKeyHash::operator()(const UdpKey& k) const {
  size_t h = std::hash<const void*>()(k.l);
  h ^= (size_t(k.client.addr.hash32()) * 0x9e3779b97f4a7c15ULL) + k.client.port;
  return h;
}

namespace {

// Idle limit for an entry in state s (seconds).
uint32_t timeout_for(ConnState s, const Timeouts& t, uint32_t connect_cap) {
  switch (s) {
    case ConnState::SynSent: return std::min(t.tcp, connect_cap);
    case ConnState::Established: return t.tcp;
    case ConnState::FinWait: return t.tcpfin;
    case ConnState::Udp: return t.udp;
  }
  return t.tcp;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

// ------------------------------------------------------------ ProxyShared
bool ProxyShared::refresh() {
  std::vector<ServicePtr> want;
  if (table.forwarding()) want = table.services();
  std::lock_guard lk(mu);
  if (want == services) return false;
  services = std::move(want);
  ++gen;
  return true;
}

void ProxyShared::wait_applied(uint64_t g) {
  for (auto& w : workers) w->wake();
  std::unique_lock lk(mu);
  cv.wait_for(lk, std::chrono::seconds(3), [&] {
    if (stopping) return true;
    for (auto& w : workers)
      if (w->applied_gen() < g) return false;
    return true;
  });
}

// ------------------------------------------------------------ Worker
Worker::Worker(ProxyShared& sh, int index)
    : sh_(sh), index_(index), scratch_(new char[kScratchSize]) {
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!ep_ || !wake_) throw std::runtime_error("proxy worker: " + errno_text(errno));
  if (!epoll_add(wake_.get(), EPOLLIN, &wake_h_))
    throw std::runtime_error("proxy worker: epoll_ctl: " + errno_text(errno));
}

Worker::~Worker() { stop(); }

void Worker::start() { thread_ = std::thread([this] { run(); }); }

void Worker::stop() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void Worker::wake() {
  uint64_t one = 1;
  if (wake_) (void)!::write(wake_.get(), &one, sizeof one);
}

bool Worker::epoll_add(int fd, uint32_t events, Handle* h) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Worker::run() {
  constexpr int kMaxEvents = 256;
  epoll_event evs[kMaxEvents];
  now_ = now_ms();
  reconcile(false);
  while (!stop_.load(std::memory_order_relaxed)) {
    int n = epoll_wait(ep_.get(), evs, kMaxEvents, 250);
    now_ = now_ms();
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handle*>(evs[i].data.ptr);
      switch (h->kind) {
        case Handle::kWake: {
          uint64_t v;
          while (::read(wake_.get(), &v, sizeof v) > 0) {
          }
          if (!stop_) reconcile(false);
          break;
        }
        case Handle::kListener: on_listener(static_cast<Listener*>(h->owner)); break;
        case Handle::kTcpClient:
        case Handle::kTcpBackend:
          on_tcp(static_cast<TcpConn*>(h->owner), h->kind == Handle::kTcpClient, evs[i].events);
          break;
        case Handle::kUdpBackend: on_udp_backend(static_cast<UdpFlow*>(h->owner)); break;
      }
    }
    // Objects closed during this batch may still have had events in it.
    graveyard_.clear();
    dead_listeners_.clear();
    if (now_ - last_sweep_ >= 250) {
      last_sweep_ = now_;
      sweep();
      graveyard_.clear();
    }
  }
  // Shutting down: listeners first (no new work), then every connection.
  while (!listeners_.empty()) close_listener(listeners_.begin()->first);
  while (head_) close_conn(head_, false);
  graveyard_.clear();
  dead_listeners_.clear();
  nlisteners_ = 0;
}

void Worker::reconcile(bool retry_only) {
  std::vector<ServicePtr> want;
  uint64_t gen;
  {
    std::lock_guard lk(sh_.mu);
    want = sh_.services;
    gen = sh_.gen;
  }
  if (!retry_only) {
    std::vector<ServiceKey> gone;
    for (auto& [k, l] : listeners_) {
      bool keep = std::any_of(want.begin(), want.end(),
                              [&](const ServicePtr& s) { return s->key() == k; });
      if (!keep) gone.push_back(k);
    }
    for (auto& k : gone) close_listener(k);
  }
  for (const ServicePtr& s : want) {
    auto it = listeners_.find(s->key());
    if (it != listeners_.end()) {
      it->second->svc = s;  // the same key deleted and added again
      continue;
    }
    std::string err;
    bool ok = open_listener(s, &err);
    std::lock_guard lk(sh_.mu);
    if (ok) {
      sh_.errors.erase(s->key());
    } else if (!sh_.errors.count(s->key())) {
      sh_.errors[s->key()] = err;
      if (index_ == 0) spdlog::warn("proxy: {}", err);
    }
  }
  nlisteners_ = listeners_.size();
  if (!retry_only) {
    applied_gen_ = gen;
    std::lock_guard lk(sh_.mu);
    sh_.cv.notify_all();
  }
}

bool Worker::open_listener(const ServicePtr& svc, std::string* err) {
  const ServiceKey key = svc->key();
  const bool tcp = key.proto == Proto::TCP;
  const int family = key.vip.addr.family;
  auto fail = [&](const char* what) {
    *err = std::string("cannot listen on ") + key.str() + ": " + what + ": " + errno_text(errno);
    return false;
  };
  UniqueFd fd(::socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail("socket");
  int one = 1;
  // SO_REUSEPORT: one socket per worker, the kernel spreads flows over them.
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return fail("SO_REUSEPORT");
  // FREEBIND: a backup (or a node whose VIP VRRP has not added yet) can
  // still hold the listener; traffic arrives once the address is local.
  if (family == AF_INET6) {
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
#ifdef IPV6_FREEBIND
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
#endif
  } else {
    setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
  }
  sockaddr_storage ss;
  socklen_t len = key.vip.to_sockaddr(&ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("bind");
  if (tcp && ::listen(fd.get(), sh_.opts.listen_backlog) != 0) return fail("listen");
  auto l = std::make_unique<Listener>();
  l->key = key;
  l->svc = svc;
  l->fd = std::move(fd);
  if (!epoll_add(l->fd.get(), EPOLLIN | EPOLLET, &l->h)) return fail("epoll_ctl");
  listeners_[key] = std::move(l);
  return true;
}

void Worker::close_listener(const ServiceKey& key) {
  auto it = listeners_.find(key);
  if (it == listeners_.end()) return;
  Listener* l = it->second.get();
  if (key.proto == Proto::UDP) {
    // Replies go out through the listener's socket: its flows end with it.
    for (Conn* c = head_; c;) {
      Conn* next = c->next;
      if (c->proto == Proto::UDP && static_cast<UdpFlow*>(c)->listener == l) close_conn(c, false);
      c = next;
    }
  }
  l->fd.reset();
  dead_listeners_.push_back(std::move(it->second));
  listeners_.erase(it);
  nlisteners_ = listeners_.size();
}

void Worker::on_listener(Listener* l) {
  if (!l->fd) return;
  if (l->key.proto == Proto::TCP)
    accept_tcp(l);
  else
    read_udp_listener(l);
}

void Worker::sweep() {
  const Timeouts t = sh_.table.timeouts();
  const uint32_t cap = sh_.opts.connect_timeout_s;
  for (Conn* c = head_; c;) {
    Conn* next = c->next;
    Millis limit = Millis(timeout_for(c->state.load(std::memory_order_relaxed), t, cap)) * 1000;
    if (now_ - c->last_active.load(std::memory_order_relaxed) > limit) {
      close_conn(c, c->proto == Proto::TCP);  // like LVS dropping the entry: RST
      sh_.expired.fetch_add(1, std::memory_order_relaxed);
    }
    c = next;
  }
  // Listeners that could not be opened, accept queues left after EMFILE.
  bool missing;
  {
    std::lock_guard lk(sh_.mu);
    missing = !sh_.errors.empty() || sh_.services.size() != listeners_.size();
  }
  if (missing) reconcile(true);
  for (auto& [k, l] : listeners_)
    if (l->retry_accept) {
      l->retry_accept = false;
      on_listener(l.get());
    }
}

Worker::Placement Worker::place(const ServicePtr& svc, const Endpoint& client, int type) {
  Placement p;
  p.dest = svc->schedule(client, &p.persistent);
  if (!p.dest) {
    sh_.no_dest.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  sockaddr_storage ds;
  socklen_t dl = p.dest->addr().to_sockaddr(&ds);
  p.fd.reset(::socket(ds.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!p.fd || (::connect(p.fd.get(), reinterpret_cast<sockaddr*>(&ds), dl) != 0 && errno != EINPROGRESS)) {
    if (p.persistent) svc->release_persist(client);
    sh_.connect_failed.fetch_add(1, std::memory_order_relaxed);
    p.dest = nullptr;
  }
  return p;
}

void Worker::adopt(Conn* c, const Listener* l, const Endpoint& client, const Placement& p) {
  c->svc = l->svc;
  c->dest = p.dest;
  c->client = client;
  c->vip = l->key.vip;
  c->persistent = p.persistent;
  c->last_active.store(now_, std::memory_order_relaxed);
  c->svc->stats.conns.fetch_add(1, std::memory_order_relaxed);
  p.dest->stats.conns.fetch_add(1, std::memory_order_relaxed);
  p.dest->conn_opened(c->active);
  sh_.accepted.fetch_add(1, std::memory_order_relaxed);
  link(c);
}

void Worker::link(Conn* c) {
  std::lock_guard lk(list_mu_);
  c->next = head_;
  if (head_) head_->prev = c;
  head_ = c;
}

void Worker::close_conn(Conn* c, bool rst) {
  if (c->dead) return;
  c->dead = true;
  if (c->proto == Proto::TCP) {
    auto* t = static_cast<TcpConn*>(c);
    if (rst) {
      // Linger 0: close() sends RST, so the peer sees the abort at once.
      linger lg{1, 0};
      if (t->cfd) setsockopt(t->cfd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      if (t->bfd) setsockopt(t->bfd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    t->cfd.reset();
    t->bfd.reset();
    for (Dir* d : {&t->c2b, &t->b2c}) {
      if (d->pipe && d->pipe->bytes) sh_.pipes_in_use.fetch_sub(1, std::memory_order_relaxed);
      d->pipe.reset();  // a pipe holding data is not reusable
      d->buf.reset();
    }
    sh_.tcp_active.fetch_sub(1, std::memory_order_relaxed);
  } else {
    auto* f = static_cast<UdpFlow*>(c);
    udp_flows_.erase(UdpKey{f->listener, f->client});
    f->bfd.reset();
    sh_.udp_active.fetch_sub(1, std::memory_order_relaxed);
  }
  c->dest->conn_closed(c->active);
  if (c->persistent) c->svc->release_persist(c->client);
  {
    std::lock_guard lk(list_mu_);
    if (c->prev) c->prev->next = c->next;
    if (c->next) c->next->prev = c->prev;
    if (head_ == c) head_ = c->next;
    c->prev = c->next = nullptr;
  }
  graveyard_.emplace_back(c);
}

std::unique_ptr<Pipe> Worker::get_pipe() {
  if (!pipe_pool_.empty()) {
    auto p = std::move(pipe_pool_.back());
    pipe_pool_.pop_back();
    return p;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
  auto p = std::make_unique<Pipe>();
  p->r.reset(fds[0]);
  p->w.reset(fds[1]);
  return p;
}

void Worker::put_pipe(std::unique_ptr<Pipe> p) {
  if (!p || p->bytes) return;  // never reuse a pipe with data in it
  if (pipe_pool_.size() < kPipePoolMax) pipe_pool_.push_back(std::move(p));
}

void Worker::account(Conn* c, bool inbound, size_t bytes) {
  constexpr auto r = std::memory_order_relaxed;
  if (inbound) {
    c->svc->stats.inpkts.fetch_add(1, r);
    c->svc->stats.inbytes.fetch_add(bytes, r);
    c->dest->stats.inpkts.fetch_add(1, r);
    c->dest->stats.inbytes.fetch_add(bytes, r);
  } else {
    c->svc->stats.outpkts.fetch_add(1, r);
    c->svc->stats.outbytes.fetch_add(bytes, r);
    c->dest->stats.outpkts.fetch_add(1, r);
    c->dest->stats.outbytes.fetch_add(bytes, r);
  }
  c->last_active.store(now_, r);
}

ConnEntry Worker::entry_of(const Conn* c, const Timeouts& t, Millis now) const {
  ConnEntry e;
  e.proto = c->proto;
  e.client = c->client;
  e.vip = c->vip;
  e.dest = c->dest->addr();
  ConnState s = c->state.load(std::memory_order_relaxed);
  e.state = state_name(s);
  Millis left = Millis(timeout_for(s, t, sh_.opts.connect_timeout_s)) * 1000 -
                (now - c->last_active.load(std::memory_order_relaxed));
  e.expires_ms = left > 0 ? uint32_t(left) : 0;
  return e;
}

void Worker::notify_sync(const Conn* c) {
  if (!sh_.table.has_connection_subscribers()) return;
  sh_.table.notify_connection(entry_of(c, sh_.table.timeouts(), now_));
}

void Worker::list_connections(std::vector<ConnEntry>* out, const Timeouts& t, Millis now) const {
  std::lock_guard lk(list_mu_);
  for (const Conn* c = head_; c; c = c->next) out->push_back(entry_of(c, t, now));
}

}  // namespace detail

// ------------------------------------------------------------ Proxy
using detail::ProxyShared;
using detail::Worker;

Proxy::Proxy(ServiceTable& table, ProxyOptions opts)
    : sh_(std::make_shared<ProxyShared>(table, std::move(opts))) {}

Proxy::~Proxy() { stop(); }

void Proxy::start() {
  if (started_) return;
  // splice(2) into a socket whose peer is gone raises SIGPIPE and has no
  // MSG_NOSIGNAL: the data plane needs SIGPIPE ignored process-wide.
  std::signal(SIGPIPE, SIG_IGN);
  int n = sh_->opts.workers;
  if (n <= 0) n = std::clamp(int(std::thread::hardware_concurrency()), 1, 4);
  for (int i = 0; i < n; ++i) sh_->workers.push_back(std::make_unique<Worker>(*sh_, i));
  for (auto& w : sh_->workers) w->start();
  started_ = true;

  std::shared_ptr<ProxyShared> sh = sh_;
  auto follow = [sh] {
    if (sh->refresh()) {
      uint64_t g;
      {
        std::lock_guard lk(sh->mu);
        g = sh->gen;
      }
      sh->wait_applied(g);
    }
  };
  subs_.push_back(sh_->table.subscribe_changes(follow));
  subs_.push_back(sh_->table.subscribe_forwarding([follow](bool) { follow(); }));
  sh_->table.set_connection_source([sh] {
    std::vector<ConnEntry> out;
    Timeouts t = sh->table.timeouts();
    detail::Millis now = detail::now_ms();
    for (auto& w : sh->workers) w->list_connections(&out, t, now);
    return out;
  });
  sh_->refresh();
  sync();
}

void Proxy::stop() {
  if (!started_) return;
  started_ = false;
  for (int id : subs_) sh_->table.unsubscribe(id);
  subs_.clear();
  sh_->table.set_connection_source(nullptr);
  {
    std::lock_guard lk(sh_->mu);
    sh_->stopping = true;
    sh_->cv.notify_all();
  }
  for (auto& w : sh_->workers) w->stop();
}

void Proxy::sync() {
  if (!started_) return;
  uint64_t g;
  {
    std::lock_guard lk(sh_->mu);
    g = sh_->gen;
  }
  sh_->wait_applied(g);
}

std::vector<ConnEntry> Proxy::connections() const {
  std::vector<ConnEntry> out;
  Timeouts t = sh_->table.timeouts();
  detail::Millis now = detail::now_ms();
  for (auto& w : sh_->workers) w->list_connections(&out, t, now);
  return out;
}

ProxyStats Proxy::stats() const {
  constexpr auto r = std::memory_order_relaxed;
  ProxyStats s;
  s.tcp_active = sh_->tcp_active.load(r);
  s.udp_active = sh_->udp_active.load(r);
  s.accepted = sh_->accepted.load(r);
  s.no_dest = sh_->no_dest.load(r);
  s.connect_failed = sh_->connect_failed.load(r);
  s.expired = sh_->expired.load(r);
  s.reset = sh_->reset.load(r);
  s.udp_dropped = sh_->udp_dropped.load(r);
  s.accept_errors = sh_->accept_errors.load(r);
  s.pipes_in_use = sh_->pipes_in_use.load(r);
  s.spliced_bytes = sh_->spliced_bytes.load(r);
  for (auto& w : sh_->workers) s.listeners += w->listener_count();
  return s;
}

std::map<ServiceKey, std::string> Proxy::listener_errors() const {
  std::lock_guard lk(sh_->mu);
  return sh_->errors;
}

int Proxy::worker_count() const { return int(sh_->workers.size()); }

uint64_t raise_nofile_limit(uint64_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_max < want) {
    // Root may raise the hard limit too (up to fs.nr_open).
    rlimit up{want, want};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return want;
  }
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, want);
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

}  // namespace vmstack::lb
