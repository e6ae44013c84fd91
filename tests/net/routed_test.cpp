// The pure parts of NAT and internal networks: subnets and DHCP ranges,
// the nftables script (golden), dnsmasq's command line and lease file;
// and the script applied by the bridge backend with the real nft in a
// namespace of the test's own, twice, without duplicates.
#include <gtest/gtest.h>

#include "core/process.h"
#include "net/bridge_backend.h"
#include "net/dnsmasq.h"
#include "net/ipv4.h"
#include "net/netlink.h"
#include "net/routed.h"
#include "netns_guard.h"

namespace vmstack::net {
namespace {

using namespace std::chrono_literals;

Ipv4Subnet subnet(const std::string& cidr, const std::string& gw = "") {
  std::string why;
  auto s = parse_subnet(cidr, gw, why);
  EXPECT_TRUE(s) << cidr << ": " << why;
  return s.value_or(Ipv4Subnet{});
}

TEST(Ipv4, SubnetsGatewaysAndRanges) {
  auto s = subnet("192.168.21.0/24");
  EXPECT_EQ(s.cidr(), "192.168.21.0/24");
  EXPECT_EQ(s.gateway_cidr(), "192.168.21.1/24");
  EXPECT_EQ(s.netmask(), "255.255.255.0");
  EXPECT_EQ(s.dhcp_first(), "192.168.21.2");
  EXPECT_EQ(s.dhcp_last(), "192.168.21.254");
  auto t = subnet("10.0.0.0/16", "10.0.255.254");
  EXPECT_EQ(t.dhcp_first(), "10.0.0.1");
  EXPECT_EQ(t.dhcp_last(), "10.0.255.253");
  std::string why;
  for (const char* bad : {"192.168.21.1/24", "192.168.21.0", "192.168.21.0/31", "192.168.21.0/7", "300.1.1.0/24",
                          "192.168.21.0/24x", "x/24", ""}) {
    EXPECT_FALSE(parse_subnet(bad, "", why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  for (const char* gw : {"192.168.21.0", "192.168.21.255", "192.168.22.1", "nope"})
    EXPECT_FALSE(parse_subnet("192.168.21.0/24", gw, why)) << gw;
}

TEST(Routed, NftScriptForNatAndInternal) {
  RoutedNetwork n{"xenbr1", true, subnet("192.168.21.0/24"), {443, 8080}};
  EXPECT_EQ(nft_script(n),
            "table inet vmstack-xenbr1\n"
            "delete table inet vmstack-xenbr1\n"
            "table inet vmstack-xenbr1 {\n"
            "  chain input {\n"
            "    type filter hook input priority filter; policy accept;\n"
            "    iifname \"xenbr1\" tcp dport { 443, 8080 } drop\n"
            "    iifname \"xenbr1\" udp dport { 53, 67 } accept\n"
            "    iifname \"xenbr1\" tcp dport 53 accept\n"
            "  }\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy accept;\n"
            "    iifname \"xenbr1\" oifname \"xenbr1\" accept\n"
            "    iifname \"xenbr1\" ip saddr 192.168.21.0/24 ip daddr != 192.168.21.0/24 accept\n"
            "    oifname \"xenbr1\" ip daddr 192.168.21.0/24 ct state established,related accept\n"
            "    iifname \"xenbr1\" drop\n"
            "    oifname \"xenbr1\" drop\n"
            "  }\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            "    ip saddr 192.168.21.0/24 ip daddr != 192.168.21.0/24 masquerade\n"
            "  }\n"
            "}\n");
  RoutedNetwork i{"xenbr2", false, subnet("10.9.0.0/24"), {}};
  auto script = nft_script(i);
  EXPECT_EQ(script.find("masquerade"), std::string::npos);
  EXPECT_EQ(script.find("tcp dport {"), std::string::npos);  // no ports given, none blocked by number
  EXPECT_NE(script.find("    iifname \"xenbr2\" drop\n  }\n  chain forward"), std::string::npos) << script;
}

TEST(Dnsmasq, CommandLineAndLeases) {
  auto argv = dnsmasq_argv({"xenbr1", subnet("192.168.21.0/24"), "/var/lib/vmstack/net/xenbr1"},
                           {{"02:00:00:00:00:01", "192.168.21.50"}});
  auto has = [&](const std::string& a) { return std::find(argv.begin(), argv.end(), a) != argv.end(); };
  EXPECT_EQ(argv.front(), "dnsmasq");
  for (const char* a : {"--keep-in-foreground", "--conf-file=/dev/null", "--bind-interfaces", "--interface=xenbr1",
                        "--listen-address=192.168.21.1", "--dhcp-range=192.168.21.2,192.168.21.254,255.255.255.0,1h",
                        "--dhcp-option=option:router,192.168.21.1", "--dhcp-authoritative",
                        "--dhcp-leasefile=/var/lib/vmstack/net/xenbr1/leases",
                        "--pid-file=/var/lib/vmstack/net/xenbr1/dnsmasq.pid",
                        "--dhcp-host=02:00:00:00:00:01,192.168.21.50"})
    EXPECT_TRUE(has(a)) << a;
  auto leases = parse_leases(
      "1764700000 02:AA:00:00:00:01 192.168.21.50 guest1 01:02:aa:00:00:00:01\n"
      "0 02:aa:00:00:00:02 192.168.21.7 * *\n"
      "garbage line\n"
      "1764700000 02:aa:00:00:00:03 not-an-ip x *\n"
      "99999999999999999999999 02:aa:00:00:00:04 192.168.21.8 x *\n");
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].mac, "02:aa:00:00:00:01");
  EXPECT_EQ(leases[0].ip, "192.168.21.50");
  EXPECT_EQ(leases[0].hostname, "guest1");
  EXPECT_EQ(leases[0].expiry, 1764700000);
  EXPECT_EQ(leases[1].hostname, "");
  EXPECT_EQ(leases[1].expiry, 0);
}

// The real nft and netlink, in a namespace: applied twice, one copy of
// everything; removed, nothing left.
TEST(Routed, AppliedIdempotentlyAndRemovedWithRealNft) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, nftables)";
  if (!run_command({"sh", "-c", "command -v nft"}, 10s).ok()) GTEST_SKIP() << "nft is not installed (tools/setup.sh installs nftables)";
  vmstack::test::NetnsGuard ns;
  BridgeBackend b;
  b.bridge_create("vmbrtest", 1500);
  RoutedNetwork n{"vmbrtest", true, subnet("10.66.0.0/24"), {443}};
  b.routed_apply(n);
  auto first = run_command({"nft", "list", "ruleset"}, 10s).out;
  b.routed_apply(n);
  EXPECT_EQ(run_command({"nft", "list", "ruleset"}, 10s).out, first);
  EXPECT_NE(first.find("masquerade"), std::string::npos) << first;
  EXPECT_TRUE(has_address("vmbrtest", "10.66.0.1"));
  b.routed_remove(n);
  b.routed_remove(n);  // gone already: fine
  EXPECT_EQ(run_command({"nft", "list", "ruleset"}, 10s).out, "");
  EXPECT_FALSE(has_address("vmbrtest", "10.66.0.1"));
  b.bridge_destroy("vmbrtest");
}

}  // namespace
}  // namespace vmstack::net
