// xe's thin CLI (POST /cli, xapi's protocol): the bytes on the wire as
// xapi's cli_protocol.ml lays them out, the same output as when xe makes the
// calls itself, the daemon's refusals, the fallback to a daemon without
// /cli, and the caller's identity carried into the daemon.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "cli/thin_client.h"
#include "cli/thin_protocol.h"
#include "cli/thin_server.h"
#include "core/fd.h"
#include "xe_runner.h"

using namespace vmstack;
using namespace vmstack::cli;
using namespace vmstack::cli::testing;

namespace {

std::string le(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// xe making its own calls over the socket (the path before /cli, and the
// fallback), for comparison.
XeResult run_local(const TestDaemon& d, const std::vector<std::string>& argv) {
  std::ostringstream out, err;
  std::istringstream in;
  Io io{out, err, in, -1, -1};
  api::Endpoint ep{d.socket_path(), "", 0, false};
  ClientRpc rpc(ep);
  XeResult r;
  r.rc = run_with(argv, rpc, &ep, io);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// Runs serve_thin_cli over a socketpair as `peer_uid`, with a client that
// sends `greeting` and collects every message until Exit or EOF.
struct RawRun {
  std::vector<thin::Message> messages;
  std::string first_bytes;  // what the daemon sent before any message
};
RawRun raw_serve(TestDaemon& d, const std::string& body, int peer_uid, const std::string& greeting) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd server_fd(sv[0]), client_fd(sv[1]);
  api::PostRequest rq{"/cli", body, peer_uid, peer_uid < 0 ? "192.0.2.7:4000" : "unix"};
  std::thread server([&] {
    serve_thin_cli(rq, server_fd.get(), [&d](const api::RpcCall& c) { return d.call(c); });
    ::shutdown(server_fd.get(), SHUT_RDWR);
  });
  RawRun r;
  thin::read_exact(client_fd.get(), r.first_bytes, std::string(thin::kPrefix).size() + 8);
  thin::write_all(client_fd.get(), greeting);
  while (auto m = thin::read_message(client_fd.get())) {
    r.messages.push_back(*m);
    if (m->tag == thin::Tag::exit) break;
  }
  server.join();
  return r;
}

std::string stderr_of(const RawRun& r) {
  std::string s;
  for (const auto& m : r.messages)
    if (m.tag == thin::Tag::print_stderr) s += m.strings[0];
  return s;
}

int exit_of(const RawRun& r) {
  for (const auto& m : r.messages)
    if (m.tag == thin::Tag::exit) return m.number;
  return -1;
}

}  // namespace

// The layout of cli_protocol.ml: every message is a 32-bit little-endian
// length, then Command(9) / Response(10) / Blob(11) and the inner tag.
TEST(ThinProtocol, BytesAsXapiLaysThemOut) {
  EXPECT_EQ(thin::greeting(), std::string("XenSource thin CLI protocol") + le(0) + le(2));
  EXPECT_EQ(thin::print("ab"), le(14) + le(9) + le(0) + le(2) + "ab");
  EXPECT_EQ(thin::print_stderr("x\n"), le(14) + le(9) + le(16) + le(2) + "x\n");
  EXPECT_EQ(thin::exit_with(1), le(12) + le(9) + le(4) + le(1));
  EXPECT_EQ(thin::response(thin::Tag::failed), le(8) + le(10) + le(6));
  EXPECT_EQ(thin::blob_chunk("yes"), le(12) + le(11) + le(7) + le(3) + "yes");
  EXPECT_EQ(thin::blob_end(), le(8) + le(11) + le(8));

  // Error(code, params) as the daemon of xapi sends it for unknown codes.
  auto e = thin::decode(le(9) + le(14) + le(4) + "CODE" + le(2) + le(1) + "a" + le(2) + "bc");
  EXPECT_EQ(e.tag, thin::Tag::error);
  EXPECT_EQ(e.strings, (std::vector<std::string>{"CODE", "a", "bc"}));
  EXPECT_EQ(thin::decode(le(9) + le(4) + le(3)).number, 3);
  EXPECT_THROW(thin::decode(le(9) + le(0) + le(50) + "short"), std::runtime_error);
  EXPECT_THROW(thin::decode(le(9) + le(99)), std::runtime_error);
  EXPECT_THROW(thin::decode(le(12)), std::runtime_error);

  EXPECT_EQ(thin::parse_greeting(thin::greeting()), std::make_pair(0, 2));
  EXPECT_FALSE(thin::parse_greeting("HTTP/1.1 404 Not Found\r\nContent-Le"));
}

TEST(ThinProtocol, CommandLineCarriesParamsAndCredentialsNotConnOptions) {
  Args a = parse_args({"-s", "h", "-u", "alice", "-pw", "pw", "vm-list", "--minimal", "other-config:k=a=b"});
  Credentials c{"alice", "pw", true};
  EXPECT_EQ(thin_command_line(a, c),
            (std::vector<std::string>{"vm-list", "minimal=true", "other-config:k=a=b", "username=alice", "password=pw"}));
  // A newline cannot cross the protocol: xe runs such a command itself.
  Args nl = parse_args({"vm-param-set", "uuid=u", "name-description=two\nlines"});
  EXPECT_TRUE(thin_command_line(nl, c).empty());
}

// What xe prints must not depend on who made the calls.
TEST(ThinCli, SameOutputAsXeMakingTheCallsItself) {
  TestDaemon d;
  const std::string alpha = uuid_of(d, "VM", d.alpha);
  const std::vector<std::vector<std::string>> commands = {
      {"vm-list"},
      {"vm-list", "--minimal"},
      {"vm-list", "params=all"},
      {"vm-list", "power-state=halted", "params=name-label,uuid"},
      {"vm-list", "no-such-field=1"},
      {"vm-param-get", "uuid=" + alpha, "param-name=name-label"},
      {"vm-param-get", "uuid=" + alpha, "param-name=other-config"},
      {"vm-param-list", "uuid=" + alpha},
      {"vm-param-get", "uuid=nonesuch", "param-name=name-label"},
      {"vm-start"},
      {"vm-start", "vm=alpha", "--minimal=maybe"},
      {"host-list", "params=all"},
      {"sr-list"},
      {"vbd-list", "params=all"},
      {"template-list"},
      {"vm-disk-list", "vm=beta"},
      {"no-such-command"},
      {"vm-list", "-u", TestDaemon::kUser, "-pw", "wrong"},
      {"vm-list", "-u", TestDaemon::kUser, "-pw", TestDaemon::kPassword, "--minimal"},
  };
  for (const auto& argv : commands) {
    SCOPED_TRACE(argv.front() + (argv.size() > 1 ? " " + argv[1] : ""));
    d.clear_calls();
    XeResult thin = run_xe(d, argv);
    auto thin_calls = d.calls();
    d.clear_calls();
    XeResult local = run_local(d, argv);
    EXPECT_EQ(thin.rc, local.rc);
    EXPECT_EQ(thin.out, local.out);
    EXPECT_EQ(thin.err, local.err);
    EXPECT_EQ(thin_calls, d.calls());  // the same XenAPI calls, made in the daemon
  }
  EXPECT_EQ(d.live_sessions(), 0u);
}

TEST(ThinCli, MutationsAndExitCodesComeBack) {
  TestDaemon d;
  XeResult r = run_xe(d, {"vm-param-set", "uuid=" + uuid_of(d, "VM", d.alpha), "name-description=set via /cli"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(d.db().get_field("VM", d.alpha, "name_description").as_string(), "set via /cli");
  r = run_xe(d, {"vm-start", "vm=beta"});  // already running
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("not in an appropriate power state"), std::string::npos) << r.err;
}

TEST(ThinCli, FallsBackToItsOwnCallsWithoutCli) {
  TestDaemon old(false);  // a daemon that answers /cli with 404
  XeResult r = run_xe(old, {"vm-list", "--minimal"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find(uuid_of(old, "VM", old.alpha)), std::string::npos);
  auto calls = old.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "session.login_with_password"), calls.end());
}

TEST(ThinCli, DaemonRefusesWhatOnlyTheClientMayDo) {
  TestDaemon d;
  const std::string creds = "\nusername=root\npassword=";
  for (const auto& [body, why] : std::vector<std::pair<std::string, std::string>>{
           {"console\nvm=beta" + creds, "runs in xe on the client"},
           {"event-wait\nclass=vm" + creds, "runs in xe on the client"},
           {"vm-uninstall\nvm=alpha" + creds, "runs in xe on the client"},
           // A password file is read by the client: the daemon never opens one.
           {"vm-list\npasswordfile=/etc/shadow" + creds, "reads password files on the client"},
           {"vm-list\nserver=elsewhere" + creds, "chosen by the client"},
       }) {
    SCOPED_TRACE(body);
    d.clear_calls();
    RawRun r = raw_serve(d, body, 0, thin::greeting());
    EXPECT_EQ(thin::parse_greeting(r.first_bytes), std::make_pair(0, 2));
    EXPECT_EQ(exit_of(r), 1);
    EXPECT_NE(stderr_of(r).find(why), std::string::npos) << stderr_of(r);
    EXPECT_TRUE(d.calls().empty());
  }
  EXPECT_EQ(d.db().get_field("VM", d.alpha, "power_state").as_string(), "Halted");
}

// The calls are made as the connection's peer: local root may log in
// without a password, a TCP caller may not, whatever it claims.
TEST(ThinCli, CallerIdentityIsTheConnections) {
  TestDaemon d;
  RawRun root = raw_serve(d, "vm-list\n--minimal\nusername=root\npassword=", 0, thin::greeting());
  EXPECT_EQ(exit_of(root), 0) << stderr_of(root);
  ASSERT_FALSE(root.messages.empty());
  EXPECT_NE(root.messages.front().strings.at(0).find(uuid_of(d, "VM", d.alpha)), std::string::npos);

  RawRun remote = raw_serve(d, "vm-list\nusername=root\npassword=", -1, thin::greeting());
  EXPECT_EQ(exit_of(remote), 1);
  EXPECT_NE(stderr_of(remote).find("Authentication failed"), std::string::npos) << stderr_of(remote);

  std::string body = "vm-list\nusername=" + std::string(TestDaemon::kUser) + "\npassword=" + TestDaemon::kPassword;
  RawRun alice = raw_serve(d, body, -1, thin::greeting());
  EXPECT_EQ(exit_of(alice), 0) << stderr_of(alice);
  EXPECT_EQ(d.live_sessions(), 0u);
}

TEST(ThinCli, MismatchedClientGetsNothingRun) {
  TestDaemon d;
  std::string future = std::string(thin::kPrefix) + le(1) + le(0);
  RawRun r = raw_serve(d, "vm-param-set\nuuid=" + uuid_of(d, "VM", d.alpha) + "\nname-label=x\nusername=root\npassword=",
                       0, future);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(d.db().get_field("VM", d.alpha, "name_label").as_string(), "alpha");
  RawRun junk = raw_serve(d, "vm-list\nusername=root\npassword=", 0, "GET / HTTP/1.0\r\n\r\n012345678901234567");
  EXPECT_TRUE(junk.messages.empty());
}

// Output comes as Print messages of about kPrintChunk, cut at line ends,
// while the command runs: a listing far larger than one message arrives
// whole and the same as when xe makes the calls itself.
TEST(ThinCli, LargeOutputComesInChunksCutAtLineEnds) {
  TestDaemon d;
  for (int i = 0; i < 400; ++i)
    d.db().create("VM", {{"name_label", "bulk-" + std::to_string(i)}, {"name_description", std::string(200, 'd')}});
  RawRun r = raw_serve(d, "vm-list\nparams=all\nusername=root\npassword=", 0, thin::greeting());
  ASSERT_EQ(exit_of(r), 0) << stderr_of(r);
  std::string printed;
  std::size_t prints = 0;
  for (const auto& m : r.messages) {
    if (m.tag != thin::Tag::print) continue;
    ++prints;
    EXPECT_LT(m.strings[0].size(), thin::kPrintChunk + 4096);  // a chunk and at most one more line
    printed += m.strings[0] + "\n";                              // as xe prints it
  }
  EXPECT_GT(prints, 3u);
  XeResult local = run_local(d, {"vm-list", "params=all"});
  EXPECT_EQ(printed, local.out);
}

// No user name given is not "root" given: xe's error texts differ, and xe
// sends an empty one, as xapi's xe leaves it to the daemon.
TEST(ThinCli, NoUserNameIsNotAnExplicitRoot) {
  TestDaemon d;
  RawRun local_root = raw_serve(d, "vm-list\n--minimal\nusername=\npassword=", 0, thin::greeting());
  EXPECT_EQ(exit_of(local_root), 0) << stderr_of(local_root);
  RawRun remote = raw_serve(d, "vm-list\nusername=\npassword=", -1, thin::greeting());
  EXPECT_EQ(exit_of(remote), 1);
  EXPECT_NE(stderr_of(remote).find("Username/password must be specified"), std::string::npos) << stderr_of(remote);
  EXPECT_EQ(thin_command_line(parse_args({"vm-list"}), credentials_for(ConnOptions{}))[1], "username=");
  // A value with a carriage return, or a command line too long for /cli:
  // xe runs the command itself.
  EXPECT_TRUE(thin_command_line(parse_args({"vm-list", "name-label=a\rb"}), credentials_for(ConnOptions{})).empty());
  EXPECT_TRUE(thin_command_line(parse_args({"vm-list", "name-label=" + std::string(70000, 'x')}),
                                credentials_for(ConnOptions{}))
                  .empty());
}

// help needs no session and no file: xapi's xe sends it to the daemon.
TEST(ThinCli, HelpRunsInTheDaemonForXapisXe) {
  TestDaemon d;
  RawRun r = raw_serve(d, "help\nvm-start\nusername=root\npassword=", 0, thin::greeting());
  EXPECT_EQ(exit_of(r), 0) << stderr_of(r);
  ASSERT_FALSE(r.messages.empty());
  EXPECT_NE(r.messages.front().strings.at(0).find("vm-start"), std::string::npos);
}

namespace {

// A daemon stand-in that answers /cli with `answer` and closes.
struct FakeDaemon {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("thin-fake-" + std::to_string(::getpid()));
  std::string path = (dir / "sock").string();
  UniqueFd listener;
  std::thread t;
  explicit FakeDaemon(std::string answer) {
    std::filesystem::create_directories(dir);
    std::filesystem::remove(path);
    listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
    t = std::thread([this, answer] {
      UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char buf[4096];
      (void)!::recv(c.get(), buf, sizeof buf, 0);
      thin::write_all(c.get(), answer);
    });
  }
  ~FakeDaemon() {
    t.join();
    std::filesystem::remove_all(dir);
  }
};

}  // namespace

// Nothing ran when the daemon answers with an HTTP status (no /cli, no room
// now, body too large) or closes at once: xe runs the command itself.
TEST(ThinCli, HttpStatusOrSilenceInsteadOfTheGreetingMeansRunItHere) {
  const std::vector<std::string> lines{"vm-list", "username=", "password="};
  std::ostringstream out, err;
  std::istringstream in;
  Io io{out, err, in, -1, -1};
  for (const std::string& answer :
       {std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        std::string("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 18\r\n\r\ntoo many streams\r\n"),
        std::string("HTTP/1.1 413 Payload Too Large\r\n\r\n"), std::string()}) {
    SCOPED_TRACE(answer.substr(0, 20));
    FakeDaemon fake(answer);
    EXPECT_FALSE(run_thin(api::Endpoint{fake.path, "", 0, false}, lines, io).has_value());
  }
  // Something else: an error, not a silent second run.
  FakeDaemon junk("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
  EXPECT_THROW(run_thin(api::Endpoint{junk.path, "", 0, false}, lines, io), ApiError);
}
