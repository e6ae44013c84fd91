// VRRP: the advertisement codec, the RFC 5798 state machine driven by an
// injected clock, and two VrrpNodes talking UDP on loopback.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <deque>
#include <mutex>
#include <random>

#include "ha_test_util.h"
#include "lb/vrrp.h"
#include "lb/vrrp_node.h"

using namespace vmstack::lb::ha;
using namespace vmstack::lb::hatest;
using Ms = VrrpStateMachine::Ms;

namespace {

uint32_t ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

std::vector<uint8_t> addr_bytes(const char* s) {
  uint32_t a = ip(s);
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &a, 4);
  return b;
}

// A state machine plus what it did.
struct Router {
  std::vector<uint8_t> sent;  // priorities of adverts sent
  std::vector<std::pair<VrrpState, VrrpState>> changes;
  VrrpStateMachine sm;

  explicit Router(uint8_t prio, uint16_t int_cs = 100, bool preempt = true, const char* self = "10.0.0.1")
      : sm(make_cfg(prio, int_cs, preempt, self), make_act()) {}

  static VrrpStateMachine::Config make_cfg(uint8_t prio, uint16_t int_cs, bool preempt, const char* self) {
    VrrpStateMachine::Config c;
    c.vrid = 7;
    c.priority = prio;
    c.advert_int_cs = int_cs;
    c.preempt = preempt;
    c.self_addr = addr_bytes(self);
    return c;
  }
  VrrpStateMachine::Actions make_act() {
    VrrpStateMachine::Actions a;
    a.send_advert = [this](uint8_t p) { sent.push_back(p); };
    a.state_change = [this](VrrpState f, VrrpState t) { changes.emplace_back(f, t); };
    return a;
  }
};

VrrpAdvert advert(uint8_t prio, uint16_t int_cs = 100, const char* from = "10.0.0.9") {
  VrrpAdvert a;
  a.vrid = 7;
  a.priority = prio;
  a.interval_cs = int_cs;
  a.sender = addr_bytes(from);
  return a;
}

}  // namespace

TEST(VrrpCodec, RoundTripAndRejects) {
  VrrpAdvert a;
  a.vrid = 51;
  a.priority = 150;
  a.interval_cs = 250;
  a.addrs = {ip("10.1.2.3"), ip("192.168.0.100")};
  auto b = encode_advert(a);
  ASSERT_EQ(b.size(), 16u);
  EXPECT_EQ(b[0], 0x31);  // version 3, type 1 (ADVERTISEMENT)
  EXPECT_EQ(b[1], 51);
  EXPECT_EQ(b[2], 150);
  EXPECT_EQ(b[3], 2);
  auto d = decode_advert(b.data(), b.size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->vrid, 51);
  EXPECT_EQ(d->priority, 150);
  EXPECT_EQ(d->interval_cs, 250);
  EXPECT_EQ(d->addrs, a.addrs);

  std::string why;
  auto c = b;
  c[9] ^= 0x40;  // payload corruption
  EXPECT_FALSE(decode_advert(c.data(), c.size(), &why));
  EXPECT_EQ(why, "bad checksum");
  EXPECT_FALSE(decode_advert(b.data(), b.size() - 4, &why));
  EXPECT_EQ(why, "length does not match address count");
  EXPECT_FALSE(decode_advert(b.data(), 7, &why));
  EXPECT_EQ(why, "short packet");
  c = b;
  c[0] = 0x21;  // VRRPv2
  EXPECT_FALSE(decode_advert(c.data(), c.size(), &why));
  EXPECT_EQ(why, "not VRRP version 3");

  // Fuzz: random bytes never crash and are (almost always) rejected.
  std::mt19937 rng(42);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> r(rng() % 40);
    for (auto& x : r) x = static_cast<uint8_t>(rng());
    if (decode_advert(r.data(), r.size())) ++accepted;
  }
  EXPECT_LT(accepted, 5);
}

TEST(VrrpStateMachine, TimersFollowRfc5798) {
  Router r(100);  // Master_Adver_Interval 1 s
  // Skew_Time = (256-100)*1s/256 = 609.375 ms; Master_Down = 3 s + skew.
  EXPECT_EQ(r.sm.skew_ms(), 609);
  EXPECT_EQ(r.sm.master_down_interval_ms(), 3609);
  Router hi(254);
  EXPECT_EQ(hi.sm.skew_ms(), 7);  // 2*1000/256 = 7.8 -> 7
  // A higher priority has a shorter skew, so it wins a simultaneous start.
  EXPECT_LT(hi.sm.master_down_interval_ms(), r.sm.master_down_interval_ms());
}

TEST(VrrpStateMachine, BackupBecomesMasterAfterMasterDownInterval) {
  Router r(100);
  r.sm.startup(1000);
  EXPECT_EQ(r.sm.state(), VrrpState::Backup);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.sm.next_deadline().value(), 1000 + 3609);
  r.sm.tick(1000 + 3608);
  EXPECT_EQ(r.sm.state(), VrrpState::Backup);
  EXPECT_TRUE(r.sent.empty());
  r.sm.tick(1000 + 3609);
  EXPECT_EQ(r.sm.state(), VrrpState::Master);
  ASSERT_EQ(r.sent.size(), 1u);  // an advert at once on becoming master
  EXPECT_EQ(r.sent[0], 100);
  // Then one every Advertisement_Interval.
  Ms t = 1000 + 3609;
  for (int i = 1; i <= 5; ++i) {
    r.sm.tick(t + i * 1000 - 1);
    EXPECT_EQ(r.sent.size(), size_t(i));
    r.sm.tick(t + i * 1000);
    EXPECT_EQ(r.sent.size(), size_t(i + 1));
  }
}

TEST(VrrpStateMachine, AddressOwnerIsMasterAtOnce) {
  Router r(255);
  r.sm.startup(0);
  EXPECT_EQ(r.sm.state(), VrrpState::Master);
  EXPECT_EQ(r.sent.size(), 1u);
}

TEST(VrrpStateMachine, AdvertsFromMasterKeepBackupDown) {
  Router r(100);
  r.sm.startup(0);
  // A master at 200 advertising every second: we never take over.
  for (Ms t = 500; t < 20000; t += 1000) {
    r.sm.on_advert(t, advert(200));
    r.sm.tick(t + 999);
  }
  EXPECT_EQ(r.sm.state(), VrrpState::Backup);
  // Adverts stop (master crashed): we take over Master_Down_Interval after the last.
  Ms last = 19500;
  r.sm.tick(last + 3608);
  EXPECT_EQ(r.sm.state(), VrrpState::Backup);
  r.sm.tick(last + 3609);
  EXPECT_EQ(r.sm.state(), VrrpState::Master);
}

TEST(VrrpStateMachine, BackupLearnsMasterAdverInterval) {
  Router r(100, 100);
  r.sm.startup(0);
  r.sm.on_advert(0, advert(200, 20));  // master advertises every 200 ms
  EXPECT_EQ(r.sm.master_adver_interval_cs(), 20);
  // Master_Down = 3*200 + (156*200/256=121) ms.
  EXPECT_EQ(r.sm.master_down_interval_ms(), 600 + 121);
  r.sm.tick(720);
  EXPECT_EQ(r.sm.state(), VrrpState::Backup);
  r.sm.tick(721);
  EXPECT_EQ(r.sm.state(), VrrpState::Master);
}

TEST(VrrpStateMachine, PriorityZeroMeansTakeOverAfterSkew) {
  Router r(100);
  r.sm.startup(0);
  r.sm.on_advert(100, advert(200));
  r.sm.on_advert(200, advert(0));  // the master is shutting down
  EXPECT_EQ(r.sm.next_deadline().value(), 200 + 609);
  r.sm.tick(200 + 609);
  EXPECT_EQ(r.sm.state(), VrrpState::Master);
}

TEST(VrrpStateMachine, PreemptionAndNoPreempt) {
  // preempt: a lower-priority master is ignored, so we take over.
  Router p(200, 100, true);
  p.sm.startup(0);
  for (Ms t = 0; t < 5000; t += 1000) p.sm.on_advert(t, advert(100));
  p.sm.tick(5000);
  EXPECT_EQ(p.sm.state(), VrrpState::Master) << "a higher priority backup must preempt";

  // nopreempt: a live lower-priority master is accepted.
  Router n(200, 100, false);
  n.sm.startup(0);
  for (Ms t = 0; t < 20000; t += 1000) {
    n.sm.on_advert(t, advert(100));
    n.sm.tick(t + 999);
  }
  EXPECT_EQ(n.sm.state(), VrrpState::Backup);
}

TEST(VrrpStateMachine, MasterStepsDownForHigherPriorityOrHigherAddress) {
  Router m(150, 100, true, "10.0.0.5");
  m.sm.startup(0);
  m.sm.tick(10000);
  ASSERT_EQ(m.sm.state(), VrrpState::Master);
  size_t sent = m.sent.size();
  m.sm.on_advert(10100, advert(100, 100, "10.0.0.9"));  // lower: ignored
  EXPECT_EQ(m.sm.state(), VrrpState::Master);
  m.sm.on_advert(10200, advert(150, 100, "10.0.0.1"));  // equal, lower address: ignored
  EXPECT_EQ(m.sm.state(), VrrpState::Master);
  m.sm.on_advert(10300, advert(0, 100, "10.0.0.1"));  // a peer leaving: we assert at once
  EXPECT_EQ(m.sent.size(), sent + 1);
  m.sm.on_advert(10400, advert(150, 100, "10.0.0.9"));  // equal, higher address: step down
  EXPECT_EQ(m.sm.state(), VrrpState::Backup);
  EXPECT_EQ(m.changes.back(), std::make_pair(VrrpState::Master, VrrpState::Backup));
}

TEST(VrrpStateMachine, ShutdownSendsPriorityZero) {
  Router m(255);
  m.sm.startup(0);
  m.sm.shutdown(10);
  EXPECT_EQ(m.sm.state(), VrrpState::Init);
  EXPECT_EQ(m.sent.back(), 0);
  EXPECT_FALSE(m.sm.next_deadline());
  Router b(100);
  b.sm.startup(0);
  size_t n = b.sent.size();
  b.sm.shutdown(10);  // a backup leaves silently
  EXPECT_EQ(b.sent.size(), n);
}

// Two state machines on a simulated wire with a 1 ms step clock.
TEST(VrrpStateMachine, TwoRoutersElectAndFailOver) {
  struct Net {
    std::deque<std::pair<int, uint8_t>> wire;  // (from, priority)
    bool up[2] = {true, true};
  } net;
  const char* addrs[2] = {"10.0.0.1", "10.0.0.2"};
  std::unique_ptr<VrrpStateMachine> r[2];
  uint8_t prio[2] = {200, 100};
  for (int i = 0; i < 2; ++i) {
    VrrpStateMachine::Config c;
    c.vrid = 7;
    c.priority = prio[i];
    c.advert_int_cs = 10;  // 100 ms
    c.self_addr = addr_bytes(addrs[i]);
    VrrpStateMachine::Actions a;
    a.send_advert = [&net, i](uint8_t p) {
      if (net.up[i]) net.wire.emplace_back(i, p);
    };
    r[i] = std::make_unique<VrrpStateMachine>(c, a);
  }
  Ms now = 0;
  auto run = [&](Ms until) {
    for (; now < until; ++now) {
      while (!net.wire.empty()) {
        auto [from, p] = net.wire.front();
        net.wire.pop_front();
        int to = 1 - from;
        if (net.up[to]) r[to]->on_advert(now, advert(p, 10, addrs[from]));
      }
      for (auto& x : r) x->tick(now);
    }
  };
  r[0]->startup(0);
  r[1]->startup(0);
  run(2000);
  EXPECT_EQ(r[0]->state(), VrrpState::Master);
  EXPECT_EQ(r[1]->state(), VrrpState::Backup);

  // Router 0 dies without a word: router 1 takes over within
  // Master_Down_Interval = 300 + 60 ms of the last advert it heard.
  net.up[0] = false;
  Ms died = now;
  while (r[1]->state() != VrrpState::Master && now < died + 2000) run(now + 1);
  EXPECT_EQ(r[1]->state(), VrrpState::Master);
  EXPECT_LE(now - died, 100 + 360);

  // Router 0 returns with its higher priority: it preempts (after its own
  // Master_Down_Interval, since it starts as backup) and router 1 steps down.
  net.up[0] = true;
  r[0]->shutdown(now);
  r[0]->startup(now);
  run(now + 2000);
  EXPECT_EQ(r[0]->state(), VrrpState::Master);
  EXPECT_EQ(r[1]->state(), VrrpState::Backup);
}

// ---------------------------------------------------------------------------
// VrrpNode: real UDP on loopback, VIP changes recorded by a fake manager.

namespace {

class FakeVips : public VipManager {
 public:
  void add(const std::string& ifname, const std::string& cidr) override { rec("add " + ifname + " " + cidr); }
  void del(const std::string& ifname, const std::string& cidr) override { rec("del " + ifname + " " + cidr); }
  void announce(const std::string& ifname, const std::string& ip) override { rec("garp " + ifname + " " + ip); }
  std::vector<std::string> events() {
    std::lock_guard lk(mu_);
    return ev_;
  }
  size_t count(const std::string& prefix) {
    size_t n = 0;
    for (auto& e : events()) n += e.rfind(prefix, 0) == 0;
    return n;
  }

 private:
  void rec(const std::string& e) {
    std::lock_guard lk(mu_);
    ev_.push_back(e);
  }
  std::mutex mu_;
  std::vector<std::string> ev_;
};

VrrpNodeConfig node_cfg(const char* self, const char* peer, uint8_t prio, uint16_t port) {
  VrrpNodeConfig c;
  c.interface = "lo";
  c.vrid = 9;
  c.priority = prio;
  c.advert_int_s = 0.05;
  c.vips = {"10.123.0.100/24"};
  c.unicast_peers = {peer};
  c.src_addr = self;
  c.port = port;
  c.garp_repeat_s = 0.1;
  return c;
}

}  // namespace

TEST(VrrpNode, UnicastPairElectsFailsOverAndPreempts) {
  uint16_t port = free_udp_port();
  auto va = std::make_shared<FakeVips>();
  auto vb = std::make_shared<FakeVips>();
  std::atomic<int> b_to_master{0};
  VrrpNode::Callbacks cba, cbb;
  cbb.on_state = [&](VrrpState, VrrpState to) { b_to_master += to == VrrpState::Master; };
  auto a = std::make_unique<VrrpNode>(node_cfg("127.0.0.1", "127.0.0.2", 200, port), cba, va);
  VrrpNode b(node_cfg("127.0.0.2", "127.0.0.1", 100, port), cbb, vb);
  a->start();
  b.start();
  ASSERT_TRUE(wait_until([&] { return a->is_master(); }, 3));
  // B hears A's adverts and stays backup.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(b.state(), VrrpState::Backup);
  EXPECT_GT(b.adverts_received(), 3u);
  EXPECT_EQ(va->count("add lo 10.123.0.100/24"), 1u);
  EXPECT_GE(va->count("garp lo 10.123.0.100"), 2u) << "GARP at takeover and repeated";
  EXPECT_EQ(vb->count("add"), 0u);

  // Crash-like stop of A (no priority 0): B takes over after
  // Master_Down_Interval = 150 ms + skew.
  a->stop(false);
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return b.is_master(); }, 3));
  EXPECT_LT(seconds_since(t0), 0.6);
  EXPECT_EQ(vb->count("add lo 10.123.0.100/24"), 1u);
  EXPECT_EQ(b_to_master.load(), 1);

  // A comes back with its higher priority: preempts, B drops the VIP.
  a = std::make_unique<VrrpNode>(node_cfg("127.0.0.1", "127.0.0.2", 200, port), cba, va);
  a->start();
  ASSERT_TRUE(wait_until([&] { return a->is_master() && !b.is_master(); }, 3));
  EXPECT_EQ(vb->events().back(), "del lo 10.123.0.100/24");

  // Graceful stop: B takes over after Skew_Time only (well under Master_Down).
  a->stop(true);
  t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return b.is_master(); }, 3));
  EXPECT_LT(seconds_since(t0), 0.15);
  EXPECT_GE(va->count("del lo 10.123.0.100/24"), 2u);  // removed on each stop
  b.stop(true);
}

TEST(VrrpNode, ConfigFileParsing) {
  auto c = VrrpNodeConfig::parse(
      "# keepalived-ish\ninterface eth1\nvirtual_router_id 42\npriority = 150\nadvert_int 0.5\n"
      "nopreempt\nvip 10.0.0.100/24\nvip 10.0.0.101\nunicast_peer 10.0.0.2\nunicast_src_ip 10.0.0.1\n");
  EXPECT_EQ(c.interface, "eth1");
  EXPECT_EQ(c.vrid, 42);
  EXPECT_EQ(c.priority, 150);
  EXPECT_DOUBLE_EQ(c.advert_int_s, 0.5);
  EXPECT_FALSE(c.preempt);
  EXPECT_EQ(c.vips.size(), 2u);
  EXPECT_EQ(c.unicast_peers.size(), 1u);
  EXPECT_EQ(c.src_addr, "10.0.0.1");
  auto err = [](const std::string& t) {
    try {
      VrrpNodeConfig::parse(t, "v.conf");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(err("interface eth0\npriority 300\n").rfind("v.conf:2: priority", 0), 0u);
  EXPECT_EQ(err("interface eth0\nvip 10.0.0.300\n").rfind("v.conf:2:", 0), 0u);
  EXPECT_EQ(err("interface eth0\nmcast_group 10.0.0.1\n").rfind("v.conf:2: mcast_group: not a multicast", 0), 0u);
  EXPECT_EQ(err("interface eth0\ncolour red\n").rfind("v.conf:2: unknown key 'colour'", 0), 0u);
  EXPECT_NE(err("priority 100\n").find("interface is required"), std::string::npos);
}

TEST(VrrpNode, StartFailsCleanlyOnBadInterface) {
  VrrpNodeConfig c = node_cfg("127.0.0.1", "127.0.0.2", 100, free_udp_port());
  c.interface = "nosuchif0";
  c.src_addr.clear();  // must come from the (missing) interface
  VrrpNode n(c, {}, std::make_shared<FakeVips>());
  try {
    n.start();
    FAIL() << "started on a missing interface";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nosuchif0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(n.state(), VrrpState::Init);
}
