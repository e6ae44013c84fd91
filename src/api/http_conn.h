// One HTTP connection of the API server (internal to src/api): reads
// requests with Beast's parser from a blocking socket, dispatches RPCs
// inline, hands GET stream routes the raw fd. The server's worker pool calls
// serve_connection(); it returns when the connection should be parked
// (kept-alive but idle) or closed.
#pragma once

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/listener.h"
#include "api/rpc.h"
#include "api/server.h"
#include "core/fd.h"

namespace vmstack::api::detail {

struct Connection {
  UniqueFd fd;
  bool tcp = false;
  PeerIdentity peer;
  boost::beast::flat_buffer buf;  // bytes read but not yet parsed (pipelining)
  // Server bookkeeping, guarded by the server's mutex.
  bool in_epoll = false;
  bool streaming = false;
  std::list<Connection*>::iterator parked_pos;
  std::chrono::steady_clock::time_point parked_at;
};

using Routes = std::vector<std::pair<std::string, StreamHandler>>;

struct HttpContext {
  const Dispatcher& dispatch;
  const Routes& routes;
  const ServerLimits& limits;
  const std::atomic<bool>& stopping;
  // Called before a stream handler takes over the fd; false = server is
  // stopping, don't start.
  std::function<bool(Connection&)> begin_stream;
};

enum class AfterServe { park, close };

AfterServe serve_connection(Connection& c, const HttpContext& ctx);

// The same request handling without a socket: `in` is everything one client
// sent before closing its side; it is parsed with the server's parser and
// limits, routed and answered exactly as serve_connection does, and every
// byte the server would have written is returned (a stream route shows up as
// its 200 header and no body: there is no fd to hand over). For tests and
// the fuzzers (tests/fuzz), so they exercise the real path.
std::string serve_bytes(std::string_view in, const HttpContext& ctx, const PeerIdentity& peer = {});

// Dispatches one call: ApiError -> Failure, other exceptions -> INTERNAL_ERROR.
RpcResult invoke_dispatcher(const Dispatcher& dispatch, const RpcCall& call);

// SO_RCVTIMEO / SO_SNDTIMEO; zero means block forever.
void set_socket_timeouts(int fd, std::chrono::microseconds rcv, std::chrono::microseconds snd);

// Best-effort plain-text HTTP error (used for 503 on overload too).
void send_http_error(int fd, int code, const char* reason, std::string_view body, bool close);

}  // namespace vmstack::api::detail
