// Data-plane tests on loopback: forwarding, half-close, back-pressure with a
// slow reader (copy and splice paths), timeouts, UDP, listing, persistence,
// rule changes, the forwarding gate, many concurrent connections.
#include <gtest/gtest.h>

#include <set>

#include "lb/proxy.h"
#include "lb_test_util.h"

using namespace vmstack::lb;
using namespace lbtest;

namespace {

struct Fixture {
  ServiceTable table;
  ServiceKey key;
  std::unique_ptr<Proxy> proxy;

  explicit Fixture(Proto proto = Proto::TCP, const std::string& sched = "rr",
                   SpliceMode splice = SpliceMode::Auto, bool persistent = false,
                   const std::string& addr = "127.0.0.1") {
    key.proto = proto;
    key.vip = *Endpoint::parse(
        addr + ":" + std::to_string(free_port(proto == Proto::TCP ? SOCK_STREAM : SOCK_DGRAM, addr)));
    ServiceConfig c;
    c.key = key;
    c.scheduler = sched;
    c.persistent = persistent;
    table.add_service(c);
    ProxyOptions o;
    o.workers = 2;
    o.splice = splice;
    proxy = std::make_unique<Proxy>(table, o);
    proxy->start();
  }
  void add_dest(const Endpoint& ep, int weight = 1) {
    DestConfig d;
    d.addr = ep;
    d.weight = weight;
    table.add_dest(key, d);
  }
  ServiceInfo info() const { return *table.get(key); }
};

}  // namespace

TEST(Proxy, ForwardsTcpAndCounts) {
  TcpServer echo(echo_handler);
  Fixture f;
  f.add_dest(echo.endpoint());
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c) << strerror(errno);
  ASSERT_TRUE(send_all(c.get(), "hello through the balancer"));
  EXPECT_EQ(read_up_to(c.get(), 26), "hello through the balancer");
  ASSERT_TRUE(wait_for([&] { return f.info().dests[0].activeconns == 1; }));
  auto conns = f.table.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].state, "ESTABLISHED");
  EXPECT_EQ(conns[0].vip, f.key.vip);
  EXPECT_EQ(conns[0].dest, echo.endpoint());
  EXPECT_GT(conns[0].expires_ms, 890u * 1000);
  c.reset();
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().tcp_active == 0; }));
  ServiceInfo i = f.info();
  EXPECT_EQ(i.stats.conns, 1u);
  EXPECT_EQ(i.stats.inbytes, 26u);
  EXPECT_EQ(i.stats.outbytes, 26u);
  EXPECT_GE(i.stats.inpkts, 1u);
  EXPECT_EQ(i.dests[0].stats.conns, 1u);
  EXPECT_EQ(i.dests[0].activeconns, 0u);
  EXPECT_EQ(i.dests[0].inactconns, 0u);
}

TEST(Proxy, ForwardsOverIpv6) {
  Endpoint probe;
  if (!bind_socket(SOCK_STREAM, "[::1]", 0, &probe)) GTEST_SKIP() << "no IPv6 loopback here";
  TcpServer echo(echo_handler, "[::1]");
  Fixture f(Proto::TCP, "rr", SpliceMode::Auto, false, "[::1]");
  f.add_dest(echo.endpoint());
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c) << strerror(errno);
  ASSERT_TRUE(send_all(c.get(), "six"));
  EXPECT_EQ(read_up_to(c.get(), 3), "six");
  auto conns = f.table.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].client.addr.str(), "::1");
}

TEST(Proxy, ClientHalfCloseReachesServerAndReplyStillFlows) {
  std::atomic<bool> server_saw_eof{false};
  TcpServer srv([&](int fd) {
    std::string req;
    bool eof = false;
    req = read_up_to(fd, 1 << 20, &eof, 3000);
    server_saw_eof = eof;
    // Reply only after the request's end (the FIN) arrived.
    send_all(fd, "got " + std::to_string(req.size()) + " bytes");
    ::shutdown(fd, SHUT_WR);
  });
  Fixture f;
  f.add_dest(srv.endpoint());
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_all(c.get(), std::string(5000, 'q')));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  bool eof = false;
  EXPECT_EQ(read_up_to(c.get(), 1 << 20, &eof), "got 5000 bytes");
  EXPECT_TRUE(eof);
  EXPECT_TRUE(server_saw_eof);
}

TEST(Proxy, ServerHalfCloseLeavesClientSending) {
  std::string got;
  std::mutex mu;
  TcpServer srv([&](int fd) {
    send_all(fd, "banner\n");
    ::shutdown(fd, SHUT_WR);  // server is done talking, still listens
    std::string s = read_up_to(fd, 1 << 20, nullptr, 3000);
    std::lock_guard lk(mu);
    got = s;
  });
  Fixture f;
  f.add_dest(srv.endpoint());
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);
  bool eof = false;
  EXPECT_EQ(read_up_to(c.get(), 1 << 20, &eof), "banner\n");
  EXPECT_TRUE(eof);
  // FIN_WAIT: one direction closed, the entry now uses the tcpfin timeout.
  ASSERT_TRUE(wait_for([&] {
    auto cs = f.table.connections();
    return cs.size() == 1 && cs[0].state == "FIN_WAIT";
  }));
  EXPECT_EQ(f.info().dests[0].inactconns, 1u);
  ASSERT_TRUE(send_all(c.get(), "still talking"));
  ::shutdown(c.get(), SHUT_WR);
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lk(mu);
    return got == "still talking";
  }));
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().tcp_active == 0; }));
}

class BackPressure : public ::testing::TestWithParam<SpliceMode> {};

TEST_P(BackPressure, SlowReaderStallsTheSenderAndLosesNothing) {
  constexpr size_t kTotal = 96u << 20;  // far more than all socket buffers together
  std::atomic<size_t> sent{0};
  std::atomic<bool> done{false};
  TcpServer srv([&](int fd) {
    std::vector<char> chunk(1 << 16);
    size_t off = 0;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (off < kTotal) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = char((off + i) * 131 % 251);
      if (!send_all(fd, chunk.data(), chunk.size())) break;
      off += chunk.size();
      sent = off;
    }
    ::shutdown(fd, SHUT_WR);
    done = true;
  });
  Fixture f(Proto::TCP, "rr", GetParam());
  f.add_dest(srv.endpoint());
  UniqueFd c = connect_tcp(f.key.vip, 15000);
  ASSERT_TRUE(c);
  // The client reads nothing for a while: the server must stall well short
  // of kTotal (kernel buffers only; the proxy queues at most one chunk).
  size_t last = 0;
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    size_t now = sent.load();
    if (now == last && now > 0) break;
    last = now;
  }
  size_t stalled = sent.load();
  EXPECT_LT(stalled, kTotal / 2) << "no back-pressure: the proxy kept reading";
  EXPECT_FALSE(done.load());
  // Now read everything and check every byte.
  size_t got = 0;
  bool ok = true;
  char buf[65536];
  pollfd p{c.get(), POLLIN, 0};
  while (got < kTotal && ::poll(&p, 1, 10000) > 0) {
    ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && ok; ++i)
      ok = buf[i] == char((got + size_t(i)) * 131 % 251);
    got += size_t(n);
  }
  EXPECT_TRUE(ok) << "corrupted stream";
  EXPECT_EQ(got, kTotal);
  bool eof = false;
  read_up_to(c.get(), 1, &eof);
  EXPECT_TRUE(eof);
  ProxyStats s = f.proxy->stats();
  if (GetParam() == SpliceMode::Never) {
    EXPECT_EQ(s.spliced_bytes, 0u);
  } else {
    EXPECT_GT(s.spliced_bytes, kTotal / 2) << "bulk data should go through splice";
  }
  c.reset();
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().tcp_active == 0; }));
  EXPECT_EQ(f.proxy->stats().pipes_in_use, 0u);
}

INSTANTIATE_TEST_SUITE_P(SpliceModes, BackPressure,
                         ::testing::Values(SpliceMode::Never, SpliceMode::Always, SpliceMode::Auto),
                         [](const auto& info) {
                           switch (info.param) {
                             case SpliceMode::Never: return std::string("Copy");
                             case SpliceMode::Always: return std::string("Splice");
                             default: return std::string("Auto");
                           }
                         });

TEST(Proxy, IdleTcpConnectionExpiresAfterTcpTimeout) {
  TcpServer echo(echo_handler);
  Fixture f;
  f.add_dest(echo.endpoint());
  f.table.set_timeouts(Timeouts{1, 1, 1});
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_all(c.get(), "x"));
  EXPECT_EQ(read_up_to(c.get(), 1), "x");
  auto t0 = std::chrono::steady_clock::now();
  bool eof = false;
  read_up_to(c.get(), 100, &eof, 4000);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(eof) << "idle connection was not closed";
  EXPECT_GE(waited, 0.9);
  EXPECT_LT(waited, 3.0);
  EXPECT_TRUE(wait_for([&] { return f.proxy->stats().expired == 1; }));
  EXPECT_TRUE(wait_for([&] { return f.table.connections().empty(); }));
}

TEST(Proxy, HalfClosedConnectionUsesTcpFinTimeout) {
  TcpServer srv([](int fd) {
    send_all(fd, "bye");
    ::shutdown(fd, SHUT_WR);
    read_up_to(fd, 100, nullptr, 5000);  // keeps its read side open
  });
  Fixture f;
  f.add_dest(srv.endpoint());
  f.table.set_timeouts(Timeouts{30, 1, 30});
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);
  bool eof = false;
  EXPECT_EQ(read_up_to(c.get(), 100, &eof), "bye");
  EXPECT_TRUE(eof);
  // The client never closes: the FIN_WAIT entry expires after tcpfin (1 s),
  // not tcp (30 s).
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().expired == 1; }, 4000));
  EXPECT_TRUE(f.table.connections().empty());
}

TEST(Proxy, UdpFlowsAreScheduledPerClientAndExpire) {
  UdpEcho a("a"), b("b");
  Fixture f(Proto::UDP, "rr");
  f.add_dest(a.endpoint());
  f.add_dest(b.endpoint());
  f.table.set_timeouts(Timeouts{0, 0, 1});
  sockaddr_storage vs;
  socklen_t vl = f.key.vip.to_sockaddr(&vs);
  std::set<std::string> servers;
  for (int client = 0; client < 4; ++client) {
    Endpoint local;
    UniqueFd s = bind_socket(SOCK_DGRAM, "127.0.0.1", 0, &local);
    set_timeouts(s.get(), 2000);
    std::string first;
    for (int i = 0; i < 3; ++i) {
      std::string msg = "ping" + std::to_string(i);
      ASSERT_EQ(::sendto(s.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&vs), vl),
                ssize_t(msg.size()));
      char buf[256];
      sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(s.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      ASSERT_GT(n, 0) << "no UDP reply";
      // The reply comes from the virtual address, not the real server.
      EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from)), f.key.vip);
      std::string reply(buf, size_t(n));
      ASSERT_EQ(reply.substr(2), msg);
      if (i == 0) first = reply.substr(0, 1);
      EXPECT_EQ(reply.substr(0, 1), first) << "a flow must stick to its real server";
    }
    servers.insert(first);
  }
  EXPECT_EQ(servers.size(), 2u) << "rr over flows should use both servers";
  EXPECT_EQ(f.proxy->stats().udp_active, 4u);
  auto conns = f.table.connections();
  ASSERT_EQ(conns.size(), 4u);
  EXPECT_EQ(conns[0].state, "UDP");
  ServiceInfo i = f.info();
  EXPECT_EQ(i.stats.conns, 4u);
  EXPECT_EQ(i.stats.inpkts, 12u);
  EXPECT_EQ(i.stats.outpkts, 12u);
  EXPECT_EQ(i.dests[0].inactconns + i.dests[1].inactconns, 4u);
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().udp_active == 0; }, 4000));
  EXPECT_EQ(f.info().dests[0].inactconns, 0u);
}

TEST(Proxy, NoRealServerOrRefusedConnectResetsTheClient) {
  Fixture f;
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);  // accepted by the proxy, then reset
  bool eof = false;
  read_up_to(c.get(), 10, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(f.proxy->stats().no_dest, 1u);

  Endpoint dead = *Endpoint::parse("127.0.0.1:" + std::to_string(free_port()));
  f.add_dest(dead);
  UniqueFd c2 = connect_tcp(f.key.vip);
  ASSERT_TRUE(c2);
  eof = false;
  read_up_to(c2.get(), 10, &eof);
  EXPECT_TRUE(eof);
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().connect_failed == 1; }));
  EXPECT_EQ(f.info().dests[0].activeconns, 0u);
}

TEST(Proxy, RuleChangesOpenAndCloseListeners) {
  TcpServer echo(echo_handler);
  Fixture f;
  f.add_dest(echo.endpoint());
  UniqueFd live = connect_tcp(f.key.vip);
  ASSERT_TRUE(live);
  ASSERT_TRUE(send_all(live.get(), "1"));
  ASSERT_EQ(read_up_to(live.get(), 1), "1");

  f.table.delete_service(f.key);
  EXPECT_FALSE(connect_tcp(f.key.vip)) << "listener still open after -D";
  // An established connection outlives its service (as in LVS).
  ASSERT_TRUE(send_all(live.get(), "2"));
  EXPECT_EQ(read_up_to(live.get(), 1), "2");

  ServiceConfig c;
  c.key = f.key;
  c.scheduler = "rr";
  f.table.add_service(c);
  f.add_dest(echo.endpoint());
  UniqueFd again = connect_tcp(f.key.vip);
  ASSERT_TRUE(again);
  ASSERT_TRUE(send_all(again.get(), "3"));
  EXPECT_EQ(read_up_to(again.get(), 1), "3");
  EXPECT_TRUE(f.proxy->listener_errors().empty());
}

TEST(Proxy, ForwardingGateClosesListeners) {
  TcpServer echo(echo_handler);
  Fixture f;
  f.add_dest(echo.endpoint());
  EXPECT_EQ(f.proxy->stats().listeners, 2u);  // one per worker
  f.table.set_forwarding(false);
  EXPECT_EQ(f.proxy->stats().listeners, 0u);
  EXPECT_FALSE(connect_tcp(f.key.vip));
  f.table.set_forwarding(true);
  UniqueFd c = connect_tcp(f.key.vip);
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_all(c.get(), "up"));
  EXPECT_EQ(read_up_to(c.get(), 2), "up");
}

TEST(Proxy, ListenerErrorIsReportedAndRetried) {
  // Someone else holds the port without SO_REUSEPORT.
  Endpoint taken;
  UniqueFd squatter = bind_socket(SOCK_STREAM, "127.0.0.1", 0, &taken);
  ASSERT_TRUE(squatter);
  ServiceTable table;
  ProxyOptions o;
  o.workers = 1;
  Proxy proxy(table, o);
  proxy.start();
  ServiceConfig c;
  c.key = ServiceKey{Proto::TCP, taken};
  table.add_service(c);
  auto errs = proxy.listener_errors();
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs.begin()->second.find("Address already in use"), std::string::npos)
      << errs.begin()->second;
  squatter.reset();
  EXPECT_TRUE(wait_for([&] { return proxy.listener_errors().empty(); }));
  EXPECT_EQ(proxy.stats().listeners, 1u);
}

TEST(Proxy, PersistenceKeepsAClientOnOneServer) {
  TcpServer a([](int fd) { send_all(fd, "A"); });
  TcpServer b([](int fd) { send_all(fd, "B"); });
  Fixture f(Proto::TCP, "rr", SpliceMode::Auto, /*persistent=*/true);
  f.add_dest(a.endpoint());
  f.add_dest(b.endpoint());
  std::string first;
  for (int i = 0; i < 6; ++i) {
    UniqueFd c = connect_tcp(f.key.vip);
    ASSERT_TRUE(c);
    std::string got = read_up_to(c.get(), 1);
    ASSERT_EQ(got.size(), 1u);
    if (i == 0) first = got;
    EXPECT_EQ(got, first) << "connection " << i << " left its persistent server";
  }
  auto conns = f.table.connections();
  bool have_template = false;
  for (auto& e : conns) have_template |= e.is_template;
  EXPECT_TRUE(have_template);
}

TEST(Proxy, DeletedRealServerGetsNoNewConnections) {
  TcpServer a([](int fd) { send_all(fd, "A"); });
  TcpServer b([](int fd) { send_all(fd, "B"); });
  Fixture f(Proto::TCP, "rr");
  f.add_dest(a.endpoint());
  f.add_dest(b.endpoint());
  f.table.delete_dest(f.key, b.endpoint());
  for (int i = 0; i < 6; ++i) {
    UniqueFd c = connect_tcp(f.key.vip);
    ASSERT_TRUE(c);
    EXPECT_EQ(read_up_to(c.get(), 1), "A");
  }
  EXPECT_EQ(b.accepted(), 0);
}

TEST(Proxy, ThousandsOfConcurrentConnections) {
  uint64_t lim = raise_nofile_limit(65536);
  const int n = lim >= 20000 ? 3000 : int(lim / 5);
  PollEchoServer echo;
  Fixture f;
  f.add_dest(echo.endpoint());
  std::vector<UniqueFd> clients;
  clients.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    UniqueFd c = connect_tcp(f.key.vip);
    ASSERT_TRUE(c) << "connection " << i << ": " << strerror(errno);
    clients.push_back(std::move(c));
  }
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().tcp_active == uint64_t(n); }, 10000))
      << f.proxy->stats().tcp_active;
  // Every connection still works.
  for (int i = 0; i < n; ++i) ASSERT_TRUE(send_all(clients[size_t(i)].get(), "z"));
  for (int i = 0; i < n; ++i) ASSERT_EQ(read_up_to(clients[size_t(i)].get(), 1), "z") << i;
  EXPECT_EQ(f.info().dests[0].activeconns, uint32_t(n));
  clients.clear();
  ASSERT_TRUE(wait_for([&] { return f.proxy->stats().tcp_active == 0; }, 10000));
  EXPECT_EQ(f.info().dests[0].activeconns, 0u);
  EXPECT_EQ(f.info().dests[0].inactconns, 0u);
}
