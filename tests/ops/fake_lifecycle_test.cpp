// VM lifecycle logic against the fake hypervisor and network: every verb,
// every guest reaction, the failure paths and a daemon restart, in
// milliseconds. (lifecycle_test.cpp runs the same kind of story on real QEMU
// guests.)
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "daemon_fixture.h"
#include "hv/hypervisor.h"

namespace vmstack::test {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

class FakeLifecycleTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 2, Backend::fake};  // a 2 s clean-shutdown timeout
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string install(const std::string& name) { return install_demo_vm(*c, s, name); }
  std::string power(const std::string& vm) { return call(*c, "VM.get_power_state", {s, vm}).as_string(); }
  std::string uuid(const std::string& vm) { return call(*c, "VM.get_uuid", {s, vm}).as_string(); }
  std::string reason(const std::string& vm) {
    return call(*c, "VM.get_other_config", {s, vm})["last_shutdown_reason"].to_display();
  }
  bool allowed(const std::string& vm, const std::string& op) {
    auto ops = call(*c, "VM.get_allowed_operations", {s, vm}).as_array();
    return std::find(ops.begin(), ops.end(), Value(op)) != ops.end();
  }
  // Guest events are handled off the caller's thread: wait for the record.
  bool wait_power(const std::string& vm, const std::string& want) {
    for (int i = 0; i < 200; ++i) {
      if (power(vm) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::string wait_task(const std::string& task) {
    std::string st;
    for (int i = 0; i < 500 && (st = call(*c, "task.get_status", {s, task}).as_string()) == "pending"; ++i)
      std::this_thread::sleep_for(10ms);
    return st;
  }
  hv::FakeHypervisor& hv() { return d.fake_hv(); }
};

TEST_F(FakeLifecycleTest, StartRecordsTheDomainAndItsLiveState) {
  auto vm = install("life");
  EXPECT_TRUE(allowed(vm, "start"));
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(power(vm), "Running");
  auto rec = call(*c, "VM.get_record", {s, vm});
  EXPECT_GT(rec["domid"].as_int(), 0);
  EXPECT_EQ(rec["domain_type"].as_string(), "pv");
  EXPECT_FALSE(allowed(vm, "start"));
  EXPECT_TRUE(allowed(vm, "clean_shutdown"));
  EXPECT_TRUE(hv().alive(uuid(vm)));
  // The disk the hypervisor was given is what the SR's driver says it is.
  auto spec = hv().last_spec(uuid(vm));
  ASSERT_EQ(spec.disks.size(), 1u);
  EXPECT_EQ(spec.disks[0].format, "qcow2");
  EXPECT_TRUE(std::filesystem::exists(spec.disks[0].path)) << spec.disks[0].path;
  // The live state saved in the run dir is what re-attach will use.
  auto state = hv::load_live_state(spec.run_dir);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->pid, rec["domid"].as_int());
  EXPECT_EQ(state->console_log, hv::guest_dir_of(spec.run_dir) + "/console.log");
  // Consoles and attached disks are recorded.
  EXPECT_EQ(call(*c, "VM.get_consoles", {s, vm}).as_array().size(), 1u);
  auto vbd = call(*c, "VM.get_VBDs", {s, vm}).as_array().at(0);
  EXPECT_TRUE(call(*c, "VBD.get_currently_attached", {s, vbd}).as_bool());
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false}), (Strings{"VM_BAD_POWER_STATE", vm, "halted", "running"}));

  call(*c, "VM.clean_shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_EQ(reason(vm), "clean shutdown");
  EXPECT_FALSE(hv().alive(uuid(vm)));
  EXPECT_FALSE(hv::load_live_state(spec.run_dir).has_value()) << "a halted domain leaves no live state";
  EXPECT_FALSE(call(*c, "VBD.get_currently_attached", {s, vbd}).as_bool());
  EXPECT_TRUE(call(*c, "VM.get_consoles", {s, vm}).as_array().empty());
  EXPECT_EQ(call(*c, "VM.get_domid", {s, vm}).as_int(), -1);

  // Destroyed, the VM leaves nothing in the run root: its run dir goes.
  EXPECT_TRUE(std::filesystem::is_directory(spec.run_dir));
  call(*c, "VM.destroy", {s, vm});
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(spec.run_dir)));
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::path(spec.run_dir).parent_path())) << "the run root stays";
}

TEST_F(FakeLifecycleTest, PauseSuspendResumeAndTheSuspendImage) {
  auto vm = install("sleepy");
  call(*c, "VM.start", {s, vm, true, false});
  EXPECT_EQ(power(vm), "Paused");
  EXPECT_EQ(failure(*c, "VM.suspend", {s, vm}), (Strings{"VM_BAD_POWER_STATE", vm, "running", "paused"}));
  call(*c, "VM.unpause", {s, vm});
  call(*c, "VM.suspend", {s, vm});
  EXPECT_EQ(power(vm), "Suspended");
  EXPECT_FALSE(hv().alive(uuid(vm)));
  auto img = call(*c, "VM.get_suspend_VDI", {s, vm}).as_string();
  EXPECT_EQ(call(*c, "VDI.get_type", {s, img}).as_string(), "suspend");
  EXPECT_GT(call(*c, "VDI.get_virtual_size", {s, img}).as_int(), 0);
  EXPECT_TRUE(allowed(vm, "resume"));
  EXPECT_TRUE(allowed(vm, "hard_shutdown"));
  call(*c, "VM.resume", {s, vm, false, false});
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(hv().calls(uuid(vm)).front(), "restore");
  EXPECT_EQ(failure(*c, "VDI.get_record", {s, img})[0], "HANDLE_INVALID") << "resume consumes the image";
  // A suspend that fails leaves the guest running and no image behind.
  auto vdis_before = call(*c, "VDI.get_all", {s}).as_array().size();
  hv::FakeHypervisor::Behaviour b;
  b.fail_save = "no space left on device";
  hv().set_behaviour(b);
  auto e = failure(*c, "VM.suspend", {s, vm});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "INTERNAL_ERROR");
  EXPECT_NE(e.at(1).find("no space left on device"), std::string::npos);
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(call(*c, "VDI.get_all", {s}).as_array().size(), vdis_before);
  hv().set_behaviour({});
  // A suspended VM shut down hard loses its image and boots afresh.
  call(*c, "VM.suspend", {s, vm});
  img = call(*c, "VM.get_suspend_VDI", {s, vm}).as_string();
  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_EQ(failure(*c, "VDI.get_record", {s, img})[0], "HANDLE_INVALID");
}

TEST_F(FakeLifecycleTest, ACleanShutdownTheGuestIgnoresIsForcedAfterTheTimeout) {
  auto vm = install("deaf");
  hv::FakeHypervisor::Behaviour b;
  b.acpi = false;
  hv().set_behaviour(b);
  call(*c, "VM.start", {s, vm, false, false});
  auto t0 = std::chrono::steady_clock::now();
  call(*c, "VM.clean_shutdown", {s, vm});
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_EQ(reason(vm), "clean shutdown timed out after 2s; forced");
  auto calls = hv().calls(uuid(vm));
  EXPECT_GE(std::count(calls.begin(), calls.end(), "powerdown"), 1);
}

TEST_F(FakeLifecycleTest, AHardShutdownOverridesACleanShutdownInProgress) {
  auto vm = install("stuck");
  hv::FakeHypervisor::Behaviour b;
  b.acpi = false;
  hv().set_behaviour(b);
  call(*c, "VM.start", {s, vm, false, false});
  auto task = call(*c, "Async.VM.clean_shutdown", {s, vm}).as_string();
  for (int i = 0; i < 200 && call(*c, "VM.get_current_operations", {s, vm}).as_struct().empty(); ++i)
    std::this_thread::sleep_for(5ms);
  // Anything else is refused meanwhile, with who holds the VM...
  EXPECT_EQ(failure(*c, "VM.pause", {s, vm}), (Strings{"OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", task}));
  EXPECT_TRUE(allowed(vm, "hard_shutdown"));
  EXPECT_FALSE(allowed(vm, "pause"));
  // ...but the plug can be pulled at once.
  auto t0 = std::chrono::steady_clock::now();
  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_EQ(reason(vm), "hard shutdown");
  EXPECT_EQ(wait_task(task), "success");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms) << "the clean shutdown stopped waiting";
  EXPECT_EQ(reason(vm), "hard shutdown") << "the waiting clean shutdown did not record a second halt";
  EXPECT_TRUE(call(*c, "VM.get_current_operations", {s, vm}).as_struct().empty());
  EXPECT_TRUE(allowed(vm, "start"));
}

TEST_F(FakeLifecycleTest, WhatTheGuestDoesByItself) {
  auto vm = install("selfish");
  call(*c, "VM.start", {s, vm, false, false});
  // actions_after_shutdown=restart: powered off by the guest, reset in place.
  call(*c, "VM.set_actions_after_shutdown", {s, vm, "restart"});
  auto domid = call(*c, "VM.get_domid", {s, vm}).as_int();
  hv().guest_shutdown(uuid(vm));
  for (int i = 0; i < 200; ++i) {
    auto calls = hv().calls(uuid(vm));
    if (std::find(calls.begin(), calls.end(), "reset") != calls.end()) break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(call(*c, "VM.get_domid", {s, vm}).as_int(), domid);
  // destroy: it stays off.
  call(*c, "VM.set_actions_after_shutdown", {s, vm, "destroy"});
  hv().guest_shutdown(uuid(vm));
  ASSERT_TRUE(wait_power(vm, "Halted"));
  EXPECT_EQ(reason(vm), "guest shut down (guest-shutdown)");
  // The domain's process dies under us.
  call(*c, "VM.start", {s, vm, false, false});
  hv().crash(uuid(vm));
  ASSERT_TRUE(wait_power(vm, "Halted"));
  EXPECT_EQ(reason(vm), "QEMU exited unexpectedly (signal:9)");
}

TEST_F(FakeLifecycleTest, LaunchFailuresLeaveTheVmHaltedWithTheHypervisorsWords) {
  auto vm = install("doomed");
  hv::FakeHypervisor::Behaviour b;
  b.fail_launch = "could not open kernel file";
  hv().set_behaviour(b);
  auto e = failure(*c, "VM.start", {s, vm, false, false});
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "INTERNAL_ERROR");
  EXPECT_NE(e[1].find("could not open kernel file"), std::string::npos) << e[1];
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_TRUE(call(*c, "VM.get_current_operations", {s, vm}).as_struct().empty()) << "the op lock is released";
  EXPECT_TRUE(allowed(vm, "start"));
}

TEST_F(FakeLifecycleTest, NicsAreTapsOnTheNetworksBridge) {
  auto net = call(*c, "network.create", {s, Struct{{"name_label", "lan"}}}).as_string();
  auto bridge = call(*c, "network.get_bridge", {s, net}).as_string();
  EXPECT_EQ(bridge, "xenbr0");
  EXPECT_TRUE(d.fake_net().bridge_exists("xenbr0"));
  auto second = call(*c, "network.create", {s, Struct{{"name_label", "dmz"}}}).as_string();
  EXPECT_EQ(call(*c, "network.get_bridge", {s, second}).as_string(), "xenbr1");
  EXPECT_EQ(failure(*c, "network.create", {s, Struct{{"name_label", "x"}, {"bridge", "xenbr0"}}})[0], "INVALID_VALUE");
  EXPECT_EQ(failure(*c, "network.create", {s, Struct{{"name_label", "x"}, {"bridge", "a/b"}}}),
            (Strings{"INVALID_VALUE", "bridge", "a/b"}));

  auto vm = install("wired");
  auto vif = call(*c, "VIF.create", {s, Struct{{"VM", vm}, {"network", net}, {"device", "0"}}}).as_string();
  EXPECT_TRUE(call(*c, "VIF.get_MAC_autogenerated", {s, vif}).as_bool());
  EXPECT_EQ(failure(*c, "VIF.create", {s, Struct{{"VM", vm}, {"network", net}, {"device", "0"}}}),
            (Strings{"DEVICE_ALREADY_EXISTS", "0"}));
  EXPECT_EQ(failure(*c, "VIF.create", {s, Struct{{"VM", vm}, {"network", net}, {"device", "1"}, {"MAC", "zz"}}}),
            (Strings{"INVALID_VALUE", "MAC", "zz"}));
  call(*c, "VM.start", {s, vm, false, false});
  auto spec = hv().last_spec(uuid(vm));
  ASSERT_EQ(spec.nics.size(), 1u);
  EXPECT_EQ(spec.nics[0].mac, call(*c, "VIF.get_MAC", {s, vif}).as_string());
  EXPECT_EQ(spec.nics[0].tap, net::tap_name(uuid(vm), "0"));
  EXPECT_TRUE(d.fake_net().taps().count(spec.nics[0].tap));
  EXPECT_TRUE(call(*c, "VIF.get_currently_attached", {s, vif}).as_bool());
  EXPECT_EQ(call(*c, "VIF.get_runtime_properties", {s, vif})["tap"].as_string(), spec.nics[0].tap);
  EXPECT_EQ(failure(*c, "network.destroy", {s, net}), (Strings{"NETWORK_CONTAINS_VIF", vif}));
  EXPECT_EQ(failure(*c, "VIF.destroy", {s, vif})[0], "OPERATION_NOT_ALLOWED");
  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_TRUE(d.fake_net().taps().empty()) << "the tap goes with the domain";
  EXPECT_FALSE(call(*c, "VIF.get_currently_attached", {s, vif}).as_bool());
  // A tap that cannot be made fails the start and leaves nothing behind.
  d.fake_net().fail_plug = "Operation not permitted";
  auto e = failure(*c, "VM.start", {s, vm, false, false});
  ASSERT_FALSE(e.empty());
  EXPECT_NE(e.back().find("Operation not permitted"), std::string::npos);
  EXPECT_FALSE(hv().alive(uuid(vm)));
  d.fake_net().fail_plug.clear();
  call(*c, "VIF.destroy", {s, vif});
  call(*c, "network.destroy", {s, net});
  EXPECT_FALSE(d.fake_net().bridge_exists("xenbr0"));
}

TEST_F(FakeLifecycleTest, ADaemonRestartReattachesFromTheLiveState) {
  auto keep = install("keep");
  auto lost = install("lost");
  auto gone = install("gone");
  call(*c, "VM.start", {s, keep, false, false});
  call(*c, "VM.start", {s, lost, true, false});
  call(*c, "VM.start", {s, gone, false, false});
  auto keep_domid = call(*c, "VM.get_domid", {s, keep}).as_int();
  auto gone_dir = hv().last_spec(uuid(gone)).run_dir;
  auto lost_uuid = uuid(lost);

  c.reset();
  d.restart();
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(power(keep), "Running");
  EXPECT_EQ(call(*c, "VM.get_domid", {s, keep}).as_int(), keep_domid);
  EXPECT_EQ(power(lost), "Paused");

  // While the daemon is away: one domain dies, one loses its live state.
  c.reset();
  d.stop();
  hv().crash(lost_uuid);
  std::filesystem::remove(gone_dir + "/domain.json");
  d.start();
  c = d.client();
  s = d.login(*c);
  ASSERT_TRUE(wait_power(lost, "Halted"));
  EXPECT_NE(reason(lost).find("gone"), std::string::npos) << reason(lost);
  EXPECT_EQ(power(gone), "Halted");
  EXPECT_NE(reason(gone).find("live state"), std::string::npos) << reason(gone);
  // The re-attached domain is fully controllable.
  call(*c, "VM.pause", {s, keep});
  call(*c, "VM.unpause", {s, keep});
  call(*c, "VM.clean_shutdown", {s, keep});
  EXPECT_EQ(power(keep), "Halted");
  EXPECT_FALSE(hv().alive(uuid(keep)));
}

TEST_F(FakeLifecycleTest, MemoryAndRebootVerbs) {
  auto vm = install("mem");
  call(*c, "VM.start", {s, vm, false, false});
  call(*c, "VM.set_memory_dynamic_range", {s, vm, int64_t{128} << 20, int64_t{192} << 20});
  EXPECT_EQ(call(*c, "VM.get_memory_target", {s, vm}).as_int(), int64_t{192} << 20);
  auto calls = hv().calls(uuid(vm));
  EXPECT_EQ(calls.back(), "balloon:" + std::to_string(int64_t{192} << 20));
  EXPECT_EQ(failure(*c, "VM.set_memory_limits", {s, vm, int64_t{64} << 20, int64_t{512} << 20, int64_t{128} << 20,
                                                 int64_t{256} << 20}),
            (Strings{"VM_BAD_POWER_STATE", vm, "halted", "running"}));
  call(*c, "VM.clean_reboot", {s, vm});
  EXPECT_EQ(power(vm), "Running");
  calls = hv().calls(uuid(vm));
  EXPECT_EQ(calls.back(), "unpause");
  call(*c, "VM.hard_reboot", {s, vm});
  EXPECT_EQ(power(vm), "Running");
  call(*c, "VM.pause", {s, vm});
  call(*c, "VM.hard_reboot", {s, vm});  // allowed from paused too
  EXPECT_EQ(power(vm), "Running");
  call(*c, "VM.shutdown", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
  call(*c, "VM.power_state_reset", {s, vm});
  EXPECT_EQ(power(vm), "Halted");
}

}  // namespace
}  // namespace vmstack::test

namespace vmstack::test {
namespace {

TEST_F(FakeLifecycleTest, EachGuestRunsAsAUserOfItsOwn) {
  auto a = install("a");
  auto b = install("b");
  call(*c, "VM.start", {s, a, false, false});
  call(*c, "VM.start", {s, b, false, false});
  auto ua = hv().last_spec(uuid(a)).uid, ub = hv().last_spec(uuid(b)).uid;
  EXPECT_GE(ua, 70000);
  EXPECT_GE(ub, 70000);
  EXPECT_NE(ua, ub) << "no two running guests share a user";
  EXPECT_EQ(hv().last_spec(uuid(a)).gid, ua);
  // A halted guest's slot goes to the next start; a running one's survives
  // a daemon restart.
  call(*c, "VM.hard_shutdown", {s, a});
  auto third = install("c");
  call(*c, "VM.start", {s, third, false, false});
  EXPECT_EQ(hv().last_spec(uuid(third)).uid, ua);
  c.reset();
  d.restart();
  c = d.client();
  s = d.login(*c);
  call(*c, "VM.start", {s, a, false, false});
  auto again = hv().last_spec(uuid(a)).uid;
  EXPECT_NE(again, ub);
  EXPECT_NE(again, ua) << "the slot of the re-attached guest stays taken";
}

}  // namespace
}  // namespace vmstack::test
