// vmstack-lbd holds its control socket to the CLI's checks, and a damaged
// state file costs only its bad lines. (Found by an attacker: the socket took
// `-p 4294967295`, which the CLI refuses, and on the next start the whole
// rules file was rejected: 20,007 rules dropped.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "running_daemon.h"

using namespace vmstack::lb;
using namespace lbtest;
using json = nlohmann::json;

namespace {

struct BadField {
  std::vector<std::string> cli;   // arguments the CLI refuses
  std::vector<std::string> good;  // a valid command of the same shape ...
  std::function<void(json&)> spoil;  // ... and how to make its JSON as bad
};

std::string cli_error(const std::vector<std::string>& args) {
  ParseResult p = parse_ipvsadm_args(args);
  EXPECT_FALSE(p.cmd) << "the CLI accepts it";
  EXPECT_EQ(p.exit_code, 2);
  return p.error;
}

json good_json(const std::vector<std::string>& args) {
  ParseResult p = parse_ipvsadm_args(args);
  EXPECT_TRUE(p.cmd) << p.error;
  return command_to_json(p.cmd.value_or(Command{}));
}

}  // namespace

TEST(DaemonChecks, ControlSocketRefusesEveryBadFieldAsTheCliDoes) {
  TempDir d;
  Running r(d);
  const std::string vip = "127.0.0.1:" + std::to_string(free_port());
  ASSERT_EQ(r.run({"-A", "-t", vip, "-s", "rr"}).rc, 0);
  ASSERT_EQ(r.run({"-a", "-t", vip, "-r", "127.0.0.1:1"}).rc, 0);
  const std::string rules = slurp(d.file("state/rules"));
  const std::string table = save_state(r.daemon->table());
  const std::string v2 = "10.77.0.1:80", v6 = "[fd00::77]:80";

  const std::vector<BadField> cases = {
      {{"-A", "-t", v2, "-p", "4294967295"}, {"-A", "-t", v2, "-p", "60"},
       [](json& j) { j["service"]["timeout"] = 4294967295u; }},
      {{"-A", "-t", v2, "-p", "0"}, {"-A", "-t", v2, "-p", "60"},
       [](json& j) { j["service"]["timeout"] = 0; }},
      {{"-A", "-t", v6, "-p", "60", "-M", "129"}, {"-A", "-t", v6, "-p", "60", "-M", "64"},
       [](json& j) { j["service"]["v6_prefix"] = 129; }},
      {{"-A", "-t", v2, "-p", "60", "-M", "255.255.255.256"}, {"-A", "-t", v2, "-p", "60"},
       [](json& j) { j["service"]["netmask"] = 4294967296LL; }},
      {{"-A", "-t", "10.77.0.1"}, {"-A", "-t", v2},
       [](json& j) { j["service"]["vip"] = "10.77.0.1:0"; }},
      {{"-A", "-t", "300.0.0.1:80"}, {"-A", "-t", v2},
       [](json& j) { j["service"]["vip"] = "300.0.0.1:80"; }},
      {{"-A"}, {"-A", "-t", v2}, [](json& j) { j.erase("service"); }},
      {{"-A", "-t", v2, "-r", "10.77.1.1:80"}, {"-A", "-t", v2},
       [](json& j) { j["dest"] = good_json({"-a", "-t", "10.77.0.1:80", "-r", "10.77.1.1:80"})["dest"]; }},
      {{"-a", "-t", vip, "-r", "10.77.1.1:99999"}, {"-a", "-t", vip, "-r", "127.0.0.1:2"},
       [](json& j) { j["dest"]["addr"] = "10.77.1.1:99999"; }},
      {{"-a", "-t", vip}, {"-a", "-t", vip, "-r", "127.0.0.1:2"}, [](json& j) { j.erase("dest"); }},
      {{"-a", "-t", vip, "-r", "127.0.0.1:2", "-w", "65536"}, {"-a", "-t", vip, "-r", "127.0.0.1:2"},
       [](json& j) { j["dest"]["weight"] = 65536; }},
      {{"-a", "-t", vip, "-r", "127.0.0.1:2", "-w", "-1"}, {"-a", "-t", vip, "-r", "127.0.0.1:2"},
       [](json& j) { j["dest"]["weight"] = -1; }},
      {{"-a", "-t", vip, "-r", "127.0.0.1:2", "-x", "2147483648"}, {"-a", "-t", vip, "-r", "127.0.0.1:2"},
       [](json& j) { j["dest"]["u_threshold"] = 2147483648u; }},
      {{"-a", "-t", vip, "-r", "127.0.0.1:2", "-y", "-1"}, {"-a", "-t", vip, "-r", "127.0.0.1:2"},
       [](json& j) { j["dest"]["l_threshold"] = -1; }},
      {{"--set", "2678401", "1", "1"}, {"--set", "1", "1", "1"},
       [](json& j) { j["timeouts"]["tcp"] = 2678401; }},
      {{"--start-daemon", "primary"}, {"--start-daemon", "master"},
       [](json& j) { j["daemon_state"] = "primary"; }},
      {{"--start-daemon", "master", "--syncid", "256"}, {"--start-daemon", "master", "--syncid", "1"},
       [](json& j) { j["syncid"] = 256; }},
      {{"--start-daemon", "master", "--mcast-interface", "an-ifname-too-long"},
       {"--start-daemon", "master", "--mcast-interface", "eth0"},
       [](json& j) { j["mcast_interface"] = "an-ifname-too-long"; }},
      {{"-L", "-c", "--timeout"}, {"-L", "-c"}, [](json& j) { j["list"]["timeout"] = true; }},
  };
  for (const auto& c : cases) {
    const std::string expected = cli_error(c.cli);
    ASSERT_FALSE(expected.empty());
    json cmd = good_json(c.good);
    c.spoil(cmd);
    ControlReply rep = control_call(r.daemon->control_socket(), {{"cmd", cmd}});
    EXPECT_EQ(rep.rc, 2) << cmd.dump();
    EXPECT_EQ(rep.err, expected + "\n") << cmd.dump();
    EXPECT_EQ(rep.out, "");
    // The same command in a restore batch: refused as a whole, line named.
    json batch = {good_json({"-A", "-t", "10.77.9.9:80"}), cmd};
    rep = control_call(r.daemon->control_socket(), {{"batch", batch}, {"lines", {4, 7}}});
    EXPECT_EQ(rep.rc, 2);
    EXPECT_EQ(rep.err, "line 7: " + expected + "\n") << cmd.dump();
  }
  // Nothing changed: not the rules, not the file.
  EXPECT_EQ(save_state(r.daemon->table()), table);
  EXPECT_EQ(slurp(d.file("state/rules")), rules);
}

TEST(DaemonChecks, StateFileKeepsEveryGoodRuleAroundBadLines) {
  TempDir d;
  std::filesystem::create_directories(d.file("state"));
  const std::string file =
      "-A -t 10.78.0.1:8080 -s rr\n"
      "-a -t 10.78.0.1:8080 -r 10.78.1.1:80 -m -w 1\n"
      "-A -t 10.78.0.2:8080 -s wlc -p 4294967295\n"  // what the socket once accepted
      "-a -t 10.78.0.1:8080 -r 10.78.1.2:80 -m -w 3\n"
      "-a -t 10.78.0.1:8080 -r 10.78.1.3:80 -m -w 99999\n"
      "garbage\n"
      "-A -u 10.78.0.3:5353 -s sh\n"
      "-a -u 10.78.0.3:5353 -r 10.78.1.4:53 -m -w 2\n"
      "--set 100 20 10\n";
  std::ofstream(d.file("state/rules")) << file;
  const std::string good =
      "-A -t 10.78.0.1:8080 -s rr\n"
      "-a -t 10.78.0.1:8080 -r 10.78.1.1:80 -m -w 1\n"
      "-a -t 10.78.0.1:8080 -r 10.78.1.2:80 -m -w 3\n"
      "-A -u 10.78.0.3:5353 -s sh\n"
      "-a -u 10.78.0.3:5353 -r 10.78.1.4:53 -m -w 2\n"
      "--set 100 20 10\n";
  Running r(d);
  EXPECT_EQ(save_state(r.daemon->table()), good);
  // One warning per bad line, naming the file, the line and why.
  const std::string path = d.file("state/rules");
  for (const std::string& line :
       {path + ": line 3 skipped: invalid timeout value `4294967295' specified",
        path + ": line 5 skipped: illegal weight specified",
        path + ": line 6 skipped: no command given"})
    EXPECT_NE(r.log().find("warning: " + line), std::string::npos) << r.log();
  EXPECT_NE(r.log().find("3 line(s) skipped, 6 line(s) loaded"), std::string::npos) << r.log();
  // The original is kept beside it; the rules file now holds what loaded.
  EXPECT_EQ(slurp(path), good);
  int copies = 0;
  for (auto& e : std::filesystem::directory_iterator(d.file("state")))
    if (e.path().filename().string().rfind("rules.rejected-", 0) == 0) {
      ++copies;
      EXPECT_EQ(slurp(e.path().string()), file);
    }
  EXPECT_EQ(copies, 1);
}

TEST(DaemonChecks, TwentyThousandRulesWithOneBadLineLoseOneRule) {
  TempDir d;
  std::filesystem::create_directories(d.file("state"));
  // 200 services with 99 real servers each: 20,000 rule lines, one of them
  // (a service of its own, in the middle) out of range.
  std::string file, expected;
  int rules = 0;
  for (int s = 0; s < 200; ++s) {
    const std::string svc = "-t 10.79." + std::to_string(s) + ".1:8080";
    std::string block = "-A " + svc + " -s rr\n";
    for (int r = 0; r < 99; ++r)
      block += "-a " + svc + " -r 10.80." + std::to_string(s) + "." + std::to_string(r + 1) +
               ":80 -m -w 1\n";
    rules += 100;
    file += block;
    if (s == 100) {
      expected += file.substr(file.size() - block.size());
      file.insert(file.size() - block.size(), "-A -t 10.81.0.1:8080 -s wlc -p 4294967295\n");
    } else {
      expected += block;
    }
  }
  ASSERT_EQ(rules + 1, 20001);
  // Keep the file at 20,000 rules: drop the last real server of the last service.
  file.erase(file.rfind("-a "));
  expected.erase(expected.rfind("-a "));
  file += "--set 900 120 300\n";
  expected += "--set 900 120 300\n";
  std::ofstream(d.file("state/rules")) << file;

  Running r(d);
  size_t loaded = 0;
  for (const auto& s : r.daemon->table().list()) loaded += 1 + s.dests.size();
  EXPECT_EQ(loaded, 19999u);
  EXPECT_EQ(save_state(r.daemon->table()), expected);
  EXPECT_NE(r.log().find(": line 10001 skipped: invalid timeout value `4294967295' specified"),
            std::string::npos);
  EXPECT_NE(r.log().find("1 line(s) skipped, 20000 line(s) loaded"), std::string::npos) << r.log().substr(0, 2000);
}
