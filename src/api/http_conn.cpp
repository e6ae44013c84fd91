// One HTTP connection of the API server: the request loop (Beast's parser,
// limits, routing, RPC handling) over a socket, or over bytes for tests and
// fuzzers (serve_bytes): one loop, two streams, so both see the same code.
#include "api/http_conn.h"
#include "core/strings.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdio>
#include <exception>

#include "api/wire_util.h"

namespace vmstack::api::detail {

namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxHeader = 64u << 10;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool is_http_protocol_error(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// The response header of a plain-text error.
std::string error_head(int code, const char* reason, std::size_t body_size, bool close) {
  char hdr[256];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                        code, reason, body_size, close ? "close" : "keep-alive");
  return std::string(hdr, static_cast<std::size_t>(n));
}

// Where the request loop's output goes: the connection's socket, or a string
// (serve_bytes).
class Sink {
 public:
  virtual ~Sink() = default;
  // Sends head then body; false when the peer is gone.
  virtual bool send(std::string_view head, std::string_view body = {}) = 0;
  // A GET stream route takes the connection over until it returns.
  virtual void stream(const StreamHandler& handler, std::string target) = 0;
  void error(int code, const char* reason, std::string_view body, bool close) {
    send(error_head(code, reason, body.size(), close), body);
  }
};

// Answers a failed request read; returns how the connection continues.
AfterServe on_read_error(Sink& out, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::would_block) return AfterServe::park;  // idle: nothing of a request yet
  if (ec == boost::beast::error::timeout)
    out.error(408, "Request Timeout", "request not received in time\n", true);
  else if (ec == http::error::header_limit)
    out.error(431, "Request Header Fields Too Large", "request header too large\n", true);
  else if (ec == http::error::body_limit)
    out.error(413, "Payload Too Large", "request body too large\n", true);
  else if (is_http_protocol_error(ec))
    out.error(400, "Bad Request", "bad request: " + ec.message() + "\n", true);
  // Anything else (EOF between requests, reset, EPIPE) is just the end.
  return AfterServe::close;
}

// Parses, dispatches and answers one RPC body. Returns false if the response
// could not be sent.
bool handle_rpc(const PeerIdentity& peer, const HttpContext& ctx, bool json, const std::string& body,
                bool keep, std::string& out, Sink& sink) {
  RpcCall call;
  RpcResult result;
  try {
    call = json ? jsonrpc::parse_request(body) : xmlrpc::parse_request(body);
    call.peer_uid = peer.uid;
    call.peer_address = peer.address;
    result = invoke_dispatcher(ctx.dispatch, call);
  } catch (const ApiError& e) {
    result = RpcResult::failure(e);
    if (json) call.jsonrpc_v2 = true;  // version unknown: answer in the v2 error shape (id null)
  }
  auto encode = [&](const RpcResult& r) {
    out.clear();  // keeps the capacity: one buffer per connection
    if (json) jsonrpc::append_response(out, call, r);
    else xmlrpc::append_response(out, r);
  };
  try {
    encode(result);
  } catch (const std::exception& e) {  // e.g. a value nested too deeply to encode
    encode(RpcResult::failure(ApiError(errors::INTERNAL_ERROR, {e.what()})));
  }
  char hdr[160];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                        json ? "application/json" : "text/xml", out.size(), keep ? "keep-alive" : "close");
  return sink.send(std::string_view(hdr, static_cast<std::size_t>(n)), out);
}

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";

// The socket side: writes to the connection, runs stream handlers on its fd.
class FdSink : public Sink {
 public:
  FdSink(Connection& c, const HttpContext& ctx) : c_(c), ctx_(ctx) {}
  bool send(std::string_view head, std::string_view body) override { return send_all(c_.fd.get(), head, body); }
  void stream(const StreamHandler& handler, std::string target) override {
    if (!ctx_.begin_stream(c_)) return;
    set_socket_timeouts(c_.fd.get(), {}, {});  // the handler owns the pacing now
    if (!send_all(c_.fd.get(), kStreamHead)) return;
    try {
      handler(target, c_.fd.get());
    } catch (...) {
      // A failing stream just ends the stream; there is nobody to report to.
    }
  }

 private:
  Connection& c_;
  const HttpContext& ctx_;
};

// serve_bytes' side: the client's bytes in, the server's bytes collected.
class MemoryStream {
 public:
  explicit MemoryStream(std::string_view in) : in_(in) {}
  void begin_request(bool, clock::time_point) {}
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    if (in_.empty()) {
      ec = boost::asio::error::eof;  // the client closed its side
      return 0;
    }
    std::size_t n = boost::asio::buffer_copy(buffers, boost::asio::buffer(in_.data(), in_.size()));
    in_.remove_prefix(n);
    ec = {};
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view in_;
};

class StringSink : public Sink {
 public:
  std::string sent;
  bool send(std::string_view head, std::string_view body) override {
    sent.append(head).append(body);
    return true;
  }
  void stream(const StreamHandler&, std::string) override { sent.append(kStreamHead); }
};

// The request loop, over a socket (FdStream) or bytes (MemoryStream).
template <class Stream>
AfterServe serve_requests(Stream& stream, boost::beast::flat_buffer& buf, const PeerIdentity& peer,
                          const HttpContext& ctx, Sink& sink) {
  std::string out;
  const auto request_budget = ctx.limits.park_after + ctx.limits.request_timeout;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeader);
    parser.body_limit(ctx.limits.max_body_bytes);
    stream.begin_request(buf.size() == 0, clock::now() + request_budget);
    boost::system::error_code ec;
    http::read_header(stream, buf, parser, ec);
    if (ec) return on_read_error(sink, ec);

    auto& req = parser.get();
    const bool stopping = ctx.stopping.load(std::memory_order_relaxed);
    const bool keep = req.keep_alive() && !stopping;
    std::string_view target = sv(req.target());
    std::string_view path = target.substr(0, target.find('?'));

    if (req.method() == http::verb::get) {
      for (const auto& [prefix, handler] : ctx.routes) {
        if (target.substr(0, prefix.size()) == prefix) {
          sink.stream(handler, std::string(target));
          return AfterServe::close;
        }
      }
      // A GET with a body (unusual) would leave it unread: close instead.
      bool again = keep && parser.is_done();
      sink.error(404, "Not Found", "no such resource\n", !again);
      if (!again) return AfterServe::close;
      continue;
    }
    if (req.method() != http::verb::post) {
      sink.error(405, "Method Not Allowed", "only POST (RPC) and GET (streams) are supported\n", true);
      return AfterServe::close;
    }
    bool json;
    if (path == "/jsonrpc") {
      json = true;
    } else if (path == "/" || path == "/RPC2") {
      std::string_view ct = sv(req[http::field::content_type]);
      json = iequal(ct.substr(0, ct.find(';')), "application/json");
    } else {
      sink.error(404, "Not Found", "RPC endpoints are POST / (XML-RPC) and POST /jsonrpc (JSON-RPC)\n", true);
      return AfterServe::close;
    }
    if (iequal(sv(req[http::field::expect]), "100-continue") && !sink.send("HTTP/1.1 100 Continue\r\n\r\n"))
      return AfterServe::close;
    http::read(stream, buf, parser, ec);
    if (ec) {
      // Never would_block here (the stream stopped being idle with the
      // header), and a half-read request could not be parked anyway.
      on_read_error(sink, ec);
      return AfterServe::close;
    }
    if (!handle_rpc(peer, ctx, json, parser.get().body(), keep, out, sink) || !keep) return AfterServe::close;
    if (out.capacity() > (1u << 20)) std::string().swap(out);  // don't pin a huge buffer
  }
}

}  // namespace

void set_socket_timeouts(int fd, std::chrono::microseconds rcv, std::chrono::microseconds snd) {
  auto tv = [](std::chrono::microseconds d) {
    timeval t{};
    t.tv_sec = static_cast<time_t>(d.count() / 1000000);
    t.tv_usec = static_cast<suseconds_t>(d.count() % 1000000);
    return t;
  };
  timeval r = tv(rcv), s = tv(snd);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s);
}

void send_http_error(int fd, int code, const char* reason, std::string_view body, bool close) {
  send_all(fd, error_head(code, reason, body.size(), close), body);
}

RpcResult invoke_dispatcher(const Dispatcher& dispatch, const RpcCall& call) {
  try {
    return RpcResult::success(dispatch(call));
  } catch (const ApiError& e) {
    return RpcResult::failure(e);
  } catch (const std::exception& e) {
    return RpcResult::failure(ApiError(errors::INTERNAL_ERROR, {e.what()}));
  } catch (...) {
    return RpcResult::failure(ApiError(errors::INTERNAL_ERROR, {"unknown exception"}));
  }
}

AfterServe serve_connection(Connection& c, const HttpContext& ctx) {
  FdStream stream(c.fd.get());
  FdSink sink(c, ctx);
  return serve_requests(stream, c.buf, c.peer, ctx, sink);
}

std::string serve_bytes(std::string_view in, const HttpContext& ctx, const PeerIdentity& peer) {
  MemoryStream stream(in);
  boost::beast::flat_buffer buf;
  StringSink sink;
  serve_requests(stream, buf, peer, ctx, sink);
  return std::move(sink.sent);
}

}  // namespace vmstack::api::detail
