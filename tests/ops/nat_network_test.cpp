// NAT and internal networks on the real host networking, inside a network
// namespace of the test's own (NetnsGuard): the gateway address, the
// nftables table, IPv4 forwarding and a supervised dnsmasq, DHCP leases
// (a veth whose far end sits in a namespace of its own, busybox udhcpc as
// the guest) turning into VM_guest_metrics.networks, reservations, the API
// port kept from an internal network's clients, rebuild after a restart
// without duplicates, and nothing left after network.destroy.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/xe.h"
#include "core/process.h"
#include "daemon_fixture.h"
#include "free_port.h"
#include "net/dnsmasq.h"
#include "net/netlink.h"
#include "netns_guard.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool have(const char* tool) { return run_command({"sh", "-c", std::string("command -v ") + tool}, 10s).ok(); }

int dnsmasq_pid(const std::string& state, const std::string& bridge) {
  int pid = std::atoi(slurp(state + "/net/" + bridge + "/dnsmasq.pid").c_str());
  if (pid <= 0) return 0;
  auto cmd = slurp("/proc/" + std::to_string(pid) + "/cmdline");  // empty for a zombie or a gone process
  return cmd.find("dnsmasq") != std::string::npos ? pid : 0;
}

// A "guest": a veth whose far end (with `mac`) is in a namespace of its own,
// held by a sleeping process; its near end is on `bridge`.
class VethGuest {
 public:
  VethGuest(const std::string& name, const std::string& mac, const std::string& bridge) : near_(name + "h") {
    holder_ = Subprocess::spawn({"unshare", "--net", "sleep", "120"});
    for (int i = 0; i < 100 && slurp("/proc/" + std::to_string(holder_.pid()) + "/comm").find("sleep") == std::string::npos; ++i)
      std::this_thread::sleep_for(10ms);
    pid_ = std::to_string(holder_.pid());
    ok({"ip", "link", "add", near_, "type", "veth", "peer", "name", name + "g"});
    ok({"ip", "link", "set", name + "g", "address", mac, "netns", pid_});
    ok({"ip", "link", "set", near_, "master", bridge, "up"});
    in_guest({"ip", "link", "set", name + "g", "up"});
    far_ = name + "g";
  }
  ~VethGuest() { run_command({"ip", "link", "del", near_}, 10s); }
  // DHCP as a guest would: udhcpc's lease (the address it was offered).
  std::string dhcp() {
    auto r = in_guest({"busybox", "udhcpc", "-i", far_, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", "/bin/true"});
    auto p = r.find("lease of ");
    if (p == std::string::npos) p = r.find("Lease of ");
    if (p == std::string::npos) return "";
    p += 9;
    return r.substr(p, r.find(' ', p) - p);
  }
  CommandResult run(const std::vector<std::string>& argv) {
    std::vector<std::string> full{"nsenter", "-t", pid_, "-n"};
    full.insert(full.end(), argv.begin(), argv.end());
    return run_command(full, 30s);
  }
  std::string in_guest(const std::vector<std::string>& argv) {
    auto r = run(argv);
    return r.out + r.err;
  }

 private:
  static void ok(const std::vector<std::string>& argv) {
    auto r = run_command(argv, 10s);
    if (!r.ok()) throw std::runtime_error(format_argv(argv) + ": " + r.err);
  }
  std::string near_, far_, pid_;
  Subprocess holder_;
};

class NatNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, bridges, nftables)";
    for (const char* t : {"dnsmasq", "nft", "busybox", "nsenter", "unshare"})
      if (!have(t)) GTEST_SKIP() << t << " is not installed (tools/setup.sh installs it)";
    ns = std::make_unique<NetnsGuard>();
    api_port = free_tcp_port();
    d = std::make_unique<TestDaemon>(dir.path(), 2, Backend::real, [this](ops::Config& c) {
      c.tcp_address = "0.0.0.0";
      c.tcp_port = api_port;
    });
    c = d->client();
    s = d->login(*c);
  }
  void TearDown() override {
    c.reset();
    d.reset();
    ns.reset();
  }
  std::string create(const std::string& mode, const std::string& subnet, const std::string& name = "n") {
    return call(*c, "network.create", {s, Struct{{"name_label", name},
                                                 {"name_description", ""},
                                                 {"MTU", int64_t{1500}},
                                                 {"other_config", Struct{{"mode", mode}, {"subnet", subnet}}},
                                                 {"tags", Array{}}}})
        .as_string();
  }
  std::string bridge(const std::string& net) { return call(*c, "network.get_bridge", {s, net}).as_string(); }
  std::string vif(const std::string& vm, const std::string& net, const std::string& device, const std::string& mac,
                  Struct oc = {}) {
    return call(*c, "VIF.create", {s, Struct{{"VM", vm},
                                             {"network", net},
                                             {"device", device},
                                             {"MAC", mac},
                                             {"MTU", int64_t{1500}},
                                             {"other_config", oc},
                                             {"qos_algorithm_type", ""},
                                             {"qos_algorithm_params", Struct{}}}})
        .as_string();
  }
  std::string nft_table(const std::string& br) {
    auto r = run_command({"nft", "list", "table", "inet", "vmstack-" + br}, 10s);
    return r.ok() ? r.out : "";
  }
  // Waits (the supervisor's tick is a second) for `pred`.
  template <class F>
  bool eventually(F pred, std::chrono::milliseconds limit = 8s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return pred();
  }
  Struct guest_networks(const std::string& vm) {
    auto gm = call(*c, "VM.get_guest_metrics", {s, vm}).as_string();
    if (gm == "OpaqueRef:NULL") return {};
    return call(*c, "VM_guest_metrics.get_networks", {s, gm}).as_struct();
  }

  TempDir dir;
  std::unique_ptr<NetnsGuard> ns;
  unsigned short api_port = 0;
  std::unique_ptr<TestDaemon> d;
  std::unique_ptr<api::Client> c;
  std::string s;
};

TEST_F(NatNetworkTest, HostSideDhcpLeasesAndCleanup) {
  auto net = create("nat", "10.77.0.0/24");
  auto br = bridge(net);
  EXPECT_TRUE(net::has_address(br, "10.77.0.1"));
  auto table = nft_table(br);
  EXPECT_NE(table.find("masquerade"), std::string::npos) << table;
  EXPECT_NE(table.find("10.77.0.0/24"), std::string::npos) << table;
  EXPECT_NE(table.find("dport " + std::to_string(api_port) + " drop"), std::string::npos) << table;
  EXPECT_EQ(slurp("/proc/sys/net/ipv4/ip_forward"), "1\n");
  ASSERT_TRUE(eventually([&] { return dnsmasq_pid(dir.path(), br) != 0; })) << slurp(dir.path() + "/net/" + br + "/dnsmasq.log");

  // Two guests: one with a reservation, one from the range.
  auto vm = install_demo_vm(*c, s, "g1");
  vif(vm, net, "0", "02:aa:00:00:00:01", Struct{{"ip", "10.77.0.50"}});
  auto vm2 = install_demo_vm(*c, s, "g2");
  vif(vm2, net, "0", "02:aa:00:00:00:02");
  // The reservation reaches dnsmasq (it is started again with it).
  ASSERT_TRUE(eventually([&] {
    int pid = dnsmasq_pid(dir.path(), br);
    return pid && slurp("/proc/" + std::to_string(pid) + "/cmdline").find("02:aa:00:00:00:01,10.77.0.50") != std::string::npos;
  }));
  VethGuest g1("vt1", "02:aa:00:00:00:01", br), g2("vt2", "02:aa:00:00:00:02", br);
  EXPECT_EQ(g1.dhcp(), "10.77.0.50");
  std::string ip2 = g2.dhcp();
  EXPECT_EQ(ip2.rfind("10.77.0.", 0), 0u) << ip2;
  EXPECT_NE(ip2, "10.77.0.50");
  EXPECT_NE(ip2, "10.77.0.1");
  // The leases become the guests' addresses, as xapi shows a guest agent's.
  EXPECT_TRUE(eventually([&] { return guest_networks(vm)["0/ip"].to_display() == "10.77.0.50"; }))
      << Value(guest_networks(vm)).to_display();
  EXPECT_TRUE(eventually([&] { return guest_networks(vm2)["0/ip"].to_display() == ip2; }));

  // A dnsmasq that dies is started again.
  int pid = dnsmasq_pid(dir.path(), br);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  EXPECT_TRUE(eventually([&] {
    int now = dnsmasq_pid(dir.path(), br);
    return now != 0 && now != pid;
  }));

  // Destroyed (its VIFs first): no table, address, bridge, dnsmasq or files.
  EXPECT_EQ(failure(*c, "network.destroy", {s, net}).at(0), "NETWORK_CONTAINS_VIF");
  const Value vifs = call(*c, "network.get_VIFs", {s, net});  // kept: the loop reads into it
  for (const auto& v : vifs.as_array()) call(*c, "VIF.destroy", {s, v});
  int last = dnsmasq_pid(dir.path(), br);
  call(*c, "network.destroy", {s, net});
  EXPECT_EQ(nft_table(br), "");
  EXPECT_FALSE(net::link_exists(br));
  EXPECT_FALSE(fs::exists(dir.path() + "/net/" + br));
  EXPECT_TRUE(last == 0 || slurp("/proc/" + std::to_string(last) + "/cmdline").empty());
}

// Two real guests (QEMU, the busybox fixture, udhcpc at boot) on a NAT
// network: both get leases, the leases show in VM_guest_metrics, and they
// ping each other and the gateway.
TEST_F(NatNetworkTest, TwoGuestsGetLeasesAndReachEachOtherAndTheGateway) {
  if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
  auto net = create("nat", "10.76.0.0/24");
  auto console = [&](const std::string& vm) {
    const Value consoles = call(*c, "VM.get_consoles", {s, vm});  // kept: the loop reads into it
    for (const auto& con : consoles.as_array())
      if (call(*c, "console.get_protocol", {s, con}).as_string() == "vt100") return con.as_string();
    return std::string();
  };
  std::vector<std::string> vms, ips;
  for (const char* name : {"a", "b"}) {
    auto vm = install_demo_vm(*c, s, name);
    vif(vm, net, "0", name[0] == 'a' ? "02:cc:00:00:00:0a" : "02:cc:00:00:00:0b");
    call(*c, "VM.start", {s, vm, false, false});
    vms.push_back(vm);
  }
  // The guest prints the address it got (its udhcpc hook); the console
  // replays what was printed, so reading again sees the whole line.
  auto leased_ip = [&](const std::string& vm) {
    const std::string needle = "vmstack-guest: eth0 10.76.0.";
    auto until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
      auto out = read_console_until(d->socket(), console(vm), s, needle, 5s);
      auto p = out.find(needle);
      if (p == std::string::npos) continue;
      p += std::strlen("vmstack-guest: eth0 ");
      auto end = out.find_first_of("\r\n", p);
      if (end != std::string::npos) return out.substr(p, end - p);
      std::this_thread::sleep_for(100ms);
    }
    return std::string();
  };
  for (const auto& vm : vms) {
    ips.push_back(leased_ip(vm));
    ASSERT_EQ(ips.back().rfind("10.76.0.", 0), 0u) << ips.back();
    EXPECT_TRUE(eventually([&] { return guest_networks(vm)["0/ip"].to_display() == ips.back(); }, 10s))
        << Value(guest_networks(vm)).to_display();
  }
  ASSERT_NE(ips[0], ips[1]);
  // As the operator reads it: xe vm-param-get param-name=networks.
  {
    std::ostringstream out, err;
    std::istringstream in;
    cli::Io io{out, err, in, -1, -1};
    cli::Environment env{d->socket().c_str(), nullptr};
    auto uuid = call(*c, "VM.get_uuid", {s, vms[0]}).as_string();
    EXPECT_EQ(cli::run({"vm-param-get", "uuid=" + uuid, "param-name=networks", "param-key=0/ip"}, env, io), 0) << err.str();
    EXPECT_EQ(out.str(), ips[0] + "\n");
  }
  auto ping = [&](size_t from, const std::string& to) {
    return read_console_until(d->socket(), console(vms[from]), s, "2 packets received", 30s, 1,
                              "\nping -c 2 -w 10 " + to + "\n");
  };
  EXPECT_NE(ping(0, ips[1]).find("2 packets received"), std::string::npos) << "a -> b";
  EXPECT_NE(ping(1, ips[0]).find("2 packets received"), std::string::npos) << "b -> a";
  EXPECT_NE(ping(0, "10.76.0.1").find("2 packets received"), std::string::npos) << "a -> gateway";
  for (const auto& vm : vms) call(*c, "VM.hard_shutdown", {s, vm});
}

TEST_F(NatNetworkTest, InternalNetworkGuestsReachDhcpButNotTheApi) {
  auto net = create("internal", "10.78.0.0/24");
  auto br = bridge(net);
  auto table = nft_table(br);
  EXPECT_EQ(table.find("masquerade"), std::string::npos) << table;
  ASSERT_TRUE(eventually([&] { return dnsmasq_pid(dir.path(), br) != 0; }));
  auto vm = install_demo_vm(*c, s, "g");
  vif(vm, net, "0", "02:bb:00:00:00:01");
  VethGuest g("vt3", "02:bb:00:00:00:01", br);
  auto ip = g.dhcp();
  ASSERT_EQ(ip.rfind("10.78.0.", 0), 0u) << ip;
  g.in_guest({"ip", "addr", "add", ip + "/24", "dev", "vt3g"});
  auto tcp = [&](const std::string& port) {
    return g.run({"timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/10.78.0.1/" + port}).ok();
  };
  EXPECT_TRUE(tcp("53")) << "DNS on the gateway answers";
  EXPECT_FALSE(tcp(std::to_string(api_port))) << "the API port is out of a guest's reach";
  // ...while the host itself reaches it.
  EXPECT_TRUE(run_command({"timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(api_port)}, 10s).ok());
}

TEST_F(NatNetworkTest, RebuiltAfterARestartWithoutDuplicates) {
  auto net = create("nat", "10.79.0.0/24");
  auto br = bridge(net);
  const auto table = nft_table(br);
  ASSERT_FALSE(table.empty());
  ASSERT_TRUE(eventually([&] { return dnsmasq_pid(dir.path(), br) != 0; }));
  // The daemon goes; a dnsmasq of an earlier life is left running (as after
  // kill -9, which this one does not survive: its Subprocess kills it).
  c.reset();
  d->stop();
  std::string why;
  auto stale = Subprocess::spawn(net::dnsmasq_argv({br, *net::parse_subnet("10.79.0.0/24", "", why), dir.path() + "/net/" + br}, {}));
  ASSERT_TRUE(eventually([&] { return dnsmasq_pid(dir.path(), br) == stale.pid(); }));
  d->start();
  c = d->client();
  s = d->login(*c);
  EXPECT_TRUE(stale.wait_for(5s)) << "the earlier dnsmasq was replaced";
  ASSERT_TRUE(eventually([&] { return dnsmasq_pid(dir.path(), br) != 0; }));
  EXPECT_EQ(nft_table(br), table) << "the same rules, once";
  auto addrs = run_command({"ip", "-4", "-o", "addr", "show", "dev", br}, 10s).out;
  EXPECT_EQ(std::count(addrs.begin(), addrs.end(), '\n'), 1) << addrs;
}

TEST_F(NatNetworkTest, BadSubnetsAndModesAreRefused) {
  auto bad = [&](const std::string& mode, const std::string& subnet) {
    auto f = failure(*c, "network.create", {s, Struct{{"name_label", "x"},
                                                       {"name_description", ""},
                                                       {"MTU", int64_t{1500}},
                                                       {"other_config", Struct{{"mode", mode}, {"subnet", subnet}}},
                                                       {"tags", Array{}}}});
    return f.empty() ? std::string("accepted") : f.at(0) + " " + (f.size() > 1 ? f.at(1) : "");
  };
  EXPECT_EQ(bad("nat", ""), "INVALID_VALUE subnet");
  EXPECT_EQ(bad("nat", "10.80.0.1/24"), "INVALID_VALUE subnet");  // host bits
  EXPECT_EQ(bad("nat", "10.80.0.0/31"), "INVALID_VALUE subnet");
  EXPECT_EQ(bad("nat", "banana"), "INVALID_VALUE subnet");
  EXPECT_EQ(bad("routed", "10.80.0.0/24"), "INVALID_VALUE mode");
  create("nat", "10.81.0.0/16");
  EXPECT_EQ(bad("internal", "10.81.5.0/24"), "INVALID_VALUE subnet");  // overlaps
  // Nothing was left behind by the refusals: one network, one vmstack table.
  auto tables = run_command({"nft", "list", "tables"}, 10s).out;
  EXPECT_EQ(std::count(tables.begin(), tables.end(), '\n'), 1) << tables;
}

}  // namespace
}  // namespace vmstack::test
