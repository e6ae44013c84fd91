// The server under misbehaving clients: separate budgets for the unix socket
// and TCP, per-source caps, eviction of idle connections, slow requests that
// hold no worker, the body admission, deferred replies and streams that do
// not take workers. The whole daemon under all of it at once is
// tests/ops/hostile_load_test.cpp.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "api/client.h"
#include "api/pending_reply.h"
#include "api/server.h"
#include "hostile_load.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
using namespace vmstack::api::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using vmstack::test::connect_from;

namespace {

std::string http_post(const std::string& body, const std::string& extra = {}) {
  return "POST / HTTP/1.1\r\nContent-Type: text/xml\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

Value unix_echo(const std::string& sock) {
  Client c(Endpoint{sock, "", 0, false});
  return c.call("echo", {Value("hi")});
}

}  // namespace

TEST(ServerHardening, TcpLoadCannotFillTheUnixSocket) {
  TempDir dir;
  Server server({sock_in(dir), "127.0.0.1", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_connections = 8;
  server.set_limits(lim);
  server.start();
  std::vector<UniqueFd> tcp;
  for (int i = 0; i < 8; ++i) tcp.push_back(connect_from("127.0.7." + std::to_string(i + 1), server.tcp_port()));
  std::this_thread::sleep_for(100ms);
  // TCP is full (and its connections are too new to give up)...
  UniqueFd ninth = connect_from("127.0.7.100", server.tcp_port());
  EXPECT_EQ(read_until_closed(ninth.get(), 3s).rfind("HTTP/1.1 503", 0), 0u);
  // ... the unix socket is not.
  auto t0 = steady::now();
  EXPECT_EQ(unix_echo(sock_in(dir)), Value(Array{Value("hi")}));
  EXPECT_LT(steady::now() - t0, 2s);
}

TEST(ServerHardening, ConnectionsPerSourceAreCapped) {
  TempDir dir;
  Server server({"", "127.0.0.1", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_connections_per_source = 3;
  server.set_limits(lim);
  server.start();
  std::vector<UniqueFd> mine;
  for (int i = 0; i < 3; ++i) mine.push_back(connect_from("127.0.8.1", server.tcp_port()));
  std::this_thread::sleep_for(100ms);
  UniqueFd fourth = connect_from("127.0.8.1", server.tcp_port());
  std::string got = read_until_closed(fourth.get(), 3s);
  EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got;
  EXPECT_NE(got.find("from this address"), std::string::npos) << got;
  // Another address is served.
  UniqueFd other = connect_from("127.0.8.2", server.tcp_port());
  write_str(other.get(), http_post(xmlrpc::format_request("echo", {}), "Connection: close\r\n"));
  EXPECT_EQ(read_until_closed(other.get(), 3s).rfind("HTTP/1.1 200", 0), 0u);
  // When one of the first three goes, that address may connect again.
  mine.pop_back();
  std::this_thread::sleep_for(200ms);
  UniqueFd again = connect_from("127.0.8.1", server.tcp_port());
  write_str(again.get(), http_post(xmlrpc::format_request("echo", {}), "Connection: close\r\n"));
  EXPECT_EQ(read_until_closed(again.get(), 3s).rfind("HTTP/1.1 200", 0), 0u);
}

TEST(ServerHardening, FullBudgetGivesUpTheIdlestConnection) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_connections = 3;
  lim.park_after = 20ms;
  server.set_limits(lim);
  server.start();
  std::vector<std::unique_ptr<Client>> kept;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(std::make_unique<Client>(Endpoint{sock_in(dir), "", 0, false}));
    kept.back()->call("echo", {});
    std::this_thread::sleep_for(50ms);  // parked, oldest first
  }
  // A fourth client gets in: the longest-idle connection made room.
  EXPECT_EQ(unix_echo(sock_in(dir)), Value(Array{Value("hi")}));
  // Whoever lost a connection reconnects transparently on its next call
  // (each then parked, so the next reconnection finds room: three slots
  // all mid-call would rightly answer 503).
  for (auto& c : kept) {
    EXPECT_NO_THROW(c->call("echo", {}));
    std::this_thread::sleep_for(50ms);
  }
}

TEST(ServerHardening, SilentNewConnectionsAndSlowRequestsTimeOut) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.request_timeout = 1s;
  lim.min_body_rate = 1000;
  server.set_limits(lim);
  server.start();
  // Silent from the start: closed without an answer.
  UniqueFd silent = connect_unix(sock_in(dir));
  auto t0 = steady::now();
  EXPECT_EQ(read_until_closed(silent.get(), 5s), "");
  EXPECT_GE(steady::now() - t0, 900ms);
  // A body far slower than min_body_rate: 408, although bytes keep coming.
  UniqueFd slow = connect_unix(sock_in(dir));
  write_str(slow.get(), "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
  std::string got;
  std::thread reader([&] { got = read_until_closed(slow.get(), 8s); });
  for (int i = 0; i < 25 && got.empty(); ++i) {
    write_str(slow.get(), "xxxxxxxxxx");
    std::this_thread::sleep_for(200ms);
  }
  reader.join();
  EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
}

// 50 clients trickling headers with a single worker: none of them holds it.
TEST(ServerHardening, SlowlorisHoldsNoWorker) {
  TempDir dir;
  Server server({sock_in(dir), "127.0.0.1", 0, 1}, test_dispatch);
  ServerLimits lim;
  lim.max_threads = 1;
  server.set_limits(lim);
  server.start();
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(connect_from("127.0.9." + std::to_string(i / 10 + 1), server.tcp_port()));
    write_str(slow.back().get(), "POST / HTTP/1.1\r\nContent-Le");
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& fd : slow) write_str(fd.get(), "n");
    auto t0 = steady::now();
    EXPECT_EQ(unix_echo(sock_in(dir)), Value(Array{Value("hi")}));
    Client tcp(Endpoint{"", "127.0.0.1", server.tcp_port(), false});
    EXPECT_NO_THROW(tcp.call("echo", {}));
    EXPECT_LT(steady::now() - t0, 2s) << "round " << round;
    std::this_thread::sleep_for(200ms);
  }
}

// Large bodies need the admission's consent, which it gives from the
// call's head; small ones are dispatched as usual.
TEST(ServerHardening, LargeBodiesNeedAdmission) {
  TempDir dir;
  std::atomic<int> dispatched{0};
  Server server({sock_in(dir), "", 0, 2}, [&](const RpcCall& c) {
    ++dispatched;
    return Value(static_cast<int64_t>(c.params.size()));
  });
  ServerLimits lim;
  lim.max_unproven_body_bytes = 4096;
  server.set_limits(lim);
  std::vector<CallHead> seen;
  std::mutex seen_mu;
  server.set_body_admission([&](const CallHead& h) {
    std::lock_guard lk(seen_mu);
    seen.push_back(h);
    if (h.method == "login") return false;
    if (h.first_param != "OpaqueRef:good") throw ApiError(errors::SESSION_INVALID, {h.first_param.value_or("")});
    return true;
  });
  server.start();
  const std::string big(1u << 20, 'x');
  for (bool json : {false, true}) {
    Client c(Endpoint{sock_in(dir), "", 0, json});
    // Small: no admission needed, whatever the session.
    // (The dispatcher answers the parameter count; XML-RPC sends ints as strings.)
    EXPECT_EQ(c.call("VM.set_name_label", {Value("OpaqueRef:bad"), Value("x")}).as_int(), 2);
    // Large with a live session: read and dispatched.
    EXPECT_EQ(c.call("VM.set_name_label", {Value("OpaqueRef:good"), Value(big)}).as_int(), 2);
    // Large with a forged one: refused from the head, never dispatched.
    int before = dispatched;
    try {
      c.call("VM.set_name_label", {Value("OpaqueRef:forged"), Value(big)});
      ADD_FAILURE() << "forged session accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), errors::SESSION_INVALID) << e.what();
      ASSERT_EQ(e.params().size(), 1u);
      EXPECT_EQ(e.params()[0], "OpaqueRef:forged");
    }
    EXPECT_EQ(dispatched, before);
    // Large for a method without a session: 413.
    try {
      c.call("login", {Value("root"), Value(big)});
      ADD_FAILURE() << "large login accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), wire_errors::PROTOCOL_ERROR) << e.what();
      EXPECT_NE(std::string(e.what()).find("413"), std::string::npos) << e.what();
    }
    EXPECT_EQ(dispatched, before);
    EXPECT_NO_THROW(c.call("VM.get_all", {Value("OpaqueRef:good")}));
  }
  {
    std::lock_guard lk(seen_mu);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front().method, "VM.set_name_label");
    EXPECT_EQ(seen.front().peer_address, "unix");
  }
  // A chunked body is held to the same rule as it streams.
  std::string body = xmlrpc::format_request("VM.set_name_label", {Value("OpaqueRef:forged"), Value(big)});
  std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (std::size_t off = 0; off < body.size(); off += 1000) {
    std::string piece = body.substr(off, 1000);
    char len[16];
    std::snprintf(len, sizeof len, "%zx\r\n", piece.size());
    chunked += len + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  std::string r = raw_unix(sock_in(dir), chunked);
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r.substr(0, 200);
  EXPECT_NE(r.find("SESSION_INVALID"), std::string::npos) << r.substr(0, 400);
}

// A dispatcher that defers: the worker is free at once, the answers come
// when completed, in any order, and a client that hangs up abandons its own.
TEST(ServerHardening, DeferredRepliesHoldNoWorker) {
  TempDir dir;
  std::mutex mu;
  std::vector<std::pair<std::string, std::shared_ptr<PendingReply>>> pending;
  Server server({sock_in(dir), "", 0, 1}, [&](const RpcCall& c) -> Value {
    if (c.method != "wait") return test_dispatch(c);
    auto reply = c.defer();
    std::lock_guard lk(mu);
    pending.emplace_back(c.params.at(0).as_string(), reply);
    return Value("ignored");
  });
  ServerLimits lim;
  lim.max_threads = 1;
  server.set_limits(lim);
  server.start();
  constexpr int kWaiters = 20;
  std::vector<std::thread> waiters;
  std::atomic<int> answered{0};
  for (int i = 0; i < kWaiters; ++i)
    waiters.emplace_back([&, i] {
      Client c(Endpoint{sock_in(dir), "", 0, i % 2 == 0});
      if (c.call("wait", {Value("w" + std::to_string(i))}) == Value("done w" + std::to_string(i))) ++answered;
    });
  for (int i = 0; i < 500; ++i) {
    std::lock_guard lk(mu);
    if (pending.size() == kWaiters) break;
    std::this_thread::sleep_for(10ms);
  }
  // Twenty calls wait, one worker: it still serves others.
  auto t0 = steady::now();
  EXPECT_EQ(unix_echo(sock_in(dir)), Value(Array{Value("hi")}));
  EXPECT_LT(steady::now() - t0, 2s);
  // A waiter whose client hangs up: its reply is abandoned.
  UniqueFd quitter = connect_unix(sock_in(dir));
  write_str(quitter.get(), http_post(xmlrpc::format_request("wait", {Value("quitter")})));
  std::shared_ptr<PendingReply> quitter_reply;
  for (int i = 0; i < 500 && !quitter_reply; ++i) {
    std::this_thread::sleep_for(10ms);
    std::lock_guard lk(mu);
    for (auto& [name, r] : pending)
      if (name == "quitter") quitter_reply = r;
  }
  ASSERT_TRUE(quitter_reply);
  EXPECT_FALSE(quitter_reply->settled());
  quitter.reset();
  for (int i = 0; i < 200 && !quitter_reply->settled(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(quitter_reply->settled()) << "a hang-up abandons the reply";
  {
    std::lock_guard lk(mu);
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) it->second->complete(Value("done " + it->first));
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(answered, kWaiters);
}

TEST(ServerHardening, StopAbandonsDeferredReplies) {
  TempDir dir;
  std::shared_ptr<PendingReply> reply;
  std::atomic<bool> deferred{false};
  auto server = std::make_unique<Server>(ServerConfig{sock_in(dir), "", 0, 1}, [&](const RpcCall& c) -> Value {
    reply = c.defer();
    deferred = true;
    return {};
  });
  server->start();
  std::thread caller([&] {
    Client c(Endpoint{sock_in(dir), "", 0, false});
    EXPECT_THROW(c.call("wait", {}), ApiError);  // the connection closes unanswered
  });
  while (!deferred) std::this_thread::sleep_for(5ms);
  auto t0 = steady::now();
  server.reset();
  EXPECT_LT(steady::now() - t0, 3s);
  caller.join();
  EXPECT_TRUE(reply->settled());
  reply->complete(Value("too late"));  // harmless
}

TEST(ServerHardening, StreamsTakeNoWorker) {
  TempDir dir;
  Server server({sock_in(dir), "", 0, 1}, test_dispatch);
  std::atomic<int> streams{0};
  server.add_stream_route("/console", [&](const std::string&, int fd) {
    ++streams;
    pollfd p{fd, POLLRDHUP, 0};
    ::poll(&p, 1, 10000);  // until the client goes
  });
  ServerLimits lim;
  lim.max_threads = 1;
  lim.max_streams = 3;
  server.set_limits(lim);
  server.start();
  std::vector<UniqueFd> consoles;
  for (int i = 0; i < 3; ++i) {
    consoles.push_back(connect_unix(sock_in(dir)));
    write_str(consoles.back().get(), "GET /console HTTP/1.1\r\n\r\n");
  }
  for (int i = 0; i < 200 && streams < 3; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(streams, 3);
  auto t0 = steady::now();
  EXPECT_EQ(unix_echo(sock_in(dir)), Value(Array{Value("hi")}));
  EXPECT_LT(steady::now() - t0, 2s);
  // Beyond max_streams: 503.
  EXPECT_EQ(raw_unix(sock_in(dir), "GET /console HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 503", 0), 0u);
  consoles.clear();
}
