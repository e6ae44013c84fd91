// Socket helpers for the lb tests: loopback servers and clients with
// bounded waits (every blocking call has a timeout).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "lb/types.h"

namespace lbtest {

using vmstack::UniqueFd;
using vmstack::lb::Endpoint;

inline void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Bound socket on addr:port (port 0: any); *bound gets the real endpoint.
inline UniqueFd bind_socket(int type, const std::string& addr, uint16_t port, Endpoint* bound) {
  Endpoint ep = *Endpoint::parse(addr + ":" + std::to_string(port));
  sockaddr_storage ss;
  socklen_t len = ep.to_sockaddr(&ss);
  UniqueFd fd(::socket(ss.ss_family, type | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return UniqueFd();
  if (type == SOCK_STREAM && ::listen(fd.get(), 4096) != 0) return UniqueFd();
  len = sizeof ss;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  if (bound) *bound = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
  return fd;
}

// A port that was free a moment ago (for a VIP the proxy binds itself).
inline uint16_t free_port(int type = SOCK_STREAM, const std::string& addr = "127.0.0.1") {
  Endpoint ep;
  UniqueFd fd = bind_socket(type, addr, 0, &ep);
  return ep.port;
}

inline UniqueFd connect_tcp(const Endpoint& ep, int timeout_ms = 3000) {
  sockaddr_storage ss;
  socklen_t len = ep.to_sockaddr(&ss);
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  set_timeouts(fd.get(), timeout_ms);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return UniqueFd();
  return fd;
}

inline bool send_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}
inline bool send_all(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

// Reads until EOF, error/timeout, or `max` bytes. *eof tells which.
inline std::string read_up_to(int fd, size_t max, bool* eof = nullptr, int timeout_ms = 3000) {
  std::string out;
  char buf[65536];
  if (eof) *eof = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < max) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - std::chrono::steady_clock::now())
                       .count());
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, max - out.size()), MSG_DONTWAIT);
    if (n == 0) {
      if (eof) *eof = true;
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (eof) *eof = true;  // reset counts as the end too
      break;
    }
    out.append(buf, size_t(n));
  }
  return out;
}

// Reads until `needle` shows up (or EOF/timeout); returns what was read.
inline std::string read_until(int fd, const std::string& needle, int timeout_ms = 3000) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.find(needle) == std::string::npos) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - std::chrono::steady_clock::now())
                       .count());
    if (left <= 0) break;
    bool eof = false;
    std::string more = read_up_to(fd, 1, &eof, left);
    out += more;
    if (eof || more.empty()) break;
  }
  return out;
}

// TCP server on loopback running `handler(fd)` for each connection on its
// own thread. Threads are joined on destruction (handlers must return:
// their sockets have receive/send timeouts).
class TcpServer {
 public:
  using Handler = std::function<void(int fd)>;
  TcpServer(Handler h, const std::string& addr = "127.0.0.1") : handler_(std::move(h)) {
    fd_ = bind_socket(SOCK_STREAM, addr, 0, &ep_);
    accept_thread_ = std::thread([this] { loop(); });
  }
  ~TcpServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    accept_thread_.join();
    for (auto& t : conns_) t.join();
  }
  const Endpoint& endpoint() const { return ep_; }
  int accepted() const { return accepted_.load(); }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      set_timeouts(c, 5000);
      conns_.emplace_back([this, c] {
        UniqueFd owned(c);
        handler_(c);
      });
    }
  }
  Handler handler_;
  UniqueFd fd_;
  Endpoint ep_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::vector<std::thread> conns_;
};

// Echo handler: echoes until EOF, then half-closes its side.
inline void echo_handler(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (!send_all(fd, buf, size_t(n))) return;
  }
  ::shutdown(fd, SHUT_WR);
}

// Many-connection echo server: one poll() thread for all connections.
class PollEchoServer {
 public:
  explicit PollEchoServer(const std::string& addr = "127.0.0.1") {
    fd_ = bind_socket(SOCK_STREAM, addr, 0, &ep_);
    fcntl(fd_.get(), F_SETFL, O_NONBLOCK);  // the accept loop drains the queue
    thread_ = std::thread([this] { loop(); });
  }
  ~PollEchoServer() {
    stop_ = true;
    thread_.join();
  }
  const Endpoint& endpoint() const { return ep_; }
  size_t open() const { return open_.load(); }

 private:
  void loop() {
    std::vector<UniqueFd> conns;
    std::vector<pollfd> pfds;
    char buf[4096];
    while (!stop_) {
      pfds.clear();
      pfds.push_back({fd_.get(), POLLIN, 0});
      for (auto& c : conns) pfds.push_back({c.get(), POLLIN, 0});
      if (::poll(pfds.data(), pfds.size(), 50) <= 0) continue;
      if (pfds[0].revents & POLLIN) {
        for (;;) {
          int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          conns.emplace_back(c);
        }
      }
      std::vector<UniqueFd> keep;
      for (size_t i = 0; i + 1 < pfds.size(); ++i) {
        bool alive = true;
        if (pfds[i + 1].revents) {
          ssize_t n = ::recv(conns[i].get(), buf, sizeof buf, 0);
          if (n > 0)
            (void)!::send(conns[i].get(), buf, size_t(n), MSG_NOSIGNAL);
          else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            alive = false;
        }
        if (alive) keep.push_back(std::move(conns[i]));
      }
      // Accepted during this round: not polled yet.
      for (size_t i = pfds.size() - 1; i < conns.size(); ++i) keep.push_back(std::move(conns[i]));
      conns = std::move(keep);
      open_ = conns.size();
    }
  }
  UniqueFd fd_;
  Endpoint ep_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> open_{0};
  std::thread thread_;
};

// UDP echo server that prefixes replies with its name.
class UdpEcho {
 public:
  explicit UdpEcho(std::string name, const std::string& addr = "127.0.0.1")
      : name_(std::move(name)) {
    fd_ = bind_socket(SOCK_DGRAM, addr, 0, &ep_);
    thread_ = std::thread([this] { loop(); });
  }
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
  }
  const Endpoint& endpoint() const { return ep_; }
  int received() const { return received_.load(); }

 private:
  void loop() {
    char buf[65536];
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage ss;
      socklen_t len = sizeof ss;
      ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ss), &len);
      if (n < 0) continue;
      ++received_;
      std::string reply = name_ + ":" + std::string(buf, size_t(n));
      ::sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
    }
  }
  std::string name_;
  UniqueFd fd_;
  Endpoint ep_;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

// Polls `cond` every 20 ms for up to `ms`.
inline bool wait_for(const std::function<bool()>& cond, int ms = 3000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A temp directory removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/vmstack-lb-XXXXXX";
    if (!::mkdtemp(t)) throw std::runtime_error(std::string("mkdtemp /tmp/vmstack-lb-XXXXXX: ") + std::strerror(errno));
    path = t;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

}  // namespace lbtest
