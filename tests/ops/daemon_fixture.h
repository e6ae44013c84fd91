// A real vmstackd core (ops::Xapi) in a temp state dir, served on a unix
// socket, and a XenAPI client logged in to it. Restartable in place, as the
// daemon is after a crash or upgrade.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "api/client.h"
#include "guest_guard.h"
#include "ops/xapi.h"

namespace vmstack::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Daemon {
 public:
  explicit Daemon(const std::string& state_dir, int clean_shutdown_timeout_s = 30);
  ~Daemon();
  void restart();  // the Xapi object goes away (guests keep running) and comes back
  ops::Xapi& xapi() { return *xapi_; }
  const std::string& socket() const { return socket_; }

  // A client logged in as root (local superuser over the unix socket).
  std::unique_ptr<api::Client> client();
  std::string login(api::Client& c);

 private:
  void up();
  ops::Config cfg_;
  std::string socket_;
  std::unique_ptr<ops::Xapi> xapi_;
};

// Reads the console stream (GET /console) until `needle` appeared `count`
// times or the deadline passes; returns everything read. `send` is typed
// into the console first.
std::string read_console_until(const std::string& socket, const std::string& console_ref,
                               const std::string& session, const std::string& needle,
                               std::chrono::milliseconds deadline, int count = 1,
                               const std::string& send = {});
int occurrences(const std::string& hay, const std::string& needle);

Value call(api::Client& c, const std::string& method, Array params);
// The ErrorDescription of a call expected to fail (empty if it succeeded).
std::vector<std::string> failure(api::Client& c, const std::string& method, Array params);

}  // namespace vmstack::test
