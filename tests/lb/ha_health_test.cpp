// Health checks against real TCP/HTTP servers on loopback, driving lb-core's
// ServiceTable: a dead real server leaves the table (or is quiesced) within
// checkinterval + checktimeout and no new pick goes to it; it returns when it
// recovers; the fallback server steps in when all are down.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "ha_test_util.h"
#include "log_capture.h"
#include "lb/health_checker.h"
#include "lb/health_table_target.h"
#include "lb/service_table.h"

using namespace vmstack::lb;
using namespace vmstack::lb::ha;
using namespace vmstack::lb::hatest;

namespace {

constexpr double kInterval = 0.2;
constexpr double kTimeout = 0.4;
// Scheduling noise on a loaded 2-core machine (ASan, parallel ctest).
constexpr double kSlack = 0.4;

struct Fixture {
  lbtest::LogCapture logs;  // the first member: outlives the checker thread
  std::vector<std::unique_ptr<TestServer>> reals;
  ServiceTable table;
  ServiceTableTarget target{table};
  std::unique_ptr<HealthChecker> checker;
  ServiceKey key;

  // `extra` goes into the virtual block; reals get weights 1, 2, 3.
  void start(int nreals, const std::string& extra, const std::string& path = "") {
    for (int i = 0; i < nreals; ++i) reals.push_back(std::make_unique<TestServer>("real" + std::to_string(i) + " ok"));
    HealthChecker::Options o;
    o.config_path = path;
    o.reload_poll_s = 0.1;
    auto cfg = parse_ldirectord_config(text(extra), "test.cf");
    if (!path.empty()) write_file(path, text(extra));
    checker = std::make_unique<HealthChecker>(cfg, target, o);
    key = to_service_key(cfg.virtuals[0]);
    checker->start();
  }

  std::string text(const std::string& extra) const {
    std::string t = "checkinterval=" + std::to_string(kInterval) + "\nchecktimeout=" + std::to_string(kTimeout) +
                    "\nnegotiatetimeout=" + std::to_string(kTimeout) + "\nvirtual=10.200.0.1:80\n";
    for (size_t i = 0; i < reals.size(); ++i)
      t += "  real=" + reals[i]->endpoint() + " masq " + std::to_string(i + 1) + "\n";
    return t + extra;
  }

  Endpoint ep(size_t i) const { return *Endpoint::parse(reals[i]->endpoint()); }
  bool has(size_t i) const { return table.has_dest(key, ep(i)); }
  std::optional<DestInfo> info(const Endpoint& e) const {
    auto si = table.get(key);
    if (!si) return std::nullopt;
    for (const auto& d : si->dests)
      if (d.cfg.addr == e) return d;
    return std::nullopt;
  }
  // `n` new-connection picks from different clients.
  std::map<Endpoint, int> picks(int n) const {
    std::map<Endpoint, int> out;
    auto svc = table.find(key);
    if (!svc) return out;
    for (int i = 0; i < n; ++i) {
      Endpoint client{Addr::v4(0x0a640000u + uint32_t(i)), uint16_t(40000 + i)};
      if (auto d = svc->schedule(client)) {
        ++out[d->addr()];
        d->conn_opened(true);  // keeps lc-style schedulers honest
      }
    }
    return out;
  }
  bool all_present() const {
    for (size_t i = 0; i < reals.size(); ++i)
      if (!has(i)) return false;
    return true;
  }
  std::string joined_log() const { return logs.text(); }
};

}  // namespace

TEST(HealthProbe, ConnectAndHttpChecks) {
  TestServer s("hello world");
  auto ep = *parse_hostport(s.endpoint());
  EXPECT_TRUE(check_connect(ep, 1).ok);
  auto r = check_http(ep, "localhost", "GET", "/", "world", 1);
  EXPECT_TRUE(r.ok) << r.detail;
  r = check_http(ep, "localhost", "GET", "/", "absent text", 1);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("does not contain"), std::string::npos) << r.detail;
  s.set_mode(TestServer::Mode::Http500);
  r = check_http(ep, "localhost", "GET", "/", "", 1);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("bad HTTP status"), std::string::npos) << r.detail;
  s.set_mode(TestServer::Mode::Silent);
  auto t0 = Clock::now();
  r = check_http(ep, "localhost", "GET", "/", "", 0.3);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "timeout");
  EXPECT_GE(seconds_since(t0), 0.29);
  EXPECT_LT(seconds_since(t0), 1.5);
  s.stop();
  r = check_connect(ep, 1);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("refused"), std::string::npos) << r.detail;
}

TEST(HealthChecker, ConnectCheckRemovesDeadRealAndRestoresIt) {
  Fixture f;
  f.start(3, "  checktype=connect\n  quiescent=no\n  scheduler=rr\n");
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3)) << f.joined_log();
  // Configured weights come through.
  EXPECT_EQ(f.info(f.ep(2))->cfg.weight, 3);
  auto before = f.picks(30);
  EXPECT_GT(before[f.ep(1)], 0);

  f.reals[1]->stop();
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return !f.has(1); }, 5)) << f.joined_log();
  double took = seconds_since(t0);
  EXPECT_LE(took, kInterval + kTimeout + kSlack) << "removal took " << took << " s";
  EXPECT_TRUE(f.has(0));
  EXPECT_TRUE(f.has(2));
  auto after = f.picks(60);
  EXPECT_EQ(after.count(f.ep(1)), 0u) << "a new connection went to the dead server";
  EXPECT_GT(after[f.ep(0)], 0);
  EXPECT_GT(after[f.ep(2)], 0);

  f.reals[1]->start();  // same port again
  t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return f.has(1); }, 5)) << f.joined_log();
  EXPECT_LE(seconds_since(t0), kInterval + kTimeout + kSlack);
  EXPECT_EQ(f.info(f.ep(1))->cfg.weight, 2);
  EXPECT_GT(f.picks(60)[f.ep(1)], 0);

  auto st = f.checker->status();
  ASSERT_EQ(st.size(), 3u);
  for (const auto& r : st) EXPECT_EQ(r.status, RealStatus::Up) << r.real.str();
  EXPECT_GT(f.checker->rounds(), 3u);
  EXPECT_NE(f.joined_log().find("is down"), std::string::npos);
}

TEST(HealthChecker, NegotiateDetectsBadStatusWrongBodyAndHang) {
  Fixture f;
  f.start(3, "  checktype=negotiate\n  service=http\n  request=\"/health\"\n  receive=\"ok\"\n  quiescent=no\n");
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3)) << f.joined_log();

  f.reals[0]->set_mode(TestServer::Mode::Http500);
  f.reals[2]->set_mode(TestServer::Mode::Silent);  // accepts, never answers
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return !f.has(0); }, 5)) << f.joined_log();
  EXPECT_LE(seconds_since(t0), kInterval + kTimeout + kSlack);
  ASSERT_TRUE(wait_until([&] { return !f.has(2); }, 5)) << f.joined_log();
  // A hung server is only declared dead by the negotiate timeout.
  EXPECT_LE(seconds_since(t0), kInterval + kTimeout + kSlack);
  EXPECT_TRUE(f.has(1));
  auto p = f.picks(20);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(p[f.ep(1)], 20);

  f.reals[0]->set_mode(TestServer::Mode::Http200);
  ASSERT_TRUE(wait_until([&] { return f.has(0); }, 3)) << f.joined_log();
  // The checker sent the configured request to the real server.
  EXPECT_GT(f.reals[0]->hits(), 3u);
}

TEST(HealthChecker, QuiescentKeepsRealWithWeightZero) {
  Fixture f;
  f.start(2, "  checktype=connect\n  quiescent=yes\n  scheduler=wrr\n");
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3)) << f.joined_log();
  f.reals[0]->stop();
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { auto i = f.info(f.ep(0)); return i && !i->healthy; }, 5)) << f.joined_log();
  EXPECT_LE(seconds_since(t0), kInterval + kTimeout + kSlack);
  auto i = f.info(f.ep(0));
  ASSERT_TRUE(i);
  EXPECT_EQ(i->effective_weight, 0);
  EXPECT_EQ(i->cfg.weight, 1);  // configured weight kept (the state file says 1)
  EXPECT_TRUE(f.has(0));        // quiesced, not removed
  auto p = f.picks(30);
  EXPECT_EQ(p.count(f.ep(0)), 0u);
  EXPECT_EQ(p[f.ep(1)], 30);

  f.reals[0]->start();
  ASSERT_TRUE(wait_until([&] { auto j = f.info(f.ep(0)); return j && j->healthy; }, 5)) << f.joined_log();
  EXPECT_EQ(f.info(f.ep(0))->effective_weight, 1);
  EXPECT_GT(f.picks(30)[f.ep(0)], 0);
}

TEST(HealthChecker, FallbackWhenAllRealsDown) {
  TestServer fallback("sorry server");
  Fixture f;
  f.start(2, "  checktype=connect\n  quiescent=no\n  fallback=" + fallback.endpoint() + "\n");
  Endpoint fb = *Endpoint::parse(fallback.endpoint());
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3)) << f.joined_log();
  EXPECT_FALSE(f.table.has_dest(f.key, fb));

  f.reals[0]->stop();
  ASSERT_TRUE(wait_until([&] { return !f.has(0); }, 5));
  EXPECT_FALSE(f.table.has_dest(f.key, fb)) << "fallback added while a real server is up";
  f.reals[1]->stop();
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return f.table.has_dest(f.key, fb); }, 5)) << f.joined_log();
  EXPECT_LE(seconds_since(t0), kInterval + kTimeout + kSlack);
  EXPECT_FALSE(f.has(1));
  auto p = f.picks(10);
  EXPECT_EQ(p[fb], 10);

  f.reals[1]->start();
  ASSERT_TRUE(wait_until([&] { return f.has(1) && !f.table.has_dest(f.key, fb); }, 5)) << f.joined_log();
  EXPECT_EQ(f.picks(10)[f.ep(1)], 10);
}

TEST(HealthChecker, QuiescentRealsStillCountAsDownForFallback) {
  TestServer fallback("sorry");
  Fixture f;
  f.start(1, "  checktype=connect\n  quiescent=yes\n  fallback=" + fallback.endpoint() + "\n");
  Endpoint fb = *Endpoint::parse(fallback.endpoint());
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3));
  f.reals[0]->stop();
  ASSERT_TRUE(wait_until([&] { return f.table.has_dest(f.key, fb); }, 5)) << f.joined_log();
  EXPECT_TRUE(f.has(0));
  EXPECT_EQ(f.info(f.ep(0))->effective_weight, 0);
  EXPECT_EQ(f.picks(5)[fb], 5);
}

TEST(HealthChecker, CheckTypeOnAndOff) {
  Fixture on;
  on.start(1, "  checktype=on\n");
  ASSERT_TRUE(wait_until([&] { return on.all_present(); }, 2));
  on.reals[0]->stop();  // not checked: stays
  std::this_thread::sleep_for(std::chrono::duration<double>(kInterval * 3));
  EXPECT_TRUE(on.has(0));

  Fixture off;
  off.start(1, "  checktype=off\n");
  ASSERT_TRUE(wait_until([&] { return off.table.has_service(off.key); }, 2));
  std::this_thread::sleep_for(std::chrono::duration<double>(kInterval * 3));
  EXPECT_FALSE(off.has(0)) << "checktype=off must keep the real server out";
}

TEST(HealthChecker, AutoreloadAppliesChangesAndKeepsOldConfigOnError) {
  TempDir d;
  std::string path = d.file("ldirectord.cf");
  Fixture f;
  f.start(2, "  checktype=connect\n  quiescent=no\n", path);
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3));
  // autoreload is a global key: rewrite the file with it, dropping real 0
  // and adding a second virtual service.
  auto rewrite = [&](const std::string& body) { write_file(path, "autoreload=yes\n" + body); };
  std::string base = f.text("  checktype=connect\n  quiescent=no\n");
  rewrite(base);
  // The first rewrite turns autoreload on only if the checker re-reads the
  // file; it was off at start, so use reload_from_file() once, as a
  // daemon's SIGHUP handler would.
  ASSERT_TRUE(f.checker->reload_from_file());
  ASSERT_TRUE(wait_until([&] { return f.checker->config().autoreload; }, 2));

  std::string changed = base;
  auto pos = changed.find("  real=" + f.reals[0]->endpoint());
  changed.erase(pos, changed.find('\n', pos) - pos + 1);
  changed += "virtual=10.200.0.2:81\n  real=" + f.reals[0]->endpoint() + " masq 4\n  checktype=connect\n";
  rewrite(changed);
  ServiceKey k2{Proto::TCP, *Endpoint::parse("10.200.0.2:81")};
  ASSERT_TRUE(wait_until([&] { return !f.has(0) && f.table.has_dest(k2, f.ep(0)); }, 5)) << f.joined_log();
  EXPECT_TRUE(f.has(1));

  // A broken edit is logged with its line and changes nothing.
  rewrite(changed + "  checktype=bogus\n");
  ASSERT_TRUE(wait_until([&] { return f.joined_log().find("keeping the old configuration") != std::string::npos; }, 5))
      << f.joined_log();
  EXPECT_NE(f.joined_log().find(":12: checktype: unsupported"), std::string::npos) << f.joined_log();
  EXPECT_TRUE(f.table.has_dest(k2, f.ep(0)));
  EXPECT_TRUE(f.has(1));

  // Dropping the second virtual removes it from the table.
  rewrite(base);
  ASSERT_TRUE(wait_until([&] { return !f.table.has_service(k2) && f.has(0); }, 5)) << f.joined_log();
}

TEST(HealthChecker, FailureCountNeedsConsecutiveFailures) {
  Fixture f;
  f.start(1, "  checktype=connect\n  quiescent=no\n  failurecount=3\n");
  ASSERT_TRUE(wait_until([&] { return f.all_present(); }, 3));
  f.reals[0]->stop();
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return !f.has(0); }, 5));
  // Three probes, checkinterval apart: at least two intervals.
  EXPECT_GE(seconds_since(t0), 2 * kInterval - 0.05);
}

TEST(HealthChecker, AdoptsRulesAlreadyInTheTable) {
  // A daemon restarted with its saved rules: both reals are in the table
  // before the checker starts; the dead one must go, the live one must
  // never be dropped.
  TestServer live("live");
  TestServer dead("dead");
  dead.stop();
  ServiceTable table;
  ServiceKey key{Proto::TCP, *Endpoint::parse("10.200.0.9:80")};
  ServiceConfig sc;
  sc.key = key;
  table.add_service(sc);
  for (auto* s : {&live, &dead}) {
    DestConfig d;
    d.addr = *Endpoint::parse(s->endpoint());
    d.weight = 2;
    table.add_dest(key, d);
  }
  ServiceTableTarget target(table);
  auto cfg = parse_ldirectord_config("checkinterval=0.2\nchecktimeout=0.4\nquiescent=no\nvirtual=10.200.0.9:80\n  real=" +
                                     live.endpoint() + " masq 2\n  real=" + dead.endpoint() +
                                     " masq 2\n  checktype=connect\n");
  HealthChecker hc(cfg, target, HealthChecker::Options{});
  Endpoint live_ep = *Endpoint::parse(live.endpoint()), dead_ep = *Endpoint::parse(dead.endpoint());
  bool live_dropped = false;
  std::atomic<bool> watching{true};
  std::thread watch([&] {
    while (watching) {
      if (!table.has_dest(key, live_ep)) live_dropped = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  hc.start();
  bool removed = wait_until([&] { return !table.has_dest(key, dead_ep); }, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  watching = false;
  watch.join();
  EXPECT_TRUE(removed) << "an adopted dead real server stayed in the table";
  EXPECT_FALSE(live_dropped) << "an adopted live real server was dropped";
  EXPECT_TRUE(table.has_dest(key, live_ep));
}
