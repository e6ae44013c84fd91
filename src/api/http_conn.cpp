// Serving complete requests on a worker (see http_conn.h): dispatch, answer,
// and keep serving the connection while its client keeps calling.
#include "api/http_conn.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>

#include "api/wire_util.h"
#include "core/heap.h"

namespace vmstack::api::detail {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t kKeepBuffer = 16u << 10;  // larger idle buffers are given back

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

void encode(std::string& out, bool json, const RpcCall& call, const RpcResult& r) {
  auto once = [&](const RpcResult& x) {
    out.clear();  // keeps the capacity: one buffer per connection
    if (json) jsonrpc::append_response(out, call, x);
    else xmlrpc::append_response(out, x);
  };
  try {
    once(r);
  } catch (const std::exception& e) {  // e.g. a value nested too deeply to encode
    once(RpcResult::failure(ApiError(errors::INTERNAL_ERROR, {e.what()})));
  }
}

// Sends one RPC answer. False if it could not be sent.
bool respond(int fd, bool json, bool keep, const std::string& out) {
  char hdr[160];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                        json ? "application/json" : "text/xml", out.size(), keep ? "keep-alive" : "close");
  return send_all(fd, std::string_view(hdr, static_cast<std::size_t>(n)), out);
}

enum class Step { next, stop_close, handed_over };

// Decodes and dispatches the RPC in c.req and answers it, unless the
// dispatcher deferred the answer and it is not there yet.
Step serve_rpc(Connection& c, const HttpContext& ctx, bool keep, std::string& out) {
  const bool json = c.req->kind == RequestKind::jsonrpc;
  RpcCall call;
  RpcResult result;
  try {
    const std::string& body = c.req->parser.get().body();
    call = json ? jsonrpc::parse_request(body) : xmlrpc::parse_request(body);
    call.peer_uid = c.peer.uid;
    call.peer_address = c.peer.address;
    call.defer = [&c, &ctx]() -> std::shared_ptr<PendingReply> {
      if (c.reply) throw std::logic_error("RpcCall::defer called twice");
      c.reply = ctx.make_reply(c);
      return c.reply;
    };
    result = invoke_dispatcher(ctx.dispatch, call);
  } catch (const ApiError& e) {
    result = RpcResult::failure(e);
    if (json) call.jsonrpc_v2 = true;  // version unknown: answer in the v2 error shape (id null)
  }
  c.req.reset();  // the body may be large: free it before waiting or answering
  if (c.reply) {
    c.reply_id = call.id;
    c.reply_json = json;
    c.reply_v2 = call.jsonrpc_v2;
    c.reply_keep = keep;
    // A dispatcher that deferred and then failed would never complete the
    // reply: its failure is the answer.
    if (!result.ok) c.reply->complete(result);
    return ctx.await_reply(c) ? Step::handed_over : Step::next;
  }
  encode(out, json, call, result);
  if (!respond(c.fd.get(), json, keep, out) || !keep) return Step::stop_close;
  return Step::next;
}

// Sends the completed answer of a deferred call.
Step send_reply(Connection& c, std::string& out) {
  RpcCall call;
  call.id = c.reply_id;
  call.jsonrpc_v2 = c.reply_v2;
  encode(out, c.reply_json, call, *c.result);
  c.result.reset();
  c.reply.reset();
  if (!respond(c.fd.get(), c.reply_json, c.reply_keep, out) || !c.reply_keep) return Step::stop_close;
  return Step::next;
}

// A GET, a bad path or a bad method, from its header alone.
Step serve_other(Connection& c, const HttpContext& ctx, bool keep) {
  Request& rq = *c.req;
  const int fd = c.fd.get();
  switch (rq.kind) {
    case RequestKind::get: {
      std::string target(sv(rq.parser.get().target()));
      for (const auto& r : ctx.routes) {
        if (!r.get || target.compare(0, r.path.size(), r.path) != 0) continue;
        const StreamHandler& h = r.get;
        if (ctx.start_stream(c, [&h, target](Connection& sc) { run_stream(sc, h, target); })) return Step::handed_over;
        send_http_error(fd, 503, "Service Unavailable", "too many streams\n", true);
        return Step::stop_close;
      }
      // A GET with a body (unusual) would leave it unread: close instead.
      bool again = keep && rq.parser.is_done();
      send_http_error(fd, 404, "Not Found", "no such resource\n", !again);
      return again ? Step::next : Step::stop_close;
    }
    case RequestKind::post_route: {
      std::string target(sv(rq.parser.get().target()));
      std::string_view path = std::string_view(target).substr(0, target.find('?'));
      for (const auto& r : ctx.routes) {
        if (!r.post || path != r.path) continue;
        PostRequest pr{target, std::move(rq.parser.get().body()), c.peer.uid, c.peer.address};
        const PostHandler& h = r.post;
        const ServerLimits& limits = ctx.limits;
        if (ctx.start_stream(c, [&h, &limits, pr = std::move(pr)](Connection& sc) { run_post(sc, h, pr, limits); }))
          return Step::handed_over;
        send_http_error(fd, 503, "Service Unavailable", "too many streams\n", true);
        return Step::stop_close;
      }
      send_http_error(fd, 404, "Not Found", "no such resource\n", true);
      return Step::stop_close;
    }
    case RequestKind::http_route: {
      auto& head = rq.parser.get();
      HttpRequest hr;
      hr.method = std::string(sv(head.method_string()));
      hr.target = std::string(sv(head.target()));
      std::string_view path = std::string_view(hr.target).substr(0, hr.target.find('?'));
      for (const auto& f : head) {
        std::string name(sv(f.name_string()));
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        hr.headers.emplace_back(std::move(name), std::string(sv(f.value())));
      }
      // The body bytes read with the header go to the handler's body reader.
      auto data = c.buf.data();
      hr.buffered.assign(static_cast<const char*>(data.data()), data.size());
      c.buf.consume(data.size());
      hr.peer_uid = c.peer.uid;
      hr.peer_address = c.peer.address;
      for (const auto& r : ctx.routes) {
        if (!r.http || path != r.path) continue;
        const HttpHandler& h = r.http;
        const ServerLimits& limits = ctx.limits;
        if (ctx.start_stream(c, [&h, &limits, hr = std::move(hr)](Connection& sc) mutable { run_http(sc, h, hr, limits); }))
          return Step::handed_over;
        send_http_error(fd, 503, "Service Unavailable", "too many streams\n", true);
        return Step::stop_close;
      }
      send_http_error(fd, 404, "Not Found", "no such resource\n", true);
      return Step::stop_close;
    }
    case RequestKind::not_found:
      send_http_error(fd, 404, "Not Found", "RPC endpoints are POST / (XML-RPC) and POST /jsonrpc (JSON-RPC)\n", true);
      return Step::stop_close;
    default:
      send_http_error(fd, 405, "Method Not Allowed", "only POST (RPC) and GET (streams) are supported\n", true);
      return Step::stop_close;
  }
}

// Polls for up to busy_poll while this connection's client calls back to
// back (ServerLimits::busy_poll): >0 bytes, 0 at EOF, -1 with errno.
ssize_t busy_poll_recv(Connection& c, const HttpContext& ctx, char* buf, std::size_t size) {
  static const unsigned max_pollers = std::max(1u, std::thread::hardware_concurrency()) - 1;
  errno = EAGAIN;
  if (!c.quick_caller || ctx.limits.busy_poll.count() <= 0 || max_pollers == 0) return -1;
  if (ctx.pollers.fetch_add(1, std::memory_order_relaxed) >= max_pollers) {
    ctx.pollers.fetch_sub(1, std::memory_order_relaxed);
    return -1;
  }
  ssize_t n = recv_polling(c.fd.get(), buf, size, clock::now() + ctx.limits.busy_poll, &ctx.pressure);
  const int saved = errno;
  ctx.pollers.fetch_sub(1, std::memory_order_relaxed);
  c.quick_caller = n >= 0;
  errno = saved;
  return n;
}

// Waits up to park_after for the first bytes of the next request (one
// blocking read in the common case of a client calling back to back).
// False when the connection should be parked or closed (`eof`).
bool linger(Connection& c, const HttpContext& ctx, bool& eof) {
  eof = false;
  if (c.buf.size() > 0) return true;
  const auto until = clock::now() + ctx.limits.park_after;
  char scratch[16u << 10];  // stack, not thread_local (see read_request)
  ssize_t n = busy_poll_recv(c, ctx, scratch, sizeof scratch);
  for (;;) {
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      const auto asleep = clock::now();
      n = ::recv(c.fd.get(), scratch, sizeof scratch, 0);  // times out after kLingerSlice
      if (n > 0) c.quick_caller = clock::now() - asleep < ctx.limits.busy_poll;
    }
    if (n > 0) {
      auto mb = c.buf.prepare(static_cast<std::size_t>(n));
      std::memcpy(mb.data(), scratch, static_cast<std::size_t>(n));
      c.buf.commit(static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      eof = true;
      return false;
    }
    if (ctx.stopping.load(std::memory_order_relaxed) || ctx.pressure.load(std::memory_order_relaxed) ||
        clock::now() >= until)
      return false;
  }
}

}  // namespace

Connection::~Connection() {
  // Whoever deletes a connection holds no server lock, so a pending reply
  // can be settled here (its delivery takes that lock).
  if (reply) reply->abandon();
}

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

void send_http_error(int fd, int code, const char* reason, std::string_view body, bool close, bool nonblocking) {
  char hdr[256];
  int n = std::snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                        code, reason, body.size(), close ? "close" : "keep-alive");
  send_all(fd, std::string_view(hdr, static_cast<std::size_t>(n)), body, nonblocking ? MSG_DONTWAIT : 0);
}

void run_stream(Connection& c, const StreamHandler& handler, const std::string& target) {
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

void run_post(Connection& c, const PostHandler& handler, const PostRequest& rq, const ServerLimits& limits) {
  set_socket_timeouts(c.fd.get(), limits.request_timeout, limits.send_timeout);
  try {
    handler(rq, c.fd.get());
  } catch (...) {
    // As for a stream: the handler answers what it can; a failure ends it.
  }
}

void run_http(Connection& c, const HttpHandler& handler, HttpRequest& rq, const ServerLimits& limits) {
  set_socket_timeouts(c.fd.get(), limits.send_timeout, limits.send_timeout);
  try {
    handler(rq, c.fd.get());
  } catch (...) {
    // As for a stream: the handler answers what it can; a failure ends it.
  }
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
  std::string out;
  // After a large answer the heap is trimmed at once. Deferring it to the
  // client's pause left the pages of a 1,000-VM listing resident for the
  // pause's second (+19 MiB in the benchmark); a trim costs well under a
  // millisecond beside the tens an answer that large takes.
  auto release = [&] {
    if (out.capacity() < kTrimAfterBytes) return;
    std::string().swap(out);  // neither this buffer nor the freed records behind it stay resident
    trim_heap();
  };
  auto pause = [&](AfterServe a) {
    release();
    return a;
  };
  for (;;) {
    Step step;
    if (c.result) {
      step = send_reply(c, out);
    } else {
      const bool keep = c.req->parser.get().keep_alive() && !ctx.stopping.load(std::memory_order_relaxed);
      bool rpc = c.req->kind == RequestKind::xmlrpc || c.req->kind == RequestKind::jsonrpc;
      step = rpc ? serve_rpc(c, ctx, keep, out) : serve_other(c, ctx, keep);
    }
    if (step == Step::handed_over) return AfterServe::handed_over;
    if (step == Step::stop_close) return pause(AfterServe::close);
    if (c.result) continue;  // a deferred answer that arrived during the dispatch
    c.req.reset();
    release();
    if (c.buf.capacity() > kKeepBuffer && c.buf.size() == 0) c.buf.shrink_to_fit();

    bool eof = false;
    if (!linger(c, ctx, eof)) return pause(eof ? AfterServe::close : AfterServe::park);
    c.since = clock::now();  // the next request starts now
    switch (read_request(c, ctx)) {
      case ReadResult::complete: continue;
      case ReadResult::incomplete: return pause(AfterServe::read_on);
      case ReadResult::idle: return pause(AfterServe::park);
      case ReadResult::refused: return pause(AfterServe::drain);
      case ReadResult::closed: return pause(AfterServe::close);
    }
  }
}

}  // namespace vmstack::api::detail
