// The QEMU driver (QemuHypervisor / QemuDomain) against real QEMU and the fixture guest (tools/guest-fixture.sh).
// Boots are TCG (~2 s each on an idle host), so one long test walks the
// whole lifecycle instead of booting per step.
#include "hv/qemu_hypervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "core/process.h"
#include "core/uuid.h"
#include "guest.h"
#include "netns_guard.h"
#include "hv/qemu_argv.h"
#include "hv/qmp.h"
#include "ops/console_relay.h"

using namespace vmstack;
using namespace vmstack::hv;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = "vmstack-guest: init reached";
// Generous: a loaded 2-core CI box makes a 2 s TCG boot take 15 s or more.
constexpr auto kBoot = 90s;

DomainSpec guest_spec(const std::string& run_dir, const std::string& name) {
  const auto& g = hvtest::guest();
  DomainSpec s;
  s.uuid = make_uuid();
  s.name = name;
  s.run_dir = run_dir;
  s.kernel = g.vmlinux;
  s.ramdisk = g.initrd;
  s.cmdline = g.cmdline;
  return s;
}

// Collects a Domain's events for assertions.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Domain::Event, std::string>> seen;

  auto handler() {
    return [this](Domain::Event e, const std::string& d) {
      std::lock_guard lk(mu);
      seen.emplace_back(e, d);
      cv.notify_all();
    };
  }
  // Waits for an event of kind e; returns its detail, nullopt on timeout.
  std::optional<std::string> wait(Domain::Event e, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu);
    std::optional<std::string> found;
    cv.wait_for(lk, timeout, [&] {
      for (auto& [k, d] : seen)
        if (k == e) found = d;
      return found.has_value();
    });
    return found;
  }
  size_t count(Domain::Event e) {
    std::lock_guard lk(mu);
    size_t n = 0;
    for (auto& [k, d] : seen) n += k == e;
    return n;
  }
};

size_t occurrences(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// Types a shell command on the serial console and waits for its output:
// the arithmetic result never appears in the echoed input itself.
bool console_answers(const LiveState& info, std::chrono::milliseconds timeout = 30s) {
  UniqueFd fd(hvtest::connect_unix(info.console_socket, 5s));
  if (!fd) return false;
  static std::mt19937 rng(std::random_device{}());
  int n = 10000 + static_cast<int>(rng() % 80000);
  return hvtest::console_roundtrip(fd.get(), "echo $((" + std::to_string(n) + "+1))", std::to_string(n + 1),
                                   timeout);
}

int64_t balloon_actual(QemuDomain& d) { return d.qmp().execute("query-balloon")["actual"].get<int64_t>(); }

}  // namespace

// launch -> marker -> pause/unpause -> console -> balloon -> save -> resume
// (no reboot) -> drop the Domain and attach() again -> guest reboot ->
// ACPI power button -> guest_shutdown -> reset+cont (restart) -> power
// button again -> kill -> exited.
TEST(Domain, FullLifecycle) {
  QemuHypervisor qemu;
  REQUIRE_GUEST();
  hvtest::TempDir tmp;
  const std::string run = tmp.path + "/run";
  auto spec = guest_spec(run, "lifecycle");
  spec.memory_static_max = spec.memory_target = 256LL << 20;

  hvtest::QemuTracker qemus;
  auto t0 = std::chrono::steady_clock::now();
  auto dom = qemu.launch_qemu(spec, 30s);
  qemus.track(dom->state().pid);
  Events ev;
  dom->set_event_handler(ev.handler());
  const LiveState info = dom->state();
  EXPECT_GT(info.pid, 0);
  // QEMU's sockets and console log in its guest dir; root's files above it.
  EXPECT_EQ(info.qmp_socket, run + "/qemu/qmp.sock");
  EXPECT_EQ(info.console_socket, run + "/qemu/console.sock");
  EXPECT_EQ(info.console_log, run + "/qemu/console.log");
  EXPECT_EQ(info.vnc_socket, "");
  EXPECT_TRUE(dom->alive());
  // QEMU is our child, leader of its own session (survives our death).
  EXPECT_EQ(::getpgid(info.pid), info.pid);
  EXPECT_EQ(::getsid(info.pid), info.pid);
  EXPECT_EQ(std::stol(hvtest::read_file(run + "/qemu.pid")), info.pid);
  EXPECT_TRUE(fs::equivalent("/proc/" + std::to_string(info.pid) + "/cwd", run + "/qemu"));

  ASSERT_TRUE(hvtest::wait_for_text(info.console_log, kMarker, kBoot)) << hvtest::read_file(info.console_log);
  std::cerr << "[ info ] PV boot to marker: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  EXPECT_EQ(dom->query_status(), RunState::running);

  dom->pause();
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->unpause();
  EXPECT_EQ(dom->query_status(), RunState::running);
  ASSERT_TRUE(console_answers(info));

  // The balloon driver in the guest gives memory back.
  dom->set_balloon(192LL << 20);
  bool shrunk = false;
  for (int i = 0; i < 300 && !shrunk; ++i) {
    shrunk = balloon_actual(*dom) <= (192LL << 20);
    if (!shrunk) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(shrunk) << "balloon actual " << balloon_actual(*dom);
  dom->set_balloon(256LL << 20);

  // A save that cannot be written fails cleanly and leaves the guest running.
  EXPECT_THROW(dom->save(tmp.path + "/no/such/dir/state", 60s), std::runtime_error);
  EXPECT_EQ(dom->query_status(), RunState::running);

  const std::string state = tmp.path + "/suspend.img";
  dom->save(state, 120s);
  EXPECT_GT(fs::file_size(state), 1u << 20);
  EXPECT_EQ(dom->query_status(), RunState::paused);  // stopped, image complete
  dom->stop();
  EXPECT_FALSE(dom->alive());
  auto exited = ev.wait(Domain::Event::exited, 10s);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(*exited, "exited:0");  // QMP quit
  EXPECT_EQ(ev.count(Domain::Event::guest_shutdown), 0u);
  dom.reset();

  // Resume in the same run dir: the guest continues where it was, no reboot.
  auto resumed = spec;
  resumed.incoming_file = state;
  dom = qemu.launch_qemu(resumed, 30s);
  qemus.track(dom->state().pid);
  Events ev2;
  dom->set_event_handler(ev2.handler());
  EXPECT_EQ(dom->query_status(), RunState::running);
  EXPECT_TRUE(console_answers(dom->state()));
  EXPECT_EQ(occurrences(hvtest::read_file(info.console_log), kMarker), 1u);

  // Daemon restart, in-process: the old Domain goes away without killing the
  // guest and a fresh one re-adopts it from what the toolstack stored.
  // What it re-attaches from is the live state the launch saved.
  auto saved = load_live_state(run);
  ASSERT_TRUE(saved.has_value());
  const LiveState stored = *saved;
  EXPECT_EQ(stored.pid, dom->state().pid);
  EXPECT_EQ(stored.console_log, info.console_log);
  EXPECT_TRUE(stored.spec.incoming_file.empty()) << "one-shot launch options are not part of the saved state";
  EXPECT_EQ(stored.spec.machine, "microvm") << "the automatic choice is recorded";
  dom.reset();
  EXPECT_EQ(::kill(stored.pid, 0), 0);
  dom = qemu.attach_qemu(stored);
  ASSERT_TRUE(dom);
  Events ev3;
  dom->set_event_handler(ev3.handler());
  EXPECT_EQ(dom->state().pid, stored.pid);
  EXPECT_EQ(dom->query_status(), RunState::running);
  dom->pause();
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->unpause();
  EXPECT_TRUE(console_answers(dom->state()));

  // The guest reboots itself: guest_reset, and it comes up again.
  {
    UniqueFd fd(hvtest::connect_unix(stored.console_socket, 5s));
    ASSERT_TRUE(fd);
    std::string cmd = "reboot\n";
    ASSERT_GT(::send(fd.get(), cmd.data(), cmd.size(), MSG_NOSIGNAL), 0);
  }
  EXPECT_TRUE(ev3.wait(Domain::Event::guest_reset, kBoot).has_value());
  for (auto end = std::chrono::steady_clock::now() + kBoot;
       occurrences(hvtest::read_file(info.console_log), kMarker) < 2 && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(occurrences(hvtest::read_file(info.console_log), kMarker), 2u);

  // ACPI power button -> acpid -> poweroff; -no-shutdown keeps QEMU up.
  dom->powerdown();
  auto off = ev3.wait(Domain::Event::guest_shutdown, 60s);
  ASSERT_TRUE(off.has_value()) << hvtest::read_file(info.console_log);
  EXPECT_EQ(*off, "guest-shutdown");
  EXPECT_TRUE(dom->alive());
  EXPECT_EQ(dom->query_status(), RunState::shutdown);

  // actions_after_shutdown=restart: the toolstack resets and continues the
  // stopped machine; the guest boots again and still honours the button.
  dom->reset();
  dom->unpause();
  for (auto end = std::chrono::steady_clock::now() + kBoot;
       occurrences(hvtest::read_file(info.console_log), kMarker) < 3 && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(occurrences(hvtest::read_file(info.console_log), kMarker), 3u);
  EXPECT_EQ(dom->query_status(), RunState::running);
  size_t offs = ev3.count(Domain::Event::guest_shutdown);
  dom->powerdown();
  for (auto end = std::chrono::steady_clock::now() + 60s;
       ev3.count(Domain::Event::guest_shutdown) == offs && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ev3.count(Domain::Event::guest_shutdown), offs + 1);
  dom->stop();
  EXPECT_TRUE(dom->wait_exit(1s));
  EXPECT_TRUE(ev3.wait(Domain::Event::exited, 10s).has_value());
  EXPECT_EQ(dom->query_status(), RunState::shutdown);
  EXPECT_THROW(dom->pause(), QmpConnectionError);
}

// A QEMU that is not our child (started by another process, as after a real
// daemon restart): attach, control, observe its exit through the pidfd.
TEST(Domain, AttachToForeignQemu) {
  QemuHypervisor qemu;
  REQUIRE_GUEST();
  hvtest::TempDir tmp;
  auto spec = guest_spec(tmp.path + "/run", "foreign");
  spec.start_paused = true;  // no boot needed to drive it
  spec.tsc_khz = host_tsc_khz();
  const std::string guest_dir = guest_dir_of(spec.run_dir);
  fs::create_directories(guest_dir);
  auto argv = build_qemu_argv(spec);
  // sh is our child; QEMU is sh's child, so not ours.
  // It runs in its guest dir and its pid goes to the run dir's qemu.pid, as
  // vmstack does it.
  std::vector<std::string> sh = {"sh", "-c", "\"$@\" >/dev/null 2>&1 & echo $! > ../qemu.pid; wait", "sh"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  SpawnOptions o;
  o.new_session = true;
  o.cwd = guest_dir;
  auto parent = Subprocess::spawn(sh, o);

  LiveState info;
  info.spec = spec;
  info.qmp_socket = guest_dir + "/qmp.sock";
  info.console_socket = guest_dir + "/console.sock";
  info.console_log = guest_dir + "/console.log";
  for (int i = 0; i < 500 && info.pid <= 0; ++i) {
    std::this_thread::sleep_for(20ms);
    std::string p = hvtest::read_file(spec.run_dir + "/qemu.pid");
    if (!p.empty() && p.back() == '\n') info.pid = std::stoi(p);
  }
  ASSERT_GT(info.pid, 0);
  hvtest::QemuTracker qemus;
  qemus.track(info.pid);
  ASSERT_NE(info.pid, parent.pid());
  for (int i = 0; i < 500 && !fs::exists(info.qmp_socket); ++i) std::this_thread::sleep_for(20ms);

  // Wrong identities are refused: a live pid that is not this QEMU, no pid.
  LiveState wrong = info;
  wrong.pid = parent.pid();
  EXPECT_EQ(qemu.attach_qemu(wrong), nullptr);
  wrong.pid = 0;
  EXPECT_EQ(qemu.attach_qemu(wrong), nullptr);
  wrong = info;
  wrong.qmp_socket = tmp.path + "/other/qmp.sock";
  EXPECT_EQ(qemu.attach_qemu(wrong), nullptr);
  // Its QMP socket answers only a client expecting this QEMU's pid.
  EXPECT_THROW(QmpClient::connect(info.qmp_socket, 2s, parent.pid()), QmpPeerError);

  auto dom = qemu.attach_qemu(info);
  ASSERT_TRUE(dom);
  Events ev;
  dom->set_event_handler(ev.handler());
  EXPECT_TRUE(dom->alive());
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->unpause();
  EXPECT_EQ(dom->query_status(), RunState::running);
  dom->pause();
  EXPECT_EQ(dom->query_status(), RunState::paused);

  // A launch into the same run dir must not clobber the live QEMU's sockets.
  try {
    qemu.launch_qemu(spec, 30s);
    ADD_FAILURE() << "second launch in a busy run dir succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already running"), std::string::npos) << e.what();
  }

  dom->stop();
  EXPECT_FALSE(dom->alive());
  auto exited = ev.wait(Domain::Event::exited, 10s);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(*exited, "exited:unknown");  // not our child: status unknowable
  EXPECT_TRUE(parent.wait_for(5s));      // sh reaped it and left
  dom.reset();
  EXPECT_EQ(qemu.attach_qemu(info), nullptr);  // gone
}

// The handler may drop the Domain (the toolstack does on `exited`).
TEST(Domain, HandlerMayDestroyDomain) {
  QemuHypervisor qemu;
  REQUIRE_GUEST();
  hvtest::TempDir tmp;
  auto spec = guest_spec(tmp.path + "/run", "selfdestruct");
  spec.start_paused = true;
  auto dom = qemu.launch_qemu(spec, 30s);
  pid_t pid = dom->state().pid;
  hvtest::QemuTracker qemus;
  qemus.track(pid);
  std::mutex mu;
  std::condition_variable cv;
  bool destroyed = false;
  QemuDomain* raw = dom.release();
  raw->set_event_handler([&](Domain::Event e, const std::string&) {
    if (e != Domain::Event::exited) return;
    delete raw;
    std::lock_guard lk(mu);
    destroyed = true;
    cv.notify_all();
  });
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::unique_lock lk(mu);
  EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return destroyed; }));
}

TEST(Domain, LaunchFailuresReportQemuErrors) {
  QemuHypervisor qemu;
  REQUIRE_GUEST();
  hvtest::TempDir tmp;
  auto spec = guest_spec(tmp.path + "/run", "broken");
  spec.kernel = tmp.path + "/no-such-kernel";
  try {
    qemu.launch_qemu(spec, 20s);
    ADD_FAILURE() << "launch with a missing kernel succeeded";
  } catch (const std::runtime_error& e) {
    // QEMU's own words reach the caller.
    EXPECT_NE(std::string(e.what()).find("no-such-kernel"), std::string::npos) << e.what();
  }
  // Nothing left running: nobody answers on the QMP socket.
  int left = hvtest::connect_unix(guest_dir_of(spec.run_dir) + "/qmp.sock", 100ms);
  EXPECT_LT(left, 0);
  if (left >= 0) ::close(left);

  spec = guest_spec(tmp.path + "/run2", "nobinary");
  QemuHypervisor missing(tmp.path + "/no-such-qemu");
  EXPECT_THROW(missing.launch(spec), std::runtime_error);

  spec = guest_spec(tmp.path + "/run3", "badarg");
  spec.extra_args = {"-no-such-option"};
  try {
    qemu.launch_qemu(spec, 20s);
    ADD_FAILURE() << "launch with a bad option succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("-no-such-option"), std::string::npos) << e.what();
  }
}

TEST(Domain, HvmLaunchWithVnc) {
  QemuHypervisor qemu;
  hvtest::TempDir tmp;
  // An HVM guest (BIOS, no disks): enough to check VNC and the machine type.
  DomainSpec spec;
  spec.uuid = make_uuid();
  spec.name = "hvm";
  spec.run_dir = tmp.path + "/run";
  spec.vnc = true;
  spec.start_paused = true;
  auto dom = qemu.launch_qemu(spec, 30s);
  hvtest::QemuTracker qemus;
  qemus.track(dom->state().pid);
  // VNC on a unix socket in the guest dir, no TCP port.
  EXPECT_EQ(dom->state().vnc_socket, spec.run_dir + "/qemu/vnc.sock");
  auto vnc = dom->qmp().execute("query-vnc");
  EXPECT_EQ(vnc["family"], "unix");
  {
    UniqueFd fd(hvtest::connect_unix(dom->state().vnc_socket, 5s));
    ASSERT_TRUE(fd);
    char banner[12] = {};
    EXPECT_EQ(::read(fd.get(), banner, sizeof banner), 12);
    EXPECT_EQ(std::string(banner, 4), "RFB ");
  }
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->stop();
  EXPECT_FALSE(dom->alive());
}

// Devices added to and removed from a running guest: the guest's own kernel
// sees them (PCIe hotplug through the spare root ports), and the live state
// follows.
TEST(Domain, HotplugDiskAndNic) {
  REQUIRE_GUEST();
  vmstack::test::NetnsGuard ns;  // QEMU and the tap live in the test's own namespace
  QemuHypervisor qemu;
  hvtest::TempDir tmp;
  const std::string run = tmp.path + "/run";
  auto spec = guest_spec(run, "hotplug");
  hvtest::QemuTracker qemus;
  auto dom = qemu.launch_qemu(spec, 30s);
  qemus.track(dom->state().pid);
  ASSERT_TRUE(hvtest::wait_for_text(dom->state().console_log, kMarker, kBoot));

  const std::string image = tmp.path + "/extra.qcow2";
  ASSERT_TRUE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", image, "64M"}).ok());
  DiskSpec d;
  d.device = "1";
  d.path = image;
  d.format = "qcow2";
  dom->add_disk(d);
  ASSERT_EQ(dom->state().spec.disks.size(), 1u);
  EXPECT_EQ(dom->state().spec.disks[0].id, "vbd1");
  EXPECT_EQ(dom->state().spec.disks[0].port, "hp0");
  EXPECT_EQ(load_live_state(run)->spec.disks.size(), 1u) << "the saved live state follows the devices";
  {
    UniqueFd fd(hvtest::connect_unix(dom->state().console_socket, 5s));
    ASSERT_TRUE(fd);
    EXPECT_TRUE(hvtest::console_roundtrip(fd.get(), "ls /sys/block", "vda", 60s)) << "the guest sees the new disk";
  }
  // A second hotplug of the same device is refused by QEMU, with its words.
  EXPECT_THROW(dom->add_disk(d), std::exception);

  // A NIC on a tap the test makes (the network backend's job in the daemon).
  const std::string tap = "vmstk0";
  ASSERT_TRUE(run_command({"ip", "tuntap", "add", "dev", tap, "mode", "tap"}).ok());
  NicSpec n;
  n.device = "0";
  n.mac = "02:00:00:aa:bb:01";
  n.tap = tap;
  dom->add_nic(n);
  EXPECT_EQ(dom->state().spec.nics.at(0).port, "hp1");
  {
    UniqueFd fd(hvtest::connect_unix(dom->state().console_socket, 5s));
    ASSERT_TRUE(fd);
    EXPECT_TRUE(hvtest::console_roundtrip(fd.get(), "cat /sys/class/net/eth0/address", "02:00:00:aa:bb:01", 60s));
  }
  // Both slots are taken now.
  DiskSpec third = d;
  third.device = "2";
  third.id.clear();
  try {
    dom->add_disk(third);
    ADD_FAILURE() << "a third hotplug with two slots succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no free hotplug slot"), std::string::npos) << e.what();
  }

  dom->remove_nic("vif0");
  dom->remove_disk("vbd1");
  EXPECT_TRUE(dom->state().spec.disks.empty());
  EXPECT_TRUE(dom->state().spec.nics.empty());
  auto blocks = dom->qmp().execute("query-block");
  for (const auto& b : blocks) EXPECT_NE(b.value("qdev", ""), "vbd1");
  // The slot is free again.
  dom->add_disk(third);
  EXPECT_EQ(dom->state().spec.disks.at(0).port, "hp0");
  dom->stop();
}

TEST(Domain, CdInsertAndEject) {
  QemuHypervisor qemu;
  hvtest::TempDir tmp;
  DomainSpec spec;
  spec.uuid = make_uuid();
  spec.name = "cd";
  spec.run_dir = tmp.path + "/run";
  spec.start_paused = true;  // the firmware need not run to change media
  DiskSpec cd;
  cd.device = "3";
  cd.cdrom = true;
  cd.format = "raw";
  spec.disks = {cd};
  hvtest::QemuTracker qemus;
  auto dom = qemu.launch_qemu(spec, 30s);
  qemus.track(dom->state().pid);
  const std::string iso = tmp.path + "/media.iso";
  { std::ofstream(iso) << std::string(4096, 'x'); }
  auto inserted = [&]() -> std::string {
    for (const auto& b : dom->qmp().execute("query-block"))
      if (b.value("qdev", "") == "vbd3" && b.contains("inserted")) return b["inserted"].value("file", "");
    return "";
  };
  EXPECT_EQ(inserted(), "");
  dom->change_cd("vbd3", iso);
  EXPECT_EQ(inserted(), iso);
  EXPECT_EQ(dom->state().spec.disks.at(0).path, iso);
  dom->change_cd("vbd3", "");
  EXPECT_EQ(inserted(), "");
  EXPECT_THROW(dom->change_cd("vbd0", iso), std::runtime_error);  // no such drive
  dom->stop();
}

// A guest whose QEMU runs as a user of its own, under a seccomp sandbox,
// with no access to the host's files: its disk comes in as a descriptor
// (from a root-only directory it could never open), its kernel as a link in
// its run dir; save and restore, hotplug and CD change work through
// descriptors too.
TEST(Domain, DeprivilegedGuestGetsDescriptorsNotPaths) {
  REQUIRE_GUEST();
  if (::geteuid() != 0) GTEST_SKIP() << "running QEMU as another user needs root";
  vmstack::test::NetnsGuard ns;  // for the tap of the hotplugged NIC
  QemuHypervisor qemu;
  hvtest::TempDir tmp;
  ::chmod(tmp.path.c_str(), 0700);  // the run dir's parent: private, as vmstackd's run root
  const std::string secret = tmp.path + "/root-only";
  ::mkdir(secret.c_str(), 0700);  // nothing in here is reachable by the guest's user
  const std::string image = secret + "/disk.qcow2";
  ASSERT_TRUE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", image, "32M"}).ok());
  ::chmod(image.c_str(), 0600);
  auto spec = guest_spec(tmp.path + "/run", "jailed");
  spec.uid = spec.gid = 70123;
  DiskSpec d;
  d.device = "0";
  d.path = image;
  spec.disks = {d};
  hvtest::QemuTracker qemus;
  ::setenv("VMSTACK_TEST_SECRET", "hunter2", 1);  // as the daemon's environment might hold one
  auto dom = qemu.launch_qemu(spec, 30s);
  ::unsetenv("VMSTACK_TEST_SECRET");
  qemus.track(dom->state().pid);
  auto environ_text = hvtest::read_file("/proc/" + std::to_string(dom->state().pid) + "/environ");
  EXPECT_EQ(environ_text.find("hunter2"), std::string::npos) << "QEMU inherits nothing of the daemon's environment";
  EXPECT_NE(environ_text.find("PATH="), std::string::npos);
  auto status = hvtest::read_file("/proc/" + std::to_string(dom->state().pid) + "/status");
  EXPECT_NE(status.find("Uid:\t70123\t70123\t70123\t70123"), std::string::npos) << status;
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << "the sandbox is on";
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos);
  EXPECT_EQ(dom->state().spec.kernel, "kernel") << "a link in its own dir (its working directory), not the host's path";
  EXPECT_EQ(dom->state().spec.disks.at(0).fdset, 1);
  ASSERT_TRUE(hvtest::wait_for_text(dom->state().console_log, kMarker, kBoot));
  {
    UniqueFd fd(hvtest::connect_unix(dom->state().console_socket, 5s));
    ASSERT_TRUE(fd);
    EXPECT_TRUE(hvtest::console_roundtrip(fd.get(), "ls /sys/block", "vda", 60s)) << "the passed disk is the guest's";
  }
  // Save (the state file is ours: QEMU gets its descriptor) and restore.
  const std::string state = secret + "/state";
  dom->save(state, 120s);
  dom->stop();
  dom.reset();
  auto back = spec;
  back.incoming_file = state;
  dom = qemu.launch_qemu(back, 60s);
  qemus.track(dom->state().pid);
  struct stat kst{};
  ASSERT_EQ(::stat(hvtest::guest().vmlinux.c_str(), &kst), 0);
  EXPECT_EQ(kst.st_uid, 0u) << "relaunching in the same run dir must not hand the host's kernel to the guest's user";
  EXPECT_EQ(dom->query_status(), RunState::running);
  EXPECT_TRUE(console_answers(dom->state()));
  // A CD change and a hotplugged disk arrive as descriptors as well.
  const std::string second = secret + "/second.qcow2";
  ASSERT_TRUE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", second, "16M"}).ok());
  ::chmod(second.c_str(), 0600);
  DiskSpec extra;
  extra.device = "1";
  extra.path = second;
  dom->add_disk(extra);
  EXPECT_GE(dom->state().spec.disks.back().fdset, 1000);
  // A NIC: the guest's user cannot open /dev/net/tun; it is handed the tap.
  ASSERT_TRUE(run_command({"ip", "tuntap", "add", "dev", "jail0", "mode", "tap"}).ok());
  NicSpec n;
  n.device = "0";
  n.mac = "02:00:00:aa:bb:07";
  n.tap = "jail0";
  dom->add_nic(n);
  {
    UniqueFd fd(hvtest::connect_unix(dom->state().console_socket, 5s));
    ASSERT_TRUE(fd);
    EXPECT_TRUE(hvtest::console_roundtrip(fd.get(), "cat /sys/class/net/eth0/address", "02:00:00:aa:bb:07", 60s));
  }
  dom->remove_disk("vbd1");
  dom->stop();
}

namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd) << path;
  ASSERT_EQ(::write(fd.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

// A unix socket served by this process (not by any QEMU).
UniqueFd listen_unix(const std::string& path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(s.get(), 4) != 0)
    ADD_FAILURE() << "cannot listen on " << path;
  return s;
}

struct RelayRun {
  bool returned = false;  // ended by itself within the time given
  std::string why;        // what it said when it ended
  std::string out;        // everything the client received
};

// Runs a relay (given the relay's end of a socketpair) for at most `max`,
// its client typing `keys`, collecting what the client receives; then
// stops it.
RelayRun run_relay(const std::function<std::string(int, const std::atomic<bool>&)>& relay,
                   std::chrono::milliseconds max, const std::string& keys = "keys for the guest\n") {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd client(sv[0]), relay_end(sv[1]);
  EXPECT_EQ(::send(client.get(), keys.data(), keys.size(), MSG_NOSIGNAL), static_cast<ssize_t>(keys.size()));
  std::atomic<bool> stopping{false}, done{false};
  RelayRun r;
  std::thread t([&] {
    r.why = relay(relay_end.get(), stopping);
    done = true;
  });
  auto drain = [&](int timeout_ms) {
    pollfd p{client.get(), POLLIN, 0};
    char buf[4096];
    while (::poll(&p, 1, timeout_ms) > 0) {
      ssize_t n = ::recv(client.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      r.out.append(buf, static_cast<size_t>(n));
    }
  };
  for (auto end = std::chrono::steady_clock::now() + max; !done && std::chrono::steady_clock::now() < end;) drain(50);
  r.returned = done;
  stopping = true;
  t.join();
  drain(0);
  return r;
}

// Everything sent to the listening socket by the clients that reached it.
std::string received_by(int listener) {
  std::string got;
  for (;;) {
    UniqueFd c(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return got;
    pollfd p{c.get(), POLLIN, 0};
    char buf[4096];
    while (::poll(&p, 1, 200) > 0) {
      ssize_t n = ::recv(c.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  }
}

}  // namespace

// The run dir is root's; the deprivileged QEMU works in a guest dir of its
// user's below it. What an escaped guest can put under a name in its dir
// (a symlink to a root-only file or to another process's socket, a hard
// link, a FIFO) is refused by root, never followed: the console relay does
// not read it, QMP does not talk to it, and the next launch removes it
// without writing through it. An older layout (the run dir handed to the
// guest's user) is taken back at the next launch.
TEST(Domain, RootFollowsNoNameInTheGuestDir) {
  REQUIRE_GUEST();
  if (::geteuid() != 0) GTEST_SKIP() << "running QEMU as another user needs root";
  constexpr uid_t kUid = 70125;
  QemuHypervisor qemu;
  hvtest::TempDir tmp;
  ::chmod(tmp.path.c_str(), 0700);  // the run dir's parent: private, as vmstackd's run root
  const std::string vault = tmp.path + "/root-only";
  ASSERT_EQ(::mkdir(vault.c_str(), 0700), 0);
  const std::string secret = vault + "/secret", secret_text = "vmstack-test-secret-4711\n";
  write_file(secret, secret_text, 0600);
  const std::string run = tmp.path + "/run", guest = run + "/qemu";
  auto spec = guest_spec(run, "walled");
  spec.uid = spec.gid = static_cast<int>(kUid);
  spec.start_paused = true;  // nothing here needs the guest to run
  hvtest::QemuTracker qemus;
  auto dom = qemu.launch_qemu(spec, 30s);
  qemus.track(dom->state().pid);
  const LiveState info = dom->state();

  // The layout: root's files in root's private dir, QEMU's in its own.
  struct stat st{};
  ASSERT_EQ(::lstat(run.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* f : {"qemu.log", "qemu.pid", "domain.json"}) {
    ASSERT_EQ(::lstat((run + "/" + f).c_str(), &st), 0) << f;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << f;
    EXPECT_EQ(st.st_uid, 0u) << f;
    EXPECT_EQ(st.st_nlink, 1u) << f;
  }
  ASSERT_EQ(::lstat(guest.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_gid, kUid);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(fs::equivalent("/proc/" + std::to_string(info.pid) + "/cwd", guest)) << "QEMU works in the guest dir";
  for (const auto& p : {info.qmp_socket, info.console_socket, info.console_log})
    EXPECT_EQ(fs::path(p).parent_path().string(), guest) << p;
  ASSERT_EQ(::lstat(info.console_log.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid) << "QEMU made its console log";

  // The relay accepts what QEMU made (the socket served by its pid).
  auto console = [&](pid_t pid) {
    return run_relay([&](int fd, const std::atomic<bool>& stop) {
      return ops::relay_console(fd, info.console_socket, info.console_log, pid, stop);
    }, 1500ms);
  };
  auto ok = console(info.pid);
  EXPECT_FALSE(ok.returned) << ok.why;
  EXPECT_EQ(ok.why, "");

  // The console log replaced by a symlink to a root-only file, or by a hard
  // link to it, or by a FIFO: refused, the secret never reaches the client.
  fs::remove(info.console_log);
  fs::create_symlink(secret, info.console_log);
  auto r = console(info.pid);
  EXPECT_TRUE(r.returned);
  EXPECT_NE(r.why.find("console log"), std::string::npos) << r.why;
  EXPECT_EQ(r.out.find("secret"), std::string::npos) << r.out;
  fs::remove(info.console_log);
  ASSERT_EQ(::link(secret.c_str(), info.console_log.c_str()), 0);
  r = console(info.pid);
  EXPECT_TRUE(r.returned);
  EXPECT_NE(r.why.find("refusing the console log"), std::string::npos) << r.why;
  EXPECT_EQ(r.out.find("secret"), std::string::npos) << r.out;
  fs::remove(info.console_log);
  ASSERT_EQ(::mkfifo(info.console_log.c_str(), 0600), 0);
  r = console(info.pid);
  EXPECT_TRUE(r.returned) << "a FIFO must not hold the relay";
  EXPECT_NE(r.why.find("refusing the console log"), std::string::npos) << r.why;
  fs::remove(info.console_log);
  write_file(info.console_log, "the guest's own log\n", 0600);
  ASSERT_EQ(::chown(info.console_log.c_str(), kUid, kUid), 0);

  // The sockets replaced by symlinks to a socket another process serves
  // (here: this test; as well another guest's QMP or console): the console
  // relay, the VNC relay and QMP refuse it, and nothing connects to it.
  const std::string decoy = vault + "/decoy.sock";
  UniqueFd listener = listen_unix(decoy);
  for (const auto& name : {info.console_socket, info.qmp_socket}) {
    fs::remove(name);
    fs::create_symlink(decoy, name);
  }
  r = console(info.pid);
  EXPECT_TRUE(r.returned);
  EXPECT_NE(r.why.find("refusing the console socket"), std::string::npos) << r.why;
  EXPECT_NE(r.why.find("pid " + std::to_string(::getpid())), std::string::npos) << r.why;
  EXPECT_EQ(received_by(listener.get()), "") << "the client's keys reached the other process's socket";
  r = run_relay([&](int fd, const std::atomic<bool>& stop) {
    return ops::relay_stream(fd, info.console_socket, info.pid, stop);
  }, 1500ms);
  EXPECT_TRUE(r.returned);
  EXPECT_NE(r.why.find("refusing the console socket"), std::string::npos) << r.why;
  try {
    QmpClient::connect(info.qmp_socket, 2s, info.pid);
    ADD_FAILURE() << "QMP connected to a socket QEMU does not serve";
  } catch (const QmpPeerError& e) {
    EXPECT_NE(std::string(e.what()).find("not by QEMU"), std::string::npos) << e.what();
  }
  EXPECT_EQ(received_by(listener.get()), "") << "the relay or QMP sent something to the other process";
  // The domain still holds its own QMP connection, made at launch.
  EXPECT_EQ(dom->query_status(), RunState::paused);
  dom->stop();
  dom.reset();

  // What the guest leaves for the next launch: links under the names root
  // creates there (kernel, initrd), under the console log's, elsewhere, and
  // in a subdirectory. And the older layout: the run dir its user's, with
  // links under root's names in it.
  fs::remove(guest + "/kernel");
  fs::create_symlink(vault + "/planted-kernel", guest + "/kernel");
  fs::remove(guest + "/initrd");
  fs::create_symlink(secret, guest + "/initrd");
  fs::remove(info.console_log);
  fs::create_symlink(secret, info.console_log);
  fs::create_symlink(secret, guest + "/foo");
  fs::create_directory(guest + "/sub");
  fs::create_directory_symlink(vault, guest + "/sub/vault");
  ASSERT_EQ(::chown(run.c_str(), kUid, kUid), 0);
  ASSERT_EQ(::chmod(run.c_str(), 0755), 0);
  fs::remove(run + "/qemu.log");
  fs::create_symlink(secret, run + "/qemu.log");
  fs::create_symlink(secret, run + "/domain.json.tmp");
  fs::create_symlink(secret, run + "/console.log");
  dom = qemu.launch_qemu(spec, 30s);
  qemus.track(dom->state().pid);
  EXPECT_EQ(dom->query_status(), RunState::paused);

  // Nothing was written through a link, nothing followed out of the dir.
  EXPECT_EQ(hvtest::read_file(secret), secret_text);
  ASSERT_EQ(::lstat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(vault + "/planted-kernel")));
  EXPECT_TRUE(fs::exists(vault + "/decoy.sock")) << "remove_all went through the planted subdirectory link";
  // The planted names are gone, or are what root made anew.
  EXPECT_FALSE(fs::exists(fs::symlink_status(guest + "/foo")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(guest + "/sub")));
  for (const char* f : {"kernel", "initrd"}) {
    ASSERT_EQ(::lstat((guest + "/" + f).c_str(), &st), 0) << f;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << f << " must be a boot file root placed, not the planted link";
  }
  ASSERT_EQ(::lstat(info.console_log.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "QEMU's new console log, not the planted link";
  // The run dir is root's again, with root's files only.
  ASSERT_EQ(::lstat(run.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat((run + "/qemu.log").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_NE(hvtest::read_file(run + "/qemu.log").find("=== vmstack launch"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::symlink_status(run + "/domain.json.tmp")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(run + "/console.log")));
  ASSERT_EQ(::lstat(guest.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  dom->stop();
}
