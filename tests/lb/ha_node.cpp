// lb_ha_node: the smallest load balancer node that exercises HaRuntime as
// vmstack-lbd does - a ServiceTable, HaRuntime with the daemon's HA flags,
// and a one-connection-at-a-time TCP proxy that obeys the forwarding gate.
// The failover test runs two of these in network namespaces. Each reply is
// prefixed with the node's name so the test can tell who served it.
//
//   lb_ha_node --name A --port 80 [--metrics-file F] <HA flags...>
//
// SIGTERM/SIGINT: graceful stop (VRRP priority 0), exit 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "core/fd.h"
#include "lb/ha_runtime.h"
#include "lb/service_table.h"

using namespace vmstack;
using namespace vmstack::lb;

namespace {

// Reads until EOF or `timeout_ms` of silence.
std::string read_all(int fd, int timeout_ms) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class GatedProxy {
 public:
  GatedProxy(ServiceTable& t, std::string name, uint16_t port) : table_(t), name_(std::move(name)), port_(port) {}
  ~GatedProxy() { set(false); }

  // Opens or closes the listener (idempotent, any thread).
  void set(bool on) {
    std::lock_guard lk(mu_);
    if (on == thread_.joinable()) return;
    if (on) {
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      int one = 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port_);
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd.get(), 64) < 0) {
        spdlog::error("proxy: listen :{}: {}", port_, std::strerror(errno));
        return;
      }
      listen_ = std::move(fd);
      wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      running_ = true;
      thread_ = std::thread([this] { loop(); });
      spdlog::info("proxy listening on :{}", port_);
    } else {
      running_ = false;
      uint64_t v = 1;
      [[maybe_unused]] auto n = ::write(wake_.get(), &v, sizeof v);
      thread_.join();
      listen_.reset();
      wake_.reset();
      spdlog::info("proxy closed");
    }
  }

 private:
  void loop() {
    while (running_.load()) {
      pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      if (::poll(p, 2, 500) <= 0 || !(p[0].revents & POLLIN)) continue;
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      UniqueFd c(::accept4(listen_.get(), reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_CLOEXEC));
      if (c) serve(c.get(), Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)));
    }
  }

  void serve(int cfd, const Endpoint& client) {
    sockaddr_storage local{};
    socklen_t ll = sizeof local;
    getsockname(cfd, reinterpret_cast<sockaddr*>(&local), &ll);
    ServiceKey key{Proto::TCP, Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&local))};
    std::string reply;
    ServicePtr svc = table_.find(key);
    bool persistent = false;
    DestPtr d = svc ? svc->schedule(client, &persistent) : nullptr;
    if (!svc) {
      reply = "no-service " + key.vip.str();
    } else if (!d) {
      reply = "no-dest";
    } else {
      UniqueFd up(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_storage ss{};
      socklen_t sl = d->addr().to_sockaddr(&ss);
      timeval tv{2, 0};
      setsockopt(up.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::connect(up.get(), reinterpret_cast<sockaddr*>(&ss), sl) == 0) {
        ConnEntry e;
        e.client = client;
        e.vip = key.vip;
        e.dest = d->addr();
        e.state = "ESTABLISHED";
        e.expires_ms = 900000;
        table_.notify_connection(e);
        reply = read_all(up.get(), 2000);
      } else {
        reply = std::string("upstream ") + d->addr().str() + ": " + std::strerror(errno);
      }
      if (persistent) svc->release_persist(client);
    }
    std::string out = name_ + " " + reply;
    [[maybe_unused]] auto n = ::send(cfd, out.data(), out.size(), MSG_NOSIGNAL);
  }

  ServiceTable& table_;
  std::string name_;
  uint16_t port_;
  std::mutex mu_;
  UniqueFd listen_, wake_;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

void write_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("vmstack-lb HA test node");
  std::string name = "node", metrics_file;
  uint16_t port = 80;
  app.add_option("--name", name, "prefix of every reply");
  app.add_option("--port", port, "TCP port to proxy (any local address)");
  app.add_option("--metrics-file", metrics_file, "HaRuntime::metrics_text() is written here");
  ha::HaOptions opts;
  ha::add_ha_options(app, opts);
  CLI11_PARSE(app, argc, argv);

  // Signals are taken synchronously by the main thread; block them before
  // any thread starts so none of them gets one.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  ServiceTable table;
  GatedProxy proxy(table, name, port);
  table.subscribe_forwarding([&](bool on) { proxy.set(on); });
  // Logs (the node's and HaRuntime's) on stderr, tagged with the node's name.
  spdlog::set_default_logger(spdlog::stderr_color_mt(name));
  try {
    ha::HaRuntime ha(table, opts);
    ha.start();
    proxy.set(table.forwarding());
    std::cout << "ready" << std::endl;
    auto last_tick = std::chrono::steady_clock::now();
    for (;;) {
      if (!metrics_file.empty()) write_atomic(metrics_file, "role " + ha.role() + "\n" + ha.metrics_text());
      timespec ts{0, 100 * 1000 * 1000};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT) break;
      if (std::chrono::steady_clock::now() - last_tick >= std::chrono::seconds(1)) {
        table.tick();
        last_tick = std::chrono::steady_clock::now();
      }
    }
    spdlog::info("stopping");
    ha.stop();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  proxy.set(false);
  return 0;
}
