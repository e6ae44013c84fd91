// The server's production limits: connection parking, worker pool growth and
// cap, idle and request timeouts, body and connection limits.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "api/client.h"
#include "api/server.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace vmstack::api::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// With a single worker, an idle kept-alive connection must hand the worker
// back (park) so that other clients are served; the parked client's next
// call wakes it up again.
TEST(ServerLimits, IdleConnectionIsParkedAndFreesTheWorker) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_threads = 1;
  lim.park_after = 50ms;
  server.set_limits(lim);
  server.start();
  Client a(Endpoint{sock_in(dir), "", 0, false});
  Client b(Endpoint{sock_in(dir), "", 0, true});
  EXPECT_EQ(a.call("echo", {Value(1)}), Value(Array{Value("1")}));
  auto t0 = steady::now();
  EXPECT_EQ(b.call("echo", {Value(2)}), Value(Array{Value(2)}));  // only possible once `a` is parked
  EXPECT_LT(steady::now() - t0, 2s);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a.call("echo", {Value("a")}), Value(Array{Value("a")}));
    EXPECT_EQ(b.call("echo", {Value("b")}), Value(Array{Value("b")}));
  }
  std::this_thread::sleep_for(120ms);  // both parked now
  EXPECT_EQ(a.call("echo", {}), Value(Array{}));
  EXPECT_EQ(b.call("echo", {}), Value(Array{}));
}

TEST(ServerLimits, PoolGrowsForBlockingCallsUpToTheCap) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_threads = 2;
  server.set_limits(lim);
  server.start();
  auto run_sleepers = [&](int n) {
    auto t0 = steady::now();
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i)
      ts.emplace_back([&] {
        Client c(Endpoint{sock_in(dir), "", 0, false});
        EXPECT_EQ(c.call("sleep", {Value(300)}), Value("slept"));
      });
    for (auto& t : ts) t.join();
    return steady::now() - t0;
  };
  // Two blocking calls run in parallel although only one worker was started.
  EXPECT_LT(run_sleepers(2), 550ms);
  // A third has to wait for a free worker: the cap holds.
  EXPECT_GE(run_sleepers(3), 590ms);
}

TEST(ServerLimits, ParkedConnectionsAreClosedAfterIdleTimeout) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.park_after = 50ms;
  lim.idle_timeout = 1s;
  server.set_limits(lim);
  server.start();
  UniqueFd fd = connect_unix(sock_in(dir));
  ASSERT_TRUE(fd);
  std::string body = xmlrpc::format_request("echo", {});
  write_str(fd.get(), "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  auto t0 = steady::now();
  std::string got = read_until_closed(fd.get(), 5s);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  EXPECT_GE(steady::now() - t0, 900ms);
  // A Client whose kept-alive connection was closed this way reconnects
  // transparently.
  Client c(Endpoint{sock_in(dir), "", 0, false});
  c.call("echo", {});
  std::this_thread::sleep_for(2200ms);  // > idle_timeout + poller tick
  EXPECT_EQ(c.call("echo", {Value("again")}), Value(Array{Value("again")}));
}

TEST(ServerLimits, SlowRequestGets408) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.park_after = 100ms;
  lim.request_timeout = 1s;
  server.set_limits(lim);
  server.start();
  UniqueFd fd = connect_unix(sock_in(dir));
  ASSERT_TRUE(fd);
  write_str(fd.get(), "POST / HTTP/1.1\r\nContent-Le");  // ... and nothing more
  std::string got = read_until_closed(fd.get(), 5s);
  EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
  // The server is fine afterwards.
  Client c(Endpoint{sock_in(dir), "", 0, false});
  EXPECT_NO_THROW(c.call("echo", {}));
}

TEST(ServerLimits, BodyLimit) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_body_bytes = 4096;
  server.set_limits(lim);
  server.start();
  Client c(Endpoint{sock_in(dir), "", 0, false});
  EXPECT_NO_THROW(c.call("echo", {Value(std::string(1000, 'x'))}));
  try {
    c.call("echo", {Value(std::string(8000, 'x'))});
    FAIL() << "oversized body accepted";
  } catch (const ApiError& e) {
    // The server may answer 413 or, having closed early, reset the send.
    EXPECT_TRUE(e.code() == wire_errors::PROTOCOL_ERROR || e.code() == wire_errors::CONNECTION_FAILED)
        << e.what();
    if (e.code() == wire_errors::PROTOCOL_ERROR) {
      EXPECT_NE(std::string(e.what()).find("413"), std::string::npos);
    }
  }
  // Chunked bodies are limited too.
  std::string chunk(5000, 'y');
  char len[16];
  std::snprintf(len, sizeof len, "%zx", chunk.size());
  std::string r = raw_unix(sock_in(dir), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(len) +
                                             "\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r.substr(0, 100);
  EXPECT_NO_THROW(c.call("echo", {}));
}

TEST(ServerLimits, ConnectionLimitAnswers503) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 4}, test_dispatch);
  ServerLimits lim;
  lim.max_connections = 2;
  server.set_limits(lim);
  server.start();
  UniqueFd a = connect_unix(sock_in(dir)), b = connect_unix(sock_in(dir));
  ASSERT_TRUE(a && b);
  std::this_thread::sleep_for(100ms);  // let the server accept both
  std::string third = raw_unix(sock_in(dir), "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(third.rfind("HTTP/1.1 503", 0), 0u) << third;
  a.reset();
  b.reset();
  // Once those are gone there is room again.
  for (int i = 0; i < 50; ++i) {
    Client c(Endpoint{sock_in(dir), "", 0, false});
    try {
      c.call("echo", {});
      return;
    } catch (const ApiError&) {
      std::this_thread::sleep_for(20ms);  // the server notices the closes asynchronously
    }
  }
  FAIL() << "server never accepted connections again";
}

TEST(ServerLimits, InvalidLimitsAreRejected) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_threads = 0;
  server.set_limits(lim);
  EXPECT_THROW(server.start(), std::invalid_argument);
  server.set_limits(ServerLimits{});
  server.start();
  EXPECT_THROW(server.set_limits(ServerLimits{}), std::logic_error);
  EXPECT_THROW(server.add_stream_route("/x", [](const std::string&, int) {}), std::logic_error);
}

// Many clients that connect, make one call and go away (like xe): no thread
// per connection is created, so the pool stays small and nothing leaks.
TEST(ServerLimits, ShortLivedConnectionsReuseWorkers) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 2}, test_dispatch);
  server.start();
  auto threads_now = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
  };
  std::size_t before = threads_now();
  for (int i = 0; i < 300; ++i) {
    Client c(Endpoint{sock_in(dir), "", 0, i % 2 == 0});
    ASSERT_EQ(c.call("echo", {Value(i)}).as_array().size(), 1u);
  }
  EXPECT_LE(threads_now(), before + 2);
}
