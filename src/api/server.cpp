// The XenAPI HTTP server: a poller thread and a worker pool.
//
// The poller owns an epoll set with the listening sockets and every *parked*
// connection. A connection that has something to read (or was just accepted)
// goes to the ready queue; a worker takes it and serves requests on it with
// plain blocking I/O for as long as the client keeps sending them, calling
// the Dispatcher inline. Only when the connection has been quiet for
// `park_after` does the worker give it back to epoll (EPOLLONESHOT) and pick
// up other work. So a busy client pays one read + one sendmsg per call with
// no cross-thread hand-off, and an idle one costs only an fd.
//
// The pool starts with `threads` workers and grows (up to max_threads) when
// the ready queue holds more connections than there are idle workers, so a
// blocking call (event.from, a long VM operation, a console stream) never
// starves the others; workers beyond `threads` retire after 30 s without work.
#include "api/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "api/http_conn.h"
#include "api/listener.h"

namespace vmstack::api {

using detail::AfterServe;
using detail::Connection;
using clock = std::chrono::steady_clock;

namespace {
constexpr auto kWorkerRetireAfter = std::chrono::seconds(30);
// epoll_event.data tags for the non-connection fds (connections use their
// pointer, which is never this small).
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kListenerTagBase = 2;  // + listener index
}  // namespace

struct Server::Impl {
  ServerConfig cfg;
  Dispatcher dispatch;
  detail::Routes routes;
  ServerLimits limits;

  std::vector<detail::Listener> listeners;
  UniqueFd epoll;
  UniqueFd wake;  // eventfd: tells the poller to exit
  std::thread poller;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;
  unsigned short port = 0;

  std::mutex mu;  // guards everything below and Connection bookkeeping fields
  std::condition_variable work_cv;
  std::deque<Connection*> ready;
  std::list<Connection*> parked;          // oldest first
  std::unordered_set<Connection*> live;   // owned: every accepted, not yet closed connection
  std::map<uint64_t, std::thread> workers;
  std::vector<uint64_t> finished_workers;  // exited, to be joined
  uint64_t next_worker_id = 0;
  unsigned idle_workers = 0;

  std::unique_ptr<detail::HttpContext> ctx;

  void poll_loop();
  void accept_all(const detail::Listener& l);
  void worker_loop(uint64_t id);
  void enqueue_locked(Connection* c);
  void spawn_worker_locked();
  void reap_workers_locked();
  void park_locked(Connection* c);
  void close_locked(std::unique_lock<std::mutex>& lk, Connection* c);
  void expire_idle();
  bool begin_stream(Connection& c);
};

void Server::Impl::spawn_worker_locked() {
  reap_workers_locked();
  uint64_t id = next_worker_id++;
  try {
    workers.emplace(id, std::thread([this, id] { worker_loop(id); }));
  } catch (const std::system_error&) {
    // Out of threads: the existing workers will get to the queue eventually.
  }
}

void Server::Impl::reap_workers_locked() {
  for (uint64_t id : finished_workers) {
    auto it = workers.find(id);
    if (it == workers.end()) continue;
    it->second.join();  // it has marked itself finished as its last locked act
    workers.erase(it);
  }
  finished_workers.clear();
}

void Server::Impl::enqueue_locked(Connection* c) {
  ready.push_back(c);
  if (ready.size() > idle_workers && workers.size() - finished_workers.size() < limits.max_threads)
    spawn_worker_locked();
  work_cv.notify_one();
}

void Server::Impl::park_locked(Connection* c) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = reinterpret_cast<uintptr_t>(c);
  c->parked_at = clock::now();
  c->parked_pos = parked.insert(parked.end(), c);
  // Listed before armed: the poller looks the connection up as soon as the
  // event can fire.
  int rc = ::epoll_ctl(epoll.get(), c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd.get(), &ev);
  if (rc != 0) {
    parked.erase(c->parked_pos);
    live.erase(c);
    delete c;
    return;
  }
  c->in_epoll = true;
}

void Server::Impl::close_locked(std::unique_lock<std::mutex>& lk, Connection* c) {
  live.erase(c);
  lk.unlock();
  delete c;  // closing the fd also removes it from epoll
  lk.lock();
}

bool Server::Impl::begin_stream(Connection& c) {
  std::lock_guard<std::mutex> lk(mu);
  if (stopping) return false;
  c.streaming = true;
  return true;
}

void Server::Impl::worker_loop(uint64_t id) {
  std::unique_lock<std::mutex> lk(mu);
  for (;;) {
    ++idle_workers;
    bool woke = work_cv.wait_for(lk, kWorkerRetireAfter, [&] { return !ready.empty() || stopping; });
    --idle_workers;
    if (ready.empty()) {
      if (stopping) break;
      if (!woke && workers.size() - finished_workers.size() > std::max(1u, cfg.threads)) break;  // retire
      continue;
    }
    Connection* c = ready.front();
    ready.pop_front();
    lk.unlock();
    AfterServe after = AfterServe::close;
    if (!stopping) {
      try {
        after = detail::serve_connection(*c, *ctx);
      } catch (...) {
        after = AfterServe::close;  // e.g. bad_alloc: lose this connection, not the server
      }
    }
    lk.lock();
    if (after == AfterServe::park && !stopping) park_locked(c);
    else close_locked(lk, c);
  }
  finished_workers.push_back(id);
}

void Server::Impl::accept_all(const detail::Listener& l) {
  for (;;) {
    int fd = ::accept4(l.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of fds: back off, don't spin
      return;  // EAGAIN: drained
    }
    auto c = std::make_unique<Connection>();
    c->fd.reset(fd);
    c->tcp = l.is_tcp();
    if (c->tcp) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    // Receive timeout = when to park an idle connection; send timeout bounds
    // how long a client that doesn't read its response can hold a worker.
    detail::set_socket_timeouts(fd, limits.park_after, limits.request_timeout);
    c->peer = detail::identify_peer(fd, c->tcp);
    std::lock_guard<std::mutex> lk(mu);
    if (live.size() >= limits.max_connections) {
      detail::send_http_error(fd, 503, "Service Unavailable", "too many connections\n", true);
      continue;  // unique_ptr closes it
    }
    live.insert(c.get());
    enqueue_locked(c.release());
  }
}

void Server::Impl::expire_idle() {
  if (limits.idle_timeout.count() <= 0) return;
  auto cutoff = clock::now() - limits.idle_timeout;
  std::vector<Connection*> expired;
  {
    std::lock_guard<std::mutex> lk(mu);
    while (!parked.empty() && parked.front()->parked_at < cutoff) {
      Connection* c = parked.front();
      parked.pop_front();
      live.erase(c);
      expired.push_back(c);
    }
  }
  for (Connection* c : expired) delete c;
}

void Server::Impl::poll_loop() {
  epoll_event evs[64];
  const int tick_ms = limits.idle_timeout.count() > 0 ? 1000 : -1;
  for (;;) {
    int n = ::epoll_wait(epoll.get(), evs, 64, tick_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EBADF etc.: nothing sensible left to do
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = evs[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag >= kListenerTagBase && tag < kListenerTagBase + listeners.size()) {
        accept_all(listeners[tag - kListenerTagBase]);
        continue;
      }
      auto* c = reinterpret_cast<Connection*>(static_cast<uintptr_t>(tag));
      std::lock_guard<std::mutex> lk(mu);
      parked.erase(c->parked_pos);
      enqueue_locked(c);
    }
    // After the batch: an expired connection's fd is closed, which drops any
    // event for it that a later epoll_wait could otherwise return.
    expire_idle();
  }
}

Server::Server(ServerConfig cfg, Dispatcher dispatch) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->dispatch = std::move(dispatch);
}

Server::~Server() { stop(); }

void Server::add_stream_route(const std::string& path_prefix, StreamHandler h) {
  if (impl_->started) throw std::logic_error("add_stream_route must be called before start()");
  impl_->routes.emplace_back(path_prefix, std::move(h));
}

void Server::set_limits(const ServerLimits& limits) {
  if (impl_->started) throw std::logic_error("set_limits must be called before start()");
  impl_->limits = limits;
}

void Server::start() {
  auto& I = *impl_;
  if (I.started) throw std::logic_error("Server::start called twice");
  if (I.cfg.unix_path.empty() && I.cfg.tcp_address.empty())
    throw std::runtime_error("server has neither a unix socket path nor a TCP address");
  if (I.limits.max_threads == 0 || I.limits.park_after.count() <= 0 || I.limits.request_timeout.count() <= 0)
    throw std::invalid_argument("ServerLimits: max_threads, park_after and request_timeout must be positive");
  // Stream handlers write to sockets whose peer may vanish; the daemon must
  // not die of SIGPIPE (our own sends use MSG_NOSIGNAL).
  ::signal(SIGPIPE, SIG_IGN);

  auto fail = [&](const char* what) {
    int e = errno;
    I.listeners.clear();
    throw std::runtime_error(std::string(what) + ": " + std::strerror(e));
  };
  try {
    if (!I.cfg.unix_path.empty()) I.listeners.push_back(detail::Listener::unix_socket(I.cfg.unix_path));
    if (!I.cfg.tcp_address.empty()) {
      I.listeners.push_back(detail::Listener::tcp(I.cfg.tcp_address, I.cfg.tcp_port));
      I.port = I.listeners.back().port();
    }
  } catch (...) {
    I.listeners.clear();  // don't leave the unix socket bound if TCP failed
    throw;
  }
  I.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!I.epoll) fail("epoll_create1");
  I.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!I.wake) fail("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (::epoll_ctl(I.epoll.get(), EPOLL_CTL_ADD, I.wake.get(), &ev) != 0) fail("epoll_ctl");
  for (std::size_t i = 0; i < I.listeners.size(); ++i) {
    ev.data.u64 = kListenerTagBase + i;
    if (::epoll_ctl(I.epoll.get(), EPOLL_CTL_ADD, I.listeners[i].fd(), &ev) != 0) fail("epoll_ctl");
  }

  I.ctx = std::make_unique<detail::HttpContext>(detail::HttpContext{
      I.dispatch, I.routes, I.limits, I.stopping, [&I](Connection& c) { return I.begin_stream(c); }});
  I.started = true;  // from here on stop() can clean up whatever exists
  try {
    {
      std::lock_guard<std::mutex> lk(I.mu);
      for (unsigned i = 0; i < std::max(1u, I.cfg.threads); ++i) I.spawn_worker_locked();
    }
    I.poller = std::thread([&I] { I.poll_loop(); });
  } catch (...) {
    stop();
    throw;
  }
}

void Server::stop() {
  auto& I = *impl_;
  if (!I.started || I.stopped) return;
  I.stopped = true;
  I.stopping = true;
  uint64_t one = 1;
  while (::write(I.wake.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
  if (I.poller.joinable()) I.poller.join();
  for (auto& l : I.listeners) l.close();  // no new connections; socket file removed

  std::vector<Connection*> idle;
  {
    std::lock_guard<std::mutex> lk(I.mu);
    // Parked connections: nobody else touches them now that the poller is gone.
    for (Connection* c : I.parked) {
      I.live.erase(c);
      idle.push_back(c);
    }
    I.parked.clear();
    // Active ones: SHUT_RD ends a worker's wait for the next request (EOF)
    // while a call in progress can still send its response; streams are cut
    // both ways so their handlers' writes fail.
    for (Connection* c : I.live) ::shutdown(c->fd.get(), c->streaming ? SHUT_RDWR : SHUT_RD);
  }
  for (Connection* c : idle) delete c;
  I.work_cv.notify_all();
  std::map<uint64_t, std::thread> workers;
  {
    std::lock_guard<std::mutex> lk(I.mu);
    workers.swap(I.workers);
    I.finished_workers.clear();
  }
  for (auto& [id, t] : workers) t.join();
  // Workers closed everything they held or found queued; anything left was
  // never picked up (only possible if no worker thread could be created).
  {
    std::lock_guard<std::mutex> lk(I.mu);
    for (Connection* c : I.live) delete c;
    I.live.clear();
    I.ready.clear();
  }
  I.epoll.reset();
  I.wake.reset();
}

unsigned short Server::tcp_port() const { return impl_->port; }

}  // namespace vmstack::api
