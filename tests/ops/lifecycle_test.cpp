// VM lifecycle against real QEMU guests (the busybox fixture under TCG):
// start, console, pause, suspend/resume, clean shutdown/reboot, daemon
// restart with guests running, a guest killed behind our back.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/error.h"
#include "daemon_fixture.h"
#include "net/netlink.h"
#include "netns_guard.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
const std::string kMarker = "vmstack-guest: init reached";

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed: no network/apt?)";
  }
  void TearDown() override {
    // Never leave a QEMU behind, whatever failed.
    if (!c) return;
    auto all = call(*c, "VM.get_all", {s});  // named: the loop must not outlive it
    for (const auto& vm : all.as_array()) {
      auto ps = call(*c, "VM.get_power_state", {s, vm}).as_string();
      if (ps == "Running" || ps == "Paused") failure(*c, "VM.hard_shutdown", {s, vm});
    }
  }

  std::string install(const std::string& name) { return install_demo_vm(*c, s, name); }
  std::string power(const std::string& vm) { return call(*c, "VM.get_power_state", {s, vm}).as_string(); }
  std::string serial_console(const std::string& vm) {
    auto consoles = call(*c, "VM.get_consoles", {s, vm});
    for (const auto& con : consoles.as_array())
      if (call(*c, "console.get_protocol", {s, con}).as_string() == "vt100") return con.as_string();
    return {};
  }
  // Boots are ~1-4 s under TCG; allow a loaded CI machine plenty.
  // `boots`: how many times init must have run (the console log keeps all).
  bool wait_marker(const std::string& vm, int boots = 1) {
    auto out = read_console_until(d.socket(), serial_console(vm), s, kMarker, 60s, boots);
    return occurrences(out, kMarker) >= boots;
  }

  TempDir dir;
  TestDaemon d{dir.path(), 30};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);
};

TEST_F(LifecycleTest, StartConsolePauseSuspendResumeShutdown) {
  auto vm = install("life");
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(power(vm), "Running");
  auto pid = call(*c, "VM.get_domid", {s, vm}).as_int();
  EXPECT_GT(pid, 0);
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), 0) << "the recorded pid is the QEMU process";
  EXPECT_FALSE(call(*c, "VM.get_qmp_socket", {s, vm}).as_string().empty());
  ASSERT_TRUE(wait_marker(vm)) << "guest init marker never appeared on the serial console";
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false}), (std::vector<std::string>{"VM_BAD_POWER_STATE", vm, "halted", "running"}));

  call(*c, "VM.pause", {s, vm});
  EXPECT_EQ(power(vm), "Paused");
  call(*c, "VM.unpause", {s, vm});
  EXPECT_EQ(power(vm), "Running");

  call(*c, "VM.suspend", {s, vm});
  EXPECT_EQ(power(vm), "Suspended");
  auto img = call(*c, "VM.get_suspend_VDI", {s, vm}).as_string();
  EXPECT_EQ(call(*c, "VDI.get_type", {s, img}).as_string(), "suspend");
  // Beside the VM's disk, in the same SR.
  auto disk = call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, vm}).as_array().at(0)}).as_string();
  auto sr = call(*c, "VDI.get_SR", {s, disk}).as_string();
  EXPECT_EQ(call(*c, "VDI.get_SR", {s, img}).as_string(), sr);
  auto sr_dir = call(*c, "PBD.get_device_config", {s, call(*c, "SR.get_PBDs", {s, sr}).as_array().at(0)})["location"].as_string();
  auto img_path = sr_dir + "/" + call(*c, "VDI.get_location", {s, img}).as_string();
  ASSERT_TRUE(std::filesystem::exists(img_path));
  EXPECT_GT(std::filesystem::file_size(img_path), 1u << 20);
  EXPECT_EQ(call(*c, "VDI.get_virtual_size", {s, img}).as_int(), static_cast<int64_t>(std::filesystem::file_size(img_path)));
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), -1) << "QEMU is gone while suspended";

  call(*c, "VM.resume", {s, vm, false, false});
  EXPECT_EQ(power(vm), "Running");
  EXPECT_FALSE(std::filesystem::exists(img_path)) << "the image is consumed by resume";
  // The resumed guest is the same, live one: its shell answers.
  auto con = serial_console(vm);
  auto out = read_console_until(d.socket(), con, s, kMarker, 10s);
  EXPECT_NE(out.find(kMarker), std::string::npos) << "console history kept across suspend/resume";

  call(*c, "VM.clean_shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_EQ(call(*c, "VM.get_other_config", {s, vm})["last_shutdown_reason"].as_string(), "clean shutdown")
      << "the guest's acpid must have answered the power button";
  EXPECT_EQ(call(*c, "VM.get_domid", {s, vm}).as_int(), -1);
  EXPECT_TRUE(call(*c, "VM.get_consoles", {s, vm}).as_array().empty());

  // Halted: clone copies the disk, destroy removes the VM but keeps disks.
  auto twin = call(*c, "VM.clone", {s, vm, "life-twin"}).as_string();
  auto twin_disk = call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, twin}).as_array().at(0)}).as_string();
  EXPECT_NE(twin_disk, disk);
  call(*c, "VM.destroy", {s, twin});
  EXPECT_EQ(failure(*c, "VM.get_record", {s, twin}), (std::vector<std::string>{"HANDLE_INVALID", "VM", twin}));
  EXPECT_TRUE(call(*c, "VDI.get_SR", {s, twin_disk}).is_string());
}

TEST_F(LifecycleTest, GuestsSurviveADaemonRestartAndDeadOnesAreMarkedHalted) {
  auto keep = install("keep");
  auto lost = install("lost");
  call(*c, "VM.start", {s, keep, false, false});
  call(*c, "VM.start", {s, lost, true, false});  // start paused
  EXPECT_EQ(power(lost), "Paused");
  auto keep_pid = call(*c, "VM.get_domid", {s, keep}).as_int();
  auto lost_pid = call(*c, "VM.get_domid", {s, lost}).as_int();

  c.reset();
  d.restart();  // like a restart of vmstackd: Domains dropped, QEMUs left running
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(power(keep), "Running");
  EXPECT_EQ(call(*c, "VM.get_domid", {s, keep}).as_int(), keep_pid);
  EXPECT_EQ(power(lost), "Paused");

  // A guest killed while the daemon is down is found Halted, with the reason.
  c.reset();
  d.restart();
  ::kill(static_cast<pid_t>(lost_pid), SIGKILL);
  c = d.client();
  s = d.login(*c);
  // Either the re-attach saw it dead, or its monitor saw it die just after.
  for (int i = 0; i < 100 && power(lost) != "Halted"; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(power(lost), "Halted");
  EXPECT_FALSE(call(*c, "VM.get_other_config", {s, lost})["last_shutdown_reason"].as_string().empty());

  // The re-attached guest is fully controllable.
  ASSERT_TRUE(wait_marker(keep));
  call(*c, "VM.pause", {s, keep});
  call(*c, "VM.unpause", {s, keep});
  call(*c, "VM.hard_shutdown", {s, keep});
  EXPECT_EQ(power(keep), "Halted");
  for (int i = 0; i < 100 && ::kill(static_cast<pid_t>(keep_pid), 0) == 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(::kill(static_cast<pid_t>(keep_pid), 0), -1);
}

TEST_F(LifecycleTest, CleanRebootBusyVmAndGuestInitiatedPowerOff) {
  auto vm = install("reboot");
  call(*c, "VM.start", {s, vm, false, false});
  ASSERT_TRUE(wait_marker(vm));
  auto pid = call(*c, "VM.get_domid", {s, vm}).as_int();
  auto t0 = std::chrono::steady_clock::now();
  call(*c, "VM.clean_reboot", {s, vm});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 25s) << "the guest answered the power button, no timeout";
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(call(*c, "VM.get_domid", {s, vm}).as_int(), pid) << "reboot in place, same QEMU";
  ASSERT_TRUE(wait_marker(vm, 2)) << "the guest booted again after the reboot";
  // Concurrent verbs on one VM: the second is refused while the first runs.
  auto t = call(*c, "Async.VM.clean_shutdown", {s, vm}).as_string();
  for (int i = 0; i < 200 && call(*c, "VM.get_current_operations", {s, vm}).as_struct().empty(); ++i)
    std::this_thread::sleep_for(10ms);
  auto busy = failure(*c, "VM.pause", {s, vm});
  for (int i = 0; i < 600 && call(*c, "task.get_status", {s, t}).as_string() == "pending"; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(call(*c, "task.get_status", {s, t}).as_string(), "success");
  EXPECT_EQ(call(*c, "VM.get_other_config", {s, vm})["last_shutdown_reason"].as_string(), "clean shutdown");
  ASSERT_FALSE(busy.empty()) << "pause during a clean shutdown must be refused";
  EXPECT_EQ(busy, (std::vector<std::string>{"OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", t}));
  EXPECT_EQ(power(vm), "Halted");

  // The guest powers itself off: actions_after_shutdown=destroy halts it.
  call(*c, "VM.start", {s, vm, false, false});
  ASSERT_TRUE(wait_marker(vm, 1));
  // The replayed log holds this boot's marker once. QEMU writes each chunk
  // to the console socket before its log file, so the log can trail what
  // wait_marker just saw by a few bytes: ask again until it has caught up.
  std::string replay;
  for (int i = 0; i < 10 && occurrences(replay, kMarker) == 0; ++i)
    replay = read_console_until(d.socket(), serial_console(vm), s, kMarker, 1s, 2);
  EXPECT_EQ(occurrences(replay, kMarker), 1) << "a fresh boot starts a fresh console log:\n" << replay;
  // Type poweroff at the guest's shell. busybox ash may swallow a line while
  // it waits for its cursor-position query's answer, so type it again until
  // the guest goes (bounded).
  for (int i = 0; i < 15 && power(vm) != "Halted"; ++i) {
    read_console_until(d.socket(), serial_console(vm), s, "never printed", 300ms, 1, "\npoweroff\n");
    for (int j = 0; j < 20 && power(vm) != "Halted"; ++j) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_NE(call(*c, "VM.get_other_config", {s, vm})["last_shutdown_reason"].as_string().find("guest shut down"),
            std::string::npos);
}

TEST_F(LifecycleTest, HvmGuestBootsBiosWithVncAndEventsReportPowerState) {
  auto tmpl = call(*c, "VM.get_by_name_label", {s, "Other install media"}).as_array().at(0).as_string();
  auto vm = call(*c, "VM.clone", {s, tmpl, "hvm"}).as_string();
  call(*c, "VM.provision", {s, vm});
  call(*c, "VM.set_is_a_template", {s, vm, false});
  auto token = call(*c, "event.from", {s, Array{"vm"}, "", 0.1})["token"];
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(call(*c, "VM.get_domain_type", {s, vm}).as_string(), "hvm");
  // The power-state change reaches a client watching with event.from.
  bool running_event = false;
  for (int i = 0; i < 5 && !running_event; ++i) {
    auto ev = call(*c, "event.from", {s, Array{"vm"}, token, 2.0});
    token = ev["token"];
    for (const auto& e : ev["events"].as_array())
      if (e["ref"].as_string() == vm && e["snapshot"]["power_state"].as_string() == "Running") running_event = true;
  }
  EXPECT_TRUE(running_event);
  // A VNC console on a unix socket only root reaches, relayed to API
  // clients by the daemon's /console route, speaking RFB.
  std::string vnc, vnc_ref;
  auto consoles = call(*c, "VM.get_consoles", {s, vm});
  for (const auto& con : consoles.as_array())
    if (call(*c, "console.get_protocol", {s, con}).as_string() == "rfb") {
      vnc_ref = con.as_string();
      vnc = call(*c, "console.get_other_config", {s, con})["socket"].as_string();
      // Served on the daemon's unix socket only: the bare route.
      EXPECT_EQ(call(*c, "console.get_location", {s, con}).as_string(), "/console?ref=" + vnc_ref);
    }
  ASSERT_EQ(vnc.rfind("/", 0), 0u) << vnc;
  // The VNC socket is in the guest dir, its QEMU user's and private; the
  // run dir above it is root's and private.
  const auto guest_dir = std::filesystem::path(vnc).parent_path();
  EXPECT_EQ(guest_dir.filename(), "qemu");
  struct stat guest_st{}, run_st{}, qemu_st{};
  ASSERT_EQ(::lstat(guest_dir.c_str(), &guest_st), 0);
  EXPECT_EQ(guest_st.st_mode & 0777, 0700u) << "the guest dir holding the VNC socket is private";
  ASSERT_EQ(::stat(("/proc/" + std::to_string(call(*c, "VM.get_domid", {s, vm}).as_int())).c_str(), &qemu_st), 0);
  EXPECT_EQ(guest_st.st_uid, qemu_st.st_uid) << "the guest dir is its QEMU's user's";
  EXPECT_NE(qemu_st.st_uid, 0u) << "QEMU runs as a user of its own";
  ASSERT_EQ(::lstat(guest_dir.parent_path().c_str(), &run_st), 0);
  EXPECT_EQ(run_st.st_mode & 0777, 0700u);
  EXPECT_EQ(run_st.st_uid, 0u) << "the run dir is root's";
  // Opened as xapi's clients open a console: HTTP CONNECT.
  auto rfb = read_console_until(d.socket(), vnc_ref, s, "RFB 003.008", 30s, 1, {}, "CONNECT");
  EXPECT_EQ(rfb.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << rfb;
  EXPECT_NE(rfb.find("RFB 003.008\n"), std::string::npos) << rfb;
  // Balloon: a running guest's dynamic range moves its memory target.
  call(*c, "VM.set_memory_dynamic_range", {s, vm, int64_t{256} << 20, int64_t{384} << 20});
  EXPECT_EQ(call(*c, "VM.get_memory_target", {s, vm}).as_int(), int64_t{384} << 20);
  auto e = failure(*c, "VM.set_memory_static_max", {s, vm, int64_t{1} << 30});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "VM_BAD_POWER_STATE");
  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
}

}  // namespace
}  // namespace vmstack::test

namespace vmstack::test {
namespace {

// A guest with a NIC on a managed network, on real QEMU and a real Linux
// bridge, in a network namespace of the test's own (the daemon's threads
// and its QEMU are born in it): the network backend makes the bridge and
// the tap, the guest's kernel sees the NIC with the VIF's MAC and reaches
// the host through the bridge, and the tap goes with the guest.
class NetworkedGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed: no network/apt?)";
  }
  void TearDown() override {
    if (!c) return;
    auto all = call(*c, "VM.get_all", {s});
    for (const auto& vm : all.as_array())
      if (call(*c, "VM.get_power_state", {s, vm}).as_string() != "Halted") failure(*c, "VM.hard_shutdown", {s, vm});
  }

  NetnsGuard ns;  // first: everything below lives in the namespace
  TempDir dir;
  TestDaemon d{dir.path(), 30};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);
};

TEST_F(NetworkedGuestTest, GuestNicOnAManagedBridge) {
  auto net = call(*c, "network.create", {s, Struct{{"name_label", "lan"}}}).as_string();
  auto bridge = call(*c, "network.get_bridge", {s, net}).as_string();
  ASSERT_TRUE(net::link_exists(bridge));
  EXPECT_EQ(net::link_info(bridge).kind, "bridge");
  EXPECT_TRUE(net::link_info(bridge).up);
  net::add_address(bridge, "10.99.0.1/24");

  auto tmpl = call(*c, "VM.get_by_name_label", {s, "Demo Linux (direct kernel boot)"}).as_array().at(0);
  auto vm = call(*c, "VM.clone", {s, tmpl, "wired"}).as_string();
  call(*c, "VM.provision", {s, vm});
  auto vif = call(*c, "VIF.create", {s, Struct{{"VM", vm}, {"network", net}, {"device", "0"}, {"MAC", "02:16:3e:aa:bb:cc"}}})
                 .as_string();
  call(*c, "VM.start", {s, vm, false, false});
  auto tap = call(*c, "VIF.get_runtime_properties", {s, vif})["tap"].as_string();
  ASSERT_TRUE(net::link_exists(tap)) << tap;
  EXPECT_EQ(net::link_info(tap).master, bridge);
  EXPECT_TRUE(net::link_info(tap).up);

  std::string console;
  auto consoles = call(*c, "VM.get_consoles", {s, vm});  // named: the loop must not outlive it
  for (const auto& con : consoles.as_array())
    if (call(*c, "console.get_protocol", {s, con}).as_string() == "vt100") console = con.as_string();
  ASSERT_FALSE(read_console_until(d.socket(), console, s, kMarker, 90s).empty());
  // The guest's kernel sees the NIC with the VIF's MAC, and a ping through
  // the bridge is answered by the host. The marker is computed by the guest
  // shell, so the echoed command line never matches it.
  std::string cmd =
      "\nip link set eth0 up; ip addr add 10.99.0.2/24 dev eth0; cat /sys/class/net/eth0/address; "
      "ping -c 1 -W 5 10.99.0.1 >/dev/null && echo NET$((40+2))OK\n";
  std::string out;
  for (int i = 0; i < 5 && out.find("NET42OK") == std::string::npos; ++i)
    out = read_console_until(d.socket(), console, s, "NET42OK", 20s, 1, cmd);
  EXPECT_NE(out.find("02:16:3e:aa:bb:cc"), std::string::npos) << out;
  EXPECT_NE(out.find("NET42OK"), std::string::npos) << out;

  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_FALSE(net::link_exists(tap)) << "the tap goes with the guest";
  call(*c, "VIF.destroy", {s, vif});
  call(*c, "network.destroy", {s, net});
  EXPECT_FALSE(net::link_exists(bridge)) << "a managed bridge goes with its network";
}

}  // namespace
}  // namespace vmstack::test
