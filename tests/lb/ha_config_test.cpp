// ldirectord.cf parser: a realistic file parses into what ldirectord would
// do; every kind of mistake is an error naming the line.
#include <gtest/gtest.h>

#include "ha_test_util.h"
#include "lb/ldirectord_config.h"

using namespace vmstack::lb::ha;
using vmstack::lb::hatest::TempDir;
using vmstack::lb::hatest::write_file;

namespace {

const char* kGood = R"(# Global directives
checktimeout=3
checkinterval=1
autoreload=yes
quiescent=no
logfile="/var/log/ldirectord.log"

# A sample virtual with a fallback that overrides the global one
virtual=192.168.6.240:80
	real=192.168.6.2:80 masq
	real=192.168.6.3:80 masq 5
	real=192.168.6.4 masq 2 "/health", "alive"
	fallback=127.0.0.1:8080 masq
	service=http
	request="index.html"
	receive="Test Page"
	virtualhost=www.x.y.z
	scheduler=rr
	persistent=600
	protocol=tcp
	checktype=negotiate
	negotiatetimeout=7

virtual=[2001:db8::1]:443
        real=[2001:db8::10]:443 masq
        checktype=connect
        scheduler=wlc
        quiescent=yes
        checkinterval=2

virtual=10.0.0.1:53
	real=10.0.1.1:53 masq
	protocol=udp
	checktype=on
)";

}  // namespace

TEST(LdirectordConfig, ParsesARealisticFile) {
  LdirectordConfig c = parse_ldirectord_config(kGood, "ld.cf");

  EXPECT_DOUBLE_EQ(c.checktimeout, 3);
  EXPECT_DOUBLE_EQ(c.checkinterval, 1);
  EXPECT_TRUE(c.autoreload);
  EXPECT_FALSE(c.quiescent);
  EXPECT_EQ(c.logfile, "/var/log/ldirectord.log");
  ASSERT_EQ(c.virtuals.size(), 3u);

  const VirtualService& h = c.virtuals[0];
  EXPECT_EQ(h.key(), "tcp 192.168.6.240:80");
  ASSERT_EQ(h.reals.size(), 3u);
  EXPECT_EQ(h.reals[0].ep.str(), "192.168.6.2:80");
  EXPECT_EQ(h.reals[0].weight, 1);
  EXPECT_EQ(h.reals[1].weight, 5);
  // A real without a port inherits the virtual's.
  EXPECT_EQ(h.reals[2].ep.str(), "192.168.6.4:80");
  EXPECT_EQ(h.reals[2].weight, 2);
  EXPECT_EQ(h.reals[2].request.value_or(""), "/health");
  EXPECT_EQ(h.reals[2].receive.value_or(""), "alive");
  EXPECT_EQ(h.reals[2].line, 12);
  ASSERT_TRUE(h.fallback);
  EXPECT_EQ(h.fallback->str(), "127.0.0.1:8080");
  EXPECT_EQ(h.service, ServiceKind::Http);
  EXPECT_EQ(h.request, "index.html");
  EXPECT_EQ(h.receive, "Test Page");
  EXPECT_EQ(h.virtualhost, "www.x.y.z");
  EXPECT_EQ(h.scheduler, "rr");
  ASSERT_TRUE(h.persistent);
  EXPECT_EQ(*h.persistent, 600u);
  EXPECT_EQ(h.checktype, CheckType::Negotiate);
  EXPECT_DOUBLE_EQ(h.checkinterval, 1);  // global
  EXPECT_DOUBLE_EQ(h.checktimeout, 3);
  EXPECT_DOUBLE_EQ(h.negotiatetimeout, 7);
  EXPECT_FALSE(h.quiescent);             // global quiescent=no

  const VirtualService& v6 = c.virtuals[1];
  EXPECT_EQ(v6.key(), "tcp [2001:db8::1]:443");
  EXPECT_TRUE(v6.vip.v6);
  EXPECT_EQ(v6.checktype, CheckType::Connect);
  EXPECT_EQ(v6.scheduler, "wlc");
  EXPECT_TRUE(v6.quiescent);             // per-virtual override
  EXPECT_DOUBLE_EQ(v6.checkinterval, 2);
  EXPECT_FALSE(v6.persistent);
  EXPECT_FALSE(v6.fallback);

  const VirtualService& u = c.virtuals[2];
  EXPECT_EQ(u.key(), "udp 10.0.0.1:53");
  EXPECT_EQ(u.checktype, CheckType::On);
}

TEST(LdirectordConfig, GlobalFallbackAppliesToVirtualsWithoutOne) {
  auto c = parse_ldirectord_config(
      "fallback=127.0.0.1\nvirtual=10.0.0.1:80\n  real=10.0.0.2:80\n"
      "virtual=10.0.0.1:81\n  real=10.0.0.2:81\n  fallback=127.0.0.2:9000\n");
  ASSERT_EQ(c.virtuals.size(), 2u);
  ASSERT_TRUE(c.virtuals[0].fallback);
  EXPECT_EQ(c.virtuals[0].fallback->str(), "127.0.0.1:80");  // port-less: the virtual's port
  EXPECT_EQ(c.virtuals[1].fallback->str(), "127.0.0.2:9000");
}

TEST(LdirectordConfig, GlobalFallbackOfOtherFamilyIsAnError) {
  // A global v4 fallback cannot serve the v6 virtual: reported at its line.
  std::string text = std::string("fallback=127.0.0.1:80\n") + kGood;
  try {
    parse_ldirectord_config(text, "ld.cf");
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), 25);
    EXPECT_NE(std::string(e.what()).find("different address family"), std::string::npos) << e.what();
  }
}

TEST(LdirectordConfig, DefaultsFollowLdirectord) {
  auto c = parse_ldirectord_config("virtual=10.0.0.1:80\n  real=10.0.0.2:80\n");
  ASSERT_EQ(c.virtuals.size(), 1u);
  const auto& v = c.virtuals[0];
  EXPECT_DOUBLE_EQ(v.checkinterval, 10);
  EXPECT_DOUBLE_EQ(v.checktimeout, 5);
  EXPECT_DOUBLE_EQ(v.negotiatetimeout, 30);
  EXPECT_TRUE(v.quiescent);  // ldirectord's default is quiescent=yes
  EXPECT_EQ(v.checktype, CheckType::Negotiate);
  EXPECT_EQ(v.service, ServiceKind::Http);  // negotiate with no service: http
  EXPECT_EQ(v.scheduler, "wrr");
  EXPECT_EQ(v.protocol, Protocol::Tcp);
  EXPECT_FALSE(c.autoreload);
  EXPECT_EQ(v.reals[0].weight, 1);
}

TEST(LdirectordConfig, IgnoredKeysWarnButLoad) {
  auto c = parse_ldirectord_config("emailalert=root@localhost\nvirtual=10.0.0.1:80\n  real=10.0.0.2:80\n", "x.cf");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("x.cf:1:"), std::string::npos) << c.warnings[0];
  EXPECT_NE(c.warnings[0].find("emailalert"), std::string::npos);
}

TEST(LdirectordConfig, CommentsQuotesAndCrlf) {
  auto c = parse_ldirectord_config(
      "virtual=10.0.0.1:80\r\n  real=10.0.0.2:80 masq # trailing comment\r\n"
      "  receive=\"a # not a comment\"\r\n  checktype=negotiate\r\n");
  ASSERT_EQ(c.virtuals.size(), 1u);
  EXPECT_EQ(c.virtuals[0].receive, "a # not a comment");
  EXPECT_EQ(c.virtuals[0].reals.size(), 1u);
}

struct BadCase {
  const char* name;
  const char* text;
  int line;
  const char* needle;
};

class LdirectordBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(LdirectordBad, ErrorNamesTheLine) {
  const BadCase& b = GetParam();
  try {
    parse_ldirectord_config(b.text, "bad.cf");
    FAIL() << b.name << ": parsed but should not";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), b.line) << e.what();
    std::string what = e.what();
    EXPECT_EQ(what.rfind("bad.cf:" + std::to_string(b.line) + ": ", 0), 0u) << what;
    EXPECT_NE(what.find(b.needle), std::string::npos) << "'" << what << "' lacks '" << b.needle << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LdirectordBad,
    ::testing::Values(
        BadCase{"unknown_global", "checkinterval=1\nfrobnicate=yes\n", 2, "unknown global key 'frobnicate'"},
        BadCase{"unknown_virtual_key", "virtual=1.2.3.4:80\n  real=1.2.3.5:80\n  colour=blue\n", 3,
                "unknown key 'colour'"},
        BadCase{"no_equals", "virtual=1.2.3.4:80\n  real 1.2.3.5:80\n", 2, "expected key=value"},
        BadCase{"indented_outside", "  real=1.2.3.5:80\n", 1, "outside a virtual= block"},
        BadCase{"real_unindented", "virtual=1.2.3.4:80\nreal=1.2.3.5:80\n", 2, "only valid inside a virtual="},
        BadCase{"bad_vip", "virtual=1.2.3:80\n", 1, "invalid address '1.2.3:80'"},
        BadCase{"fwmark", "virtual=42\n", 1, "firewall-mark"},
        BadCase{"bad_port", "virtual=1.2.3.4:99999\n", 1, "invalid address"},
        BadCase{"gate", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 gate\n", 2, "needs kernel IPVS"},
        BadCase{"ipip", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 ipip 3\n", 2, "needs kernel IPVS"},
        BadCase{"bad_method", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 tunnel\n", 2, "unknown forwarding method"},
        BadCase{"bad_weight", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 masq heavy\n", 2, "expected an integer"},
        BadCase{"neg_weight", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 masq -1\n", 2, "expected an integer"},
        BadCase{"dup_real", "virtual=1.2.3.4:80\n  real=1.2.3.5:80\n  real=1.2.3.5:80 masq 2\n", 3,
                "listed twice (first on line 2)"},
        BadCase{"real_range", "virtual=1.2.3.4:80\n  real=1.2.3.5->1.2.3.9:80\n", 2, "ranges"},
        BadCase{"request_without_receive", "virtual=1.2.3.4:80\n  real=1.2.3.5:80 masq 1 \"/x\"\n", 2,
                "followed by a quoted receive"},
        BadCase{"unterminated", "virtual=1.2.3.4:80\n  receive=\"abc\n", 2, "unterminated quoted string"},
        BadCase{"bad_checktype", "virtual=1.2.3.4:80\n  checktype=ping\n", 2, "unsupported check type 'ping'"},
        BadCase{"bad_service", "virtual=1.2.3.4:80\n  service=gopher\n", 2, "unsupported service 'gopher'"},
        BadCase{"bad_scheduler", "virtual=1.2.3.4:80\n  scheduler=mh\n", 2, "unknown scheduler 'mh'"},
        BadCase{"bad_protocol", "virtual=1.2.3.4:80\n  protocol=sctp\n", 2, "expected tcp or udp"},
        BadCase{"fwm_protocol", "virtual=1.2.3.4:80\n  protocol=fwm\n", 2, "firewall marks"},
        BadCase{"bad_interval", "checkinterval=soon\n", 1, "positive number of seconds"},
        BadCase{"zero_interval", "virtual=1.2.3.4:80\n  checkinterval=0\n", 2, "positive number of seconds"},
        BadCase{"bad_timeout", "checktimeout=-3\n", 1, "positive number of seconds"},
        BadCase{"bad_quiescent", "quiescent=maybe\n", 1, "expected yes or no"},
        BadCase{"bad_autoreload", "autoreload=1\n", 1, "expected yes or no"},
        BadCase{"indented_autoreload", "virtual=1.2.3.4:80\n  autoreload=yes\n", 2, "global key"},
        BadCase{"bad_persistent", "virtual=1.2.3.4:80\n  persistent=forever\n", 2, "expected an integer"},
        BadCase{"bad_fallback", "fallback=localhost:80\n", 1, "fallback: invalid address"},
        BadCase{"dup_virtual", "virtual=1.2.3.4:80\n  real=1.2.3.5:80\nvirtual=1.2.3.4:80\n", 3,
                "defined twice (first on line 1)"},
        BadCase{"family_mix", "virtual=1.2.3.4:80\n  real=[::1]:80\n", 2, "address family"},
        BadCase{"udp_connect", "virtual=1.2.3.4:53\n  real=1.2.3.5:53\n  protocol=udp\n  checktype=connect\n", 1,
                "need checkport="},
        BadCase{"httpmethod", "virtual=1.2.3.4:80\n  httpmethod=POST\n", 2, "expected GET or HEAD"}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

TEST(LdirectordConfig, LoadFileAndUnreadableFile) {
  TempDir d;
  write_file(d.file("ok.cf"), "virtual=10.0.0.1:80\n  real=10.0.0.2:80\n");
  auto c = load_ldirectord_config(d.file("ok.cf"));
  EXPECT_EQ(c.virtuals.size(), 1u);

  write_file(d.file("bad.cf"), "virtual=10.0.0.1:80\n  real=10.0.0.2:80\n  checktype=sometimes\n");
  try {
    load_ldirectord_config(d.file("bad.cf"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(std::string(e.what()).rfind(d.file("bad.cf") + ":3: ", 0), 0u) << e.what();
  }
  try {
    load_ldirectord_config(d.file("missing.cf"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line(), 0);
    EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos);
  }
}

TEST(LdirectordConfig, HostPortParsing) {
  EXPECT_EQ(parse_hostport("10.1.2.3:8080")->str(), "10.1.2.3:8080");
  EXPECT_EQ(parse_hostport("[::1]:80")->str(), "[::1]:80");
  EXPECT_EQ(parse_hostport("[2001:DB8::1]:80")->addr, "2001:db8::1");  // canonical form
  EXPECT_FALSE(parse_hostport("10.1.2.3"));
  EXPECT_EQ(parse_hostport("10.1.2.3", true)->port, 0);
  EXPECT_FALSE(parse_hostport("10.1.2.3:0"));
  EXPECT_FALSE(parse_hostport("10.1.2.3:65536"));
  EXPECT_FALSE(parse_hostport("10.1.2.3:"));
  EXPECT_FALSE(parse_hostport("[::1]80"));
  EXPECT_FALSE(parse_hostport("example.com:80"));
}
