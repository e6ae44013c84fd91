// A real vmstackd core (ops::Xapi) in a temp state dir, served on a unix
// socket, and a XenAPI client logged in to it. Restartable in place, as the
// daemon is after a crash or upgrade.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/client.h"
#include "guest_guard.h"
#include "hv/fake_hypervisor.h"
#include "net/backend.h"
#include "ops/daemon.h"

namespace vmstack::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A network backend that only remembers: bridges and taps by name.
class FakeNetwork final : public net::Backend {
 public:
  std::string name() const override { return "fake"; }
  void bridge_create(const std::string& b, int64_t) override;
  void bridge_destroy(const std::string& b) override;
  bool bridge_exists(const std::string& b) override;
  std::string vif_plug(const net::VifPlug& v) override;
  void vif_unplug(const std::string& tap) override;
  // NAT and internal networks need the host's networking (a real dnsmasq
  // on a real bridge): their tests run the real backend in a namespace.
  void routed_apply(const net::RoutedNetwork& r) override;
  void routed_remove(const net::RoutedNetwork&) override {}
  std::set<std::string> bridges() const;
  std::set<std::string> taps() const;
  std::string fail_plug;  // non-empty: vif_plug throws this

 private:
  mutable std::mutex mu_;
  std::set<std::string> bridges_, taps_;
};

// Which backends a TestDaemon runs on.
enum class Backend { real, fake };

class TestDaemon {
 public:
  explicit TestDaemon(const std::string& state_dir, int clean_shutdown_timeout_s = 30, Backend b = Backend::real,
                      const std::function<void(ops::Config&)>& tweak = {});
  ~TestDaemon();
  // The daemon object goes away (guests keep running) and comes back, on
  // the same backends.
  void restart();
  // A daemon that is away (stop) and comes back (start), for what happens
  // meanwhile.
  void stop() { daemon_.reset(); }
  void start() { up(); }
  ops::Daemon& daemon() { return *daemon_; }
  // With Backend::fake: the fake hypervisor and network the daemon runs on.
  hv::FakeHypervisor& fake_hv() { return *fake_hv_; }
  FakeNetwork& fake_net() { return *fake_net_; }
  const std::string& socket() const { return socket_; }

  // A client logged in as root (local superuser over the unix socket).
  std::unique_ptr<api::Client> client();
  std::string login(api::Client& c);

 private:
  void up();
  ops::Config cfg_;
  Backend backend_;
  std::string socket_;
  // Fakes outlive daemon restarts, as a host's guests and bridges do; the
  // daemon holds them through forwarding backends.
  std::unique_ptr<hv::FakeHypervisor> fake_hv_;
  std::unique_ptr<FakeNetwork> fake_net_;
  std::unique_ptr<ops::Daemon> daemon_;
};

// Reads the console stream (GET /console) until `needle` appeared `count`
// times or the deadline passes; returns everything read. `send` is typed
// into the console first.
std::string read_console_until(const std::string& socket, const std::string& console_ref,
                               const std::string& session, const std::string& needle,
                               std::chrono::milliseconds deadline, int count = 1,
                               const std::string& send = {}, const std::string& method = "GET");
int occurrences(const std::string& hay, const std::string& needle);

Value call(api::Client& c, const std::string& method, Array params);
// A VM as `xe vm-install` makes it from the demo template (clone, provision,
// no longer a template); its ref.
std::string install_demo_vm(api::Client& c, const std::string& session, const std::string& name);
// The ErrorDescription of a call expected to fail (empty if it succeeded).
std::vector<std::string> failure(api::Client& c, const std::string& method, Array params);

}  // namespace vmstack::test
