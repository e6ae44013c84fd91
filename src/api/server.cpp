// The XenAPI HTTP server: one event thread, a pool of workers, a thread per
// stream.
//
// The event thread owns an epoll set with the listening sockets and every
// connection that waits for its client: new ones, idle kept-alive ones,
// slow ones mid-request. It reads their requests without blocking (limits
// enforced as the bytes arrive: header within request_timeout, body at
// min_body_rate, body size, the body admission that checks a large call's
// session from its first bytes), so a client that is slow or silent costs an
// fd and the bytes it sent, never a thread. Only a complete request goes to
// a worker (ready queue), which dispatches it inline and keeps serving the
// connection with plain blocking reads for as long as the client keeps
// calling; after `park_after` without a call (at once when other work is
// queued) the connection goes back to the event thread.
//
// TCP and the unix socket have separate connection budgets, TCP
// connections per client address are capped, and the last workers are
// reserved for the unix socket, so no amount of TCP traffic keeps local
// root out. A full budget gives up its longest-idle connection for a new
// one. A call that would wait (event.from) defers its answer
// (PendingReply): its connection waits in epoll without a worker until the
// answer comes. Stream and POST routes (console, /cli) run on threads of their own.
#include "api/server.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "api/server_impl.h"

namespace vmstack::api {

Server::Server(ServerConfig cfg, Dispatcher dispatch) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->dispatch = std::move(dispatch);
}

Server::~Server() { stop(); }

void Server::add_stream_route(const std::string& path_prefix, StreamHandler h) {
  if (impl_->started) throw std::logic_error("add_stream_route must be called before start()");
  impl_->routes.push_back({path_prefix, std::move(h), {}, {}});
}

void Server::add_post_route(const std::string& path, PostHandler h) {
  if (impl_->started) throw std::logic_error("add_post_route must be called before start()");
  impl_->routes.push_back({path, {}, std::move(h), {}});
}

void Server::add_http_route(const std::string& path, HttpHandler h) {
  if (impl_->started) throw std::logic_error("add_http_route must be called before start()");
  impl_->routes.push_back({path, {}, {}, std::move(h)});
}

void Server::adopt(UniqueFd fd, std::string peer_address) {
  auto& I = *impl_;
  std::lock_guard<std::mutex> lk(I.mu);  // stop() cannot close the eventfd meanwhile
  if (!I.started || I.stopping) return;   // fd closes
  I.adopted.emplace_back(std::move(fd), std::move(peer_address));
  uint64_t one = 1;
  (void)!::write(I.completions.get(), &one, sizeof one);  // the event thread takes them
}

void Server::set_limits(const ServerLimits& limits) {
  if (impl_->started) throw std::logic_error("set_limits must be called before start()");
  impl_->limits = limits;
}

void Server::set_body_admission(BodyAdmission admit) {
  if (impl_->started) throw std::logic_error("set_body_admission must be called before start()");
  impl_->admit = std::move(admit);
}

namespace {
void check_limits(const ServerLimits& l) {
  if (l.max_threads == 0 || l.park_after.count() <= 0 || l.request_timeout.count() <= 0 ||
      l.send_timeout.count() <= 0 || l.pressure_idle_timeout.count() <= 0)
    throw std::invalid_argument(
        "ServerLimits: max_threads, park_after, request_timeout, send_timeout and pressure_idle_timeout must be "
        "positive");
  if (l.max_connections == 0 || l.max_connections_per_source == 0 || l.min_body_rate == 0)
    throw std::invalid_argument("ServerLimits: max_connections, max_connections_per_source and min_body_rate must be positive");
}
}  // namespace

void Server::start() {
  auto& I = *impl_;
  if (I.started) throw std::logic_error("Server::start called twice");
  if (I.cfg.unix_path.empty() && I.cfg.tcp_address.empty())
    throw std::runtime_error("server has neither a unix socket path nor a TCP address");
  check_limits(I.limits);
  I.limits.max_unproven_body_bytes = std::min(I.limits.max_unproven_body_bytes, I.limits.max_body_bytes);
  I.tcp_cap = I.limits.max_threads - std::min(I.limits.unix_reserved_threads, I.limits.max_threads / 2);
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
  I.paused_until.assign(I.listeners.size(), {});
  I.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!I.epoll) fail("epoll_create1");
  I.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  I.completions.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!I.wake || !I.completions) fail("eventfd");
  auto watch = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(I.epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl");
  };
  watch(I.wake.get(), wake_tag());
  watch(I.completions.get(), completions_tag());
  for (std::size_t i = 0; i < I.listeners.size(); ++i) watch(I.listeners[i].fd(), listener_tag(i));

  I.ctx = std::make_unique<detail::HttpContext>(detail::HttpContext{
      I.dispatch, I.routes, I.limits, I.admit, I.stopping, I.pressure, I.pollers,
      [&I](Connection& c, std::function<void(Connection&)> run) { return I.start_stream(c, std::move(run)); },
      [&I](Connection& c) { return I.make_reply(c); }, [&I](Connection& c) { return I.await_reply(c); }});
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
  for (Connection* c : I.doomed) delete c;  // if the event thread left mid-batch
  I.doomed.clear();
  for (auto& l : I.listeners) l.close();  // no new connections; socket file removed

  std::vector<Connection*> idle, awaiting;
  {
    std::lock_guard<std::mutex> lk(I.mu);
    // Nobody else touches connections in epoll states now that the event
    // thread is gone. Active ones: SHUT_RD ends a worker's wait for the
    // next request (EOF) while a call in progress can still send its
    // response; streams are cut both ways so their handlers' writes fail.
    for (Connection* c : I.live) {
      switch (c->state) {
        case ConnState::reading:
        case ConnState::parked:
        case ConnState::draining: idle.push_back(c); break;
        case ConnState::awaiting: awaiting.push_back(c); break;
        case ConnState::active: ::shutdown(c->fd.get(), SHUT_RD); break;
        case ConnState::streaming: ::shutdown(c->fd.get(), SHUT_RDWR); break;
        default: break;  // ready: a worker closes it (or sends its answer)
      }
    }
    for (Connection* c : idle) I.release_locked(c);
  }
  for (Connection* c : idle) delete c;
  // Calls still waiting for an answer: nobody will send one now. Those just
  // answered are on `completed` and go out with the workers.
  for (Connection* c : awaiting) {
    if (!c->reply || !c->reply->abandon()) continue;
    {
      std::lock_guard<std::mutex> lk(I.mu);
      I.release_locked(c);
    }
    delete c;
  }
  std::map<uint64_t, std::thread> workers, streams;
  {
    std::lock_guard<std::mutex> lk(I.mu);
    for (Connection* c : I.completed)
      if (c->state == ConnState::awaiting) I.enqueue_locked(c);
    I.completed.clear();
    I.work_cv.notify_all();
  }
  // Workers exit once the queues are empty; new ones may have been spawned
  // for the last answers, so take the map only after they are all done.
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(I.mu);
      join_finished(I.workers, I.finished_workers);
      if (I.workers.empty()) break;
      workers.swap(I.workers);
    }
    for (auto& [id, t] : workers) t.join();
    workers.clear();
    std::lock_guard<std::mutex> lk(I.mu);
    I.finished_workers.clear();
  }
  {
    std::lock_guard<std::mutex> lk(I.mu);
    streams.swap(I.streams);
    I.finished_streams.clear();
  }
  for (auto& [id, t] : streams) t.join();
  // Anything left was never picked up (only possible if no worker thread
  // could be created). Deleted without the lock, like every connection: a
  // reply's delivery takes it.
  std::unordered_set<Connection*> left;
  {
    std::lock_guard<std::mutex> lk(I.mu);
    left.swap(I.live);
    I.ready_unix.clear();
    I.ready_tcp.clear();
  }
  for (Connection* c : left) delete c;
  I.epoll.reset();
  I.wake.reset();
  std::lock_guard<std::mutex> lk(I.mu);  // adopt() writes it under the lock
  I.completions.reset();
  I.adopted.clear();
}

unsigned short Server::tcp_port() const { return impl_->port; }

}  // namespace vmstack::api
