// HaRuntime, the object vmstack-lbd owns: its CLI flags, option checking,
// health checks wired to the table, fixed sync roles, metrics text.
// (VRRP through HaRuntime is exercised in namespaces by ha_failover_test.)
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <sstream>

#include "ha_test_util.h"
#include "lb/ha_runtime.h"
#include "lb/ldirectord_config.h"
#include "lb/service_table.h"

using namespace vmstack::lb;
using namespace vmstack::lb::ha;
using namespace vmstack::lb::hatest;

namespace {

HaOptions parse(std::vector<std::string> args) {
  CLI::App app("test");
  HaOptions o;
  add_ha_options(app, o);
  std::vector<const char*> argv = {"vmstack-lbd"};
  for (auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return o;
}

std::string ctor_error(const HaOptions& o) {
  ServiceTable t;
  try {
    HaRuntime r(t, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

// Value of an unlabelled metric line "name value" (-1 when absent).
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace

TEST(HaOptions, FlagsParse) {
  auto o = parse({"--start-daemon=master", "--ldirectord", "/etc/ld.cf", "--vrrp-interface", "eth1", "--vrrp-vip",
                  "10.0.0.100/24", "--vrrp-vip", "10.0.0.101", "--vrrp-priority", "200", "--vrrp-id", "7",
                  "--vrrp-advert-int", "0.5", "--vrrp-nopreempt", "--vrrp-peer", "10.0.0.2", "--sync-peer",
                  "10.0.0.2:9000", "--syncid", "4", "--sync-port", "9001"});
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.start_daemon, "master");
  EXPECT_EQ(o.ldirectord_cf, "/etc/ld.cf");
  EXPECT_EQ(o.vrrp_interface, "eth1");
  EXPECT_EQ(o.vrrp_vips, (std::vector<std::string>{"10.0.0.100/24", "10.0.0.101"}));
  EXPECT_EQ(o.vrrp_priority, 200);
  EXPECT_EQ(o.vrrp_id, 7);
  EXPECT_DOUBLE_EQ(o.vrrp_advert_int, 0.5);
  EXPECT_TRUE(o.vrrp_nopreempt);
  EXPECT_EQ(o.vrrp_peers, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(o.sync_peers, std::vector<std::string>{"10.0.0.2:9000"});
  EXPECT_EQ(o.sync_id, 4);
  EXPECT_EQ(o.sync_port, 9001);
  EXPECT_FALSE(parse({}).enabled());
  EXPECT_THROW(parse({"--start-daemon=primary"}), CLI::ValidationError);
  EXPECT_THROW(parse({"--vrrp-priority", "high"}), CLI::ParseError);
}

TEST(HaOptions, InvalidCombinationsNameTheFlag) {
  HaOptions o;
  o.vrrp_vips = {"10.0.0.100/24"};
  EXPECT_EQ(ctor_error(o), "--vrrp-vip: needs --vrrp-interface");
  o = {};
  o.vrrp_interface = "eth0";
  EXPECT_EQ(ctor_error(o), "--vrrp-interface: needs at least one --vrrp-vip");
  o.vrrp_vips = {"10.0.0.300/24"};
  EXPECT_EQ(ctor_error(o), "--vrrp-vip: not an IPv4 address: '10.0.0.300/24'");
  o.vrrp_vips = {"10.0.0.3/33"};
  EXPECT_EQ(ctor_error(o), "--vrrp-vip: invalid prefix length in '10.0.0.3/33'");
  o.vrrp_vips = {"10.0.0.3/24"};
  o.vrrp_priority = 256;
  EXPECT_EQ(ctor_error(o), "--vrrp-priority: must be 1..255");
  o.vrrp_priority = 0;
  o.vrrp_advert_int = 0;
  EXPECT_EQ(ctor_error(o), "--vrrp-advert-int: must be 0.01..40.95 seconds");
  o.vrrp_advert_int = 1;
  o.vrrp_mcast_group = "10.1.1.1";
  EXPECT_EQ(ctor_error(o), "--vrrp-mcast-group: not an IPv4 multicast address: '10.1.1.1'");
  o = {};
  o.sync_peers = {"10.0.0.2"};
  EXPECT_EQ(ctor_error(o), "--sync-peer: needs --start-daemon=master|backup or VRRP to know which way to sync");
  o.start_daemon = "backup";
  o.sync_peers = {"10.0.0.2:0"};
  EXPECT_EQ(ctor_error(o), "--sync-peer: invalid port in '10.0.0.2:0'");
  o = {};
  o.start_daemon = "sideways";
  EXPECT_EQ(ctor_error(o), "--start-daemon: expected master or backup, got 'sideways'");
}

TEST(HaRuntime, BadLdirectordFileIsReportedWithItsLine) {
  TempDir d;
  write_file(d.file("ld.cf"), "checkinterval=1\nvirtual=10.0.0.1:80\n  real=10.0.0.2:80 gate\n");
  HaOptions o;
  o.ldirectord_cf = d.file("ld.cf");
  EXPECT_EQ(ctor_error(o), d.file("ld.cf") + ":3: forwarding method 'gate' needs kernel IPVS; vmstack-lb's "
                                             "user-space proxy only does masq (NAT)");
  o.ldirectord_cf = d.file("nope.cf");
  EXPECT_EQ(ctor_error(o), d.file("nope.cf") + ":0: cannot read file");
}

TEST(HaRuntime, HealthChecksFillTheTableAndShowInMetrics) {
  TestServer r1("one"), r2("two");
  TempDir d;
  write_file(d.file("ld.cf"), "checkinterval=0.1\nchecktimeout=0.3\nquiescent=no\nvirtual=10.201.0.1:80\n  real=" +
                                  r1.endpoint() + " masq\n  real=" + r2.endpoint() +
                                  " masq 3\n  checktype=negotiate\n  receive=\"o\"\n");
  ServiceTable table;
  HaOptions o;
  o.ldirectord_cf = d.file("ld.cf");
  HaRuntime ha(table, o);
  EXPECT_FALSE(table.has_service(ServiceKey{Proto::TCP, *Endpoint::parse("10.201.0.1:80")}));  // nothing before start
  ha.start();
  ServiceKey key{Proto::TCP, *Endpoint::parse("10.201.0.1:80")};
  ASSERT_TRUE(wait_until([&] { auto s = table.get(key); return s && s->dests.size() == 2; }, 3));
  EXPECT_EQ(ha.role(), "none");
  EXPECT_TRUE(table.forwarding()) << "no VRRP: the forwarding gate is left alone";

  r2.stop();
  ASSERT_TRUE(wait_until([&] { return !table.has_dest(key, *Endpoint::parse(r2.endpoint())); }, 3));
  std::string m = ha.metrics_text();
  EXPECT_GT(metric(m, "vmstack_lb_ha_health_checks_total"), 2);
  EXPECT_GE(metric(m, "vmstack_lb_ha_health_transitions_total"), 1);
  EXPECT_NE(m.find("# TYPE vmstack_lb_ha_real_up gauge"), std::string::npos);
  EXPECT_NE(m.find("vmstack_lb_ha_real_up{virtual=\"tcp 10.201.0.1:80\",real=\"" + r1.endpoint() + "\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("vmstack_lb_ha_real_up{virtual=\"tcp 10.201.0.1:80\",real=\"" + r2.endpoint() + "\"} 0"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("vrrp"), std::string::npos) << "no VRRP metrics without VRRP";
  ha.stop();
  ha.stop();  // idempotent
  // Stopping keeps the rules (a restart must not drop traffic).
  EXPECT_TRUE(table.has_service(key));
}

TEST(HaRuntime, FixedSyncRolesCarryPersistence) {
  uint16_t port = free_udp_port();
  ServiceTable mt, bt;
  for (ServiceTable* t : {&mt, &bt}) {
    ServiceConfig s;
    s.key = ServiceKey{Proto::TCP, *Endpoint::parse("10.202.0.1:80")};
    s.scheduler = "rr";
    s.persistent = true;
    t->add_service(s);
    for (const char* d : {"10.202.1.1:80", "10.202.1.2:80"}) {
      DestConfig dc;
      dc.addr = *Endpoint::parse(d);
      t->add_dest(s.key, dc);
    }
  }
  HaOptions mo;
  mo.start_daemon = "master";
  mo.sync_peers = {"127.0.0.1:" + std::to_string(port)};
  mo.sync_full_interval = 0.1;
  HaOptions bo;
  bo.start_daemon = "backup";
  bo.sync_port = port;
  HaRuntime bha(bt, bo);
  bha.start();
  HaRuntime mha(mt, mo);
  mha.start();
  EXPECT_EQ(mha.role(), "master");
  EXPECT_EQ(bha.role(), "backup");

  ServiceKey key{Proto::TCP, *Endpoint::parse("10.202.0.1:80")};
  Endpoint c1 = *Endpoint::parse("172.20.0.1:1"), c2 = *Endpoint::parse("172.20.0.2:1");
  auto d1 = mt.find(key)->schedule(c1)->addr();
  auto d2 = mt.find(key)->schedule(c2)->addr();
  ASSERT_NE(d1, d2);
  ASSERT_TRUE(wait_until([&] { return metric(bha.metrics_text(), "vmstack_lb_ha_sync_entries_accepted_total") >= 2; }, 5))
      << bha.metrics_text();
  EXPECT_GE(metric(mha.metrics_text(), "vmstack_lb_ha_sync_entries_sent_total"), 2);
  ASSERT_TRUE(wait_until(
      [&] { return metric(bha.metrics_text(), "vmstack_lb_ha_sync_templates_imported_total") >= 2; }, 5));
  // Backup: client 2 first - rr alone would hand it the first real server.
  EXPECT_EQ(bt.find(key)->schedule(c2)->addr(), d2);
  EXPECT_EQ(bt.find(key)->schedule(c1)->addr(), d1);
  EXPECT_TRUE(bt.forwarding());
}
