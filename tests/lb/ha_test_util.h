// Helpers for the vmstack-lb HA tests: a tiny TCP/HTTP real server, temp
// files, network namespaces with RAII cleanup (netns_util.h), bounded waits.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "netns_util.h"

namespace vmstack::lb::hatest {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Polls `pred` every `step` until it holds or `limit` passes.
inline bool wait_until(const std::function<bool()>& pred, double limit_s, double step_s = 0.01) {
  auto t0 = Clock::now();
  for (;;) {
    if (pred()) return true;
    if (seconds_since(t0) > limit_s) return false;
    std::this_thread::sleep_for(std::chrono::duration<double>(step_s));
  }
}

// A real server on `ip`:`port` (port 0 = ephemeral, fixed after the first
// start so a restart comes back on the same port). Http200 answers any
// request with "HTTP/1.0 200 OK" and `body`; Http500 with a 500; Silent
// accepts and never answers (a hung server); Raw writes `body` at once on
// accept (plain TCP service).
class TestServer {
 public:
  enum class Mode { Http200, Http500, Silent, Raw };

  explicit TestServer(std::string body, std::string ip = "127.0.0.1", uint16_t port = 0)
      : body_(std::move(body)), ip_(std::move(ip)), port_(port) {
    start();
  }
  ~TestServer() { stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  uint16_t port() const { return port_; }
  std::string endpoint() const { return ip_ + ":" + std::to_string(port_); }
  void set_mode(Mode m) { mode_ = m; }
  uint64_t hits() const { return hits_.load(); }

  // Listens (again). The socket is created in the calling thread's network
  // namespace.
  void start() {
    if (thread_.joinable()) return;
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw std::runtime_error("socket");
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    inet_pton(AF_INET, ip_.c_str(), &sa.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
      throw std::runtime_error("bind " + endpoint() + ": " + std::strerror(errno));
    if (::listen(fd.get(), 128) < 0) throw std::runtime_error("listen");
    socklen_t len = sizeof sa;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    listen_ = std::move(fd);
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    running_ = true;
    thread_ = std::thread([this] { loop(); });
  }

  // Closes the listener and every open connection: new connects are refused.
  void stop() {
    if (!thread_.joinable()) return;
    running_ = false;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
    thread_.join();
    listen_.reset();
    wake_.reset();
  }

 private:
  void loop() {
    std::vector<UniqueFd> held;  // Silent mode connections
    while (running_.load()) {
      pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      if (::poll(p, 2, 500) <= 0 || !(p[0].revents & POLLIN)) continue;
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      hits_.fetch_add(1);
      Mode m = mode_.load();
      if (m == Mode::Silent) {
        held.push_back(std::move(c));
        continue;
      }
      if (m == Mode::Raw) {
        [[maybe_unused]] auto n = ::send(c.get(), body_.data(), body_.size(), MSG_NOSIGNAL);
        continue;
      }
      // Read the request head (bounded), then answer.
      std::string req;
      auto t0 = Clock::now();
      while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192 && seconds_since(t0) < 1.0) {
        pollfd q{c.get(), POLLIN, 0};
        if (::poll(&q, 1, 100) <= 0) continue;
        char buf[2048];
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string status = m == Mode::Http200 ? "200 OK" : "500 Internal Server Error";
      std::string resp = "HTTP/1.0 " + status + "\r\nContent-Length: " + std::to_string(body_.size()) +
                         "\r\nConnection: close\r\n\r\n" + body_;
      [[maybe_unused]] auto n = ::send(c.get(), resp.data(), resp.size(), MSG_NOSIGNAL);
    }
  }

  std::string body_;
  std::string ip_;
  uint16_t port_;
  std::atomic<Mode> mode_{Mode::Http200};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> hits_{0};
  UniqueFd listen_, wake_;
  std::thread thread_;
};

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vmstack-lbha-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  // Write a sibling and rename: a watcher never sees a half-written file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
  }
  std::filesystem::rename(tmp, path);
}

// Network namespaces and veths with RAII cleanup, setup commands that say
// what failed (netns_util.h).
using lbtest::InNetns;
using lbtest::netns_available;
using lbtest::NetNs;
using lbtest::run_checked;
using lbtest::SetupError;
using lbtest::VethPair;

// Connects (optionally from `src_ip`) to ip:port and reads until EOF.
// Returns "" on failure. Uses the calling thread's namespace.
inline std::string tcp_fetch(const std::string& ip, uint16_t port, const std::string& send = "",
                             const std::string& src_ip = "", double timeout_s = 2.0) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return "";
  timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - int(timeout_s)) * 1e6)};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!src_ip.empty()) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    inet_pton(AF_INET, src_ip.c_str(), &s.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&s), sizeof s) < 0) return "";
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return "";
  if (!send.empty() && ::send(fd.get(), send.data(), send.size(), MSG_NOSIGNAL) < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A UDP port on 127.0.0.1 that was free a moment ago (bound, read, released).
inline uint16_t free_udp_port() {
  vmstack::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t l = sizeof sa;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &l);
  return ntohs(sa.sin_port);
}

}  // namespace vmstack::lb::hatest
