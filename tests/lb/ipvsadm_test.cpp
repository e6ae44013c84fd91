// ipvsadm compatibility: argument parsing, checks and messages, output
// layouts, save/restore round trips, restore atomicity.
#include <gtest/gtest.h>

#include "lb/ipvsadm.h"

using namespace vmstack::lb;

namespace {

Command parse_ok(std::vector<std::string> args) {
  ParseResult r = parse_ipvsadm_args(args);
  EXPECT_TRUE(r.cmd) << "error: " << r.error;
  return r.cmd.value_or(Command{});
}

std::string parse_err(std::vector<std::string> args, int* code = nullptr) {
  ParseResult r = parse_ipvsadm_args(args);
  EXPECT_FALSE(r.cmd);
  if (code) *code = r.exit_code;
  return r.error;
}

ExecResult exec(ServiceTable& t, std::vector<std::string> args, const ExecHooks& hooks = {}) {
  ParseResult r = parse_ipvsadm_args(args);
  if (!r.cmd) return ExecResult{2, "", r.error};
  return execute_command(t, *r.cmd, hooks);
}

}  // namespace

TEST(IpvsadmParse, AddServiceWithDefaults) {
  Command c = parse_ok({"-A", "-t", "10.0.0.1:80"});
  EXPECT_EQ(c.op, Op::AddService);
  EXPECT_TRUE(c.has_service);
  EXPECT_EQ(c.svc.key.proto, Proto::TCP);
  EXPECT_EQ(c.svc.key.vip.str(), "10.0.0.1:80");
  EXPECT_EQ(c.svc.scheduler, "wlc");  // ipvsadm's default
  EXPECT_FALSE(c.svc.persistent);
}

TEST(IpvsadmParse, ClusteredAndAttachedShortOptions) {
  Command c = parse_ok({"-Au", "10.0.0.1:53", "-srr", "-p"});
  EXPECT_EQ(c.op, Op::AddService);
  EXPECT_EQ(c.svc.key.proto, Proto::UDP);
  EXPECT_EQ(c.svc.scheduler, "rr");
  EXPECT_TRUE(c.svc.persistent);
  EXPECT_EQ(c.svc.timeout, 300u);  // -p without a value

  c = parse_ok({"-Ln"});
  EXPECT_EQ(c.op, Op::List);
  EXPECT_TRUE(c.list.numeric);
}

TEST(IpvsadmParse, PersistenceValueOptionalAndNetmask) {
  Command c = parse_ok({"-A", "-t", "10.0.0.1:443", "-s", "sh", "-p", "600", "-M", "255.255.255.0"});
  EXPECT_EQ(c.svc.timeout, 600u);
  EXPECT_EQ(c.svc.netmask, 0xffffff00u);
  // A following option is not taken as -p's value.
  c = parse_ok({"-A", "-t", "10.0.0.1:443", "-p", "-s", "rr"});
  EXPECT_EQ(c.svc.timeout, 300u);
  EXPECT_EQ(c.svc.scheduler, "rr");
  c = parse_ok({"--add-service", "--tcp-service=10.0.0.1:443", "--persistent=60"});
  EXPECT_EQ(c.svc.timeout, 60u);
}

TEST(IpvsadmParse, RealServerOptions) {
  Command c = parse_ok({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2:8080", "-m", "-w", "3", "-x",
                       "100", "-y", "50"});
  EXPECT_EQ(c.op, Op::AddDest);
  EXPECT_EQ(c.dest.addr.str(), "10.0.1.2:8080");
  EXPECT_EQ(c.dest.fwd, FwdMethod::Masq);
  EXPECT_EQ(c.dest.weight, 3);
  EXPECT_EQ(c.dest.u_threshold, 100u);
  EXPECT_EQ(c.dest.l_threshold, 50u);
  // No port on -r: the virtual port is used, as ipvsadm does.
  c = parse_ok({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2"});
  EXPECT_EQ(c.dest.addr.str(), "10.0.1.2:80");
  EXPECT_EQ(c.dest.weight, 1);
  // -r before -t still gets the virtual port.
  c = parse_ok({"-a", "-r", "10.0.1.2", "-t", "10.0.0.1:81"});
  EXPECT_EQ(c.dest.addr.str(), "10.0.1.2:81");
  c = parse_ok({"-e", "-t", "[fd00::1]:80", "-r", "[fd00::2]:8080", "-w", "0"});
  EXPECT_EQ(c.svc.key.vip.str(), "[fd00::1]:80");
  EXPECT_EQ(c.dest.addr.str(), "[fd00::2]:8080");
  EXPECT_EQ(c.dest.weight, 0);
  c = parse_ok({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2", "-g"});
  EXPECT_EQ(c.dest.fwd, FwdMethod::Route);
}

TEST(IpvsadmParse, SetAndDaemon) {
  Command c = parse_ok({"--set", "10", "5", "3"});
  EXPECT_EQ(c.op, Op::SetTimeouts);
  EXPECT_EQ(c.timeouts.tcp, 10u);
  EXPECT_EQ(c.timeouts.tcpfin, 5u);
  EXPECT_EQ(c.timeouts.udp, 3u);
  c = parse_ok({"--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "7"});
  EXPECT_EQ(c.op, Op::StartDaemon);
  EXPECT_EQ(c.daemon_state, "master");
  EXPECT_EQ(c.mcast_interface, "eth1");
  EXPECT_EQ(c.syncid, 7);
  c = parse_ok({"--start-daemon=backup"});
  EXPECT_EQ(c.daemon_state, "backup");
  c = parse_ok({});
  EXPECT_EQ(c.op, Op::List);  // bare ipvsadm lists the table
  c = parse_ok({"-L", "-n", "--socket", "/tmp/x.sock"});
  EXPECT_EQ(parse_ipvsadm_args({"-L", "--socket", "/tmp/x.sock"}).socket_path, "/tmp/x.sock");
}

TEST(IpvsadmParse, ErrorsUseIpvsadmMessages) {
  int code = 0;
  EXPECT_EQ(parse_err({"-A"}, &code),
            "You need to supply the 'service-address' option for the 'add-service' command");
  EXPECT_EQ(code, 2);
  EXPECT_EQ(parse_err({"-A", "-t", "10.0.0.1:80", "-w", "2"}),
            "Illegal 'weight' option with the 'add-service' command");
  EXPECT_EQ(parse_err({"-a", "-t", "10.0.0.1:80"}),
            "You need to supply the 'real-server' option for the 'add-server' command");
  EXPECT_EQ(parse_err({"-A", "-D", "-t", "10.0.0.1:80"}), "multiple commands specified");
  EXPECT_EQ(parse_err({"-A", "-t", "10.0.0.1:80", "-s", "rr", "-s", "wrr"}),
            "multiple 'scheduler' options specified");
  EXPECT_EQ(parse_err({"-A", "-t", "300.0.0.1:80"}), "illegal virtual server address[:port] specified");
  EXPECT_EQ(parse_err({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1:99999"}),
            "illegal real server address[:port] specified");
  EXPECT_EQ(parse_err({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1", "-w", "65536"}),
            "illegal weight specified");
  EXPECT_EQ(parse_err({"-A", "-t", "10.0.0.1:80", "-p", "0"}), "invalid timeout value `0' specified");
  EXPECT_EQ(parse_err({"--set", "1", "2"}), "--set option requires 3 timeout values");
  EXPECT_EQ(parse_err({"-C", "extra"}), "unexpected argument extra");
  EXPECT_EQ(parse_err({"-A", "-t", "10.0.0.1"}), "Zero port specified for non-persistent service");
  EXPECT_EQ(parse_err({"-L", "-c", "--timeout"}),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command");
  EXPECT_EQ(parse_err({"--start-daemon", "primary"}), "illegal start-daemon parameter specified");
  EXPECT_NE(parse_err({"-A", "-f", "1"}).find("need kernel IPVS"), std::string::npos);
  parse_err({"--bogus"}, &code);
  EXPECT_EQ(code, 255);
  parse_err({"-n"}, &code);  // no command: "Try -h"
  EXPECT_EQ(code, 255);
}

TEST(IpvsadmParse, SaveLines) {
  ParseResult r = parse_save_line("  # a comment");
  ASSERT_TRUE(r.cmd);
  EXPECT_EQ(r.cmd->op, Op::None);
  r = parse_save_line("-A -t 10.0.0.1:80 -s rr  # trailing comment");
  ASSERT_TRUE(r.cmd);
  EXPECT_EQ(r.cmd->svc.scheduler, "rr");
  r = parse_save_line("-R");
  EXPECT_FALSE(r.cmd);
}

TEST(IpvsadmParse, JsonRoundTrip) {
  Command c = parse_ok({"-a", "-u", "[fd00::1]:53", "-r", "[fd00::2]:5353", "-w", "4", "-x", "9"});
  Command d = command_from_json(nlohmann::json::parse(command_to_json(c).dump()));
  EXPECT_EQ(d.op, c.op);
  EXPECT_EQ(d.svc.key, c.svc.key);
  EXPECT_EQ(d.dest.addr, c.dest.addr);
  EXPECT_EQ(d.dest.weight, 4);
  EXPECT_EQ(d.dest.u_threshold, 9u);
  EXPECT_THROW(command_from_json(nlohmann::json{{"op", "explode"}}), LbError);
  EXPECT_THROW(command_from_json(nlohmann::json{{"op", "add-service"},
                                              {"service", {{"proto", "TCP"}, {"vip", "nope"}}}}),
               LbError);
}

TEST(IpvsadmOutput, ListLayoutIsIpvsadms) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "192.168.1.100:80", "-s", "rr"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "192.168.1.100:80", "-r", "192.168.1.102:80", "-m"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "192.168.1.100:80", "-r", "192.168.1.101:80", "-m", "-w", "3"}).rc, 0);
  ASSERT_EQ(exec(t, {"-A", "-u", "10.0.0.1:53", "-s", "sh", "-p", "60", "-M", "255.255.255.0"}).rc, 0);
  ExecResult r = exec(t, {"-L", "-n"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            "TCP  192.168.1.100:80 rr\n"
            "  -> 192.168.1.101:80             Masq    3      0          0         \n"
            "  -> 192.168.1.102:80             Masq    1      0          0         \n"
            "UDP  10.0.0.1:53 sh persistent 60 mask 255.255.255.0\n");

  r = exec(t, {"-L", "-n", "-t", "192.168.1.100:80", "--stats"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  192.168.1.100:80                    0        0        0        0        0\n"
            "  -> 192.168.1.101:80                    0        0        0        0        0\n"
            "  -> 192.168.1.102:80                    0        0        0        0        0\n");

  r = exec(t, {"-L", "-n", "--timeout"});
  EXPECT_EQ(r.out, "Timeout (tcp tcpfin udp): 900 120 300\n");
  r = exec(t, {"-L", "-n", "-t", "192.168.1.99:80"});
  EXPECT_EQ(r.rc, 255);
  EXPECT_EQ(r.err, "No such service\n");
}

TEST(IpvsadmOutput, StatsScaleAndRateColumns) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).rc, 0);
  auto svc = t.find(ServiceKey{Proto::TCP, *Endpoint::parse("10.0.0.1:80")});
  ASSERT_TRUE(svc);
  svc->stats.inbytes = 123456789012ULL;  // >= 100 billion: G
  svc->stats.outbytes = 987654321ULL;    // < 1 billion: K
  svc->stats.conns = 5;
  ExecResult r = exec(t, {"-L", "-n", "--stats"});
  EXPECT_NE(r.out.find("TCP  10.0.0.1:80                         5        0        0     123G  987654K\n"),
            std::string::npos)
      << r.out;
  r = exec(t, {"-L", "-n", "--stats", "--exact"});
  EXPECT_NE(r.out.find(" 123456789012 987654321\n"), std::string::npos) << r.out;
  r = exec(t, {"-L", "-n", "--rate"});
  EXPECT_NE(r.out.find("Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS"
                       "   OutBPS\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  -> 10.0.1.1:80                         0        0        0        0        0\n"),
            std::string::npos)
      << r.out;
}

TEST(IpvsadmOutput, ThresholdsAndPersistentConn) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80", "-p"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1", "-x", "10", "-y", "5"}).rc, 0);
  ExecResult r = exec(t, {"-L", "-n", "--thresholds"});
  EXPECT_EQ(r.out,
            "IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
            "  -> RemoteAddress:Port\n"
            "TCP  10.0.0.1:80 wlc persistent 300\n"
            "  -> 10.0.1.1:80                  10         5          0          0         \n");
  r = exec(t, {"-L", "-n", "--persistent-conn"});
  EXPECT_NE(r.out.find("Prot LocalAddress:Port            Weight    PersistConn ActiveConn "
                       "InActConn \n"),
            std::string::npos)
      << r.out;
}

TEST(IpvsadmOutput, Connections) {
  std::vector<ConnEntry> conns(2);
  conns[0].proto = Proto::TCP;
  conns[0].client = *Endpoint::parse("10.0.9.9:40000");
  conns[0].vip = *Endpoint::parse("10.0.0.1:80");
  conns[0].dest = *Endpoint::parse("10.0.1.1:80");
  conns[0].state = "ESTABLISHED";
  conns[0].expires_ms = 899000;
  conns[1] = conns[0];
  conns[1].client.port = 0;
  conns[1].state = "NONE";
  conns[1].is_template = true;
  conns[1].expires_ms = 59500;  // rounds up like the kernel's jiffies
  EXPECT_EQ(format_connections(conns, {}),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination\n"
            "TCP 14:59  ESTABLISHED 10.0.9.9:40000     10.0.0.1:80        10.0.1.1:80\n"
            "TCP 01:00  NONE        10.0.9.9:0         10.0.0.1:80        10.0.1.1:80\n");
}

TEST(IpvsadmExec, RefusesDirectRoutingAndTunnelling) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80"}).rc, 0);
  for (const char* m : {"-g", "-i"}) {
    ExecResult r = exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1", m});
    EXPECT_EQ(r.rc, 255);
    EXPECT_NE(r.err.find("needs kernel IPVS"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(t.get(ServiceKey{Proto::TCP, *Endpoint::parse("10.0.0.1:80")})->dests.empty());
}

TEST(IpvsadmExec, KernelStyleErrors) {
  ServiceTable t;
  EXPECT_EQ(exec(t, {"-D", "-t", "10.0.0.1:80"}).err, "No such service\n");
  EXPECT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).err, "Service not defined\n");
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80"}).rc, 0);
  EXPECT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80"}).err, "Service already exists\n");
  EXPECT_EQ(exec(t, {"-A", "-t", "10.0.0.2:80", "-s", "fancy"}).err,
            "Scheduler or persistence engine not found\n");
  EXPECT_EQ(exec(t, {"-d", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).err, "No such destination\n");
  ASSERT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).rc, 0);
  EXPECT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).err,
            "Destination already exists\n");
  EXPECT_EQ(exec(t, {"--start-daemon", "master"}).rc, 255);
}

TEST(IpvsadmExec, EditReplacesLikeIpvsadm) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80", "-s", "rr", "-p", "100"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1", "-w", "5"}).rc, 0);
  ASSERT_EQ(exec(t, {"-E", "-t", "10.0.0.1:80", "-s", "wrr"}).rc, 0);
  ASSERT_EQ(exec(t, {"-e", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).rc, 0);
  auto s = t.get(ServiceKey{Proto::TCP, *Endpoint::parse("10.0.0.1:80")});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cfg.scheduler, "wrr");
  EXPECT_FALSE(s->cfg.persistent);     // -E without -p: not persistent any more
  EXPECT_EQ(s->dests[0].cfg.weight, 1);  // -e without -w: weight 1
}

TEST(IpvsadmSave, RoundTripThroughRestore) {
  ServiceTable a;
  ASSERT_EQ(exec(a, {"-A", "-t", "10.0.0.1:80", "-s", "wrr"}).rc, 0);
  ASSERT_EQ(exec(a, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.2:8080", "-m", "-w", "2"}).rc, 0);
  ASSERT_EQ(exec(a, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1:8080", "-w", "0", "-x", "50"}).rc, 0);
  ASSERT_EQ(exec(a, {"-A", "-u", "[fd00::1]:53", "-s", "sh", "-p", "30", "-M", "64"}).rc, 0);
  ASSERT_EQ(exec(a, {"-a", "-u", "[fd00::1]:53", "-r", "fd00::5"}).rc, 0);
  ASSERT_EQ(exec(a, {"--set", "60", "10", "5"}).rc, 0);
  // Health quiesce is not a rule: the save keeps the configured weight.
  a.set_dest_healthy(ServiceKey{Proto::TCP, *Endpoint::parse("10.0.0.1:80")},
                   *Endpoint::parse("10.0.1.2:8080"), false);

  ExecResult save = exec(a, {"-S", "-n"});
  EXPECT_EQ(save.out,
            "-A -t 10.0.0.1:80 -s wrr\n"
            "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 0 -x 50\n"
            "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 2\n"
            "-A -u [fd00::1]:53 -s sh -p 30 -M 64\n"
            "-a -u [fd00::1]:53 -r [fd00::5]:53 -m -w 1\n");

  std::string state = save_state(a);
  ServiceTable b;
  ASSERT_TRUE(load_state(b, state).ok());
  EXPECT_EQ(save_state(b), state);
  EXPECT_EQ(b.timeouts().tcp, 60u);
  EXPECT_EQ(b.timeouts().udp, 5u);

  // The same text as a -R batch.
  ServiceTable c;
  std::vector<Command> batch;
  for (size_t pos = 0; pos < save.out.size();) {
    size_t nl = save.out.find('\n', pos);
    ParseResult p = parse_save_line(save.out.substr(pos, nl - pos));
    ASSERT_TRUE(p.cmd) << p.error;
    batch.push_back(*p.cmd);
    pos = nl + 1;
  }
  ExecResult r = execute_batch(c, batch);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(exec(c, {"-S"}).out, save.out);
}

TEST(IpvsadmSave, RestoreIsAllOrNothing) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80", "-s", "rr"}).rc, 0);
  ASSERT_EQ(exec(t, {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}).rc, 0);
  const std::string before = exec(t, {"-S"}).out;
  std::vector<Command> batch;
  for (const char* l : {"-C", "-A -t 10.0.0.9:80 -s rr", "-a -t 10.0.0.9:80 -r 10.0.1.9 -g"}) {
    ParseResult p = parse_save_line(l);
    ASSERT_TRUE(p.cmd) << p.error;
    batch.push_back(*p.cmd);
  }
  std::vector<int> lines = {1, 3, 7};
  ExecResult r = execute_batch(t, batch, {}, &lines);
  EXPECT_EQ(r.rc, 255);
  EXPECT_EQ(r.err.rfind("line 7: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("needs kernel IPVS"), std::string::npos) << r.err;
  EXPECT_EQ(exec(t, {"-S"}).out, before);
}

TEST(IpvsadmSave, LoadStateSkipsBadLinesAndKeepsEveryGoodOne) {
  ServiceTable t;
  ASSERT_EQ(exec(t, {"-A", "-t", "10.0.0.1:80"}).rc, 0);  // replaced by the file's rules
  LoadReport rep = load_state(t,
                              "-A -t 10.0.0.2:80 -s rr\n"
                              "-a -t 10.0.0.2:80 -r nonsense!\n"              // does not parse
                              "-a -t 10.0.0.2:80 -r 10.0.1.1:80 -m -w 2\n"
                              "-A -t 10.0.0.3:80 -s wlc -p 4294967295\n"     // out of range
                              "-L -n\n"                                       // not a rule
                              "\n# a comment\n"
                              "-A -t 10.0.0.2:80\n"                           // refused by the table
                              "-a -t 10.0.0.2:80 -r 10.0.1.2:80 -m -w 70000\n"
                              "-a -t 10.0.0.2:80 -r 10.0.1.3:80 -m -w 1\n"
                              "--set 60 10 5\n");
  EXPECT_EQ(rep.applied, 4u);
  EXPECT_EQ(rep.skipped, (std::vector<std::string>{
                             "line 2: illegal real server address[:port] specified",
                             "line 4: invalid timeout value `4294967295' specified",
                             "line 5: only rule commands belong in a state file",
                             "line 8: Service already exists",
                             "line 9: illegal weight specified",
                         }));
  EXPECT_EQ(save_state(t),
            "-A -t 10.0.0.2:80 -s rr\n"
            "-a -t 10.0.0.2:80 -r 10.0.1.1:80 -m -w 2\n"
            "-a -t 10.0.0.2:80 -r 10.0.1.3:80 -m -w 1\n"
            "--set 60 10 5\n");
  // The state file is written numerically: the daemon never resolves names.
  rep = load_state(t, "-A -t localhost:80\n");
  EXPECT_EQ(rep.skipped, std::vector<std::string>{"line 1: illegal virtual server address[:port] specified"});
}

// One function checks a command for both the CLI and the daemon: what the
// parser accepts passes it, and what it refuses has the parser's message.
TEST(IpvsadmCheck, ValidateCommandAgreesWithTheParser) {
  for (std::vector<std::string> ok : std::vector<std::vector<std::string>>{
           {"-A", "-t", "10.0.0.1:80", "-s", "rr", "-p", "2678400", "-M", "255.255.0.0"},
           {"-A", "-u", "[fd00::1]:53", "-p", "1", "-M", "1"},
           {"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1", "-w", "65535", "-x", "2147483647", "-y", "0"},
           {"--set", "0", "2678400", "1"},
           {"--start-daemon", "backup", "--mcast-interface", "eth0.12", "--syncid", "255"},
           {"-L", "-n", "--stats", "--exact"},
           {"-Z"}}) {
    Command c = parse_ok(ok);
    EXPECT_EQ(validate_command(c), "") << ok[0];
    // And survives the trip through the control socket's JSON form.
    EXPECT_EQ(validate_command(command_from_json(command_to_json(c))), "") << ok[0];
  }
  Command c = parse_ok({"-A", "-t", "10.0.0.1:80", "-p", "60"});
  c.svc.timeout = 4294967295u;  // what a client could send the daemon directly
  EXPECT_EQ(validate_command(c), "invalid timeout value `4294967295' specified");
  EXPECT_EQ(parse_err({"-A", "-t", "10.0.0.1:80", "-p", "4294967295"}),
            "invalid timeout value `4294967295' specified");
  c = parse_ok({"-L"});
  c.list.conns = c.list.daemon = true;
  EXPECT_EQ(validate_command(c), parse_err({"-L", "-c", "--daemon"}));
  c = parse_ok({"-C"});
  c.has_dest = true;
  EXPECT_EQ(validate_command(c), "Illegal 'real-server' option with the 'flush' command");
  EXPECT_EQ(parse_err({"--start-daemon", "master", "--mcast-interface", "a-very-long-ifname0"}),
            "multicast interface name too long");
  EXPECT_EQ(parse_err({"--start-daemon", "master", "--mcast-interface", "eth0/x"}),
            "illegal multicast interface name specified");
}

TEST(IpvsadmCheck, JsonNumbersAreReadStrictly) {
  nlohmann::json j = command_to_json(parse_ok({"-a", "-t", "10.0.0.1:80", "-r", "10.0.1.1"}));
  auto refused = [](const nlohmann::json& bad) {
    try {
      Command c = command_from_json(bad);
      return validate_command(c);
    } catch (const LbError& e) {
      return std::string(e.what());
    }
  };
  // Not converted to something that fits: 4294967297 must not become 1.
  for (nlohmann::json w : {nlohmann::json(4294967297LL), nlohmann::json(-1), nlohmann::json(2.5),
                           nlohmann::json("3"), nlohmann::json(true),
                           nlohmann::json(18446744073709551615ULL)}) {
    nlohmann::json bad = j;
    bad["dest"]["weight"] = w;
    EXPECT_EQ(refused(bad), "illegal weight specified") << w;
  }
  nlohmann::json bad = j;
  bad["dest"]["fwd"] = "-x";
  EXPECT_NE(refused(bad).find("illegal forwarding method"), std::string::npos);
  bad = j;
  bad["dest"]["addr"] = "10.0.1.1";  // the CLI always sends the port
  EXPECT_EQ(refused(bad), "illegal real server address[:port] specified");
  bad = command_to_json(parse_ok({"--set", "1", "2", "3"}));
  bad["timeouts"]["udp"] = 99999999999LL;
  EXPECT_EQ(refused(bad), "invalid timeout value `99999999999' specified");
}
