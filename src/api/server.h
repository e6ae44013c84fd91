// HTTP server for the XenAPI: Boost.Beast over a unix socket and optional TCP.
// POST / is XML-RPC, POST /jsonrpc is JSON-RPC; extra GET routes (e.g. a
// console stream) and POST routes (xe's /cli) can be added before start().
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/call_head.h"
#include "api/rpc.h"
#include "core/fd.h"

namespace vmstack::api {

struct ServerConfig {
  std::string unix_path;        // e.g. <state>/xapi.sock; empty = none
  std::string tcp_address;      // e.g. "127.0.0.1"; empty = no TCP
  unsigned short tcp_port = 0;  // 0 = pick a free one (see Server::tcp_port())
  unsigned threads = 4;         // worker threads started up front and always kept
};

// Production limits with sensible defaults (see docs/api.md); set before
// start(). Kept apart from ServerConfig so positional initialisation of that
// struct stays warning-free. They are what keeps the API answering its
// authenticated callers, local root above all, while others misbehave.
struct ServerLimits {
  // ---- workers. Added on demand (a long VM operation holds one) up to
  // max_threads; extras retire after 30 s idle. The last
  // unix_reserved_threads of them serve only the unix socket, so TCP load can
  // never take every worker (at most max_threads / 2 are reserved).
  unsigned max_threads = 128;
  unsigned unix_reserved_threads = 8;
  // ---- connections. TCP and the unix socket each have a budget of
  // max_connections, so TCP clients can never fill the unix socket's. A
  // full budget closes the connection that has waited longest without a
  // complete request (idle kept-alive, or silent or slow for 1 s or more)
  // to admit a new one; only if there is none does the new one get 503.
  std::size_t max_connections = 4096;            // per transport
  std::size_t max_connections_per_source = 128;  // TCP, per client IP (IPv6: per /64): beyond, 503
  std::size_t max_streams = 64;  // stream, POST and transfer routes (console, /cli, /import_raw_vdi) at once, each on a thread of its own; TCP at most half
  // ---- request bodies. Checked before they are read: Content-Length at
  // once, chunked bodies as they arrive. A body larger than
  // max_unproven_body_bytes is read only if the BodyAdmission accepts the
  // call's head (its session), which it sees after at most that many bytes.
  std::size_t max_body_bytes = 16u << 20;           // larger: 413
  std::size_t max_unproven_body_bytes = 64u << 10;  // larger without admission: 413 (at most max_body_bytes)
  // ---- time. A request's header must be complete within request_timeout
  // of its first byte (of the connection's accept for a new one: a silent
  // new connection is closed then); its body gets request_timeout again
  // plus one second per min_body_rate bytes. Late requests get 408.
  std::chrono::seconds request_timeout{10};
  std::size_t min_body_rate = 16u << 10;  // bytes per second
  std::chrono::seconds send_timeout{60};  // to write a response to a client that does not read
  // A worker keeps serving a kept-alive connection while its client sends
  // calls; after this long without one (at once when other work waits for
  // a worker) the connection waits in epoll instead, costing only its fd.
  std::chrono::milliseconds park_after{1000};
  // Before sleeping for a kept-alive connection's next call, a worker polls
  // the socket for this long if the client's previous call came that
  // quickly. A back-to-back caller's next request arrives within tens of
  // microseconds, while waking a sleeping thread on another core costs as
  // much again on a virtualised host (an IPI through the hypervisor): one
  // client's calls per second nearly double. A client that does not call
  // back that fast turns it off for its connection after one miss, and at
  // most one worker per core but one polls at a time, so idle connections
  // and a loaded host cost nothing. 0 turns it off.
  std::chrono::microseconds busy_poll{150};
  std::chrono::seconds idle_timeout{600};  // idle kept-alive connections are closed after this (0 = never)...
  // ...or after this when their budget is at least three quarters full.
  std::chrono::seconds pressure_idle_timeout{10};
};

// Decides whether a call may send a body larger than
// ServerLimits::max_unproven_body_bytes, from the call's head (method and
// first parameter, read from the start of the body): true reads it (up to
// max_body_bytes), false answers 413, and an ApiError thrown is the call's
// answer (e.g. SESSION_INVALID), sent without reading the rest of the body.
// Runs on the server's event thread: it must be quick and never block.
using BodyAdmission = std::function<bool(const CallHead& head)>;

// A streaming GET handler: gets the request target (path and query string),
// writes to the connected fd until it returns. Used for `xe console` (HTTP
// then raw bytes, like xapi's /console CONNECT). It runs on a thread of its
// own (not a worker: a stream lasts as long as the client wants). The fd is
// blocking and without timeouts; the server has already sent the 200
// header. On stop() the fd is shut down, so the handler's next read/write
// fails: a handler that waits on another source should also poll the fd
// (POLLRDHUP).
using StreamHandler = std::function<void(const std::string& target, int fd)>;

// A POST route's request, read whole (its body at most
// ServerLimits::max_unproven_body_bytes: no session vouches for a larger one).
struct PostRequest {
  std::string target;  // path and query string
  std::string body;
  int peer_uid = -1;  // as RpcCall's
  std::string peer_address;
};

// A POST route's handler owns the connection once the body is read, on a
// thread of its own like a stream, and writes everything itself: nothing,
// not even a status line, is sent before it (xapi's thin CLI protocol on
// /cli answers that way). The fd is blocking, with request_timeout for reads
// and send_timeout for writes, and is closed when the handler returns.
using PostHandler = std::function<void(const PostRequest& rq, int fd)>;

// A transfer route's request (xapi's HTTP handlers beside the RPC endpoint:
// /import_raw_vdi, /export_raw_vdi, /export, /import, /rrd_updates...): the
// header as read, any method; the body is left for the handler to read
// with an HttpBodyReader (http_transfer.h), which frames it by
// Content-Length, chunked encoding or the client closing its side.
struct HttpRequest {
  std::string method;  // "GET", "PUT", "POST", "HEAD", ...
  std::string target;  // path and query string
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case, in order
  std::string buffered;  // body bytes that arrived with the header
  int peer_uid = -1;     // as RpcCall's
  std::string peer_address;
  // The first header of that (lower-case) name, or "".
  std::string header(std::string_view name) const;
};

// A transfer route's handler owns the connection from the header on, on a
// thread of its own like a stream, and writes everything (status line
// included). The fd is blocking, reads and writes time out after
// send_timeout (a transfer may pause longer than a call), and the
// connection is closed when the handler returns.
using HttpHandler = std::function<void(HttpRequest& rq, int fd)>;

class Server {
 public:
  Server(ServerConfig cfg, Dispatcher dispatch);
  ~Server();  // stops and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void add_stream_route(const std::string& path_prefix, StreamHandler h);
  void add_post_route(const std::string& path, PostHandler h);  // the exact path, before start()
  void add_http_route(const std::string& path, HttpHandler h);  // the exact path, any method, before start()
  void set_limits(const ServerLimits& limits);  // before start()
  // Without one, any body up to max_body_bytes is read (before start()).
  void set_body_admission(BodyAdmission admit);
  void start();  // binds (throws std::runtime_error on bind failure) and runs worker threads
  // Stops accepting, closes idle connections, lets in-flight dispatcher calls
  // finish (their responses are still sent), ends streams, joins all threads.
  // Long-polling dispatcher calls should be woken by the caller beforehand.
  // Never call it from a dispatcher or stream handler (it joins their
  // threads): signal the owning thread instead.
  void stop();
  unsigned short tcp_port() const;

  // Serves a connection accepted elsewhere as a TCP client at
  // `peer_address` ("ip:port"): budgets, per-source limits, throttles and
  // authentication as for the TCP listener's own. The TLS front end hands
  // over the plain side of each TLS connection this way. After start().
  void adopt(UniqueFd fd, std::string peer_address);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmstack::api
