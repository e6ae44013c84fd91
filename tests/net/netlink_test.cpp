// net/netlink.h against the kernel, inside a fresh network namespace per
// test (needs root; skipped with the reason when namespaces are impossible).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/fd.h"
#include "net/netlink.h"

namespace net = vmstack::net;
using vmstack::UniqueFd;

namespace {

// Moves the calling thread into a new, anonymous network namespace for the
// lifetime of the object and back into its own on destruction. Nothing is
// named or mounted: once the thread has left, nothing refers to the
// namespace and the kernel destroys it with every link created in it, on
// every path (failed assertion, exception, even a killed test process).
class ScopedNetns {
 public:
  ScopedNetns() {
    orig_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!orig_) throw std::system_error(errno, std::generic_category(), "open /proc/thread-self/ns/net");
    if (::unshare(CLONE_NEWNET) != 0) throw std::system_error(errno, std::generic_category(), "unshare(CLONE_NEWNET)");
  }
  ~ScopedNetns() {
    if (::setns(orig_.get(), CLONE_NEWNET) != 0) {
      // Every later test would run in the wrong namespace.
      std::fprintf(stderr, "ScopedNetns: cannot return to the original namespace: %s\n", std::strerror(errno));
      std::abort();
    }
  }
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  UniqueFd orig_;
};

// The message of what `fn` throws ("" when it does not throw).
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const net::NetlinkError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a NetlinkError: ") + e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) to create a network namespace";
    try {
      ns_.emplace();
    } catch (const std::exception& e) {
      GTEST_SKIP() << "network namespaces are not available here: " << e.what();
    }
  }
  void need_tun() {
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/net/tun is not available";
  }

  std::optional<ScopedNetns> ns_;
};

TEST_F(NetlinkTest, FreshNamespaceHasOnlyLoopback) {
  EXPECT_EQ(net::link_names(), std::vector<std::string>{"lo"});
  EXPECT_TRUE(net::link_exists("lo"));
  EXPECT_FALSE(net::link_exists("eth0"));
  EXPECT_EQ(net::link_index("lo"), 1);
  net::LinkInfo lo = net::link_info("lo");
  EXPECT_FALSE(lo.up);
  net::set_link_up("lo");
  EXPECT_TRUE(net::link_info("lo").up);
}

TEST_F(NetlinkTest, CreateBridgeIsIdempotent) {
  net::create_bridge("vmbr0");
  ASSERT_TRUE(net::link_exists("vmbr0"));
  int idx = net::link_index("vmbr0");
  net::create_bridge("vmbr0");  // again: no error, same link
  EXPECT_EQ(net::link_index("vmbr0"), idx);
  net::LinkInfo b = net::link_info("vmbr0");
  EXPECT_EQ(b.kind, "bridge");
  EXPECT_FALSE(b.tap);
  EXPECT_EQ(b.index, idx);
  EXPECT_EQ(net::link_names(), (std::vector<std::string>{"lo", "vmbr0"}));
}

TEST_F(NetlinkTest, TapCreateEnslaveUpAndRelease) {
  need_tun();
  net::create_bridge("vmbr0");
  net::create_tap("vmtap0");
  net::create_tap("vmtap0");  // idempotent
  net::LinkInfo t = net::link_info("vmtap0");
  EXPECT_EQ(t.kind, "tun");
  EXPECT_TRUE(t.tap);
  EXPECT_EQ(t.master, "");
  EXPECT_FALSE(t.up);
  EXPECT_EQ(t.mac.size(), 17u) << t.mac;

  net::set_master("vmtap0", "vmbr0");
  net::set_link_up("vmtap0");
  net::set_link_up("vmbr0");
  t = net::link_info("vmtap0");
  EXPECT_EQ(t.master, "vmbr0");
  EXPECT_TRUE(t.up);
  EXPECT_TRUE(net::link_info("vmbr0").up);

  net::set_link_up("vmtap0", false);
  EXPECT_FALSE(net::link_info("vmtap0").up);
  net::set_nomaster("vmtap0");
  EXPECT_EQ(net::link_info("vmtap0").master, "");
}

TEST_F(NetlinkTest, TapWithOwnerIsPersistent) {
  need_tun();
  net::create_tap("vmtap1", 4242);  // the fd is closed: only persistence keeps it
  EXPECT_TRUE(net::link_exists("vmtap1"));
  net::create_tap("vmtap1", 4243);  // idempotent, owner changed (not in use)
  EXPECT_TRUE(net::link_info("vmtap1").tap);
}

TEST_F(NetlinkTest, Mtu) {
  need_tun();
  net::create_bridge("vmbr0");
  net::create_tap("vmtap0");
  net::set_mtu("vmtap0", 1400);
  EXPECT_EQ(net::link_info("vmtap0").mtu, 1400u);
  net::set_mtu("vmtap0", 9000);
  EXPECT_EQ(net::link_info("vmtap0").mtu, 9000u);
  net::set_mtu("vmbr0", 1450);
  EXPECT_EQ(net::link_info("vmbr0").mtu, 1450u);
  // Out of range for a tap (68..65521): the kernel refuses, the message says what and where.
  std::string err = error_of([] { net::set_mtu("vmtap0", 70000); });
  EXPECT_TRUE(contains(err, "vmtap0") && contains(err, "70000")) << err;
  EXPECT_EQ(net::link_info("vmtap0").mtu, 9000u);
}

TEST_F(NetlinkTest, Mac) {
  need_tun();
  net::create_tap("vmtap0");
  net::set_mac("vmtap0", "02:00:5e:10:00:01");
  EXPECT_EQ(net::link_info("vmtap0").mac, "02:00:5e:10:00:01");
  std::string err = error_of([] { net::set_mac("vmtap0", "02:00:5e:10:00"); });
  EXPECT_TRUE(contains(err, "vmtap0") && contains(err, "not a MAC address")) << err;
  err = error_of([] { net::set_mac("vmtap0", "01:00:5e:00:00:01"); });
  EXPECT_TRUE(contains(err, "vmtap0") && contains(err, "multicast")) << err;
}

TEST_F(NetlinkTest, DeleteLinkAbsentIsNotAnError) {
  need_tun();
  net::create_bridge("vmbr0");
  net::create_tap("vmtap0");
  net::set_master("vmtap0", "vmbr0");
  net::delete_link("vmtap0");
  EXPECT_FALSE(net::link_exists("vmtap0"));
  net::delete_link("vmtap0");  // already gone
  net::delete_link("vmbr0");
  EXPECT_FALSE(net::link_exists("vmbr0"));
  EXPECT_EQ(net::link_names(), std::vector<std::string>{"lo"});
  // Created again after a delete: a fresh link.
  net::create_tap("vmtap0");
  EXPECT_TRUE(net::link_info("vmtap0").tap);
}

TEST_F(NetlinkTest, KindMismatchIsAnError) {
  need_tun();
  net::create_bridge("vmbr0");
  net::create_tap("vmtap0");
  std::string err = error_of([] { net::create_tap("vmbr0"); });
  EXPECT_TRUE(contains(err, "vmbr0") && contains(err, "not a tap")) << err;
  err = error_of([] { net::create_bridge("vmtap0"); });
  EXPECT_TRUE(contains(err, "vmtap0") && contains(err, "not a bridge")) << err;
}

TEST_F(NetlinkTest, ErrorsNameTheInterface) {
  net::create_bridge("vmbr0");
  struct Case {
    const char* what;
    std::function<void()> fn;
    std::vector<std::string> expect;  // each must be in the message
  };
  std::vector<Case> cases = {
      {"link_index", [] { net::link_index("nosuch0"); }, {"nosuch0", "no such interface"}},
      {"link_info", [] { net::link_info("nosuch0"); }, {"nosuch0", "no such interface"}},
      {"set_link_up", [] { net::set_link_up("nosuch0"); }, {"nosuch0", "no such interface"}},
      {"set_mtu", [] { net::set_mtu("nosuch0", 1400); }, {"nosuch0", "no such interface"}},
      {"set_mac", [] { net::set_mac("nosuch0", "02:00:00:00:00:01"); }, {"nosuch0", "no such interface"}},
      {"set_master (port)", [] { net::set_master("nosuch0", "vmbr0"); }, {"nosuch0", "vmbr0", "no such interface"}},
      {"set_master (bridge)", [] { net::set_master("vmbr0", "nosuchbr"); }, {"nosuchbr", "no such bridge"}},
      {"set_nomaster", [] { net::set_nomaster("nosuch0"); }, {"nosuch0", "no such interface"}},
      {"create_bridge (long name)", [] { net::create_bridge("a-name-too-long-x"); },
       {"a-name-too-long-x", "longer than 15"}},
      {"create_tap (bad name)", [] { net::create_tap("bad/name"); }, {"bad/name", "invalid interface name"}},
      {"add_address", [] { net::add_address("nosuch0", "10.1.2.3/24"); }, {"nosuch0", "10.1.2.3/24"}},
      {"add_address (bad)", [] { net::add_address("vmbr0", "10.1.2/33"); }, {"vmbr0", "invalid address"}},
      {"gratuitous ARP", [] { net::send_gratuitous_arp("nosuch0", "10.1.2.3"); }, {"nosuch0", "no such interface"}},
  };
  for (const auto& c : cases) {
    std::string err = error_of(c.fn);
    EXPECT_FALSE(err.empty()) << c.what << " did not fail";
    for (const auto& part : c.expect) EXPECT_TRUE(contains(err, part)) << c.what << ": '" << err << "' lacks '" << part << "'";
  }
  try {
    net::set_mtu("nosuch0", 1400);
  } catch (const net::NetlinkError& e) {
    EXPECT_EQ(e.ifname(), "nosuch0");
  }
}

TEST_F(NetlinkTest, Addresses) {
  net::create_bridge("vmbr0");
  net::set_link_up("vmbr0");
  net::add_address("vmbr0", "10.9.0.1/24");
  net::add_address("vmbr0", "10.9.0.1/24");  // present: fine
  net::add_address("vmbr0", "10.9.0.100");   // /32
  EXPECT_TRUE(net::has_address("vmbr0", "10.9.0.1"));
  EXPECT_TRUE(net::has_address("", "10.9.0.100"));
  EXPECT_FALSE(net::has_address("lo", "10.9.0.1"));
  EXPECT_EQ(net::first_ipv4("vmbr0"), "10.9.0.1");
  EXPECT_EQ(net::first_ipv4("vmbr0", {"10.9.0.1"}), "10.9.0.100");
  EXPECT_EQ(net::first_ipv4("vmbr0", {"10.9.0.1", "10.9.0.100"}), "");
  net::add_address("vmbr0", "fd00:9::1/64");
  EXPECT_TRUE(net::has_address("vmbr0", "fd00:9::1"));

  net::delete_address("vmbr0", "10.9.0.100");
  EXPECT_FALSE(net::has_address("vmbr0", "10.9.0.100"));
  net::delete_address("vmbr0", "10.9.0.100");     // absent: fine
  net::delete_address("nosuch0", "10.9.0.100");   // interface gone: fine
  net::delete_address("vmbr0", "fd00:9::1/64");
  EXPECT_FALSE(net::has_address("vmbr0", "fd00:9::1"));
  EXPECT_TRUE(net::has_address("vmbr0", "10.9.0.1"));
}

TEST_F(NetlinkTest, GratuitousArp) {
  need_tun();
  net::create_tap("vmtap0");
  net::set_link_up("vmtap0");
  net::send_gratuitous_arp("vmtap0", "10.9.0.1", 2);
  net::set_link_up("lo");
  net::send_gratuitous_arp("lo", "127.0.0.1");  // not Ethernet: nothing sent
  std::string err = error_of([] { net::send_gratuitous_arp("vmtap0", "not-an-ip"); });
  EXPECT_TRUE(contains(err, "vmtap0") && contains(err, "not an IPv4 address")) << err;
}

// What a test creates disappears with its namespace, whatever happens.
TEST(NetlinkNamespace, LinksGoAwayWithTheNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) to create a network namespace";
  const std::string name = "vmbrx" + std::to_string(::getpid() % 100000);
  ASSERT_FALSE(net::link_exists(name));
  struct Midway {};
  try {
    ScopedNetns ns;
    net::create_bridge(name);
    ASSERT_TRUE(net::link_exists(name));
    throw Midway{};  // leave the scope by an exception, as a failing test would
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "network namespaces are not available here: " << e.what();
  } catch (const Midway&) {
  }
  EXPECT_FALSE(net::link_exists(name)) << "a link created in the test namespace is visible outside it";
}

}  // namespace
