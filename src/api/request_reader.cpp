// Reading one request without blocking, limits enforced as the bytes arrive
// (see http_conn.h). The event thread calls this for slow and idle clients,
// so nothing here may wait: a socket with nothing to read ends the call.
#include <sys/socket.h>

#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <cstring>
#include <limits>

#include "api/call_head.h"
#include "api/http_conn.h"
#include "api/wire_util.h"
#include "core/strings.h"

namespace vmstack::api::detail {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t kMaxHeader = 64u << 10;
constexpr std::size_t kReadChunk = 64u << 10;
constexpr std::size_t kReadBudget = 256u << 10;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool is_http_protocol_error(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

ReadResult refuse(Connection& c, int code, const char* reason, std::string_view text) {
  send_http_error(c.fd.get(), code, reason, text, true, true);
  return ReadResult::refused;
}

ReadResult refuse_parse_error(Connection& c, const boost::system::error_code& ec) {
  if (ec == http::error::header_limit) return refuse(c, 431, "Request Header Fields Too Large", "request header too large\n");
  if (ec == http::error::body_limit) return refuse(c, 413, "Payload Too Large", "request body too large\n");
  if (is_http_protocol_error(ec)) return refuse(c, 400, "Bad Request", "bad request: " + ec.message() + "\n");
  return ReadResult::closed;
}

// What the request is, once its header is in.
RequestKind classify(const http::request<lazy_string_body>& req, const Routes& routes) {
  std::string_view target = sv(req.target());
  std::string_view path = target.substr(0, target.find('?'));
  // A transfer route takes any method (GET, PUT, POST, HEAD) on its path.
  for (const auto& r : routes)
    if (r.http && path == r.path) return RequestKind::http_route;
  // A console as xapi serves it: GET, or CONNECT as xapi's clients open it.
  if (req.method() == http::verb::get || req.method() == http::verb::connect) return RequestKind::get;
  if (req.method() != http::verb::post) return RequestKind::bad_method;
  if (path == "/jsonrpc") return RequestKind::jsonrpc;
  for (const auto& r : routes)
    if (r.post && path == r.path) return RequestKind::post_route;
  if (path == "/" || path == "/RPC2") {
    std::string_view ct = sv(req[http::field::content_type]);
    return iequal(ct.substr(0, ct.find(';')), "application/json") ? RequestKind::jsonrpc : RequestKind::xmlrpc;
  }
  return RequestKind::not_found;
}

// The XenAPI failure a refused call gets, in the request's protocol
// (JSON-RPC: the v2 error shape with id null, as for unparsable requests).
ReadResult refuse_call(Connection& c, bool json, const ApiError& e) {
  std::string body;
  RpcCall call;
  call.jsonrpc_v2 = true;
  if (json) jsonrpc::append_response(body, call, RpcResult::failure(e));
  else xmlrpc::append_response(body, RpcResult::failure(e));
  char hdr[160];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        json ? "application/json" : "text/xml", body.size());
  send_all(c.fd.get(), std::string_view(hdr, static_cast<std::size_t>(n)), body, MSG_DONTWAIT);
  return ReadResult::refused;
}

// A body beyond max_unproven_body_bytes is read only for a call whose head
// the admission accepts. Returns incomplete to keep reading, or the verdict.
ReadResult admit_body(Connection& c, const HttpContext& ctx) {
  Request& rq = *c.req;
  const std::size_t limit = ctx.limits.max_unproven_body_bytes;
  const std::string& body = rq.parser.get().body();
  auto declared = rq.parser.content_length();
  // Only bodies that will outgrow the limit need it: a small call is read
  // whole and dispatched as usual, with the dispatcher's own error order.
  bool needed = declared ? *declared > limit : body.size() > limit;
  if (!needed) return ReadResult::incomplete;
  // A POST route's body carries no session to vouch for it.
  if (rq.kind == RequestKind::post_route) return refuse(c, 413, "Payload Too Large", "request body too large\n");
  if (!ctx.admit) {
    rq.admitted = true;
    return ReadResult::incomplete;
  }
  static constexpr std::string_view kTooLarge =
      "request body too large for a call without a valid session as its first parameter\n";
  const bool json = rq.kind == RequestKind::jsonrpc;
  CallHead head;
  std::string_view prefix(body.data(), std::min(body.size(), limit));
  HeadScan scan = json ? scan_jsonrpc_head(prefix, head) : scan_xmlrpc_head(prefix, head);
  if (scan == HeadScan::need_more && body.size() < limit) return ReadResult::incomplete;
  if (scan != HeadScan::found) return refuse(c, 413, "Payload Too Large", kTooLarge);
  head.peer_uid = c.peer.uid;
  head.peer_address = c.peer.address;
  try {
    if (!ctx.admit(head)) return refuse(c, 413, "Payload Too Large", kTooLarge);
  } catch (const ApiError& e) {
    return refuse_call(c, json, e);
  } catch (const std::exception& e) {
    return refuse_call(c, json, ApiError(errors::INTERNAL_ERROR, {e.what()}));
  }
  rq.admitted = true;
  // Now the declared size may be allocated, once, instead of growing by
  // doubling (which would briefly hold 1.5x the body).
  if (declared) rq.parser.get().body().reserve(static_cast<std::size_t>(*declared));
  return ReadResult::incomplete;
}

// Feeds the buffered bytes to the parser: complete, incomplete (needs more
// bytes) or a refusal.
ReadResult parse_buffered(Connection& c, const HttpContext& ctx) {
  Request& rq = *c.req;
  RequestParser& p = rq.parser;
  while (c.buf.size() > 0) {
    boost::system::error_code ec;
    std::size_t n = p.put(c.buf.data(), ec);
    c.buf.consume(n);
    if (ec == http::error::need_more) return ReadResult::incomplete;
    if (ec) return refuse_parse_error(c, ec);
    if (p.is_header_done() && rq.kind == RequestKind::pending) {
      rq.header_done = clock::now();
      rq.kind = classify(p.get(), ctx.routes);
      // Only an RPC call's or a POST route's body is read here; everything
      // else is answered (or streamed, or a transfer's body read by its
      // handler) by a worker from the header alone.
      if (rq.kind != RequestKind::xmlrpc && rq.kind != RequestKind::jsonrpc && rq.kind != RequestKind::post_route)
        return ReadResult::complete;
      // The body limit applies to what is read here (a transfer's body has
      // none): checked now that the kind is known, before any of it is read.
      if (auto len = p.content_length(); len && *len > ctx.limits.max_body_bytes)
        return refuse(c, 413, "Payload Too Large", "request body too large\n");
      p.body_limit(ctx.limits.max_body_bytes);  // chunked bodies, as they arrive
      if (iequal(sv(p.get()[http::field::expect]), "100-continue"))
        send_all(c.fd.get(), "HTTP/1.1 100 Continue\r\n\r\n", {}, MSG_DONTWAIT);
    }
    if (p.is_done()) return ReadResult::complete;
    if (!rq.admitted && p.is_header_done()) {
      ReadResult r = admit_body(c, ctx);
      if (r != ReadResult::incomplete) return r;
    }
    if (n == 0) break;
  }
  if (p.is_done()) return ReadResult::complete;
  if (!rq.admitted && p.is_header_done()) return admit_body(c, ctx);
  return ReadResult::incomplete;
}

}  // namespace

ReadResult read_request(Connection& c, const HttpContext& ctx) {
  // Bytes read per call: a client streaming a large body gets its turn like
  // everyone else instead of holding the event thread until it is done.
  std::size_t budget = kReadBudget;
  for (;;) {
    if (c.buf.size() > 0) {
      if (!c.req) {
        c.req = std::make_unique<Request>();
        c.req->started = c.since;
        c.req->parser.header_limit(kMaxHeader);
        // Set once the header says what the request is (boost::none would
        // compare as smaller than any Content-Length in this Beast).
        c.req->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      }
      ReadResult r = parse_buffered(c, ctx);
      if (r != ReadResult::incomplete) return r;
    }
    // Read into a scratch buffer, then keep only what arrived: a slow client
    // costs the bytes it sent, not a 64 KiB buffer. On the stack, not
    // thread_local: static TLS is zeroed in every thread the daemon starts.
    if (budget == 0) return ReadResult::incomplete;  // more next time round
    char scratch[kReadChunk];
    ssize_t n = ::recv(c.fd.get(), scratch, std::min(sizeof scratch, budget), MSG_DONTWAIT);
    if (n > 0) {
      auto mb = c.buf.prepare(static_cast<std::size_t>(n));
      std::memcpy(mb.data(), scratch, static_cast<std::size_t>(n));
      c.buf.commit(static_cast<std::size_t>(n));
      budget -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return ReadResult::closed;  // EOF (mid-request too: nobody to answer)
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return c.req ? ReadResult::incomplete : ReadResult::idle;
    return ReadResult::closed;
  }
}

clock::time_point request_deadline(const Connection& c, const ServerLimits& limits) {
  if (!c.req) return c.since + limits.request_timeout;  // a new connection's first request
  const Request& rq = *c.req;
  if (!rq.parser.is_header_done()) return rq.started + limits.request_timeout;
  // The body: request_timeout, plus a second per min_body_rate bytes that
  // have arrived, so a client sending steadily at that rate never times out.
  auto got = rq.parser.get().body().size();
  auto earned = std::chrono::milliseconds(got * 1000 / std::max<std::size_t>(limits.min_body_rate, 1));
  return rq.header_done + limits.request_timeout + earned;
}

}  // namespace vmstack::api::detail
