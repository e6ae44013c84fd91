// End-to-end failover in network namespaces we create:
//
//   ns A (lb node, 10.77.0.1) --veth--+
//                                     br0 in ns C (clients 10.77.0.10/.11,
//   ns B (lb node, 10.77.0.2) --veth--+           real servers :8081 :8082)
//
// Both nodes run HaRuntime (lb_ha_node: ServiceTable + HaRuntime + a small
// gated proxy) with the same ldirectord.cf and VIP 10.77.0.100. The primary
// is killed: the backup takes the VIP (seen with `ip -n B addr`) and serves
// clients - each on the real server the primary had given it (synced
// persistence). A graceful stop hands over faster and the primary
// preempts when it returns.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "ha_test_util.h"

using namespace vmstack::lb::hatest;

extern char** environ;

namespace {

constexpr const char* kVip = "10.77.0.100";

// A child process (stdout+stderr to a log file), SIGKILLed and reaped by the
// destructor if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> av;
    for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    if (posix_spawnp(&pid_, av[0], &fa, nullptr, av.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool ok() const { return pid_ > 0; }
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Waits (bounded) for the exit; returns the wait status or -1.
  int wait_exit(double limit_s) {
    int st = -1;
    bool done = wait_until([&] { return pid_ <= 0 || ::waitpid(pid_, &st, WNOHANG) == pid_; }, limit_s, 0.02);
    if (!done) return -1;
    pid_ = -1;
    return st;
  }

 private:
  pid_t pid_ = -1;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The three namespaces, the bridge and the two veths. Every part is an RAII
// member, so when a step fails (SetupError names the command and carries
// its stderr) or a test fails later, everything created is removed.
class Topology {
 public:
  Topology()
      : prefix_("vlbha" + std::to_string(::getpid()) + "-"),
        a_(prefix_ + "a"),
        b_(prefix_ + "b"),
        c_(prefix_ + "c"),
        // eth0 in each lb node, p1/p2 on C's bridge.
        veth_a_(a_, "eth0", c_, "p1"),
        veth_b_(b_, "eth0", c_, "p2") {
    c_.ip({"link", "add", "br0", "type", "bridge"});  // goes with namespace C
    c_.ip({"link", "set", "br0", "up"});
    c_.ip({"addr", "add", "10.77.0.10/24", "dev", "br0"});
    c_.ip({"addr", "add", "10.77.0.11/24", "dev", "br0"});
    int host = 1;
    for (const NetNs* n : {&a_, &b_}) {
      std::string peer = "p" + std::to_string(host);
      c_.ip({"link", "set", peer, "master", "br0"});
      c_.ip({"link", "set", peer, "up"});
      n->ip({"addr", "add", "10.77.0." + std::to_string(host) + "/24", "dev", "eth0"});
      n->ip({"link", "set", "eth0", "up"});
      ++host;
    }
  }
  const NetNs& a() const { return a_; }
  const NetNs& b() const { return b_; }
  const NetNs& c() const { return c_; }

  bool has_vip(const NetNs& n) const {
    return n.ip({"-4", "addr", "show", "dev", "eth0"}).find(std::string(kVip) + "/24") != std::string::npos;
  }
  // One request from `src` (in ns C) to the VIP.
  std::string fetch(const std::string& src) const {
    std::string out;
    c_.run([&] { out = tcp_fetch(kVip, 80, "", src, 1.0); });
    return out;
  }
  // Fetches until the reply comes from `node` ("A "/"B " prefix) and names
  // a real server, or `limit_s` passes.
  std::string fetch_from(const std::string& node, const std::string& src, double limit_s) const {
    std::string r;
    wait_until(
        [&] {
          r = fetch(src);
          return r.rfind(node + " real", 0) == 0;
        },
        limit_s, 0.1);
    return r;
  }

 private:
  std::string prefix_;
  NetNs a_, b_, c_;
  VethPair veth_a_, veth_b_;
};

struct Reals {
  std::unique_ptr<TestServer> r1, r2;
  explicit Reals(const NetNs& c) {
    c.run([&] {
      r1 = std::make_unique<TestServer>("real1", "0.0.0.0", 8081);
      r1->set_mode(TestServer::Mode::Raw);
      r2 = std::make_unique<TestServer>("real2", "0.0.0.0", 8082);
      r2->set_mode(TestServer::Mode::Raw);
    });
  }
};

const char* kLdirectord =
    "checkinterval=0.3\n"
    "checktimeout=0.5\n"
    "quiescent=no\n"
    "virtual=10.77.0.100:80\n"
    "  real=10.77.0.10:8081 masq\n"
    "  real=10.77.0.10:8082 masq\n"
    "  scheduler=rr\n"
    "  persistent=300\n"
    "  checktype=connect\n";

struct NodeSpec {
  std::string name;
  const NetNs* ns;
  int priority;
  std::string peer;  // "" = multicast VRRP and sync
  std::string role;  // --start-daemon
};

std::unique_ptr<Child> start_node(const NodeSpec& s, const TempDir& d) {
  std::vector<std::string> argv = {"ip",         "netns",       "exec",          s.ns->name(),
                                   LB_HA_NODE,   "--name",      s.name,          "--port",
                                   "80",         "--ldirectord", d.file("ld.cf"), "--metrics-file",
                                   d.file(s.name + ".metrics"), "--vrrp-interface", "eth0", "--vrrp-vip",
                                   std::string(kVip) + "/24", "--vrrp-id", "77", "--vrrp-advert-int", "0.1",
                                   "--vrrp-priority", std::to_string(s.priority), "--start-daemon", s.role,
                                   "--sync-full-interval", "0.2"};
  if (!s.peer.empty()) {
    for (const char* f : {"--vrrp-peer", "--sync-peer"}) {
      argv.push_back(f);
      argv.push_back(s.peer);
    }
  }
  return std::make_unique<Child>(argv, d.file(s.name + ".log"));
}

double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

// Each test gets the topology (skipped only when namespaces are impossible
// here; a failing setup step fails the test with the command and its
// stderr), a temp dir with the ldirectord.cf and the two real servers in C.
// Members are destroyed in reverse: servers, then files, then namespaces.
class HaFailover : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!netns_available(&why)) GTEST_SKIP() << why;
    topo_ = std::make_unique<Topology>();
    write_file(d_.file("ld.cf"), kLdirectord);
    reals_ = std::make_unique<Reals>(topo_->c());
  }
  Topology& topo() { return *topo_; }

  std::unique_ptr<Topology> topo_;
  TempDir d_;
  std::unique_ptr<Reals> reals_;
};

std::string logs(const TempDir& d) {
  return "--- A log ---\n" + slurp(d.file("A.log")) + "--- B log ---\n" + slurp(d.file("B.log"));
}

}  // namespace

TEST_F(HaFailover, PrimaryKilledBackupTakesVipAndKeepsPersistence) {
  Topology& t = topo();
  const TempDir& d = d_;

  auto a = start_node({"A", &t.a(), 200, "10.77.0.2", "master"}, d);
  ASSERT_TRUE(a->ok());
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.a()); }, 5)) << logs(d);
  auto b = start_node({"B", &t.b(), 100, "10.77.0.1", "backup"}, d);
  ASSERT_TRUE(wait_until([&] { return slurp(d.file("B.metrics")).find("role backup") != std::string::npos; }, 5))
      << logs(d);

  // Two clients, two different real servers (rr + persistence on A).
  std::string r10 = t.fetch_from("A", "10.77.0.10", 10);
  std::string r11 = t.fetch_from("A", "10.77.0.11", 10);
  ASSERT_EQ(r10.rfind("A real", 0), 0u) << r10 << "\n" << logs(d);
  ASSERT_EQ(r11.rfind("A real", 0), 0u) << r11;
  ASSERT_NE(r10, r11);
  EXPECT_EQ(t.fetch("10.77.0.10"), r10) << "persistence on the master";
  // B has heard about both persistence templates.
  ASSERT_TRUE(wait_until(
      [&] { return metric(slurp(d.file("B.metrics")), "vmstack_lb_ha_sync_templates_imported_total") >= 2; }, 5))
      << slurp(d.file("B.metrics"));
  EXPECT_FALSE(t.has_vip(t.b()));

  // Kill -9 the primary: no goodbye advert, its VIP is left behind.
  a->signal(SIGKILL);
  ASSERT_NE(a->wait_exit(5), -1);
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.b()); }, 5)) << logs(d);
  double took = seconds_since(t0);
  // Master_Down_Interval = 3 * 0.1 s + skew (0.06 s), plus polling.
  EXPECT_LT(took, 1.5) << "takeover took " << took << " s";

  // The backup serves; gratuitous ARP moved the VIP to its MAC. Client .11
  // first: without the synced template, rr would give it real server 1.
  std::string b11 = t.fetch_from("B", "10.77.0.11", 10);
  ASSERT_EQ(b11.rfind("B real", 0), 0u) << b11 << "\n" << logs(d);
  EXPECT_EQ(b11.substr(2), r11.substr(2)) << "client .11 changed real server across the failover";
  std::string b10 = t.fetch_from("B", "10.77.0.10", 5);
  EXPECT_EQ(b10.substr(2), r10.substr(2)) << "client .10 changed real server across the failover";
  // The node's metrics file is rewritten every 100 ms.
  std::string m;
  EXPECT_TRUE(wait_until(
      [&] {
        m = slurp(d.file("B.metrics"));
        return m.find("vmstack_lb_ha_vrrp_state{state=\"master\"} 1") != std::string::npos;
      },
      2))
      << m;
}

TEST_F(HaFailover, GracefulStopHandsOverAndPrimaryPreemptsOnReturn) {
  Topology& t = topo();
  const TempDir& d = d_;

  // Multicast adverts and multicast sync this time.
  NodeSpec sa{"A", &t.a(), 200, "", "master"};
  auto a = start_node(sa, d);
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.a()); }, 5)) << logs(d);
  auto b = start_node({"B", &t.b(), 100, "", "backup"}, d);
  ASSERT_TRUE(wait_until([&] { return slurp(d.file("B.metrics")).find("role backup") != std::string::npos; }, 5))
      << logs(d);
  // B hears A's multicast adverts and stays backup.
  ASSERT_TRUE(wait_until(
      [&] { return metric(slurp(d.file("B.metrics")), "vmstack_lb_ha_vrrp_adverts_received_total") >= 5; }, 5))
      << logs(d);
  EXPECT_FALSE(t.has_vip(t.b()));
  std::string r = t.fetch_from("A", "10.77.0.10", 10);
  ASSERT_EQ(r.rfind("A real", 0), 0u) << r << "\n" << logs(d);

  // The template reaches B by multicast sync before A goes.
  ASSERT_TRUE(wait_until(
      [&] { return metric(slurp(d.file("B.metrics")), "vmstack_lb_ha_sync_templates_imported_total") >= 1; }, 5))
      << logs(d);
  a->signal(SIGTERM);
  int st = a->wait_exit(5);
  ASSERT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << "\n" << logs(d);
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.b()); }, 5)) << logs(d);
  EXPECT_LT(seconds_since(t0), 1.0);
  EXPECT_FALSE(t.has_vip(t.a())) << "a graceful stop removes the VIP";
  std::string rb = t.fetch_from("B", "10.77.0.10", 10);
  ASSERT_EQ(rb.rfind("B real", 0), 0u) << rb << "\n" << logs(d);
  EXPECT_EQ(rb.substr(2), r.substr(2)) << "persistence template synced over multicast";

  // The primary returns with the higher priority and takes the VIP back.
  a = start_node(sa, d);
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.a()) && !t.has_vip(t.b()); }, 5)) << logs(d);
  std::string ra = t.fetch_from("A", "10.77.0.10", 10);
  EXPECT_EQ(ra.rfind("A real", 0), 0u) << ra << "\n" << logs(d);
}

// The same failover with the real daemon: vmstack-lbd with its NAT proxy,
// HaRuntime built in, metrics over HTTP.
namespace {

class HaFailoverLbd : public HaFailover {};

std::unique_ptr<Child> start_lbd(const std::string& name, const NetNs& ns, int priority, const std::string& peer,
                                 const std::string& role, const TempDir& d) {
  std::filesystem::create_directories(d.file(name + "-state"));
  std::vector<std::string> argv = {"ip", "netns", "exec", ns.name(), LB_LBD, "--state-dir", d.file(name + "-state"),
                                   "--control-socket", d.file(name + ".sock"), "--metrics-listen", "127.0.0.1:9100",
                                   "--ldirectord", d.file("ld.cf"), "--vrrp-interface", "eth0", "--vrrp-vip",
                                   std::string(kVip) + "/24", "--vrrp-id", "78", "--vrrp-advert-int", "0.1",
                                   "--vrrp-priority", std::to_string(priority), "--vrrp-peer", peer, "--sync-peer",
                                   peer, "--start-daemon", role, "--sync-full-interval", "0.2"};
  return std::make_unique<Child>(argv, d.file(name + ".log"));
}

std::string lbd_metrics(const NetNs& ns) {
  std::string out;
  ns.run([&] { out = tcp_fetch("127.0.0.1", 9100, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", "", 1.0); });
  return out;
}

}  // namespace

TEST_F(HaFailoverLbd, PrimaryKilledBackupServesThroughVmstackLbd) {
  Topology& t = topo();
  const TempDir& d = d_;
  auto a = start_lbd("A", t.a(), 200, "10.77.0.2", "master", d);
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.a()); }, 10)) << logs(d);
  auto b = start_lbd("B", t.b(), 100, "10.77.0.1", "backup", d);
  ASSERT_TRUE(wait_until(
      [&] { return lbd_metrics(t.b()).find("vmstack_lb_ha_vrrp_state{state=\"backup\"} 1") != std::string::npos; },
      10))
      << lbd_metrics(t.b()) << logs(d);

  auto fetch_real = [&](const std::string& src, double limit) {
    std::string r;
    wait_until(
        [&] {
          r = t.fetch(src);
          return r.rfind("real", 0) == 0;
        },
        limit, 0.1);
    return r;
  };
  std::string r10 = fetch_real("10.77.0.10", 10);
  std::string r11 = fetch_real("10.77.0.11", 10);
  ASSERT_EQ(r10.rfind("real", 0), 0u) << r10 << logs(d);
  ASSERT_EQ(r11.rfind("real", 0), 0u) << r11;
  ASSERT_NE(r10, r11) << "rr should have spread the two clients";
  ASSERT_TRUE(wait_until(
      [&] { return metric(lbd_metrics(t.b()), "vmstack_lb_ha_sync_templates_imported_total") >= 2; }, 10))
      << lbd_metrics(t.b());

  a->signal(SIGKILL);
  ASSERT_NE(a->wait_exit(5), -1);
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return t.has_vip(t.b()); }, 5)) << logs(d);
  EXPECT_LT(seconds_since(t0), 1.5);
  // A is dead: whatever answers now is B's proxy.
  EXPECT_EQ(fetch_real("10.77.0.11", 10), r11) << logs(d);
  EXPECT_EQ(fetch_real("10.77.0.10", 5), r10);
  EXPECT_NE(lbd_metrics(t.b()).find("vmstack_lb_ha_vrrp_state{state=\"master\"} 1"), std::string::npos);
}

// A topology setup that fails halfway removes every namespace and veth it
// had created, and its error names the failing command with its stderr.
TEST(NetnsSetup, FailureHalfwayRemovesEverythingAndNamesTheCommand) {
  std::string why;
  if (!netns_available(&why)) GTEST_SKIP() << why;
  const std::string p = "vlbfail" + std::to_string(::getpid()) + "-";
  struct Broken {
    NetNs x, y;
    VethPair v;
    explicit Broken(const std::string& p) : x(p + "x"), y(p + "y"), v(x, "vx0", y, "vy0") {
      x.ip({"link", "set", "vx0", "up"});
      x.ip({"link", "set", "nosuchdev0", "up"});  // fails: no such device
      ADD_FAILURE() << "not reached";
    }
  };
  std::string err;
  try {
    Broken b(p);
  } catch (const SetupError& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("`ip -n " + p + "x link set nosuchdev0 up` exited"), std::string::npos) << err;
  EXPECT_NE(err.find("nosuchdev0\""), std::string::npos) << "stderr missing: " << err;  // Cannot find device "nosuchdev0"
  std::string list = run_checked({"ip", "netns", "list"});
  EXPECT_EQ(list.find(p), std::string::npos) << "namespaces left behind:\n" << list;
  EXPECT_EQ(run_checked({"ip", "-o", "link", "show"}).find("vx0"), std::string::npos);
}
