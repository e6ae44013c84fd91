// xe's command-line parsing: key=value pairs, switches, global options.
#include <gtest/gtest.h>

#include "cli/args.h"
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
