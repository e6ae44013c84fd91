// A hostile client, for the hostile-load test (tests/ops) and benchmark
// (bench/hostile_load.cpp): idle connections, slowloris headers, huge bodies
// with a forged session, bursts of wrong-password logins and event.from long
// polls, all at once, from many loopback source addresses (127.0.0.0/8 is
// all loopback on Linux, so per-address caps see many clients). Everything
// runs on background threads until stop() or destruction; nothing here
// asserts, it counts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"

namespace vmstack::test {

struct AttackPlan {
  // The target: TCP 127.0.0.1:tcp_port, or the unix socket at unix_path when
  // tcp_port is 0 (then source addresses do not apply).
  unsigned short tcp_port = 0;
  std::string unix_path;
  // Sources are 127.<n>.x.y: each kind of attack gets its own block of
  // addresses, `per_source` connections each.
  int per_source = 100;

  int idle = 0;       // connect and say nothing; re-opened when closed
  int slowloris = 0;  // trickle `slow_payload` a byte every `trickle_every`
  std::chrono::milliseconds trickle_every{2000};
  std::string slow_payload;  // default: an HTTP request header that never ends

  int big_bodies = 0;  // concurrent XML-RPC calls with a forged session and a huge body, repeated
  std::size_t big_body_bytes = 16u << 20;
  int wrong_logins = 0;  // concurrent session.login_with_password("root", wrong), repeated, one source each
  int long_polls = 0;    // concurrent event.from(session, ["VM"], now, 10 s), repeated
  std::string session;   // a valid session for the long polls
};

struct AttackCounts {
  std::atomic<long> opened{0}, reopened{0}, refused{0};  // idle + slowloris connections
  std::atomic<long> trickled{0};                          // slowloris bytes sent
  std::atomic<long> bodies_sent{0}, bodies_refused{0};    // big bodies: started, answered with a refusal
  std::atomic<long> logins{0}, logins_refused{0};
  std::atomic<long> polls{0}, polls_answered{0};  // long polls sent, and answered (timed out: nothing changed)
};

// A TCP connection to 127.0.0.1:port from `source` (non-blocking when
// asked); empty on failure.
UniqueFd connect_from(const std::string& source, unsigned short port, bool nonblocking = false);
UniqueFd connect_unix_path(const std::string& path, bool nonblocking = false);
// One raw XML-RPC call (Connection: close) over `fd`; the whole response
// (what came before the timeout, or before `*stop` was set).
std::string raw_xmlrpc(int fd, const std::string& body, std::chrono::milliseconds timeout,
                       const std::atomic<bool>* stop = nullptr);

class Attack {
 public:
  explicit Attack(AttackPlan plan);
  ~Attack();
  Attack(const Attack&) = delete;
  Attack& operator=(const Attack&) = delete;

  void start();
  void stop();
  const AttackCounts& counts() const { return counts_; }
  // Idle and slowloris connections currently open (as far as we can tell).
  long connections_open() const { return open_now_; }

 private:
  UniqueFd connect(const std::string& source, bool nonblocking) const;
  std::string source(int block, int index) const;
  void run_connections();  // idle + slowloris, one thread, poll()
  void run_big_body(int index);
  void run_login(int index);
  void run_poll(int index);

  AttackPlan plan_;
  AttackCounts counts_;
  std::atomic<bool> stop_{false};
  std::atomic<long> open_now_{0};
  std::vector<std::thread> threads_;
};

// Sets RLIMIT_NOFILE's soft limit to its hard limit (children inherit it);
// returns the new soft limit.
long raise_fd_limit();

}  // namespace vmstack::test
