// HTTP server for the XenAPI: Boost.Beast over a unix socket and optional TCP.
// POST / is XML-RPC, POST /jsonrpc is JSON-RPC; extra GET routes can be added
// (e.g. a console stream) before start().
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "api/rpc.h"

namespace vmstack::api {

struct ServerConfig {
  std::string unix_path;        // e.g. <state>/xapi.sock; empty = none
  std::string tcp_address;      // e.g. "127.0.0.1"; empty = no TCP
  unsigned short tcp_port = 0;  // 0 = pick a free one (see Server::tcp_port())
  unsigned threads = 4;         // worker threads started up front and always kept
};

// Production limits with sensible defaults (see docs/api.md); set before
// start(). Kept apart from ServerConfig so positional initialisation of that
// struct stays warning-free.
struct ServerLimits {
  // Workers are added on demand (a blocking call such as event.from or a
  // console stream holds one) up to this many; extras retire after 30 s idle.
  unsigned max_threads = 128;
  std::size_t max_body_bytes = 16u << 20;  // larger request bodies get 413
  std::size_t max_connections = 4096;      // beyond this, new connections get 503
  // A kept-alive connection with no request for this long hands its worker
  // back and waits in epoll instead.
  std::chrono::milliseconds park_after{1000};
  std::chrono::seconds idle_timeout{600};     // parked connections are closed after this (0 = never)
  std::chrono::seconds request_timeout{60};   // to receive a started request / to send a response
};

// A streaming GET handler: gets the request target (path and query string),
// writes to the connected fd until it returns. Used for `xe console` (HTTP
// then raw bytes, like xapi's /console CONNECT). The fd is blocking and
// without timeouts; the server has already sent the 200 header. On stop() the
// fd is shut down, so the handler's next read/write fails: a handler that
// waits on another source should also poll the fd (POLLRDHUP).
using StreamHandler = std::function<void(const std::string& target, int fd)>;

class Server {
 public:
  Server(ServerConfig cfg, Dispatcher dispatch);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void add_stream_route(const std::string& path_prefix, StreamHandler h);
  void set_limits(const ServerLimits& limits);  // before start()
  void start();  // binds (throws std::runtime_error on bind failure) and runs worker threads
  // Stops accepting, closes idle connections, lets in-flight dispatcher calls
  // finish (their responses are still sent), ends streams, joins all threads.
  // Long-polling dispatcher calls should be woken by the caller beforehand.
  // Never call it from a dispatcher or stream handler (it joins their
  // threads): signal the owning thread instead.
  void stop();
  unsigned short tcp_port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmstack::api
