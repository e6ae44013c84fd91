// lb_loadgen: the load generator of the vmstack-lb benchmark.
//
//   lb_loadgen rate --target ADDR:PORT [--concurrency 50] [--duration 10] [--warmup 1]
//       Closed loop, one HTTP request per TCP connection: connect, send
//       "GET / HTTP/1.1 ... Connection: close", read until the server closes.
//       Latency is the whole exchange, connect included (what a new
//       connection through a balancer costs). Prints one JSON line:
//       {"conns_per_s":..., "p50_ms":..., "p90_ms":..., "p99_ms":..., "errors":...}
//
//   lb_loadgen idle --target ADDR:PORT --count N
//       Opens N connections that send nothing, prints "ready N" once all are
//       established, holds them until stdin reaches EOF, then closes them.
//
// wrk does not fit: its latency excludes connection setup, and it cannot
// park thousands of idle connections.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/fd.h"
#include "lb/types.h"

using vmstack::UniqueFd;
using vmstack::lb::Endpoint;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string mode;
  Endpoint target;
  int concurrency = 50;
  double duration = 10;
  double warmup = 1;
  int count = 1000;
};

int usage() {
  std::fprintf(stderr,
               "usage: lb_loadgen rate --target ADDR:PORT [--concurrency N] [--duration S] "
               "[--warmup S]\n"
               "       lb_loadgen idle --target ADDR:PORT --count N\n");
  return 2;
}

void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

UniqueFd start_connect(const Endpoint& ep) {
  sockaddr_storage ss;
  socklen_t len = ep.to_sockaddr(&ss);
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return UniqueFd();
  return fd;
}

// ------------------------------------------------------------------ rate
struct Slot {
  UniqueFd fd;
  enum { Idle, Connecting, Reading } state = Idle;
  Clock::time_point start;
  std::string resp;
};

int run_rate(const Args& a) {
  const std::string req = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  std::vector<Slot> slots(size_t(a.concurrency));
  std::vector<uint32_t> lat_us;
  lat_us.reserve(1 << 20);
  uint64_t errors = 0, done = 0;
  const auto t0 = Clock::now();
  const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(a.warmup));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(a.duration));
  bool stopping = false;

  auto launch = [&](size_t i) {
    Slot& s = slots[i];
    s.resp.clear();
    s.start = Clock::now();
    s.fd = start_connect(a.target);
    if (!s.fd) {
      ++errors;
      s.state = Slot::Idle;
      return;
    }
    s.state = Slot::Connecting;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, s.fd.get(), &ev);
  };
  auto finish = [&](size_t i, bool ok) {
    Slot& s = slots[i];
    auto now = Clock::now();
    if (s.start >= measure_from && now <= end) {
      if (ok) {
        lat_us.push_back(uint32_t(
            std::chrono::duration_cast<std::chrono::microseconds>(now - s.start).count()));
        ++done;
      } else {
        ++errors;
      }
    }
    s.fd.reset();  // closes and leaves the epoll set
    s.state = Slot::Idle;
    if (!stopping) launch(i);
  };

  for (size_t i = 0; i < slots.size(); ++i) launch(i);
  epoll_event evs[512];
  char buf[16384];
  while (true) {
    auto now = Clock::now();
    if (now >= end) stopping = true;
    bool any = std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.state != Slot::Idle; });
    if (stopping && !any) break;
    if (!stopping)
      for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i].state == Slot::Idle) launch(i);  // retry after connect errors
    int n = epoll_wait(ep.get(), evs, 512, 100);
    for (int k = 0; k < n; ++k) {
      size_t i = evs[k].data.u64;
      Slot& s = slots[i];
      if (s.state == Slot::Connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || !(evs[k].events & EPOLLOUT)) {
          finish(i, false);
          continue;
        }
        if (::send(s.fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != ssize_t(req.size())) {
          finish(i, false);
          continue;
        }
        s.state = Slot::Reading;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = i;
        epoll_ctl(ep.get(), EPOLL_CTL_MOD, s.fd.get(), &ev);
        continue;
      }
      if (s.state != Slot::Reading) continue;
      for (;;) {
        ssize_t r = ::recv(s.fd.get(), buf, sizeof buf, 0);
        if (r > 0) {
          s.resp.append(buf, size_t(r));
          continue;
        }
        if (r == 0) {
          finish(i, s.resp.compare(0, 12, "HTTP/1.1 200") == 0);
        } else if (errno != EAGAIN) {
          finish(i, false);
        }
        break;
      }
    }
    // A stuck exchange (lost SYN...) counts as an error after 5 s.
    now = Clock::now();
    for (size_t i = 0; i < slots.size(); ++i)
      if (slots[i].state != Slot::Idle && now - slots[i].start > std::chrono::seconds(5))
        finish(i, false);
  }
  std::sort(lat_us.begin(), lat_us.end());
  auto pct = [&](double p) {
    if (lat_us.empty()) return 0.0;
    size_t idx = std::min(lat_us.size() - 1, size_t(p * double(lat_us.size())));
    return lat_us[idx] / 1000.0;
  };
  std::printf(
      "{\"conns_per_s\": %.0f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
      "\"errors\": %llu, \"completed\": %llu}\n",
      double(done) / a.duration, pct(0.50), pct(0.90), pct(0.99),
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(done));
  return 0;
}

// ------------------------------------------------------------------ idle
int run_idle(const Args& a) {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  std::vector<UniqueFd> conns;
  conns.reserve(size_t(a.count));
  int established = 0, failed = 0;
  // Open in batches so the listen backlogs never overflow.
  constexpr int kBatch = 200;
  epoll_event evs[512];
  for (int opened = 0; opened < a.count;) {
    int batch = std::min(kBatch, a.count - opened);
    for (int i = 0; i < batch; ++i) {
      UniqueFd fd = start_connect(a.target);
      if (!fd) {
        std::fprintf(stderr, "lb_loadgen: connect: %s\n", std::strerror(errno));
        return 1;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.fd = fd.get();
      epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev);
      conns.push_back(std::move(fd));
    }
    opened += batch;
    int pending = batch;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (pending > 0 && Clock::now() < deadline) {
      int n = epoll_wait(ep.get(), evs, 512, 100);
      for (int k = 0; k < n; ++k) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(evs[k].data.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        (err ? failed : established)++;
        epoll_ctl(ep.get(), EPOLL_CTL_DEL, evs[k].data.fd, nullptr);
        --pending;
      }
    }
  }
  std::printf("ready %d failed %d\n", established, failed);
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  Args a;
  a.mode = argv[1];
  bool have_target = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") {
      auto e = Endpoint::parse(v);
      if (!e) return usage();
      a.target = *e;
      have_target = true;
    } else if (k == "--concurrency") {
      a.concurrency = std::max(1, std::stoi(v));
    } else if (k == "--duration") {
      a.duration = std::stod(v);
    } else if (k == "--warmup") {
      a.warmup = std::stod(v);
    } else if (k == "--count") {
      a.count = std::max(1, std::stoi(v));
    } else {
      return usage();
    }
  }
  if (!have_target) return usage();
  raise_nofile();
  if (a.mode == "rate") return run_rate(a);
  if (a.mode == "idle") return run_idle(a);
  return usage();
}
