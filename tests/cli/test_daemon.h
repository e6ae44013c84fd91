// A small XenAPI server for xe's tests: a real api::Server on a unix socket
// in a temp dir, serving objects of a real model::Database. The generic
// methods follow the datamodel (get_/set_ only for RW fields, ...), the VM
// verbs check and change power_state as the daemon does; there is no QEMU.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/server.h"
#include "model/database.h"

namespace vmstack::cli::testing {

class TestDaemon {
 public:
  TestDaemon();
  ~TestDaemon();

  model::Database& db() { return db_; }
  const std::string& socket_path() const { return socket_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Method names received, in order (session.* included).
  std::vector<std::string> calls();
  void clear_calls();
  // Number of sessions currently logged in.
  size_t live_sessions() const;

  // Credentials accepted besides local root with an empty password.
  static constexpr const char* kUser = "alice";
  static constexpr const char* kPassword = "s3cret";

  // What GET /console?ref=... does: default echoes input upper-cased after a
  // banner, until the client half-closes or sends "quit".
  std::function<void(const std::string& target, int fd)> console_handler;

  // Seeded objects (refs).
  std::string pool, host, sr, network, dom0, tmpl, alpha, beta, beta_vbd, beta_vdi, beta_console;

 private:
  Value dispatch(const api::RpcCall& c);
  Value dispatch_vm(const std::string& op, const std::string& vm, const Array& a);
  void seed();

  std::filesystem::path dir_;
  std::string socket_;
  model::Database db_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::unique_ptr<api::Server> server_;
};

}  // namespace vmstack::cli::testing
