// Scheduler unit tests on scripted workloads (LVS semantics).
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "lb/scheduler.h"

using namespace vmstack::lb;

namespace {

DestPtr mk(const char* ep, int weight = 1, uint32_t x = 0, uint32_t y = 0) {
  DestConfig c;
  c.addr = *Endpoint::parse(ep);
  c.weight = weight;
  c.u_threshold = x;
  c.l_threshold = y;
  return std::make_shared<Destination>(c);
}

std::string name_of(const DestPtr& d) { return d ? d->addr().str() : "none"; }

SchedInput in(const char* client = "10.0.0.1", const char* target = "192.168.0.1") {
  SchedInput s;
  s.client = *Addr::parse(client);
  s.target = *Addr::parse(target);
  return s;
}

std::vector<std::string> run(Scheduler& s, const std::vector<DestPtr>& ds, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(name_of(s.schedule(ds, in())));
  return out;
}

}  // namespace

TEST(Scheduler, KnownNames) {
  for (auto& n : scheduler_names()) {
    auto s = make_scheduler(n);
    ASSERT_TRUE(s) << n;
    EXPECT_EQ(s->name(), n);
  }
  EXPECT_FALSE(make_scheduler("fancy"));
  EXPECT_FALSE(is_known_scheduler("fancy"));
}

TEST(Scheduler, RoundRobinCyclesAndSkipsQuiesced) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80"), mk("1.0.0.2:80"), mk("1.0.0.3:80")};
  auto s = make_scheduler("rr");
  s->update(ds);
  auto seq = run(*s, ds, 6);
  EXPECT_EQ(seq, (std::vector<std::string>{"1.0.0.1:80", "1.0.0.2:80", "1.0.0.3:80",
                                           "1.0.0.1:80", "1.0.0.2:80", "1.0.0.3:80"}));
  ds[1]->apply({ds[1]->addr(), 0});  // quiesce
  s->update(ds);
  seq = run(*s, ds, 4);
  EXPECT_EQ(seq, (std::vector<std::string>{"1.0.0.1:80", "1.0.0.3:80", "1.0.0.1:80",
                                           "1.0.0.3:80"}));
  for (auto& d : ds) d->apply({d->addr(), 0});
  EXPECT_EQ(s->schedule(ds, in()), nullptr);
  EXPECT_EQ(s->schedule({}, in()), nullptr);
}

TEST(Scheduler, WeightedRoundRobinInterleaves) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 3), mk("1.0.0.2:80", 1)};
  auto s = make_scheduler("wrr");
  s->update(ds);
  auto seq = run(*s, ds, 8);
  EXPECT_EQ(seq, (std::vector<std::string>{"1.0.0.1:80", "1.0.0.1:80", "1.0.0.1:80",
                                           "1.0.0.2:80", "1.0.0.1:80", "1.0.0.1:80",
                                           "1.0.0.1:80", "1.0.0.2:80"}));
}

TEST(Scheduler, WeightedRoundRobinProportionsWithGcd) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 4), mk("1.0.0.2:80", 6), mk("1.0.0.3:80", 2)};
  auto s = make_scheduler("wrr");
  s->update(ds);
  std::map<std::string, int> count;
  for (auto& n : run(*s, ds, 600)) count[n]++;
  EXPECT_EQ(count["1.0.0.1:80"], 200);
  EXPECT_EQ(count["1.0.0.2:80"], 300);
  EXPECT_EQ(count["1.0.0.3:80"], 100);
  // Interleaved: with 2:3:1 (gcd 2) one cycle is B, A B, A B C  (cw 6,4,2).
  auto cyc = run(*s, ds, 6);
  EXPECT_EQ(cyc, (std::vector<std::string>{"1.0.0.2:80", "1.0.0.1:80", "1.0.0.2:80",
                                           "1.0.0.1:80", "1.0.0.2:80", "1.0.0.3:80"}));
}

TEST(Scheduler, WeightedRoundRobinSkipsQuiescedAndOverloaded) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 2), mk("1.0.0.2:80", 0), mk("1.0.0.3:80", 1, 1)};
  auto s = make_scheduler("wrr");
  s->update(ds);
  ds[2]->set_counts(1, 0);  // reaches -x 1: overloaded
  ASSERT_TRUE(ds[2]->overloaded());
  for (auto& n : run(*s, ds, 5)) EXPECT_EQ(n, "1.0.0.1:80");
  ds[0]->set_counts(0, 0);
  ds[0]->apply({ds[0]->addr(), 0});
  EXPECT_EQ(s->schedule(ds, in()), nullptr);
}

TEST(Scheduler, LeastConnectionUsesLvsOverhead) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80"), mk("1.0.0.2:80"), mk("1.0.0.3:80")};
  auto s = make_scheduler("lc");
  ds[0]->set_counts(1, 0);    // 256
  ds[1]->set_counts(0, 300);  // 300
  ds[2]->set_counts(0, 255);  // 255
  EXPECT_EQ(name_of(s->schedule(ds, in())), "1.0.0.3:80");
  ds[2]->set_counts(1, 1);  // 257
  EXPECT_EQ(name_of(s->schedule(ds, in())), "1.0.0.1:80");
  // lc ignores weights except 0
  ds[0]->apply({ds[0]->addr(), 0});
  EXPECT_EQ(name_of(s->schedule(ds, in())), "1.0.0.3:80");
}

TEST(Scheduler, WeightedLeastConnection) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 1), mk("1.0.0.2:80", 3)};
  auto s = make_scheduler("wlc");
  // Simulate a burst of long-lived connections: wlc spreads them 1:3.
  for (int i = 0; i < 40; ++i) {
    auto d = s->schedule(ds, in());
    ASSERT_TRUE(d);
    d->conn_opened(true);
  }
  EXPECT_EQ(ds[0]->active_conns(), 10u);
  EXPECT_EQ(ds[1]->active_conns(), 30u);
}

TEST(Scheduler, ShortestExpectedDelayAndNeverQueue) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 1), mk("1.0.0.2:80", 10)};
  auto sed = make_scheduler("sed");
  auto nq = make_scheduler("nq");
  // Both idle: sed prefers the heavy server ((0+1)/10 < (0+1)/1).
  EXPECT_EQ(name_of(sed->schedule(ds, in())), "1.0.0.2:80");
  // nq takes the first idle server regardless of weight.
  EXPECT_EQ(name_of(nq->schedule(ds, in())), "1.0.0.1:80");
  ds[0]->set_counts(1, 0);
  ds[1]->set_counts(5, 1000);  // sed/nq ignore inactive connections
  EXPECT_EQ(name_of(sed->schedule(ds, in())), "1.0.0.2:80");  // 6/10 < 2/1
  EXPECT_EQ(name_of(nq->schedule(ds, in())), "1.0.0.2:80");
  ds[1]->set_counts(25, 0);                                   // 26/10 > 2/1
  EXPECT_EQ(name_of(sed->schedule(ds, in())), "1.0.0.1:80");
}

TEST(Scheduler, LocalityBasedLeastConnection) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 2), mk("1.0.0.2:80", 2)};
  auto s = make_scheduler("lblc");
  auto a = s->schedule(ds, in("10.0.0.1", "192.168.0.10"));
  ASSERT_TRUE(a);
  a->conn_opened(true);
  // Same target keeps going to the same server even though the other is idle.
  for (int i = 0; i < 2; ++i) {
    auto d = s->schedule(ds, in("10.0.0.9", "192.168.0.10"));
    EXPECT_EQ(d, a);
    d->conn_opened(true);
  }
  // Other target: wlc picks the idle server.
  auto b = s->schedule(ds, in("10.0.0.1", "192.168.0.11"));
  EXPECT_NE(b, a);
  // a now has 3 active > weight 2 and b has 0*2 < 2: a is overloaded for
  // locality purposes, the target moves to b.
  EXPECT_EQ(s->schedule(ds, in("10.0.0.1", "192.168.0.10")), b);
  // Removing a server drops its table entries.
  s->update({b});
  EXPECT_EQ(s->schedule({b}, in("10.0.0.1", "192.168.0.10")), b);
}

TEST(Scheduler, LocalityBasedWithReplicationGrowsTheSet) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 1), mk("1.0.0.2:80", 1), mk("1.0.0.3:80", 1)};
  auto s = make_scheduler("lblcr");
  auto first = s->schedule(ds, in("10.0.0.1", "192.168.0.10"));
  ASSERT_TRUE(first);
  first->set_counts(2, 0);  // 2 active > weight 1, others idle -> overloaded
  auto second = s->schedule(ds, in("10.0.0.1", "192.168.0.10"));
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  second->set_counts(1, 0);
  // The set now holds {first, second}; least loaded member (second) is used.
  EXPECT_EQ(s->schedule(ds, in("10.0.0.1", "192.168.0.10")), second);
  first->set_counts(0, 0);
  EXPECT_EQ(s->schedule(ds, in("10.0.0.1", "192.168.0.10")), first);
  // Compression: after 6 unmodified minutes the most loaded member leaves.
  second->set_counts(1, 0);
  SchedInput later = in("10.0.0.1", "192.168.0.10");
  later.now += std::chrono::minutes(7);
  EXPECT_EQ(s->schedule(ds, later), first);
}

TEST(Scheduler, DestinationHashing) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80"), mk("1.0.0.2:80"), mk("1.0.0.3:80")};
  auto s = make_scheduler("dh");
  s->update(ds);
  std::map<std::string, int> used;
  for (int t = 1; t <= 60; ++t) {
    std::string target = "192.168.1." + std::to_string(t);
    auto d1 = s->schedule(ds, in("10.0.0.1", target.c_str()));
    auto d2 = s->schedule(ds, in("10.9.9.9", target.c_str()));
    ASSERT_TRUE(d1);
    EXPECT_EQ(d1, d2);  // client does not matter
    used[name_of(d1)]++;
  }
  EXPECT_EQ(used.size(), 3u);
  // An unavailable owner means no server (no fallback).
  auto owner = s->schedule(ds, in("10.0.0.1", "192.168.1.1"));
  owner->apply({owner->addr(), 0});
  s->update(ds);
  EXPECT_EQ(s->schedule(ds, in("10.0.0.1", "192.168.1.1")), nullptr);
}

TEST(Scheduler, SourceHashingWeighted) {
  std::vector<DestPtr> ds = {mk("1.0.0.1:80", 3), mk("1.0.0.2:80", 1)};
  auto s = make_scheduler("sh");
  s->update(ds);
  std::map<std::string, int> used;
  for (int c = 0; c < 1024; ++c) {
    std::string client = "10.0." + std::to_string(c / 256) + "." + std::to_string(c % 256);
    auto d1 = s->schedule(ds, in(client.c_str(), "192.168.0.1"));
    auto d2 = s->schedule(ds, in(client.c_str(), "192.168.7.7"));
    ASSERT_TRUE(d1);
    EXPECT_EQ(d1, d2);  // target does not matter
    used[name_of(d1)]++;
  }
  // 3:1 of the buckets; the hash spreads addresses close to that.
  EXPECT_NEAR(double(used["1.0.0.1:80"]) / used["1.0.0.2:80"], 3.0, 0.6);
}

TEST(Scheduler, ThresholdsSetAndClearOverload) {
  auto d = mk("1.0.0.1:80", 1, 4, 2);
  for (int i = 0; i < 3; ++i) d->conn_opened(true);
  EXPECT_FALSE(d->overloaded());
  d->conn_opened(false);  // total 4 >= -x 4
  EXPECT_TRUE(d->overloaded());
  EXPECT_FALSE(d->available());
  d->conn_closed(true);  // 3: not below -y 2
  EXPECT_TRUE(d->overloaded());
  d->conn_closed(true);  // 2
  EXPECT_TRUE(d->overloaded());
  d->conn_closed(true);  // 1 < 2
  EXPECT_FALSE(d->overloaded());

  // No lower threshold: clears below 3/4 of the upper one.
  auto e = mk("1.0.0.2:80", 1, 8, 0);
  for (int i = 0; i < 8; ++i) e->conn_opened(true);
  EXPECT_TRUE(e->overloaded());
  e->conn_closed(true);
  e->conn_closed(true);  // 6*4 = 24 == 8*3: still overloaded
  EXPECT_TRUE(e->overloaded());
  e->conn_closed(true);  // 5
  EXPECT_FALSE(e->overloaded());
}

TEST(Scheduler, PersistenceByClientAddress) {
  ServiceTable t;
  ServiceConfig sc;
  sc.key = {Proto::TCP, *Endpoint::parse("10.1.1.1:80")};
  sc.scheduler = "rr";
  sc.persistent = true;
  sc.timeout = 1;
  t.add_service(sc);
  for (auto ep : {"1.0.0.1:80", "1.0.0.2:80", "1.0.0.3:80"}) {
    DestConfig d;
    d.addr = *Endpoint::parse(ep);
    t.add_dest(sc.key, d);
  }
  auto svc = t.find(sc.key);
  auto c1 = *Endpoint::parse("10.0.0.1:1000");
  auto c2 = *Endpoint::parse("10.0.0.2:1000");
  bool p = false;
  auto a = svc->schedule(c1, &p);
  EXPECT_TRUE(p);
  auto b = svc->schedule(c2, &p);
  EXPECT_NE(a, b);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(svc->schedule(c1, &p), a);  // sticks
  EXPECT_EQ(a->persist_conns(), 1u);
  // A template entry is listed like ipvsadm -L -c: client port 0, NONE.
  auto conns = t.connections();
  ASSERT_EQ(conns.size(), 2u);
  EXPECT_TRUE(conns[0].is_template);
  EXPECT_EQ(conns[0].state, "NONE");
  EXPECT_EQ(conns[0].client.port, 0);
  // Quiesced server keeps its persistent clients (LVS default).
  t.set_dest_weight(sc.key, a->addr(), 0);
  EXPECT_EQ(svc->schedule(c1, &p), a);
  t.set_dest_weight(sc.key, a->addr(), 1);
  // Release all uses; after the timeout the template expires.
  for (int i = 0; i < 7; ++i) svc->release_persist(c1);
  svc->release_persist(c2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  t.tick();
  EXPECT_EQ(a->persist_conns(), 0u);
  EXPECT_TRUE(t.connections().empty());
}

TEST(Scheduler, PersistenceNetmaskGroupsClients) {
  ServiceTable t;
  ServiceConfig sc;
  sc.key = {Proto::TCP, *Endpoint::parse("10.1.1.1:80")};
  sc.scheduler = "rr";
  sc.persistent = true;
  sc.netmask = 0xffffff00;
  t.add_service(sc);
  for (auto ep : {"1.0.0.1:80", "1.0.0.2:80"}) {
    DestConfig d;
    d.addr = *Endpoint::parse(ep);
    t.add_dest(sc.key, d);
  }
  auto svc = t.find(sc.key);
  auto a = svc->schedule(*Endpoint::parse("10.0.0.1:1"));
  for (int i = 2; i < 50; ++i) {
    std::string c = "10.0.0." + std::to_string(i) + ":1";
    EXPECT_EQ(svc->schedule(*Endpoint::parse(c)), a);
  }
  EXPECT_NE(svc->schedule(*Endpoint::parse("10.0.1.1:1")), a);
}
