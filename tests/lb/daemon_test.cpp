// vmstack-lbd's core in process: rules over the control socket, the state
// file (saved before the reply, reloaded on start, bad files set aside),
// listener warnings, the metrics endpoint. What the daemon refuses and how
// it loads damaged state files: daemon_checks_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lb/metrics.h"
#include "running_daemon.h"

using namespace vmstack::lb;
using namespace lbtest;

namespace {

std::string http_get(const Endpoint& ep, const std::string& request) {
  UniqueFd c = connect_tcp(ep);
  if (!c || !send_all(c.get(), request)) return {};
  return read_up_to(c.get(), 1 << 20);
}

}  // namespace

TEST(Daemon, RulesAreSavedBeforeTheReplyAndReloaded) {
  TempDir d;
  const std::string vip = "127.0.0.1:" + std::to_string(free_port());
  std::string saved;
  {
    Running r(d);
    ASSERT_EQ(r.run({"-A", "-t", vip, "-s", "wrr", "-p", "120"}).rc, 0);
    ASSERT_EQ(r.run({"-a", "-t", vip, "-r", "127.0.0.1:1", "-m", "-w", "4"}).rc, 0);
    ASSERT_EQ(r.run({"--set", "100", "20", "10"}).rc, 0);
    // Already on disk when the command returned.
    saved = slurp(d.file("state/rules"));
    EXPECT_EQ(saved, "-A -t " + vip + " -s wrr -p 120\n-a -t " + vip +
                         " -r 127.0.0.1:1 -m -w 4\n--set 100 20 10\n");
    EXPECT_EQ(std::filesystem::status(d.file("state")).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_all);
    // A failed command changes nothing on disk.
    EXPECT_EQ(r.run({"-a", "-t", vip, "-r", "127.0.0.1:2", "-g"}).rc, 255);
    EXPECT_EQ(slurp(d.file("state/rules")), saved);
  }
  Running again(d);
  EXPECT_EQ(save_state(again.daemon->table()), saved);
  EXPECT_NE(again.log().find("restored 1 virtual services"), std::string::npos) << again.log();
  // The restored service is live: its listener is open.
  EXPECT_TRUE(connect_tcp(*Endpoint::parse(vip)));
}

TEST(Daemon, UnreadableStateFileIsSetAsideNotLost) {
  TempDir d;
  std::filesystem::create_directories(d.file("state"));
  const std::string bad = "-A -t 127.0.0.1:9 -s rr\nthis is not ipvsadm\n";
  std::ofstream(d.file("state/rules")) << bad;
  Running r(d);
  // The good line loads; the bad one is skipped and logged.
  EXPECT_EQ(r.daemon->table().list().size(), 1u);
  EXPECT_NE(r.log().find("line 2 skipped"), std::string::npos) << r.log();
  int copies = 0;
  for (auto& e : std::filesystem::directory_iterator(d.file("state")))
    if (e.path().filename().string().rfind("rules.rejected-", 0) == 0) {
      ++copies;
      EXPECT_EQ(slurp(e.path().string()), bad);
    }
  EXPECT_EQ(copies, 1);
}

TEST(Daemon, BatchAndMalformedRequests) {
  TempDir d;
  Running r(d);
  const std::string vip = "127.0.0.1:" + std::to_string(free_port());
  nlohmann::json batch = nlohmann::json::array();
  for (auto args : std::vector<std::vector<std::string>>{
           {"-A", "-t", vip, "-s", "rr"}, {"-a", "-t", vip, "-r", "127.0.0.1:7"}})
    batch.push_back(command_to_json(*parse_ipvsadm_args(args).cmd));
  ControlReply rep = control_call(r.daemon->control_socket(), {{"batch", batch}, {"lines", {3, 9}}});
  EXPECT_EQ(rep.rc, 0) << rep.err;
  EXPECT_EQ(r.daemon->table().list().size(), 1u);
  // The same batch again fails on its first line: nothing changes.
  rep = control_call(r.daemon->control_socket(), {{"batch", batch}, {"lines", {3, 9}}});
  EXPECT_EQ(rep.rc, 255);
  EXPECT_EQ(rep.err.rfind("line 3: Service already exists", 0), 0u) << rep.err;
  EXPECT_EQ(r.daemon->table().list().size(), 1u);

  rep = control_call(r.daemon->control_socket(), {{"what", 1}});
  EXPECT_EQ(rep.rc, 2);
  rep = control_call(r.daemon->control_socket(), {{"cmd", {{"op", "add-service"}}}});
  EXPECT_EQ(rep.rc, 2);  // -A without a service: refused as the CLI refuses it
  EXPECT_EQ(rep.err, "You need to supply the 'service-address' option for the 'add-service' command\n");
  rep = control_call(r.daemon->control_socket(), {{"cmd", {{"op", "explode"}}}});
  EXPECT_EQ(rep.rc, 2);
  EXPECT_NE(rep.err.find("unknown command"), std::string::npos) << rep.err;
}

TEST(Daemon, WarnsWhenAServiceCannotListen) {
  TempDir d;
  Running r(d);
  Endpoint taken;
  UniqueFd squatter = bind_socket(SOCK_STREAM, "127.0.0.1", 0, &taken);
  ControlReply rep = r.run({"-A", "-t", taken.str(), "-s", "rr"});
  EXPECT_EQ(rep.rc, 0);  // the rule is kept (as kernel IPVS would) ...
  EXPECT_NE(rep.err.find("warning: cannot listen on TCP  " + taken.str()), std::string::npos)
      << rep.err;  // ... but the user is told
  squatter.reset();
  EXPECT_TRUE(wait_for([&] { return r.daemon->proxy().listener_errors().empty(); }));
}

TEST(Daemon, MetricsEndpoint) {
  TempDir d;
  Running r(d, "127.0.0.1:0");
  const std::string vip = "127.0.0.1:" + std::to_string(free_port());
  TcpServer echo(echo_handler);
  ASSERT_EQ(r.run({"-A", "-t", vip, "-s", "rr"}).rc, 0);
  ASSERT_EQ(r.run({"-a", "-t", vip, "-r", echo.endpoint().str(), "-w", "3"}).rc, 0);
  {
    UniqueFd c = connect_tcp(*Endpoint::parse(vip));
    ASSERT_TRUE(send_all(c.get(), "ping"));
    ASSERT_EQ(read_up_to(c.get(), 4), "ping");
  }
  Endpoint m = r.daemon->metrics_endpoint();
  ASSERT_NE(m.port, 0);
  std::string text;
  ASSERT_TRUE(wait_for([&] {
    text = http_get(m, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return text.find("vmstack_lb_proxy_tcp_connections 0") != std::string::npos;
  }));
  EXPECT_NE(text.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_NE(text.find("text/plain; version=0.0.4"), std::string::npos);
  const std::string labels = "{proto=\"tcp\",vip=\"" + vip + "\"}";
  const std::string real = "{proto=\"tcp\",vip=\"" + vip + "\",real=\"" + echo.endpoint().str() + "\"}";
  EXPECT_NE(text.find("vmstack_lb_service_connections_total" + labels + " 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vmstack_lb_real_in_bytes_total" + real + " 4\n"), std::string::npos);
  EXPECT_NE(text.find("vmstack_lb_real_out_bytes_total" + real + " 4\n"), std::string::npos);
  EXPECT_NE(text.find("vmstack_lb_real_weight" + real + " 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE vmstack_lb_service_connections_total counter"), std::string::npos);
  EXPECT_NE(http_get(m, "GET /other HTTP/1.0\r\n\r\n").find("404"), std::string::npos);
  EXPECT_NE(http_get(m, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").find("405"),
            std::string::npos);
}

TEST(Metrics, RatesAndLabelEscaping) {
  ServiceInfo s;
  s.cfg.key = ServiceKey{Proto::UDP, *Endpoint::parse("[fd00::1]:53")};
  s.rate.cps = 12.5;
  DestInfo di;
  di.cfg.addr = *Endpoint::parse("[fd00::2]:53");
  di.cfg.weight = 2;
  di.effective_weight = 0;
  di.healthy = false;
  di.inactconns = 7;
  s.dests.push_back(di);
  std::string text = render_metrics({s}, nullptr);
  EXPECT_NE(text.find("vmstack_lb_service_connections_per_second{proto=\"udp\",vip=\"[fd00::1]:53\"} 12.5\n"),
            std::string::npos)
      << text;
  const std::string real = "{proto=\"udp\",vip=\"[fd00::1]:53\",real=\"[fd00::2]:53\"}";
  EXPECT_NE(text.find("vmstack_lb_real_up" + real + " 0\n"), std::string::npos);
  EXPECT_NE(text.find("vmstack_lb_real_effective_weight" + real + " 0\n"), std::string::npos);
  EXPECT_NE(text.find("vmstack_lb_real_inactive_connections" + real + " 7\n"), std::string::npos);
  EXPECT_EQ(text.find("vmstack_lb_proxy_"), std::string::npos);
}
