// vmstack-lbd's control socket: a unix stream socket (mode 0600, so only
// root/the daemon's user can change rules) carrying one JSON request per
// connection, newline-terminated, answered by one JSON reply:
//
//   {"cmd": <ipvsadm Command as JSON>}                   one command
//   {"batch": [<Command>...], "lines": [n...]}           ipvsadm -R (all or nothing)
//   -> {"rc": 0, "out": "...", "err": "..."}             what ipvsadm would print/exit
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vmstack::lb {

// Default path: $VMSTACK_LB_SOCKET, else /run/vmstack-lb/lbd.sock.
std::string default_control_socket();

struct ControlReply {
  int rc = 0;
  std::string out, err;
};

// Sends one request and waits for the reply (bounded by timeout_ms).
// Throws std::runtime_error when the daemon cannot be reached or answers
// garbage.
ControlReply control_call(const std::string& socket_path, const nlohmann::json& request,
                         int timeout_ms = 60000);

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json&)>;
  // Requests are handled one at a time on the io_context's thread.
  ControlServer(boost::asio::io_context& io, std::string path, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket (and its directory). A stale socket file is
  // replaced; a live one (another daemon) is an error. Throws
  // std::runtime_error.
  void start();
  void stop();  // closes the socket and removes the file
  const std::string& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vmstack::lb
