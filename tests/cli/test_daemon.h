// xe's tests run against the real daemon core (ops::Daemon: the same
// dispatcher, verbs and store as vmstackd) on the fake hypervisor and
// network, served by a real api::Server on a unix socket in a temp dir. The
// fixture records the methods called and lets a test replace the console
// stream; no QEMU runs.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/server.h"
#include "hv/fake_hypervisor.h"
#include "model/store.h"
#include "ops/daemon.h"

namespace vmstack::cli::testing {

class TestDaemon {
 public:
  // `serve_cli`: POST /cli runs xe's commands in the daemon, as vmstackd
  // does; without it xe finds no /cli and runs them itself.
  explicit TestDaemon(bool serve_cli = true);
  ~TestDaemon();

  model::Store& db() { return daemon_->store(); }
  const std::string& socket_path() const { return socket_; }
  const std::filesystem::path& dir() const { return dir_; }

  // One call, as the server passes it (recorded in calls()).
  Value call(const api::RpcCall& c);

  // Method names received, in order (session.* included).
  std::vector<std::string> calls();
  void clear_calls();
  // Number of sessions currently logged in.
  size_t live_sessions();

  // Credentials accepted besides local root with an empty password.
  static constexpr const char* kUser = "alice";
  static constexpr const char* kPassword = "s3cret";

  // What GET /console?ref=... does: default echoes input upper-cased after a
  // banner, until the client half-closes or sends "quit".
  std::function<void(const std::string& target, int fd)> console_handler;

  // Seeded objects (refs).
  std::string pool, host, sr, network, dom0, tmpl, alpha, beta, beta_vbd, beta_vdi, beta_console;

 private:
  void seed();

  std::filesystem::path dir_;
  std::string socket_;
  std::unique_ptr<ops::Daemon> daemon_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::unique_ptr<api::Server> server_;
};

}  // namespace vmstack::cli::testing
