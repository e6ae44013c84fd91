// End to end, as an operator works: the real vmstackd binary in a temp state
// dir, driven only through the real `xe` binary, booting the real guest.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <poll.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <thread>

#include "core/process.h"
#include "free_port.h"
#include "guest_guard.h"
#include "vmstackd_process.h"

namespace vmstack::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
const std::string kBin = VMSTACK_BIN_DIR;
const std::string kMarker = "vmstack-guest: init reached";

class XeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
    port_ = free_tcp_port();
    ASSERT_GT(port_, 0);
    start_daemon();
  }

  void start_daemon() { ASSERT_EQ(d_.start({}, port_), ""); }
  CommandResult xe(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s) {
    return d_.xe(std::move(args), timeout);
  }
  std::string ok(std::vector<std::string> args) {
    auto r = xe(args);
    EXPECT_TRUE(r.ok()) << format_argv(args) << " exit " << r.exit_code << "\n" << r.out << r.err;
    return trim_output(r.out);
  }
  // param-get/-set take uuid= only, as xe's do.
  std::string power(const std::string& uuid) { return ok({"vm-param-get", "uuid=" + uuid, "param-name=power-state"}); }

  // `xe console` until the marker shows (`boots` times), then hang up.
  bool console_shows_marker(const std::string& vm, int boots = 1) {
    SpawnOptions o;
    o.env_overrides["VMSTACK_SOCKET"] = d_.state_dir() + "/xapi.sock";
    o.stdout_mode = SpawnOptions::Output::pipe;
    auto p = Subprocess::spawn({kBin + "/xe", "console", "vm=" + vm}, o);
    std::string got;
    auto end = std::chrono::steady_clock::now() + 60s;
    char buf[4096];
    int fd = p.stdout_pipe().get();
    auto count = [&] {
      int n = 0;
      for (auto pos = got.find(kMarker); pos != std::string::npos; pos = got.find(kMarker, pos + 1)) ++n;
      return n;
    };
    while (count() < boots && std::chrono::steady_clock::now() < end) {
      pollfd pf{fd, POLLIN, 0};
      if (::poll(&pf, 1, 200) <= 0) continue;
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    p.kill(SIGTERM);
    p.wait_for(5s);
    return count() >= boots;
  }

  VmstackdProcess d_;
  int port_ = 0;
};

TEST_F(XeE2E, InstallStartConsolePauseShutdownRestartDestroy) {
  auto uuid = ok({"vm-install", "template=Demo Linux (direct kernel boot)", "new-name-label=e2e"});
  ASSERT_EQ(uuid.size(), 36u) << uuid;
  EXPECT_EQ(ok({"vm-list", "name-label=e2e", "--minimal"}), uuid);
  EXPECT_EQ(power(uuid), "halted");
  EXPECT_NE(ok({"vbd-list", "vm-uuid=" + uuid, "--minimal"}), "") << "vm-install provisioned a disk";

  ok({"vm-start", "vm=e2e"});
  EXPECT_EQ(power(uuid), "running");
  ASSERT_TRUE(console_shows_marker("e2e")) << "init marker not seen through xe console";

  ok({"vm-pause", "vm=e2e"});
  EXPECT_EQ(power(uuid), "paused");
  ok({"vm-unpause", "vm=e2e"});
  EXPECT_EQ(power(uuid), "running");

  // A second start is refused with xe's power-state error and exit code 1.
  auto again = xe({"vm-start", "vm=e2e"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE((again.out + again.err).find("halted"), std::string::npos) << again.out << again.err;
  EXPECT_NE((again.out + again.err).find("running"), std::string::npos) << again.out << again.err;

  ok({"vm-shutdown", "vm=e2e"});
  EXPECT_EQ(power(uuid), "halted");
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=other-config", "param-key=last_shutdown_reason"}), "clean shutdown");

  // Restart the daemon (TERM, then kill -9) while the guest runs.
  ok({"vm-start", "vm=e2e"});
  auto domid = ok({"vm-param-get", "uuid=" + uuid, "param-name=domid"});
  ASSERT_TRUE(d_.stop(SIGTERM));
  start_daemon();
  EXPECT_EQ(power(uuid), "running");
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=domid"}), domid);
  ASSERT_TRUE(d_.stop(SIGKILL));
  start_daemon();
  EXPECT_EQ(power(uuid), "running");
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=domid"}), domid);
  EXPECT_EQ(::kill(std::stoi(domid), 0), 0) << "the guest's QEMU survived both restarts";
  ASSERT_TRUE(console_shows_marker("e2e"));

  ok({"vm-shutdown", "vm=e2e", "--force"});
  EXPECT_EQ(power(uuid), "halted");
  ok({"vm-destroy", "uuid=" + uuid});
  EXPECT_EQ(ok({"vm-list", "name-label=e2e", "--minimal"}), "");
}

TEST_F(XeE2E, WrongPasswordAndBadInputAreRefused) {
  auto port = std::to_string(port_);
  auto bad = xe({"-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", "wrong", "vm-list"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE((bad.out + bad.err).find("uthentication"), std::string::npos) << bad.out << bad.err;
  auto good = xe({"-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", "e2e-secret", "template-list", "--minimal"});
  EXPECT_TRUE(good.ok()) << good.err;
  EXPECT_EQ(std::count(good.out.begin(), good.out.end(), ','), 1) << "two built-in templates: " << good.out;

  auto none = xe({"vm-start", "vm=no-such-vm"});
  EXPECT_EQ(none.exit_code, 1);
  auto unknown = xe({"vm-frobnicate"});
  EXPECT_NE(unknown.exit_code, 0);
  auto mem = xe({"vm-install", "template=Demo Linux (direct kernel boot)", "new-name-label=m"});
  ASSERT_TRUE(mem.ok()) << mem.err;
  auto uuid = trim_output(mem.out);
  auto viol = xe({"vm-memory-limits-set", "vm=m", "static-min=64MiB", "static-max=128MiB", "dynamic-min=256MiB",
                  "dynamic-max=256MiB"});
  EXPECT_EQ(viol.exit_code, 1);
  EXPECT_NE((viol.out + viol.err).find("static_min <= dynamic_min"), std::string::npos) << viol.out << viol.err;
  ok({"vm-memory-limits-set", "vm=m", "static-min=64MiB", "static-max=512MiB", "dynamic-min=128MiB", "dynamic-max=384MiB"});
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=memory-dynamic-max"}), std::to_string(384LL << 20));
  ok({"vm-param-set", "uuid=" + uuid, "other-config:owner=e2e", "name-description=made by the e2e test"});
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=other-config", "param-key=owner"}), "e2e");
  EXPECT_EQ(ok({"vm-param-get", "uuid=" + uuid, "param-name=name-description"}), "made by the e2e test");
}

}  // namespace
}  // namespace vmstack::test
