// The server's event thread (see server.cpp for the overview): accepts
// connections within their budgets, reads the requests of slow and idle
// clients without blocking, times out late requests and idle connections,
// and hands complete requests and completed deferred replies to the workers.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "api/server_impl.h"
#include "api/throttle.h"

namespace vmstack::api {

using detail::ReadResult;

namespace {
// epoll_event.data tags for the non-connection fds (connections use their
// pointer, which is never this small).
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kCompletionsTag = 2;
constexpr uint64_t kListenerTagBase = 3;  // + listener index

constexpr auto kTick = std::chrono::milliseconds(100);
// A new connection is not given up for another before it has been silent
// this long: a client's request may still be on its way.
constexpr auto kEvictableAfter = std::chrono::seconds(1);
constexpr auto kDrainTimeout = std::chrono::seconds(5);
constexpr std::size_t kDrainPerEvent = 256u << 10;
constexpr auto kOutOfFdsPause = std::chrono::milliseconds(100);
constexpr auto kReportEvery = std::chrono::seconds(60);
}  // namespace

uint64_t listener_tag(std::size_t i) { return kListenerTagBase + i; }
uint64_t wake_tag() { return kWakeTag; }
uint64_t completions_tag() { return kCompletionsTag; }

void Server::Impl::doom_locked(Connection* c) {
  release_locked(c);
  c->state = ConnState::closing;
  doomed.push_back(c);
}

Connection* Server::Impl::victim_locked(Budget& b, clock::time_point now) {
  if (!b.draining.empty()) return b.draining.front();  // already answered
  // The longest wait without a complete request: an idle kept-alive
  // connection, or one that never finished (or never started) a request. A
  // client that calls now and then keeps its connection over silent ones.
  Connection* idle = b.parked.empty() ? nullptr : b.parked.front();
  Connection* slow = b.reading.empty() ? nullptr : b.reading.front();
  if (slow && now - slow->since < kEvictableAfter) slow = nullptr;
  if (idle && slow) return idle->since <= slow->since ? idle : slow;
  return idle ? idle : slow;
}

void Server::Impl::accept_all(std::size_t index, clock::time_point now) {
  const detail::Listener& l = listeners[index];
  for (;;) {
    int fd = ::accept4(l.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of fds: stop watching this listener for a moment instead of
        // spinning on it (sweep() resumes it); everything else goes on.
        epoll_event ev{};
        ev.data.u64 = listener_tag(index);
        ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, l.fd(), &ev);
        paused_until[index] = now + kOutOfFdsPause;
        std::lock_guard<std::mutex> lk(mu);
        ++refusals.out_of_fds;
      }
      return;  // EAGAIN: drained
    }
    if (l.is_tcp()) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    detail::PeerIdentity peer = detail::identify_peer(fd, l.is_tcp());
    take_connection(UniqueFd(fd), l.is_tcp(), std::move(peer), now);
  }
}

void Server::Impl::take_adopted(clock::time_point now) {
  std::vector<std::pair<UniqueFd, std::string>> batch;
  {
    std::lock_guard<std::mutex> lk(mu);
    batch.swap(adopted);
  }
  for (auto& [fd, address] : batch) take_connection(std::move(fd), true, detail::PeerIdentity{-1, std::move(address)}, now);
}

void Server::Impl::take_connection(UniqueFd fd_owned, bool tcp_conn, detail::PeerIdentity peer, clock::time_point now) {
  const int fd = fd_owned.get();
  auto c = std::make_unique<Connection>();
  c->fd = std::move(fd_owned);
  c->tcp = tcp_conn;
  // Reads time out quickly (a worker waiting for a next request looks up
  // between them); the send timeout bounds a client that doesn't read.
  detail::set_socket_timeouts(fd, detail::kLingerSlice, limits.send_timeout);
  c->peer = std::move(peer);
  if (c->tcp) c->source = throttle_source(c->peer.address, -1);
  c->since = now;
  std::unique_lock<std::mutex> lk(mu);
  Budget& b = budget(c.get());
  if (c->tcp && per_source[c->source] >= limits.max_connections_per_source) {
    ++refusals.per_source;
    lk.unlock();
    detail::send_http_error(fd, 503, "Service Unavailable", "too many connections from this address\n", true, true);
    return;  // unique_ptr closes it
  }
  if (b.live >= limits.max_connections) {
    Connection* v = victim_locked(b, now);
    if (!v) {
      ++refusals.budget;
      lk.unlock();
      detail::send_http_error(fd, 503, "Service Unavailable", "too many connections\n", true, true);
      return;
    }
    ++refusals.evicted;
    doom_locked(v);
  }
  Connection* raw = c.release();
  live.insert(raw);
  ++b.live;
  if (raw->tcp) ++per_source[raw->source];
  raw->state = ConnState::reading;
  lk.unlock();
  // The request has often arrived with the connection: reading it now
  // saves a trip through epoll.
  ReadResult r = detail::read_request(*raw, *ctx);
  lk.lock();
  after_read_locked(raw, r, false);
}

void Server::Impl::after_read_locked(Connection* c, ReadResult r, bool was_parked) {
  Budget& b = budget(c);
  bool ok = true;
  switch (r) {
    case ReadResult::complete: enqueue_locked(c); return;
    case ReadResult::incomplete:
      ok = wait_locked(c, ConnState::reading, &b.reading, c->req ? c->req->started : c->since);
      break;
    case ReadResult::idle:
      ok = was_parked ? wait_locked(c, ConnState::parked, &b.parked, c->since)
                      : wait_locked(c, ConnState::reading, &b.reading, c->since);
      break;
    case ReadResult::refused:
      start_drain_locked(c);
      ok = c->state == ConnState::draining;
      break;
    case ReadResult::closed: ok = false; break;
  }
  if (!ok) doom_locked(c);
}

void Server::Impl::drain(Connection* c) {
  char sink[64u << 10];  // stack, not thread_local (see read_request)
  bool done = false;
  // At most kDrainPerEvent per turn, like reading a request.
  for (std::size_t turn = 0; turn < kDrainPerEvent && !done;) {
    ssize_t n = ::recv(c->fd.get(), sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) {
      c->drained += static_cast<std::size_t>(n);
      turn += static_cast<std::size_t>(n);
      done = c->drained > limits.max_body_bytes;  // enough politeness
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;  // nothing more for now
    } else {
      done = true;  // EOF or error
    }
  }
  std::lock_guard<std::mutex> lk(mu);
  if (done || !wait_locked(c, ConnState::draining, &budget(c).draining, c->since)) doom_locked(c);
}

void Server::Impl::on_event(Connection* c, clock::time_point now) {
  std::unique_lock<std::mutex> lk(mu);
  bool was_parked = false;
  switch (c->state) {
    case ConnState::awaiting: {
      // The client hung up while its call waits for an answer.
      auto reply = c->reply;
      lk.unlock();
      bool dropped = reply && reply->abandon();
      lk.lock();
      if (dropped) doom_locked(c);  // else it has just been answered: it is on `completed`
      return;
    }
    case ConnState::parked:
      was_parked = true;
      c->since = now;  // a next request is starting
      break;
    case ConnState::reading:
    case ConnState::draining: break;
    default: return;  // closing (dropped earlier in this batch)
  }
  if (c->list) {
    c->list->erase(c->pos);
    c->list = nullptr;
  }
  const bool draining = c->state == ConnState::draining;
  lk.unlock();
  // This thread owns the connection now: nobody else touches a connection
  // in an epoll state, so it is read without the lock.
  if (draining) return drain(c);
  ReadResult r = detail::read_request(*c, *ctx);
  lk.lock();
  after_read_locked(c, r, was_parked);
}

void Server::Impl::take_completions() {
  uint64_t n;
  (void)!::read(completions.get(), &n, sizeof n);
  std::lock_guard<std::mutex> lk(mu);
  for (Connection* c : completed) {
    if (c->state != ConnState::awaiting) continue;
    // Out of epoll before a worker gets it: a hang-up event must never
    // reach this thread for a connection a worker may have closed.
    if (c->in_epoll) {
      ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
      c->in_epoll = false;
    }
    enqueue_locked(c);
  }
  completed.clear();
}

void Server::Impl::sweep(clock::time_point now) {
  std::lock_guard<std::mutex> lk(mu);
  for (Budget* b : {&tcp, &unix_}) {
    // Idle connections go sooner when the budget fills up.
    auto idle_limit = limits.idle_timeout;
    if (b->live * 4 >= limits.max_connections * 3 &&
        (idle_limit.count() <= 0 || limits.pressure_idle_timeout < idle_limit))
      idle_limit = limits.pressure_idle_timeout;
    while (idle_limit.count() > 0 && !b->parked.empty() && now - b->parked.front()->since >= idle_limit) {
      ++refusals.idle_closed;
      doom_locked(b->parked.front());
    }
    for (auto it = b->reading.begin(); it != b->reading.end();) {
      Connection* c = *it++;
      if (detail::request_deadline(*c, limits) > now) continue;
      if (c->req) {  // a request had started: say why it ends
        ++refusals.timed_out;
        detail::send_http_error(c->fd.get(), 408, "Request Timeout", "request not received in time\n", true, true);
      }
      doom_locked(c);
    }
    while (!b->draining.empty() && now - b->draining.front()->since >= kDrainTimeout) doom_locked(b->draining.front());
  }
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    if (paused_until[i] == clock::time_point{} || paused_until[i] > now) continue;
    paused_until[i] = {};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listener_tag(i);
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listeners[i].fd(), &ev);
  }
  report_locked(now);
}

void Server::Impl::report_locked(clock::time_point now) {
  if (now - last_report < kReportEvery) return;
  last_report = now;
  if (!refusals.any()) return;
  // One line a minute at most, however hard the server is pushed.
  spdlog::warn(
      "api: in the last minute {} connections refused (per-address cap {}), {} refused (budget {} full), {} idle "
      "ones closed to admit new ones, {} closed idle under pressure, {} requests timed out (408), {} accept pauses "
      "for want of file descriptors",
      refusals.per_source, limits.max_connections_per_source, refusals.budget, limits.max_connections,
      refusals.evicted, refusals.idle_closed, refusals.timed_out, refusals.out_of_fds);
  refusals = {};
}

void Server::Impl::poll_loop() {
  epoll_event evs[256];
  auto last_sweep = clock::now();
  for (;;) {
    int n = ::epoll_wait(epoll.get(), evs, 256, static_cast<int>(kTick.count()));
    if (n < 0 && errno != EINTR) return;  // EBADF etc.: nothing sensible left to do
    const auto now = clock::now();
    bool replies = false;
    for (int i = 0; i < n; ++i) {
      uint64_t tag = evs[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag == kCompletionsTag) {
        replies = true;  // after this batch: see take_completions()
      } else if (tag >= kListenerTagBase && tag < kListenerTagBase + listeners.size()) {
        accept_all(tag - kListenerTagBase, now);
      } else {
        on_event(reinterpret_cast<Connection*>(static_cast<uintptr_t>(tag)), now);
      }
    }
    if (replies) {
      take_completions();
      take_adopted(now);
    }
    if (now - last_sweep >= kTick) {
      sweep(now);
      last_sweep = now;
    }
    // Deleted only now: an event later in the batch may have named one.
    for (Connection* c : doomed) delete c;
    doomed.clear();
  }
}

}  // namespace vmstack::api
