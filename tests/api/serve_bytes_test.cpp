// detail::serve_bytes (what the HTTP fuzz target drives) answers exactly as
// the server does over its socket: same parser, limits, routing and RPC
// handling, byte for byte.
#include <gtest/gtest.h>

#include <atomic>

#include "api/http_conn.h"
#include "api/http_transfer.h"
#include "api/server.h"
#include "api/wire_util.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace vmstack::api::test;

TEST(ServeBytes, AnswersByteForByteAsTheSocket) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  ServerLimits limits;
  limits.max_body_bytes = 4096;
  Server server({sock, "", 0, 1}, test_dispatch);
  server.set_limits(limits);
  server.add_stream_route("/console", [](const std::string&, int) {});
  auto cli = [](const PostRequest& rq, int fd) { detail::send_all(fd, rq.target + " got " + rq.body); };
  server.add_post_route("/cli", cli);
  // A transfer route: the body framed as the client framed it, any size.
  auto xfer = [](HttpRequest& rq, int fd) {
    std::string body;
    try {
      HttpBodyReader r(fd, rq);
      char buf[1000];
      for (std::size_t n; (n = r.read(buf, sizeof buf)) > 0;) body.append(buf, n);
    } catch (const std::runtime_error& e) {
      send_text(fd, 400, "Bad Request", e.what());
      return;
    }
    send_text(fd, 200, "OK", rq.method + " " + query_param(rq.target, "k") + " " + std::to_string(body.size()) + " " +
                                 body.substr(0, 20));
  };
  server.add_http_route("/xfer", xfer);
  server.start();

  Dispatcher dispatch = test_dispatch;
  detail::Routes routes = {{"/console", [](const std::string&, int) {}, {}, {}}, {"/cli", {}, cli, {}}, {"/xfer", {}, {}, xfer}};
  BodyAdmission admit;
  std::atomic<bool> stopping{false}, pressure{false};
  std::atomic<unsigned> pollers{0};
  detail::HttpContext ctx{dispatch, routes, limits, admit, stopping, pressure, pollers,
                          [](detail::Connection& c, std::function<void(detail::Connection&)> run) {
        run(c);  // streams run inline here
        return true;
      },
                          [](detail::Connection&) { return std::shared_ptr<PendingReply>(); },
                          [](detail::Connection&) { return false; }};

  const std::string xml = xmlrpc::format_request("echo", {Value("y"), Value(Struct{{"k", Value(1.5)}})});
  const std::string json = R"({"jsonrpc":"2.0","method":"fail","params":[],"id":"a"})";
  auto post = [](const std::string& path, const std::string& body, const std::string& extra = "") {
    return "POST " + path + " HTTP/1.1\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  };
  for (const std::string& in : {
           std::string(),
           std::string("garbage\r\n\r\n"),
           post("/", xml) + post("/jsonrpc", json) + post("/RPC2", "<oops"),
           post("/", json, "Content-Type: application/json; charset=utf-8\r\n"),
           post("/", xml, "Expect: 100-continue\r\n"),
           post("/nope", ""),
           std::string("GET /nope HTTP/1.1\r\n\r\n") + post("/", xml),
           std::string("GET /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc") + post("/", xml),
           std::string("PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
           post("/", std::string(5000, 'x')),
           std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<oops\r\n0\r\n\r\n"),
           std::string("POST / HTTP/1.1\r\nX: ") + std::string(70000, 'h') + "\r\n\r\n",
           post("/", xml).substr(0, 60),  // the client gives up half way
           post("/", "{\"method\":\"crash\",\"params\":[]}", "Content-Type: application/json\r\nConnection: close\r\n") +
               post("/", xml),
           std::string("GET /console?ref=x HTTP/1.1\r\n\r\n"),
           post("/cli", "vm-list\nusername=root\npassword=") + post("/", xml),  // the route owns the connection
           post("/cli?x=1", "", "Expect: 100-continue\r\n"),
           post("/cli", std::string(70000, 'a')),  // no session vouches for a large body: 413
           post("/cli/more", "a"),
           std::string("GET /cli HTTP/1.1\r\n\r\n"),
           // Transfers: beyond max_body_bytes, chunked, close-delimited, broken framing.
           std::string("PUT /xfer?k=a%20b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n") + std::string(5000, 'z'),
           std::string("PUT /xfer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"),
           std::string("PUT /xfer HTTP/1.0\r\n\r\nuntil the end"),
           std::string("PUT /xfer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
           std::string("PUT /xfer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
           std::string("PUT /xfer HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort"),
           std::string("GET /xfer?k=1 HTTP/1.1\r\n\r\n"),
       }) {
    EXPECT_EQ(detail::serve_bytes(in, ctx), raw_unix(sock, in)) << in.substr(0, 200);
  }
  auto answer = [&](const std::string& in) {
    std::string out = detail::serve_bytes(in, ctx);
    return out.substr(out.find("\r\n\r\n") + 4);
  };
  EXPECT_EQ(answer(std::string("PUT /xfer?k=a%20b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n") + std::string(5000, 'z')),
            "PUT a b 5000 " + std::string(20, 'z'));
  EXPECT_EQ(answer("PUT /xfer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            "PUT  5 abcde");
  EXPECT_EQ(answer("PUT /xfer HTTP/1.0\r\n\r\nuntil the end"), "PUT  13 until the end");
  EXPECT_EQ(answer("PUT /xfer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
            "chunked body: bad chunk size line");
  EXPECT_EQ(answer("PUT /xfer HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort"), "the client left after 5 of 10 bytes");
}

// A POST route's body larger than max_unproven_body_bytes is refused even
// where no BodyAdmission is set (which lets RPC bodies up to max_body_bytes
// through): no session can vouch for it.
TEST(ServeBytes, PostRouteBodyBeyondTheUnprovenLimitIs413WithoutAdmission) {
  ServerLimits limits;
  limits.max_body_bytes = 1u << 20;
  Dispatcher dispatch = test_dispatch;
  bool ran = false;
  detail::Routes routes = {{"/cli", {}, [&ran](const PostRequest&, int) { ran = true; }, {}}};
  BodyAdmission admit;  // none
  std::atomic<bool> stopping{false}, pressure{false};
  std::atomic<unsigned> pollers{0};
  detail::HttpContext ctx{dispatch, routes, limits, admit, stopping, pressure, pollers,
                          [](detail::Connection& c, std::function<void(detail::Connection&)> run) {
                            run(c);
                            return true;
                          },
                          [](detail::Connection&) { return std::shared_ptr<PendingReply>(); },
                          [](detail::Connection&) { return false; }};
  const std::string big(70000, 'a');
  auto post = [&](const std::string& path) {
    return "POST " + path + " HTTP/1.1\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big;
  };
  std::string cli = detail::serve_bytes(post("/cli"), ctx);
  EXPECT_EQ(cli.rfind("HTTP/1.1 413", 0), 0u) << cli.substr(0, 100);
  EXPECT_FALSE(ran);
  std::string rpc = detail::serve_bytes(post("/"), ctx);  // read whole, answered as a malformed call
  EXPECT_EQ(rpc.rfind("HTTP/1.1 200", 0), 0u) << rpc.substr(0, 100);
}
