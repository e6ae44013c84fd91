// The server's workers, stream threads and deferred replies (see server.cpp
// for the overview), and the connection bookkeeping shared with the event
// thread.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "api/server_impl.h"

namespace vmstack::api {

using detail::AfterServe;

namespace {
constexpr auto kWorkerRetireAfter = std::chrono::seconds(30);
}  // namespace

void join_finished(std::map<uint64_t, std::thread>& threads, std::vector<uint64_t>& finished) {
  for (uint64_t id : finished) {
    auto it = threads.find(id);
    if (it == threads.end()) continue;
    it->second.join();  // it has marked itself finished as its last locked act
    threads.erase(it);
  }
  finished.clear();
}

// ---- bookkeeping

bool Server::Impl::wait_locked(Connection* c, ConnState s, std::list<Connection*>* list, clock::time_point since) {
  c->state = s;
  c->since = since;
  if (list) {
    c->list = list;
    c->pos = list->insert(list->end(), c);
  }
  epoll_event ev{};
  // A deferred call's connection is watched for the client hanging up only:
  // a pipelined next request waits in the socket until the answer is sent.
  ev.events = (s == ConnState::awaiting ? 0u : uint32_t{EPOLLIN}) | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = reinterpret_cast<uintptr_t>(c);
  // Listed before armed: the event thread looks the connection up as soon
  // as the event can fire.
  if (::epoll_ctl(epoll.get(), c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) {
    if (list) {
      list->erase(c->pos);
      c->list = nullptr;
    }
    return false;
  }
  c->in_epoll = true;
  return true;
}

void Server::Impl::start_drain_locked(Connection* c) {
  // The answer has been sent: the client sees EOF after it, and whatever it
  // still sends is read and dropped, so closing never resets the connection
  // before the client has read the answer.
  ::shutdown(c->fd.get(), SHUT_WR);
  c->req.reset();
  c->buf.clear();
  c->buf.shrink_to_fit();
  c->drained = 0;
  if (!wait_locked(c, ConnState::draining, &budget(c).draining, clock::now())) c->state = ConnState::closing;
}

void Server::Impl::release_locked(Connection* c) {
  if (c->list) {
    c->list->erase(c->pos);
    c->list = nullptr;
  }
  if (!live.erase(c)) return;
  --budget(c).live;
  if (c->tcp) {
    auto it = per_source.find(c->source);
    if (it != per_source.end() && --it->second == 0) per_source.erase(it);
  }
}

void Server::Impl::close_locked(std::unique_lock<std::mutex>& lk, Connection* c) {
  release_locked(c);
  lk.unlock();
  delete c;  // closing the fd also removes it from epoll
  lk.lock();
}

// ---- workers

bool Server::Impl::takeable_locked() const {
  return !ready_unix.empty() || (!ready_tcp.empty() && tcp_busy < tcp_cap);
}

Connection* Server::Impl::take_locked() {
  Connection* c = nullptr;
  if (!ready_unix.empty()) {  // local callers first
    c = ready_unix.front();
    ready_unix.pop_front();
  } else if (!ready_tcp.empty() && tcp_busy < tcp_cap) {
    c = ready_tcp.front();
    ready_tcp.pop_front();
    ++tcp_busy;
  }
  pressure = !ready_unix.empty() || !ready_tcp.empty();
  return c;
}

void Server::Impl::enqueue_locked(Connection* c) {
  c->state = ConnState::ready;
  (c->tcp ? ready_tcp : ready_unix).push_back(c);
  std::size_t takeable = ready_unix.size() + std::min<std::size_t>(ready_tcp.size(), tcp_busy < tcp_cap ? tcp_cap - tcp_busy : 0);
  if (takeable > idle_workers && live_workers_locked() < limits.max_threads) spawn_worker_locked();
  pressure = true;
  work_cv.notify_one();
}

void Server::Impl::spawn_worker_locked() {
  join_finished(workers, finished_workers);
  uint64_t id = next_thread_id++;
  try {
    workers.emplace(id, std::thread([this, id] { worker_loop(id); }));
  } catch (const std::system_error&) {
    // Out of threads: the existing workers will get to the queue eventually.
  }
}

void Server::Impl::worker_loop(uint64_t id) {
  std::unique_lock<std::mutex> lk(mu);
  for (;;) {
    ++idle_workers;
    bool woke = work_cv.wait_for(lk, kWorkerRetireAfter, [&] { return takeable_locked() || stopping; });
    --idle_workers;
    Connection* c = take_locked();
    if (!c) {
      if (stopping) break;
      if (!woke && live_workers_locked() > std::max(1u, cfg.threads)) break;  // retire
      continue;
    }
    const bool tcp_conn = c->tcp;  // `c` may belong to another thread once served
    c->state = ConnState::active;
    lk.unlock();
    AfterServe after = AfterServe::close;
    // While stopping, only answers that have already been computed go out.
    if (!stopping || c->result) {
      try {
        after = detail::serve_connection(*c, *ctx);
      } catch (...) {
        after = AfterServe::close;  // e.g. bad_alloc: lose this connection, not the server
      }
    }
    lk.lock();
    if (tcp_conn) --tcp_busy;
    after_serve_locked(lk, c, after);
  }
  finished_workers.push_back(id);
}

void Server::Impl::after_serve_locked(std::unique_lock<std::mutex>& lk, Connection* c, AfterServe a) {
  if (a == AfterServe::handed_over) return;
  if (stopping) a = AfterServe::close;
  Budget& b = budget(c);
  switch (a) {
    case AfterServe::park:
      if (wait_locked(c, ConnState::parked, &b.parked, clock::now())) return;
      break;
    case AfterServe::read_on:
      if (wait_locked(c, ConnState::reading, &b.reading, c->since)) return;
      break;
    case AfterServe::drain:
      start_drain_locked(c);
      if (c->state == ConnState::draining) return;
      break;
    default: break;
  }
  close_locked(lk, c);
}

// ---- streams

bool Server::Impl::start_stream(Connection& c, std::function<void(Connection&)> run) {
  std::lock_guard<std::mutex> lk(mu);
  join_finished(streams, finished_streams);
  if (stopping || streams.size() >= limits.max_streams) return false;
  // TCP gets half the streams: the rest stay for the unix socket (local
  // root's consoles and xe commands), whatever TCP clients hold open.
  const bool tcp = c.tcp;
  if (tcp && tcp_streams >= limits.max_streams / 2) return false;
  uint64_t id = next_thread_id++;
  c.state = ConnState::streaming;
  try {
    streams.emplace(id, std::thread([this, &c, run = std::move(run), id, tcp] {
      run(c);
      {
        std::lock_guard<std::mutex> lk2(mu);
        release_locked(&c);
        finished_streams.push_back(id);
        if (tcp) --tcp_streams;
      }
      delete &c;
    }));
  } catch (const std::system_error&) {
    c.state = ConnState::active;
    return false;
  }
  if (tcp) ++tcp_streams;
  return true;
}

// ---- deferred replies

std::shared_ptr<PendingReply> Server::Impl::make_reply(Connection& c) {
  if (stopping) return nullptr;  // no one would send the answer
  return std::make_shared<PendingReply>([this, cp = &c](RpcResult r) { deliver(cp, std::move(r)); });
}

bool Server::Impl::await_reply(Connection& c) {
  std::lock_guard<std::mutex> lk(mu);
  if (c.result) return false;
  // On no wait list: a call waiting for its answer is neither idle nor
  // slow, so it is never timed out or evicted. If it cannot be watched for
  // a hang-up it still gets its answer when it comes.
  if (!wait_locked(&c, ConnState::awaiting, nullptr, clock::now())) c.state = ConnState::awaiting;
  return true;
}

void Server::Impl::deliver(Connection* c, RpcResult r) {
  std::lock_guard<std::mutex> lk(mu);
  c->result = std::move(r);
  if (c->state != ConnState::awaiting) return;  // its worker will find the answer
  completed.push_back(c);
  uint64_t one = 1;
  (void)!::write(completions.get(), &one, sizeof one);
}

}  // namespace vmstack::api
