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

// Answers a failed request read; returns how the connection continues.
AfterServe on_read_error(int fd, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::would_block) return AfterServe::park;  // idle: nothing of a request yet
  if (ec == boost::beast::error::timeout)
    send_http_error(fd, 408, "Request Timeout", "request not received in time\n", true);
  else if (ec == http::error::header_limit)
    send_http_error(fd, 431, "Request Header Fields Too Large", "request header too large\n", true);
  else if (ec == http::error::body_limit)
    send_http_error(fd, 413, "Payload Too Large", "request body too large\n", true);
  else if (is_http_protocol_error(ec))
    send_http_error(fd, 400, "Bad Request", "bad request: " + ec.message() + "\n", true);
  // Anything else (EOF between requests, reset, EPIPE) is just the end.
  return AfterServe::close;
}

// Parses, dispatches and answers one RPC body. Returns false if the response
// could not be sent.
bool handle_rpc(Connection& c, const HttpContext& ctx, bool json, const std::string& body, bool keep,
                std::string& out) {
  RpcCall call;
  RpcResult result;
  try {
    call = json ? jsonrpc::parse_request(body) : xmlrpc::parse_request(body);
    call.peer_uid = c.peer.uid;
    call.peer_address = c.peer.address;
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
  return send_all(c.fd.get(), std::string_view(hdr, static_cast<std::size_t>(n)), out);
}

// Runs a stream route's handler on the raw fd; the connection ends with it.
void run_stream(Connection& c, const HttpContext& ctx, const StreamHandler& handler, std::string target) {
  if (!ctx.begin_stream(c)) return;
  set_socket_timeouts(c.fd.get(), {}, {});  // the handler owns the pacing now
  static constexpr std::string_view kStreamHdr =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
  if (!send_all(c.fd.get(), kStreamHdr)) return;
  try {
    handler(target, c.fd.get());
  } catch (...) {
    // A failing stream just ends the stream; there is nobody to report to.
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
  char hdr[256];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                        code, reason, body.size(), close ? "close" : "keep-alive");
  send_all(fd, std::string_view(hdr, static_cast<std::size_t>(n)), body);
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
  const int fd = c.fd.get();
  FdStream stream(fd);
  std::string out;
  const auto request_budget = ctx.limits.park_after + ctx.limits.request_timeout;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeader);
    parser.body_limit(ctx.limits.max_body_bytes);
    stream.begin_request(c.buf.size() == 0, clock::now() + request_budget);
    boost::system::error_code ec;
    http::read_header(stream, c.buf, parser, ec);
    if (ec) return on_read_error(fd, ec);

    auto& req = parser.get();
    const bool stopping = ctx.stopping.load(std::memory_order_relaxed);
    const bool keep = req.keep_alive() && !stopping;
    std::string_view target = sv(req.target());
    std::string_view path = target.substr(0, target.find('?'));

    if (req.method() == http::verb::get) {
      for (const auto& [prefix, handler] : ctx.routes) {
        if (target.substr(0, prefix.size()) == prefix) {
          run_stream(c, ctx, handler, std::string(target));
          return AfterServe::close;
        }
      }
      // A GET with a body (unusual) would leave it unread: close instead.
      bool again = keep && parser.is_done();
      send_http_error(fd, 404, "Not Found", "no such resource\n", !again);
      if (!again) return AfterServe::close;
      continue;
    }
    if (req.method() != http::verb::post) {
      send_http_error(fd, 405, "Method Not Allowed", "only POST (RPC) and GET (streams) are supported\n", true);
      return AfterServe::close;
    }
    bool json;
    if (path == "/jsonrpc") {
      json = true;
    } else if (path == "/" || path == "/RPC2") {
      std::string_view ct = sv(req[http::field::content_type]);
      json = iequal(ct.substr(0, ct.find(';')), "application/json");
    } else {
      send_http_error(fd, 404, "Not Found", "RPC endpoints are POST / (XML-RPC) and POST /jsonrpc (JSON-RPC)\n", true);
      return AfterServe::close;
    }
    if (iequal(sv(req[http::field::expect]), "100-continue") && !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n"))
      return AfterServe::close;
    http::read(stream, c.buf, parser, ec);
    if (ec) {
      // Never would_block here (the stream stopped being idle with the
      // header), and a half-read request could not be parked anyway.
      on_read_error(fd, ec);
      return AfterServe::close;
    }
    if (!handle_rpc(c, ctx, json, parser.get().body(), keep, out) || !keep) return AfterServe::close;
    if (out.capacity() > (1u << 20)) std::string().swap(out);  // don't pin a huge buffer
  }
}

}  // namespace vmstack::api::detail
