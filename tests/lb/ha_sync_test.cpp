// Connection sync: the wire codec, and a SyncMaster feeding a SyncBackup
// over UDP on loopback, each with a real ServiceTable: the backup ends up
// with the master's persistence templates, so a client keeps its real
// server after a switch.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <random>

#include "ha_test_util.h"
#include "lb/service_table.h"
#include "lb/sync.h"

using namespace vmstack::lb;
using namespace vmstack::lb::ha;
using namespace vmstack::lb::hatest;

namespace {

Endpoint ep(const char* s) { return *Endpoint::parse(s); }

ConnEntry entry(const char* client, const char* vip, const char* dest, const char* state, uint32_t exp,
                bool tmpl = false) {
  ConnEntry e;
  e.proto = Proto::TCP;
  e.client = ep(client);
  e.vip = ep(vip);
  e.dest = ep(dest);
  e.state = state;
  e.expires_ms = exp;
  e.is_template = tmpl;
  return e;
}

void add_rules(ServiceTable& t) {
  ServiceConfig s;
  s.key = ServiceKey{Proto::TCP, ep("10.9.0.1:80")};
  s.scheduler = "rr";
  s.persistent = true;
  s.timeout = 300;
  t.add_service(s);
  for (const char* d : {"10.9.1.1:80", "10.9.1.2:80", "10.9.1.3:80"}) {
    DestConfig dc;
    dc.addr = ep(d);
    t.add_dest(s.key, dc);
  }
}

}  // namespace

TEST(SyncCodec, RoundTripV4AndV6) {
  std::vector<ConnEntry> in = {
      entry("192.168.1.10:40001", "10.0.0.1:80", "10.0.1.1:8080", "ESTABLISHED", 900000),
      entry("192.168.1.11:0", "10.0.0.1:80", "10.0.1.2:8080", "NONE", 300000, true),
      entry("[2001:db8::5]:5555", "[2001:db8::1]:443", "[2001:db8::10]:443", "FIN_WAIT", 120000),
  };
  in[2].proto = Proto::UDP;
  in[2].state = "UDP";
  uint32_t seq = 7;
  auto pkts = encode_sync(3, seq, in);
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(seq, 8u);
  auto p = decode_sync(pkts[0].data(), pkts[0].size());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sync_id, 3);
  EXPECT_EQ(p->seq, 7u);
  ASSERT_EQ(p->entries.size(), 3u);
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& a = in[i];
    const auto& b = p->entries[i];
    EXPECT_EQ(a.proto, b.proto);
    EXPECT_EQ(a.client, b.client) << i;
    EXPECT_EQ(a.vip, b.vip);
    EXPECT_EQ(a.dest, b.dest);
    EXPECT_EQ(a.state, b.state);
    EXPECT_EQ(a.expires_ms, b.expires_ms);
    EXPECT_EQ(a.is_template, b.is_template);
    EXPECT_TRUE(b.synced);
  }
}

TEST(SyncCodec, SplitsAtMtuAndRejectsGarbage) {
  std::vector<ConnEntry> many;
  for (int i = 0; i < 500; ++i)
    many.push_back(entry(("192.168.1.1:" + std::to_string(1000 + i)).c_str(), "10.0.0.1:80", "10.0.1.1:80",
                         "ESTABLISHED", 1000));
  uint32_t seq = 0;
  auto pkts = encode_sync(0, seq, many, 1400);
  EXPECT_GT(pkts.size(), 5u);
  size_t total = 0;
  for (auto& p : pkts) {
    EXPECT_LE(p.size(), 1400u);
    auto d = decode_sync(p.data(), p.size());
    ASSERT_TRUE(d);
    total += d->entries.size();
  }
  EXPECT_EQ(total, 500u);
  EXPECT_EQ(seq, pkts.size());

  auto good = pkts[0];
  EXPECT_FALSE(decode_sync(good.data(), good.size() - 1));  // truncated
  auto bad = good;
  bad[0] = 'X';
  EXPECT_FALSE(decode_sync(bad.data(), bad.size()));  // magic
  bad = good;
  bad[4] = 9;
  EXPECT_FALSE(decode_sync(bad.data(), bad.size()));  // version
  bad = good;
  bad[12 + 1] = 7;  // protocol
  EXPECT_FALSE(decode_sync(bad.data(), bad.size()));
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> r(rng() % 64);
    for (auto& x : r) x = static_cast<uint8_t>(rng());
    if (r.size() >= 4) std::memcpy(r.data(), "VLBS", 4);
    decode_sync(r.data(), r.size());  // must not crash (ASan run)
  }
}

TEST(SyncDaemons, BackupImportsMastersPersistenceTemplates) {
  ServiceTable master, backup;
  add_rules(master);
  add_rules(backup);
  auto svc = master.find(ServiceKey{Proto::TCP, ep("10.9.0.1:80")});
  // Three clients get three different real servers on the master.
  std::vector<Endpoint> clients = {ep("172.16.0.1:1000"), ep("172.16.0.2:1000"), ep("172.16.0.3:1000")};
  std::vector<Endpoint> chosen;
  for (auto& c : clients) chosen.push_back(svc->schedule(c)->addr());
  ASSERT_NE(chosen[0], chosen[1]);
  ASSERT_NE(chosen[1], chosen[2]);

  SyncConfig cfg;
  cfg.port = free_udp_port();
  cfg.peers = {"127.0.0.1"};
  cfg.bind_addr = "127.0.0.1";
  cfg.flush_interval_s = 0.02;
  cfg.full_sync_interval_s = 0.2;
  SyncBackup sb(cfg, [&](const std::vector<ConnEntry>& v) { return backup.import_connections(v); });
  sb.start();
  SyncMaster sm(cfg, [&] { return master.connections(); });
  sm.start();

  ASSERT_TRUE(wait_until([&] { return sb.entries_accepted() >= 3; }, 5));
  // A live connection pushed by the data plane shows up too, as synced.
  sm.push(entry("172.16.0.9:5000", "10.9.0.1:80", "10.9.1.2:80", "ESTABLISHED", 60000));
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& e : backup.connections())
          if (!e.is_template && e.client == ep("172.16.0.9:5000")) return e.synced;
        return false;
      },
      5));
  sm.stop();
  sb.stop();
  EXPECT_GT(sm.packets_sent(), 0u);

  // After the "failover", the backup sends each client to the master's
  // choice - in the reverse order, so plain rr would disagree.
  auto bsvc = backup.find(ServiceKey{Proto::TCP, ep("10.9.0.1:80")});
  for (int i = 2; i >= 0; --i) {
    bool persistent = false;
    auto d = bsvc->schedule(clients[size_t(i)], &persistent);
    ASSERT_TRUE(d);
    EXPECT_TRUE(persistent);
    EXPECT_EQ(d->addr(), chosen[size_t(i)]) << "client " << clients[size_t(i)].str();
  }
}

TEST(SyncDaemons, WrongSyncIdIsDropped) {
  ServiceTable master, backup;
  add_rules(master);
  add_rules(backup);
  master.find(ServiceKey{Proto::TCP, ep("10.9.0.1:80")})->schedule(ep("172.16.0.1:1000"));
  SyncConfig mc;
  mc.port = free_udp_port();
  mc.peers = {"127.0.0.1:" + std::to_string(mc.port)};
  mc.full_sync_interval_s = 0.05;
  SyncConfig bc = mc;
  bc.sync_id = 5;
  bc.bind_addr = "127.0.0.1";
  SyncBackup sb(bc, [&](const std::vector<ConnEntry>& v) { return backup.import_connections(v); });
  sb.start();
  SyncMaster sm(mc, [&] { return master.connections(); });
  sm.start();
  ASSERT_TRUE(wait_until([&] { return sb.packets_dropped() >= 2; }, 5));
  EXPECT_EQ(sb.entries_accepted(), 0u);
  EXPECT_TRUE(backup.connections().empty());
}

TEST(SyncDaemons, BadConfigFailsAtStart) {
  SyncConfig c;
  c.peers = {"not-an-ip"};
  SyncMaster m(c, {});
  EXPECT_THROW(m.start(), std::runtime_error);
  c.peers = {"127.0.0.1:99999"};
  SyncMaster m2(c, {});
  EXPECT_THROW(m2.start(), std::runtime_error);
  SyncConfig b;
  b.bind_addr = "300.1.1.1";
  SyncBackup sb(b, {});
  EXPECT_THROW(sb.start(), std::runtime_error);
}
