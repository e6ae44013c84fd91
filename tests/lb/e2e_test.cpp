// End to end: the real vmstack-lbd and vmstack-ipvsadm binaries with three
// lb_test_httpd real servers, in two network namespaces this test creates:
//
//   vmstack-lb-test-<pid>      lo (up) + VIP 10.200.0.100/32 on lo,
//                              veth 10.201.0.1/24      <- vmstack-lbd, the client
//   vmstack-lb-test-<pid>-rs   veth 10.201.0.11-13/24  <- rs1, rs2, rs3 (HTTP :80)
//
// Checks: rr/wrr distribution equals the scheduler's own decisions, -d
// takes a server out for new connections (existing ones continue), the CLI's
// error paths, metrics, and a daemon restart (clean or kill -9) keeps rules.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/process.h"
#include "lb/control.h"
#include "lb/ipvsadm.h"
#include "lb/scheduler.h"
#include "lb_test_util.h"
#include "netns_util.h"

using namespace vmstack::lb;
using namespace lbtest;
using vmstack::CommandResult;
using vmstack::run_command;
using vmstack::SpawnOptions;
using vmstack::Subprocess;

namespace {

const std::string kBin = LB_BIN_DIR;
const std::string kHttpd = LB_HTTPD;
const char* kVip = "10.200.0.100";
const char* kRs[] = {"10.201.0.11", "10.201.0.12", "10.201.0.13"};
const char* kRsNames[] = {"rs1", "rs2", "rs3"};

// The two namespaces, the veth pair and the three real servers. Every part
// is an RAII member: if the constructor fails at any step (SetupError names
// the command and carries its stderr), what was created so far is removed.
struct Env {
  const std::string id = std::to_string(::getpid());
  const std::string lb_ns = "vmstack-lb-test-" + id;
  const std::string rs_ns = lb_ns + "-rs";
  TempDir tmp;
  NetNs lb{lb_ns}, rs{rs_ns};
  VethPair veth{lb, "vlb" + id, rs, "vrs" + id};
  std::vector<Subprocess> servers;  // last: gone before the namespaces

  Env() {
    const std::string va = "vlb" + id, vb = "vrs" + id;
    lb.ip({"addr", "add", "10.201.0.1/24", "dev", va});
    lb.ip({"addr", "add", std::string(kVip) + "/32", "dev", "lo"});
    lb.ip({"link", "set", va, "up"});
    rs.ip({"link", "set", vb, "up"});
    for (const char* a : kRs) rs.ip({"addr", "add", std::string(a) + "/24", "dev", vb});
    for (int i = 0; i < 3; ++i) start_server(i);
    InNetns in(lb_ns);
    if (!in.ok()) throw SetupError("cannot enter network namespace " + lb_ns);
    for (int i = 0; i < 3; ++i) {
      Endpoint ep = *Endpoint::parse(std::string(kRs[i]) + ":80");
      if (!wait_for([&] { return bool(connect_tcp(ep, 500)); }, 5000))
        throw SetupError(std::string("real server ") + kRsNames[i] + " (" + kRs[i] + ":80) did not come up");
    }
  }

  void start_server(int i) {
    SpawnOptions o;
    o.stdout_mode = o.stderr_mode = SpawnOptions::Output::null;
    servers.push_back(Subprocess::spawn({"ip", "netns", "exec", rs_ns, kHttpd, "--listen",
                                         std::string(kRs[i]) + ":80", "--name", kRsNames[i]},
                                        o));
  }

  ~Env() {
    // Politely first; Subprocess's destructor SIGKILLs whatever is left.
    for (auto& s : servers) {
      s.kill(SIGTERM);
      if (!s.wait_for(std::chrono::seconds(3))) s.kill(SIGKILL);
    }
  }
};

// Built once for the suite; when it cannot be, every test says why.
std::unique_ptr<Env> g_env;
std::string g_skip, g_setup_error;

class LbE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_skip.clear();
    g_setup_error.clear();
    if (!netns_available(&g_skip)) return;
    try {
      g_env = std::make_unique<Env>();
    } catch (const std::exception& e) {
      g_setup_error = e.what();
    }
  }
  static void TearDownTestSuite() { g_env.reset(); }

  void SetUp() override {
    if (!g_skip.empty()) GTEST_SKIP() << g_skip;
    ASSERT_TRUE(g_env) << "setting up the network namespaces failed: " << g_setup_error;
    dir_ = g_env->tmp.path / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    sock_ = (dir_ / "ctl.sock").string();
    start_daemon();
  }
  void TearDown() override { stop_daemon(SIGTERM); }

  void start_daemon() {
    SpawnOptions o;
    o.stdout_mode = o.stderr_mode = SpawnOptions::Output::file;
    o.stdout_path = o.stderr_path = (dir_ / "lbd.log").string();
    o.stderr_mode = SpawnOptions::Output::stdout_;
    lbd_ = Subprocess::spawn({"ip", "netns", "exec", g_env->lb_ns, kBin + "/vmstack-lbd",
                              "--state-dir", (dir_ / "state").string(), "--socket", sock_,
                              "--metrics-listen", std::string(kVip) + ":9100", "--workers", "2"},
                             o);
    bool up = wait_for(
        [&] {
          try {
            Command c;
            c.op = Op::List;
            control_call(sock_, {{"cmd", command_to_json(c)}}, 1000);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        10000);
    ASSERT_TRUE(up) << "vmstack-lbd did not come up; log:\n" << log();
  }

  void stop_daemon(int sig) {
    if (!lbd_.valid()) return;
    lbd_.kill(sig);
    bool exited = lbd_.wait_for(std::chrono::seconds(10));
    if (!exited) {
      lbd_.kill(SIGKILL);
      lbd_.wait_for(std::chrono::seconds(5));
    }
    if (sig == SIGTERM) {
      // A clean stop exits 0 (under ASan this also means no leak report).
      EXPECT_TRUE(exited) << "vmstack-lbd ignored SIGTERM; log:\n" << log();
      auto st = lbd_.exit_status();
      EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
          << lbd_.describe_status() << "; log:\n" << log();
    }
    lbd_ = Subprocess();
  }

  std::string log() const {
    std::ifstream in(dir_ / "lbd.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  CommandResult ipvsadm(std::vector<std::string> args, const std::string& input = {}) {
    args.insert(args.begin(), {kBin + "/vmstack-ipvsadm", "--socket", sock_});
    return run_command(args, std::chrono::seconds(20), input);
  }
  void ok(std::vector<std::string> args) {
    CommandResult r = ipvsadm(args);
    ASSERT_TRUE(r.ok()) << vmstack::format_argv(args) << ": " << r.err;
  }

  // Sets up VIP:80 with the three real servers (weights given).
  void three_servers(const std::string& sched, std::array<int, 3> w = {1, 1, 1}) {
    ok({"-A", "-t", std::string(kVip) + ":80", "-s", sched});
    for (int i = 0; i < 3; ++i)
      ok({"-a", "-t", std::string(kVip) + ":80", "-r", std::string(kRs[i]) + ":80", "-m", "-w",
          std::to_string(w[size_t(i)])});
  }

  // One HTTP/1.0 request on a new connection through the VIP: who answered.
  static std::string get(const std::string& path = "/") {
    InNetns in(g_env->lb_ns);
    if (!in.ok()) return "<no netns>";
    UniqueFd c = connect_tcp(*Endpoint::parse(std::string(kVip) + ":80"));
    if (!c) return "<connect failed>";
    if (!send_all(c.get(), "GET " + path + " HTTP/1.0\r\nHost: vip\r\n\r\n")) return "<send failed>";
    std::string resp = read_up_to(c.get(), 1 << 16);
    auto body = resp.find("\r\n\r\n");
    if (body == std::string::npos) return "<bad response: " + resp + ">";
    std::string name = resp.substr(body + 4);
    while (!name.empty() && name.back() == '\n') name.pop_back();
    return name;
  }

  // What the scheduler itself decides for n new connections over the
  // three servers with these weights (no connections held open).
  static std::vector<std::string> expected(const std::string& sched, std::array<int, 3> w, int n) {
    std::vector<DestPtr> ds;
    for (int i = 0; i < 3; ++i) {
      DestConfig c;
      c.addr = *Endpoint::parse(std::string(kRs[i]) + ":80");
      c.weight = w[size_t(i)];
      ds.push_back(std::make_shared<Destination>(c));
    }
    auto s = make_scheduler(sched);
    s->update(ds);
    std::vector<std::string> out;
    SchedInput in;
    for (int i = 0; i < n; ++i) {
      DestPtr d = s->schedule(ds, in);
      for (int k = 0; k < 3; ++k)
        if (d == ds[size_t(k)]) out.push_back(kRsNames[k]);
    }
    return out;
  }

  std::filesystem::path dir_;
  std::string sock_;
  Subprocess lbd_;
};

}  // namespace

TEST_F(LbE2E, RoundRobinDistributionMatchesTheScheduler) {
  three_servers("rr");
  std::vector<std::string> got;
  for (int i = 0; i < 30; ++i) got.push_back(get());
  EXPECT_EQ(got, expected("rr", {1, 1, 1}, 30));
  CommandResult r = ipvsadm({"-L", "-n", "--stats"});
  ASSERT_TRUE(r.ok()) << r.err;
  // ipvsadm's columns: name padded to 33, then 9-wide numbers.
  auto row = [](std::string name, int conns) {
    name.resize(33, ' ');
    std::string n = std::to_string(conns);
    return name + std::string(9 - n.size(), ' ') + n;
  };
  EXPECT_NE(r.out.find(row("TCP  10.200.0.100:80", 30)), std::string::npos) << r.out;
  for (const char* rs : kRs)
    EXPECT_NE(r.out.find(row(std::string("  -> ") + rs + ":80", 10)), std::string::npos) << r.out;
}

TEST_F(LbE2E, WeightedRoundRobinDistributionMatchesTheScheduler) {
  three_servers("wrr", {3, 2, 1});
  std::vector<std::string> got;
  for (int i = 0; i < 36; ++i) got.push_back(get());
  EXPECT_EQ(got, expected("wrr", {3, 2, 1}, 36));
  std::map<std::string, int> count;
  for (auto& g : got) ++count[g];
  EXPECT_EQ(count["rs1"], 18);
  EXPECT_EQ(count["rs2"], 12);
  EXPECT_EQ(count["rs3"], 6);
  // Weight changes apply to new connections at once.
  ok({"-e", "-t", std::string(kVip) + ":80", "-r", std::string(kRs[0]) + ":80", "-m", "-w", "0"});
  for (int i = 0; i < 9; ++i) EXPECT_NE(get(), "rs1");
}

TEST_F(LbE2E, DeletedRealServerGetsNoNewConnections) {
  three_servers("rr");
  const std::string vip = std::string(kVip) + ":80";
  // A keep-alive connection that lands on rs2 before the delete.
  InNetns in(g_env->lb_ns);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(get(), "rs1");
  UniqueFd held = connect_tcp(*Endpoint::parse(vip));
  ASSERT_TRUE(held);
  ASSERT_TRUE(send_all(held.get(), "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"));
  EXPECT_NE(read_until(held.get(), "rs2\n").find("rs2\n"), std::string::npos);

  ok({"-d", "-t", vip, "-r", std::string(kRs[1]) + ":80"});
  std::map<std::string, int> count;
  for (int i = 0; i < 20; ++i) ++count[get()];
  EXPECT_EQ(count["rs2"], 0);
  EXPECT_EQ(count["rs1"], 10);
  EXPECT_EQ(count["rs3"], 10);
  // The established connection is not cut (LVS keeps it until it ends).
  ASSERT_TRUE(send_all(held.get(), "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"));
  EXPECT_NE(read_until(held.get(), "rs2\n").find("rs2\n"), std::string::npos);
  CommandResult r = ipvsadm({"-L", "-n", "-c"});
  // The client runs on the balancer's namespace, so its source is the VIP.
  EXPECT_NE(r.out.find("ESTABLISHED 10.200.0.100:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.200.0.100:80    10.201.0.12:80\n"), std::string::npos) << r.out;
  r = ipvsadm({"-L", "-n"});
  EXPECT_EQ(r.out.find("10.201.0.12:80"), std::string::npos) << r.out;
}

TEST_F(LbE2E, RestartKeepsRulesCleanOrKilled) {
  three_servers("wrr", {2, 1, 1});
  ok({"--set", "600", "60", "30"});
  const std::string saved = ipvsadm({"-S", "-n"}).out;
  ASSERT_FALSE(saved.empty());
  for (int sig : {SIGTERM, SIGKILL}) {
    stop_daemon(sig);
    EXPECT_NE(ipvsadm({"-L", "-n"}).exit_code, 0) << "daemon still answering";
    start_daemon();
    EXPECT_EQ(ipvsadm({"-S", "-n"}).out, saved) << "after signal " << sig;
    EXPECT_EQ(ipvsadm({"-L", "--timeout"}).out, "Timeout (tcp tcpfin udp): 600 60 30\n");
    std::vector<std::string> got;
    for (int i = 0; i < 8; ++i) got.push_back(get());
    EXPECT_EQ(got, expected("wrr", {2, 1, 1}, 8));
  }
}

TEST_F(LbE2E, RestoreFromSaveFormatAndErrors) {
  const std::string vip = std::string(kVip) + ":80";
  std::string rules = "-A -t " + vip + " -s rr\n";
  for (const char* a : kRs) rules += "-a -t " + vip + " -r " + a + ":80 -m -w 1\n";
  CommandResult r = ipvsadm({"-R"}, rules);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(ipvsadm({"-S", "-n"}).out, rules);
  EXPECT_EQ(get(), "rs1");
  // A restore with a -g line changes nothing and names the line.
  r = ipvsadm({"-R"}, "-C\n-A -t 10.200.0.100:81 -s rr\n# comment\n-a -t 10.200.0.100:81 -r "
                      "10.201.0.11 -g\n");
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(r.err.find("line 4: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs kernel IPVS"), std::string::npos) << r.err;
  EXPECT_EQ(ipvsadm({"-S", "-n"}).out, rules);
  // Syntax errors are caught before anything is sent.
  r = ipvsadm({"-R"}, "-A -t 10.200.0.100:82\n-a -t 10.200.0.100:82 -r bogus..addr\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("line 2: illegal real server"), std::string::npos) << r.err;
  EXPECT_EQ(ipvsadm({"-S", "-n"}).out, rules);
}

TEST_F(LbE2E, CliErrorsAndMetrics) {
  three_servers("rr");
  CommandResult r = ipvsadm({"-a", "-t", std::string(kVip) + ":80", "-r", "10.201.0.14:80", "-g"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(r.err.find("needs kernel IPVS"), std::string::npos) << r.err;
  r = ipvsadm({"-A", "-t", std::string(kVip) + ":80"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.err, "Service already exists\n");
  r = ipvsadm({"-A", "-x", "3"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_command({kBin + "/vmstack-ipvsadm", "--socket", (dir_ / "nope.sock").string(), "-L"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Is vmstack-lbd running?"), std::string::npos) << r.err;

  for (int i = 0; i < 6; ++i) get();
  InNetns in(g_env->lb_ns);
  ASSERT_TRUE(in.ok());
  UniqueFd m = connect_tcp(*Endpoint::parse(std::string(kVip) + ":9100"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(send_all(m.get(), "GET /metrics HTTP/1.0\r\n\r\n"));
  std::string text = read_up_to(m.get(), 1 << 20);
  EXPECT_NE(text.find("HTTP/1.0 200 OK"), std::string::npos) << text.substr(0, 200);
  EXPECT_NE(text.find("vmstack_lb_service_connections_total{proto=\"tcp\",vip=\"10.200.0.100:80\"} 6"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vmstack_lb_real_connections_total{proto=\"tcp\",vip=\"10.200.0.100:80\","
                      "real=\"10.201.0.12:80\"} 2"),
            std::string::npos)
      << text;
}

TEST_F(LbE2E, SyncDaemonRoleThroughIpvsadm) {
  CommandResult r = ipvsadm({"--start-daemon", "master", "--syncid", "5"});
  if (r.exit_code != 0 && r.err.find("without lb-ha") != std::string::npos)
    GTEST_SKIP() << "vmstack-lbd built without lb-ha: " << r.err;
  ASSERT_TRUE(r.ok()) << r.err << log();
  r = ipvsadm({"-L", "--daemon"});
  EXPECT_EQ(r.out.rfind("master sync daemon (mcast=", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("syncid=5)"), std::string::npos) << r.out;
  r = ipvsadm({"--start-daemon", "master"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.err, "Daemon has already run\n");
  r = ipvsadm({"--stop-daemon", "backup"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_EQ(r.err, "No daemon is running\n");
  ASSERT_TRUE(ipvsadm({"--stop-daemon", "master"}).ok());
  EXPECT_EQ(ipvsadm({"-L", "--daemon"}).out, "");
  // Rules are untouched by role changes, and still served.
  three_servers("rr");
  EXPECT_EQ(get(), "rs1");
}
