// One HTTP connection of the API server (internal to src/api).
//
// Requests are read without blocking, by whichever thread owns the
// connection: the server's event thread while the client is slow or idle,
// a worker while it keeps sending calls. read_request() parses what the
// socket has and enforces the limits as the bytes arrive (header and body
// size, the body admission); serve_connection() runs on a worker once a
// request is complete: it dispatches, answers and keeps serving while the
// client keeps calling, and says what should become of the connection.
#pragma once

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/listener.h"
#include "api/pending_reply.h"
#include "api/rpc.h"
#include "api/server.h"
#include "core/fd.h"

namespace vmstack::api::detail {

using clock = std::chrono::steady_clock;

// Beast's string_body reserves Content-Length bytes as soon as the header is
// parsed: a forged 16 MiB length would cost 16 MiB before the call is
// admitted. This one reserves nothing up front; the reader reserves the
// declared size once the call is admitted (see read_request).
struct lazy_string_body {
  using value_type = std::string;
  static std::uint64_t size(const value_type& b) { return b.size(); }
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& b) : body_(b) {}
    void init(const boost::optional<std::uint64_t>&, boost::system::error_code& ec) { ec = {}; }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec);
    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

using RequestParser = boost::beast::http::request_parser<lazy_string_body>;

enum class RequestKind { pending, xmlrpc, jsonrpc, post_route, http_route, get, not_found, bad_method };

// The request being read or served on a connection.
struct Request {
  RequestParser parser;
  clock::time_point started;      // its first byte (a new connection: the accept)
  clock::time_point header_done;  // when the body started
  RequestKind kind = RequestKind::pending;
  bool admitted = false;  // may be larger than max_unproven_body_bytes
};

// Where a connection is; the server's mutex guards it. Only the event
// thread moves a connection out of an epoll state (reading, parked,
// draining, awaiting), so it never loses one to a worker mid-event.
enum class ConnState {
  reading,    // epoll: a new connection or a request in progress
  parked,     // epoll: kept alive between requests, nothing of the next yet
  draining,   // epoll: refused (answer sent); discarding input until EOF
  awaiting,   // epoll (hang-up only): a deferred call waits for its answer
  ready,      // on a ready queue
  active,     // a worker serves it
  streaming,  // a stream thread owns it
  closing,    // dropped by the event thread; deleted after its event batch
};

struct Connection {
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  UniqueFd fd;
  bool tcp = false;
  PeerIdentity peer;
  std::string source;             // TCP: per-source key (see throttle_source)
  boost::beast::flat_buffer buf;  // bytes read but not yet parsed (pipelining)
  std::unique_ptr<Request> req;   // the request being read or served
  // A deferred call: its reply, its answer once completed, and what the
  // answer's encoding needs from the call.
  std::shared_ptr<PendingReply> reply;
  std::optional<RpcResult> result;
  Value reply_id;
  bool reply_json = false, reply_v2 = false, reply_keep = false;
  // Server bookkeeping, guarded by the server's mutex.
  ConnState state = ConnState::reading;
  bool in_epoll = false;
  std::list<Connection*>* list = nullptr;  // the wait list it is on
  std::list<Connection*>::iterator pos;
  clock::time_point since;  // when its current wait began (accept, park, first byte)
  std::size_t drained = 0;  // bytes discarded while draining
  // Its last call came within busy_poll of the answer before: poll for the
  // next one. Off for a new connection: a one-shot client (xe) never costs
  // a poll; a back-to-back caller turns it on with its second quick call.
  bool quick_caller = false;
};

// A GET stream route (a path prefix), a POST route or a transfer route
// (the exact path): one of the handlers is set.
struct Route {
  std::string path;
  StreamHandler get;
  PostHandler post;
  HttpHandler http;
};
using Routes = std::vector<Route>;

// What reading and serving need from the server.
struct HttpContext {
  const Dispatcher& dispatch;
  const Routes& routes;
  const ServerLimits& limits;
  const BodyAdmission& admit;  // may be empty
  const std::atomic<bool>& stopping;
  const std::atomic<bool>& pressure;  // work waits for a worker: stop lingering
  std::atomic<unsigned>& pollers;     // workers busy-polling now (see ServerLimits::busy_poll)
  // Hands the connection to a thread of its own running `run` (a stream or
  // POST route); false when refused (too many streams, stopping): the
  // caller answers 503.
  std::function<bool(Connection&, std::function<void(Connection&)> run)> start_stream;
  // A reply for a call on `c`, or null when the server cannot defer now.
  std::function<std::shared_ptr<PendingReply>(Connection& c)> make_reply;
  // After a deferred dispatch: true when the connection now waits for its
  // answer without a worker, false when the answer is already there.
  std::function<bool(Connection& c)> await_reply;
};

enum class ReadResult {
  complete,    // c.req holds a request a worker can serve
  incomplete,  // a request has started: wait for more bytes
  idle,        // nothing of a request yet
  closed,      // EOF or a socket error: close
  refused,     // answered with an error and `Connection: close`: drain, then close
};

// Parses what is buffered and reads what the socket has, without blocking.
ReadResult read_request(Connection& c, const HttpContext& ctx);
// When the request in progress is late (408), or clock::time_point::max().
clock::time_point request_deadline(const Connection& c, const ServerLimits& limits);

enum class AfterServe {
  park,         // kept alive, nothing of a next request yet
  read_on,      // a next request has started: the event thread reads the rest
  drain,        // refused: discard input until EOF, then close
  close,
  handed_over,  // a stream thread or a deferred reply has it now
};

// Serves the complete request in c.req (or sends the answer in c.result),
// then any further requests that arrive promptly.
AfterServe serve_connection(Connection& c, const HttpContext& ctx);

// The same request handling for a client that sends `in` and then closes its
// side: every byte the server writes back is returned. The requests go
// through read_request and serve_connection over a socketpair, so tests and
// the fuzzers (tests/fuzz) exercise the server's real path, limits included.
// `ctx` must run streams inline (start_stream) and never defer a reply
// (make_reply returns null): there is no event thread to finish either.
std::string serve_bytes(std::string_view in, const HttpContext& ctx, const PeerIdentity& peer = {});

// Runs a stream route's handler on the connection's socket (on the stream's
// own thread): the 200 header, then the handler until it returns.
void run_stream(Connection& c, const StreamHandler& handler, const std::string& target);
// Runs a POST route's handler (on the stream's own thread): nothing is sent
// before it; reads time out after request_timeout, writes after send_timeout.
void run_post(Connection& c, const PostHandler& handler, const PostRequest& rq, const ServerLimits& limits);
// Runs a transfer route's handler (on the stream's own thread): nothing is
// sent before it; reads and writes time out after send_timeout.
void run_http(Connection& c, const HttpHandler& handler, HttpRequest& rq, const ServerLimits& limits);

// A worker waiting for a kept-alive connection's next request reads with
// this timeout, and between reads checks whether other work waits for it.
inline constexpr auto kLingerSlice = std::chrono::milliseconds(20);

// Dispatches one call: ApiError -> Failure, other exceptions -> INTERNAL_ERROR.
RpcResult invoke_dispatcher(const Dispatcher& dispatch, const RpcCall& call);

// SO_RCVTIMEO / SO_SNDTIMEO; zero means block forever.
void set_socket_timeouts(int fd, std::chrono::microseconds rcv, std::chrono::microseconds snd);

// Best-effort plain-text HTTP error; `nonblocking` for the event thread.
void send_http_error(int fd, int code, const char* reason, std::string_view body, bool close,
                     bool nonblocking = false);

// ---- template definition

template <class ConstBufferSequence>
std::size_t lazy_string_body::reader::put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
  ec = {};
  std::size_t n = 0;
  for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
    boost::asio::const_buffer b = *it;
    body_.append(static_cast<const char*>(b.data()), b.size());
    n += b.size();
  }
  return n;
}

}  // namespace vmstack::api::detail
