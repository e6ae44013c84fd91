// xe's command-line parsing: key=value pairs, switches, global options.
#include <gtest/gtest.h>

#include "cli/args.h"
#include "cli/session.h"
#include "cli/xe_errors.h"

using namespace vmstack::cli;

TEST(Args, CommandParamsAndSwitchesKeepTheirOrder) {
  auto a = parse_args({"vm-param-set", "uuid=u1", "name-label=a=b", "other-config:k=v", "--force", "name-description="});
  EXPECT_EQ(a.command, "vm-param-set");
  ASSERT_EQ(a.params.size(), 5u);
  EXPECT_EQ(a.params[0], (std::pair<std::string, std::string>{"uuid", "u1"}));
  // Only the first '=' separates: values may contain '='.
  EXPECT_EQ(a.params[1], (std::pair<std::string, std::string>{"name-label", "a=b"}));
  EXPECT_EQ(a.params[2], (std::pair<std::string, std::string>{"other-config:k", "v"}));
  EXPECT_EQ(a.params[3], (std::pair<std::string, std::string>{"force", "true"}));
  EXPECT_EQ(a.params[4], (std::pair<std::string, std::string>{"name-description", ""}));
  EXPECT_TRUE(a.flag("force"));
  EXPECT_FALSE(a.flag("multiple"));
  EXPECT_EQ(a.get_or("missing", "dflt"), "dflt");
}

TEST(Args, GlobalOptionsGoToTheConnection) {
  auto a = parse_args({"-s", "10.0.0.1", "-p", "8081", "-u", "alice", "-pw", "pw", "vm-list", "--minimal"});
  EXPECT_EQ(a.command, "vm-list");
  EXPECT_EQ(a.conn.server, "10.0.0.1");
  EXPECT_EQ(a.conn.port, 8081);
  EXPECT_EQ(a.conn.username, "alice");
  EXPECT_EQ(a.conn.password, "pw");
  EXPECT_TRUE(a.conn.have_password);
  EXPECT_TRUE(a.flag("minimal"));
  // The key=value spelling of the same options (newcli accepts both).
  auto b = parse_args({"vm-list", "server=h", "port=9", "username=u", "password=p"});
  EXPECT_EQ(b.conn.server, "h");
  EXPECT_EQ(b.conn.port, 9);
  EXPECT_TRUE(b.params.empty());
  EXPECT_EQ(parse_args({"-h", "old-style", "vm-list"}).conn.server, "old-style");
}

// -s is HTTPS on 443 as with xapi's xe; --nossl is plain HTTP on 80; cafile=
// names what to trust. None of it reaches the command's parameters.
TEST(Args, ServerIsHttpsUnlessNossl) {
  auto a = parse_args({"-s", "h", "cafile=/etc/ca.pem", "vm-list"});
  EXPECT_TRUE(a.params.empty());
  auto ep = endpoint_for(a.conn, nullptr);
  EXPECT_TRUE(ep.tls);
  EXPECT_EQ(ep.port, 443);
  EXPECT_EQ(ep.ca_file, "/etc/ca.pem");
  EXPECT_EQ(ep.host, "h");
  auto p = endpoint_for(parse_args({"-s", "h", "--nossl", "vm-list"}).conn, nullptr);
  EXPECT_FALSE(p.tls);
  EXPECT_EQ(p.port, 80);
  auto q = endpoint_for(parse_args({"-s", "[::1]", "-p", "8443", "vm-list"}).conn, nullptr);
  EXPECT_TRUE(q.tls);
  EXPECT_EQ(q.host, "::1");
  EXPECT_EQ(q.port, 8443);
  auto local = endpoint_for(parse_args({"vm-list"}).conn, "/run/x.sock");
  EXPECT_FALSE(local.tls);
  EXPECT_EQ(local.unix_path, "/run/x.sock");
}

TEST(Args, LastOccurrenceWins) {
  auto a = parse_args({"vm-list", "power-state=halted", "power-state=running"});
  EXPECT_EQ(*a.get("power-state"), "running");
}

TEST(Args, HelpTakesBareCommandNames) {
  auto a = parse_args({"help", "vm-start", "vm-list"});
  EXPECT_EQ(a.command, "help");
  ASSERT_EQ(a.params.size(), 2u);
  EXPECT_EQ(a.params[0].second, "vm-start");
  EXPECT_EQ(a.params[1].second, "vm-list");
}

TEST(Args, SyntaxErrorsUseXeText) {
  try {
    parse_args({"vm-list", "stray"});
    FAIL() << "accepted a stray word";
  } catch (const CliError& e) {
    EXPECT_EQ(e.text(), "Syntax error: stray\nFor usage run: 'xe help'");
  }
  EXPECT_THROW(parse_args({"vm-list", "=x"}), CliError);
  EXPECT_THROW(parse_args({"-s"}), CliError);
  EXPECT_THROW(parse_args({"-p", "99999", "vm-list"}), CliError);
  EXPECT_THROW(parse_args({"-p", "12ab", "vm-list"}), CliError);
}

TEST(Args, BadBooleanIsAnError) {
  auto a = parse_args({"vm-start", "paused=maybe"});
  try {
    a.flag("paused");
    FAIL();
  } catch (const CliError& e) {
    EXPECT_EQ(e.text(), "Error: Failed to parse parameter 'paused': expecting a boolean (true or false)");
  }
  EXPECT_TRUE(parse_args({"vm-start", "paused=YES"}).flag("paused"));
  EXPECT_FALSE(parse_args({"vm-start", "paused=off"}).flag("paused"));
}

TEST(Args, RcFileIsBelowTheCommandLine) {
  auto a = parse_args({"-u", "cmdline-user", "vm-list"});
  ConnOptions from_cmdline = a.conn;
  apply_rc_file("# comment\nserver=rc-host\nusername=rc-user\npassword=rc-pw\nport=notanumber\n", a.conn,
                from_cmdline);
  EXPECT_EQ(a.conn.server, "rc-host");         // not on the command line: from ~/.xe
  EXPECT_EQ(a.conn.username, "cmdline-user");  // the command line wins
  EXPECT_EQ(a.conn.password, "rc-pw");
  EXPECT_EQ(a.conn.port, 0);  // a bad port in ~/.xe is ignored
}
