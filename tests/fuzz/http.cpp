// The API server's request handling (src/api/http_conn.cpp) without a
// client socket: detail::serve_bytes runs the same read_request and
// serve_connection (Beast parser, limits, routing, 100-continue, pipelining,
// RPC decoding/encoding) as the server's threads do.
// Any bytes a client can send must end in responses, never in a crash, leak,
// UB or an escaping exception.
#include <atomic>

#include "api/http_conn.h"
#include "api/http_transfer.h"
#include "fuzz_util.h"

using namespace vmstack;
using namespace vmstack::api;

namespace {

// Echoes the call (so decoded values are encoded back), or fails as asked.
Value dispatch(const RpcCall& c) {
  if (c.method == "fail") throw ApiError(errors::HANDLE_INVALID, {"VM", "OpaqueRef:x"});
  if (c.method == "crash") throw std::runtime_error("dispatcher failed");
  return Value(Struct{{"method", Value(c.method)}, {"params", Value(c.params)}, {"id", c.id}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Dispatcher dispatcher = dispatch;
  static const detail::Routes routes = {
      {"/console", [](const std::string&, int) {}, {}, {}},
      {"/cli", {}, [](const PostRequest&, int) {}, {}},
      {"/xfer", {}, {}, [](HttpRequest& rq, int fd) {  // a transfer reads its body as framed
         try {
           HttpBodyReader r(fd, rq);
           char buf[4096];
           while (r.read(buf, sizeof buf) > 0) {
           }
         } catch (const std::runtime_error&) {
         }
       }}};
  static const ServerLimits limits = [] {
    ServerLimits l;
    l.max_body_bytes = 64 << 10;  // small enough for inputs to cross it
    return l;
  }();
  static const BodyAdmission admit;  // none: every body up to max_body_bytes is read
  static const std::atomic<bool> stopping{false}, pressure{false};
  static std::atomic<unsigned> pollers{0};
  static const detail::HttpContext ctx{
      dispatcher, routes, limits, admit, stopping, pressure, pollers,
      [](detail::Connection& c, std::function<void(detail::Connection&)> run) {
        run(c);  // streams run inline here
        return true;
      },
      [](detail::Connection&) { return std::shared_ptr<PendingReply>(); },  // never deferred
      [](detail::Connection&) { return false; }};
  std::string out = detail::serve_bytes(fuzz::input(data, size), ctx, {0, "unix"});
  FUZZ_CHECK(out.empty() || out.rfind("HTTP/1.1 ", 0) == 0, out.substr(0, 200));
  return 0;
}
