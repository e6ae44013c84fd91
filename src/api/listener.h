// Listening sockets for the API server (internal to src/api): a unix socket
// that is created 0600, replaces a stale file and refuses to steal a live
// one, and a TCP socket; plus who is on the other end of an accepted one.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/fd.h"

namespace vmstack::api::detail {

class Listener {
 public:
  // Both throw std::runtime_error with the path/address and errno text.
  static Listener unix_socket(const std::string& path);
  static Listener tcp(const std::string& address, unsigned short port);

  Listener() = default;
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept;
  ~Listener() { close(); }

  int fd() const { return fd_.get(); }
  bool is_tcp() const { return tcp_; }
  unsigned short port() const { return port_; }  // TCP only
  // Closes the socket; a unix socket's file is unlinked only if it is still
  // the one we created (a successor may already have replaced it).
  void close();

 private:
  UniqueFd fd_;
  bool tcp_ = false;
  unsigned short port_ = 0;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

struct PeerIdentity {
  int uid = -1;         // SO_PEERCRED uid (unix sockets only)
  std::string address;  // "unix", "ip:port" or "[ip6]:port"
};
PeerIdentity identify_peer(int fd, bool tcp);

}  // namespace vmstack::api::detail
