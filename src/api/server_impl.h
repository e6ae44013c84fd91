// The API server's internals (src/api only). server.cpp has the overview;
// server_events.cpp is the event thread (accepting, reading slow and idle
// clients, timeouts, evictions), server_pool.cpp the workers, stream threads
// and deferred replies.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/http_conn.h"
#include "api/listener.h"
#include "api/server.h"

namespace vmstack::api {

using detail::clock;
using detail::Connection;
using detail::ConnState;

// One transport's connections (TCP or the unix socket): its count against
// max_connections and the lists of those waiting for their client, each
// oldest first, which is the order they are given up in under pressure.
struct Budget {
  std::size_t live = 0;
  std::list<Connection*> draining;  // refused, discarding input
  std::list<Connection*> parked;    // idle between requests
  std::list<Connection*> reading;   // new, or a request in progress
};

// Counts for the periodic log line (what was refused, and why).
struct Refusals {
  std::size_t per_source = 0, budget = 0, evicted = 0, timed_out = 0, idle_closed = 0, out_of_fds = 0;
  bool any() const { return per_source + budget + evicted + timed_out + idle_closed + out_of_fds > 0; }
};

struct Server::Impl {
  ServerConfig cfg;
  Dispatcher dispatch;
  detail::Routes routes;
  ServerLimits limits;
  BodyAdmission admit;

  std::vector<detail::Listener> listeners;
  std::vector<clock::time_point> paused_until;  // per listener: out of fds, accepting resumes then
  UniqueFd epoll;
  UniqueFd wake;         // eventfd: tells the event thread to exit
  UniqueFd completions;  // eventfd: deferred replies were completed
  std::thread poller;
  std::atomic<bool> stopping{false};
  std::atomic<bool> pressure{false};  // connections wait on a ready queue
  std::atomic<unsigned> pollers{0};   // workers busy-polling (ServerLimits::busy_poll)
  bool started = false;
  bool stopped = false;
  unsigned short port = 0;
  unsigned tcp_cap = 1;  // workers TCP connections may occupy

  std::mutex mu;  // guards everything below and the Connection bookkeeping fields
  std::condition_variable work_cv;
  std::deque<Connection*> ready_unix, ready_tcp;
  Budget tcp, unix_;
  std::unordered_map<std::string, std::size_t> per_source;  // TCP connections by source
  std::unordered_set<Connection*> live;  // owned: every accepted, not yet deleted connection
  std::vector<Connection*> completed;    // awaiting connections whose reply has come
  std::vector<std::pair<UniqueFd, std::string>> adopted;  // Server::adopt: fd, peer address
  std::map<uint64_t, std::thread> workers, streams;
  std::vector<uint64_t> finished_workers, finished_streams;  // exited, to be joined
  uint64_t next_thread_id = 0;
  unsigned idle_workers = 0;
  unsigned tcp_busy = 0;
  unsigned tcp_streams = 0;  // streams (and POST routes) of TCP connections
  Refusals refusals;
  clock::time_point last_report = clock::now();

  std::vector<Connection*> doomed;  // event thread only: dropped in this batch, deleted after it
  std::unique_ptr<detail::HttpContext> ctx;

  Budget& budget(const Connection* c) { return c->tcp ? tcp : unix_; }

  // ---- event thread (server_events.cpp)
  void poll_loop();
  void accept_all(std::size_t index, clock::time_point now);
  // A connection from a listener or adopted: limits, budget, first read.
  void take_connection(UniqueFd fd, bool tcp, detail::PeerIdentity peer, clock::time_point now);
  void take_adopted(clock::time_point now);
  void on_event(Connection* c, clock::time_point now);
  void after_read_locked(Connection* c, detail::ReadResult r, bool was_parked);
  void drain(Connection* c);
  void sweep(clock::time_point now);
  void take_completions();
  Connection* victim_locked(Budget& b, clock::time_point now);
  void doom_locked(Connection* c);
  void report_locked(clock::time_point now);

  // ---- shared bookkeeping (server_pool.cpp)
  // Puts the connection in epoll in state `s` (on `list`, when given);
  // false if epoll refused it.
  bool wait_locked(Connection* c, ConnState s, std::list<Connection*>* list, clock::time_point since);
  void start_drain_locked(Connection* c);
  void release_locked(Connection* c);
  void close_locked(std::unique_lock<std::mutex>& lk, Connection* c);

  // ---- workers, streams, replies (server_pool.cpp)
  void worker_loop(uint64_t id);
  void enqueue_locked(Connection* c);
  bool takeable_locked() const;
  Connection* take_locked();
  void spawn_worker_locked();
  unsigned live_workers_locked() const { return static_cast<unsigned>(workers.size() - finished_workers.size()); }
  void after_serve_locked(std::unique_lock<std::mutex>& lk, Connection* c, detail::AfterServe a);
  bool start_stream(Connection& c, std::function<void(Connection&)> run);
  std::shared_ptr<PendingReply> make_reply(Connection& c);
  bool await_reply(Connection& c);
  void deliver(Connection* c, RpcResult r);
};

void join_finished(std::map<uint64_t, std::thread>& threads, std::vector<uint64_t>& finished);
// epoll_event.data of the event thread's own fds (server_events.cpp).
uint64_t wake_tag();
uint64_t completions_tag();
uint64_t listener_tag(std::size_t index);

}  // namespace vmstack::api
