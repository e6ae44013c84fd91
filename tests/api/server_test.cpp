#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "api/client.h"
#include "api/server.h"
#include "test_util.h"

using namespace vmstack;
using namespace vmstack::api;
namespace fs = std::filesystem;

namespace {

using namespace vmstack::api::test;

class ServerTest : public ::testing::TestWithParam<bool> {};  // param: json

}  // namespace

TEST_P(ServerTest, UnixSocketEndToEnd) {
  TempDir dir;
  std::string sock = (dir.path / "xapi.sock").string();
  Server server({sock, "", 0, 2}, test_dispatch);
  server.start();
  EXPECT_EQ(fs::status(sock).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  Client client(Endpoint{sock, "", 0, GetParam()});
  Value rec = client.call("VM.get_record", {Value("OpaqueRef:x")});
  EXPECT_EQ(rec["name_label"], Value("vm <&> \xC3\xA9"));
  EXPECT_EQ(rec["memory_static_max"].as_int(), int64_t{4} << 30);
  EXPECT_EQ(rec["VBDs"].as_array().size(), 2u);
  EXPECT_FALSE(rec["is_a_template"].as_bool());

  Array params{Value("a"), Value(Struct{{"x", Value(Array{Value(1.5), Value()})}})};
  Value echoed = client.call("echo", params);
  EXPECT_EQ(echoed, Value(params));

  Value who = client.call("whoami", {});
  EXPECT_EQ(who["uid"].as_int(), static_cast<int64_t>(::getuid()));
  EXPECT_EQ(who["addr"], Value("unix"));

  try {
    client.call("fail", {});
    FAIL() << "expected ApiError";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.description(), (std::vector<std::string>{"HANDLE_INVALID", "VM", "OpaqueRef:nope"}));
  }
  try {
    client.call("crash", {});
    FAIL() << "expected ApiError";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), errors::INTERNAL_ERROR);
    EXPECT_EQ(e.params(), std::vector<std::string>{"kaboom"});
  }
  // The connection survives failures.
  EXPECT_EQ(client.call("echo", {Value(1)}).as_array().size(), 1u);
  server.stop();
  EXPECT_FALSE(fs::exists(sock));
}

TEST_P(ServerTest, TcpEndToEnd) {
  Server server({"", "127.0.0.1", 0, 2}, test_dispatch);
  server.start();
  ASSERT_NE(server.tcp_port(), 0);
  Client client(Endpoint{"", "127.0.0.1", server.tcp_port(), GetParam()});
  EXPECT_EQ(client.call("VM.get_record", {})["VCPUs_max"].as_int(), 2);
  Value who = client.call("whoami", {});
  EXPECT_EQ(who["uid"].as_int(), -1);
  EXPECT_EQ(who["addr"].as_string().rfind("127.0.0.1:", 0), 0u);
  EXPECT_THROW(client.call("fail", {}), ApiError);
}

TEST_P(ServerTest, ConcurrentClients) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 4}, test_dispatch);
  server.start();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client c(Endpoint{sock, "", 0, GetParam()});
      for (int i = 0; i < 200; ++i) {
        Value v = c.call("echo", {Value(t), Value(i)});
        if (v.as_array().at(0).as_int() == t && v.as_array().at(1).as_int() == i) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 8 * 200);
}

TEST_P(ServerTest, BlockingCallDoesNotStarveOthers) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 1}, test_dispatch);
  server.start();
  std::thread slow([&] {
    Client c(Endpoint{sock, "", 0, GetParam()});
    EXPECT_EQ(c.call("sleep", {Value(800)}), Value("slept"));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  Client fast(Endpoint{sock, "", 0, GetParam()});
  fast.call("echo", {});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
  slow.join();
}

INSTANTIATE_TEST_SUITE_P(Codecs, ServerTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "JsonRpc" : "XmlRpc"; });

TEST(Server, ReconnectsAfterServerRestart) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Client client(Endpoint{sock, "", 0, false});
  {
    Server server({sock, "", 0, 1}, test_dispatch);
    server.start();
    client.call("echo", {});
  }
  Server server({sock, "", 0, 1}, test_dispatch);
  server.start();
  EXPECT_EQ(client.call("echo", {Value("again")}), Value(Array{Value("again")}));
}

TEST(Server, ConnectionFailedMessage) {
  Client client(Endpoint{"/nonexistent/dir/xapi.sock", "", 0, false});
  try {
    client.call("echo", {});
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), wire_errors::CONNECTION_FAILED);
    ASSERT_EQ(e.params().size(), 1u);
    EXPECT_NE(e.params()[0].find("/nonexistent/dir/xapi.sock"), std::string::npos);
    EXPECT_NE(e.params()[0].find("is vmstackd running?"), std::string::npos);
  }
  Client tcp(Endpoint{"", "127.0.0.1", 1, true});
  EXPECT_THROW(tcp.call("echo", {}), ApiError);
}

TEST(Server, RefusesToStealALiveSocketAndReplacesStaleOne) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server a({sock, "", 0, 1}, test_dispatch);
  a.start();
  Server b({sock, "", 0, 1}, test_dispatch);
  EXPECT_THROW(b.start(), std::runtime_error);
  a.stop();
  // Leave a stale socket file behind, then start over it.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  Server c({sock, "", 0, 1}, test_dispatch);
  EXPECT_NO_THROW(c.start());
  Client client(Endpoint{sock, "", 0, false});
  EXPECT_NO_THROW(client.call("echo", {}));
}

TEST(Server, HttpErrorsAndRouting) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 1}, test_dispatch);
  server.start();
  EXPECT_EQ(raw_unix(sock, "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(raw_unix(sock, "POST /nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(raw_unix(sock, "GET /nope HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(raw_unix(sock, "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(raw_unix(sock, "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n").rfind("HTTP/1.1 413", 0), 0u);
  // Malformed XML-RPC body: a XenAPI Failure, not an HTTP error.
  std::string r = raw_unix(sock, "POST / HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n<oops");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(r.find("XMLRPC_UNMARSHAL_FAILURE"), std::string::npos);
  // Malformed JSON-RPC body.
  r = raw_unix(sock, "POST /jsonrpc HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{");
  EXPECT_NE(r.find("\"message\":\"JSONRPC_UNMARSHAL_FAILURE\""), std::string::npos) << r;
  // JSON on POST / selected by Content-Type; /RPC2 is XML-RPC; Expect: 100-continue handled.
  std::string body = R"({"method":"echo","params":["x"],"id":3})";
  r = raw_unix(sock, "POST / HTTP/1.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_NE(r.find("{\"result\":[\"x\"],\"error\":null,\"id\":3}"), std::string::npos) << r;
  std::string xml = xmlrpc::format_request("echo", {Value("y")});
  r = raw_unix(sock, "POST /RPC2 HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(xml.size()) + "\r\n\r\n" + xml);
  EXPECT_EQ(r.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0), 0u) << r;
  EXPECT_NE(r.find("<value>y</value>"), std::string::npos);
  // Two pipelined keep-alive requests on one connection.
  std::string one = "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(xml.size()) + "\r\n\r\n" + xml;
  r = raw_unix(sock, one + one);
  EXPECT_EQ(std::count(r.begin(), r.end(), 'y') >= 2, true);
  std::size_t first = r.find("HTTP/1.1 200");
  EXPECT_NE(r.find("HTTP/1.1 200", first + 1), std::string::npos);
  // A 404 for an unknown GET keeps the connection usable...
  r = raw_unix(sock, "GET /nope HTTP/1.1\r\n\r\n" + one);
  EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << r;
  // ... unless that GET had a body, which would otherwise be read as a request.
  r = raw_unix(sock, "GET /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + one);
  EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
  EXPECT_EQ(r.find("HTTP/1.1 200 OK"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
}

TEST(Server, StreamRoute) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 1}, test_dispatch);
  std::string seen_target;
  server.add_stream_route("/console", [&](const std::string& target, int fd) {
    seen_target = target;
    std::string data;
    for (int i = 0; i < 5000; ++i) data += "line " + std::to_string(i) + "\n";
    (void)!::write(fd, data.data(), data.size());
  });
  server.start();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string got;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  });
  Client client(Endpoint{sock, "", 0, false});
  EXPECT_TRUE(client.stream_get("/console?ref=OpaqueRef:1", p[1]));
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  EXPECT_EQ(seen_target, "/console?ref=OpaqueRef:1");
  EXPECT_EQ(got.substr(0, 7), "line 0\n");
  EXPECT_NE(got.find("line 4999\n"), std::string::npos);
  EXPECT_FALSE(client.stream_get("/other", 1));
  // An RPC client still works afterwards.
  EXPECT_NO_THROW(client.call("echo", {}));
}

TEST(Server, StopWithClientsConnected) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  auto server = std::make_unique<Server>(ServerConfig{sock, "127.0.0.1", 0, 2}, test_dispatch);
  std::atomic<bool> streaming{false};
  server->add_stream_route("/console", [&](const std::string&, int fd) {
    streaming = true;
    while (::send(fd, "x", 1, MSG_NOSIGNAL) == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  server->start();
  // Idle keep-alive clients on both transports, a client mid-call, a stream.
  Client idle_unix(Endpoint{sock, "", 0, false});
  idle_unix.call("echo", {});
  Client idle_tcp(Endpoint{"", "127.0.0.1", server->tcp_port(), true});
  idle_tcp.call("echo", {});
  std::thread busy([&] {
    Client c(Endpoint{sock, "", 0, false});
    try {
      c.call("sleep", {Value(300)});
    } catch (const ApiError&) {
    }
  });
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread streamer([&] {
    Client c(Endpoint{sock, "", 0, false});
    c.stream_get("/console", p[1]);
  });
  std::thread drain([&] {
    char buf[256];
    while (::read(p[0], buf, sizeof buf) > 0) {
    }
  });
  while (!streaming) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  server.reset();
  busy.join();
  streamer.join();
  ::close(p[1]);
  drain.join();
  ::close(p[0]);
  // The idle clients now fail cleanly.
  EXPECT_THROW(idle_unix.call("echo", {}), ApiError);
  EXPECT_THROW(idle_tcp.call("echo", {}), ApiError);
}

TEST(Server, BindFailures) {
  Server bad({"/nonexistent/dir/sock", "", 0, 1}, test_dispatch);
  EXPECT_THROW(bad.start(), std::runtime_error);
  Server none({"", "", 0, 1}, test_dispatch);
  EXPECT_THROW(none.start(), std::runtime_error);
  Server ok({"", "127.0.0.1", 0, 1}, test_dispatch);
  ok.start();
  Server clash({"", "127.0.0.1", ok.tcp_port(), 1}, test_dispatch);
  EXPECT_THROW(clash.start(), std::runtime_error);
}

// Not a pass/fail benchmark (the machine is shared): prints calls/s for a
// small record and for a VM-sized one (~90 fields: strings, ints, bools,
// maps, sets, copied per call as a datamodel store would), and checks every
// reply is right.
TEST(Server, Throughput) {
  Struct big;
  for (int i = 0; i < 60; ++i) big["field_" + std::to_string(i)] = Value("some string value " + std::to_string(i));
  for (int i = 0; i < 15; ++i) big["int_" + std::to_string(i)] = Value(int64_t{1} << 33);
  for (int i = 0; i < 5; ++i) big["bool_" + std::to_string(i)] = Value(i % 2 == 0);
  Struct other_config;
  for (int i = 0; i < 8; ++i) other_config["k" + std::to_string(i)] = Value("v" + std::to_string(i));
  for (int i = 0; i < 5; ++i) big["map_" + std::to_string(i)] = Value(other_config);
  Array refs(4, Value("OpaqueRef:6f1c7c7e-1f1e-4a5b-9c0d-123456789abc"));
  for (int i = 0; i < 5; ++i) big["set_" + std::to_string(i)] = Value(refs);
  const Value big_record(big);
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 4}, [&](const RpcCall& c) {
    return c.method == "VM.get_record_big" ? big_record : test_dispatch(c);
  });
  server.start();
  for (const char* method : {"VM.get_record", "VM.get_record_big"}) {
    for (bool json : {false, true}) {
      for (int nclients : {1, 4}) {
        const int per = 1000 / nclients;
        std::atomic<int> good{0};
        std::vector<std::thread> ts;
        auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < nclients; ++t)
          ts.emplace_back([&] {
            Client c(Endpoint{sock, "", 0, json});
            for (int i = 0; i < per; ++i)
              if (c.call(method, {Value("OpaqueRef:x")}).as_struct().size() > 5) ++good;
          });
        for (auto& t : ts) t.join();
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_EQ(good.load(), per * nclients);
        std::printf("[ throughput ] %-17s %s %d client(s): %6.0f calls/s\n", method, json ? "json" : "xml ", nclients,
                    per * nclients / secs);
      }
    }
  }
}

TEST(Server, Ipv6Loopback) {
  Server server({"", "::1", 0, 1}, test_dispatch);
  try {
    server.start();
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  Client client(Endpoint{"", "::1", server.tcp_port(), false});
  Value who = client.call("whoami", {});
  EXPECT_EQ(who["uid"].as_int(), -1);
  EXPECT_EQ(who["addr"].as_string().rfind("[::1]:", 0), 0u) << who["addr"].as_string();
}

TEST_P(ServerTest, OddDispatcherFailuresBecomeInternalError) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 1}, test_dispatch);
  server.start();
  Client client(Endpoint{sock, "", 0, GetParam()});
  for (const char* method : {"throw_int", "too_deep"}) {
    try {
      client.call(method, {});
      ADD_FAILURE() << method << " succeeded";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), errors::INTERNAL_ERROR) << method;
      ASSERT_EQ(e.params().size(), 1u);
      EXPECT_FALSE(e.params()[0].empty());
    }
  }
  EXPECT_EQ(client.call("echo", {Value("still fine")}), Value(Array{Value("still fine")}));
}

// Mutated and random HTTP requests thrown at a live server: each gets an
// answer or a closed connection, and the server keeps serving.
TEST(Server, SurvivesGarbageHttp) {
  TempDir dir;
  std::string sock = (dir.path / "s").string();
  Server server({sock, "", 0, 2}, test_dispatch);
  server.start();
  std::string xml = xmlrpc::format_request("echo", {Value("x"), Value(Struct{{"k", Value(1)}})});
  std::string json = jsonrpc::format_request("echo", {Value("x")}, 1);
  std::vector<std::string> seeds = {
      "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(xml.size()) + "\r\n\r\n" + xml,
      "POST /jsonrpc HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
          "\r\n\r\n" + json,
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET /console?x HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  std::mt19937 rng(99);
  const std::string alphabet = "\r\n :/0123456789abcdefPOSTGEHTP<>{}\"\x01\xff";
  for (int i = 0; i < 300; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    for (int e = 1 + static_cast<int>(rng() % 4); e > 0 && !s.empty(); --e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(pos, 1 + rng() % 6); break;
        default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    std::string r = raw_unix(sock, s);
    if (!r.empty()) {
      EXPECT_EQ(r.rfind("HTTP/1.1 ", 0), 0u) << "request: " << s << "\nresponse: " << r;
    }
  }
  Client client(Endpoint{sock, "", 0, false});
  EXPECT_EQ(client.call("echo", {Value(7)}), Value(Array{Value("7")}));
}
