// What the next start does with what an interrupted verb left (ops/recovery.h),
// on the fake hypervisor and network: the journal's intents are written here
// as the verbs write them, the daemon restarts, and the outcome is checked.
// tests/e2e/crash_test.cpp kills the real daemon at real steps; this covers
// the cases a crash test cannot reach reliably (taps, a domain without its
// live state, a domain no record accounts for, unknown intents).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "daemon_fixture.h"
#include "hv/hypervisor.h"

namespace vmstack::test {
namespace {

namespace fs = std::filesystem;

class RecoveryTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 2, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string install(const std::string& name) { return install_demo_vm(*c, s, name); }
  std::string uuid(const std::string& vm) { return call(*c, "VM.get_uuid", {s, vm}).as_string(); }
  std::string power(const std::string& vm) { return call(*c, "VM.get_power_state", {s, vm}).as_string(); }
  // An intent as the verbs journal it.
  void intent(const std::string& id, const nlohmann::json& facts) {
    d.daemon().store().put_setting("intent:" + id, facts.dump());
  }
  void restart() {
    c.reset();
    d.restart();
    c = d.client();
    s = d.login(*c);
  }
  size_t pending() { return d.daemon().store().settings_with_prefix("intent:").size(); }
  std::string sr_dir() {
    auto sr = call(*c, "pool.get_default_SR", {s, call(*c, "pool.get_all", {s}).as_array().at(0)}).as_string();
    auto pbd = call(*c, "SR.get_PBDs", {s, sr}).as_array().at(0);
    return call(*c, "PBD.get_device_config", {s, pbd})["location"].as_string();
  }
  hv::FakeHypervisor& hv() { return d.fake_hv(); }
};

// The domain came up and its live state was saved, the record was not
// written: the start happened, the domain is adopted.
TEST_F(RecoveryTest, AStartWhoseDomainLivesIsAdopted) {
  auto vm = install("adopt");
  call(*c, "VM.start", {s, vm, false, false});
  auto domid = call(*c, "VM.get_domid", {s, vm}).as_int();
  d.daemon().store().set_field("VM", vm, "power_state", "Halted");
  intent("a", {{"op", "start"}, {"target", vm}});
  restart();
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(call(*c, "VM.get_domid", {s, vm}).as_int(), domid);
  EXPECT_TRUE(hv().alive(uuid(vm)));
  EXPECT_EQ(pending(), 0u);
}

// The taps were made and the domain launched, but its live state never
// reached the disk: nothing of the start may stay, taps included.
TEST_F(RecoveryTest, AStartWithoutLiveStateLeavesNoDomainAndNoTap) {
  auto net = call(*c, "network.create", {s, Struct{{"name_label", "lan"}}}).as_string();
  auto vm = install("undo");
  call(*c, "VIF.create", {s, Struct{{"VM", vm}, {"network", net}, {"device", "0"}}});
  call(*c, "VM.start", {s, vm, false, false});
  auto run_dir = hv().last_spec(uuid(vm)).run_dir;
  ASSERT_EQ(d.fake_net().taps().size(), 1u);
  d.daemon().store().set_field("VM", vm, "power_state", "Halted");
  fs::remove(run_dir + "/domain.json");
  intent("b", {{"op", "start"}, {"target", vm}});
  restart();
  EXPECT_EQ(power(vm), "Halted");
  EXPECT_FALSE(hv().alive(uuid(vm))) << "the domain the crash left was stopped";
  EXPECT_TRUE(d.fake_net().taps().empty()) << "and its tap removed";
  EXPECT_EQ(pending(), 0u);
  // And the VM starts again (before, the leftover domain refused it).
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(power(vm), "Running");
}

// A copy cut short: the half-made VM, its devices and the disks made for it
// go; the source stays whole.
TEST_F(RecoveryTest, AHalfMadeCopyIsRemovedWithItsDisks) {
  auto vm = install("source");
  auto copy = call(*c, "VM.copy", {s, vm, "half", "OpaqueRef:NULL"}).as_string();
  auto vbd = call(*c, "VM.get_VBDs", {s, copy}).as_array().at(0);
  auto vdi = call(*c, "VBD.get_VDI", {s, vbd}).as_string();
  auto image = sr_dir() + "/" + call(*c, "VDI.get_location", {s, vdi}).as_string();
  ASSERT_TRUE(fs::exists(image));
  intent("c", {{"op", "copy"}, {"target", vm}, {"new_vm_uuid", uuid(copy)}, {"vdis", {vdi}}});
  restart();
  EXPECT_TRUE(call(*c, "VM.get_by_name_label", {s, "half"}).as_array().empty());
  EXPECT_FALSE(fs::exists(image));
  EXPECT_EQ(failure(*c, "VDI.get_uuid", {s, vdi}).at(0), "HANDLE_INVALID");
  EXPECT_EQ(call(*c, "VM.get_VBDs", {s, vm}).as_array().size(), 1u) << "the source keeps its disk";
  // A copy cut before its record existed: nothing to find, nothing fails.
  intent("d", {{"op", "copy"}, {"target", vm}, {"new_vm_uuid", "00000000-0000-0000-0000-00000000dead"}});
  restart();
  EXPECT_EQ(pending(), 0u);
}

// Disks journaled by uuid before they were made (the verb died before it
// learnt their refs) are found and removed all the same.
TEST_F(RecoveryTest, DisksJournaledByUuidAreFoundAndRemoved) {
  auto vm = install("prov");
  auto vdi = call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, vm}).as_array().at(0)}).as_string();
  auto image = sr_dir() + "/" + call(*c, "VDI.get_location", {s, vdi}).as_string();
  intent("p", {{"op", "provision"},
               {"target", vm},
               {"vdi_uuids", {call(*c, "VDI.get_uuid", {s, vdi}).as_string(), "00000000-0000-0000-0000-00000000beef"}}});
  restart();
  EXPECT_EQ(failure(*c, "VDI.get_uuid", {s, vdi}).at(0), "HANDLE_INVALID");
  EXPECT_FALSE(fs::exists(image));
  EXPECT_TRUE(call(*c, "VM.get_VBDs", {s, vm}).as_array().empty()) << "its VBD went with it";
  EXPECT_EQ(pending(), 0u);
}

// A suspend whose image was never completed: QEMU's save, which may still
// run without anyone waiting for it, is cancelled before the guest runs on
// (else it would stop the guest again when done, behind the record).
TEST_F(RecoveryTest, ASuspendWithoutACompleteImageCancelsTheSaveAndRunsOn) {
  auto vm = install("sus");
  call(*c, "VM.start", {s, vm, false, false});
  call(*c, "VM.pause", {s, vm});  // as QEMU's save leaves it
  d.daemon().store().set_field("VM", vm, "power_state", "Running");
  intent("s", {{"op", "suspend"}, {"target", vm}, {"vdi_uuid", "00000000-0000-0000-0000-0000000000aa"}});
  restart();
  auto calls = hv().calls(uuid(vm));
  auto cancel = std::find(calls.begin(), calls.end(), "cancel_save");
  ASSERT_NE(cancel, calls.end());
  EXPECT_NE(std::find(cancel, calls.end(), "unpause"), calls.end()) << "unpaused after the cancel, not before";
  EXPECT_EQ(power(vm), "Running");
  EXPECT_EQ(hv().status(uuid(vm)), hv::RunState::running);
  EXPECT_EQ(pending(), 0u);
}

// A resume whose QEMU was still loading the image (its live state still
// names it): nothing resumed, so the QEMU goes and the VM stays Suspended
// with its image, never adopted as Running with the image deleted.
TEST_F(RecoveryTest, AResumeStillLoadingKeepsTheVmSuspendedWithItsImage) {
  auto vm = install("res");
  call(*c, "VM.start", {s, vm, false, false});
  call(*c, "VM.suspend", {s, vm});
  auto image_vdi = call(*c, "VM.get_suspend_VDI", {s, vm}).as_string();
  // The resume's QEMU, caught while loading.
  auto spec = hv().last_spec(uuid(vm));
  auto dom = hv().launch(spec);
  auto state = dom->state();
  state.spec.incoming_file = "/the/image/being/loaded";
  hv::save_live_state(state);
  intent("r", {{"op", "resume"}, {"target", vm}, {"vdi", image_vdi}});
  restart();
  EXPECT_EQ(power(vm), "Suspended");
  EXPECT_EQ(call(*c, "VM.get_suspend_VDI", {s, vm}).as_string(), image_vdi);
  EXPECT_EQ(call(*c, "VDI.get_type", {s, image_vdi}).as_string(), "suspend");
  EXPECT_FALSE(hv().alive(uuid(vm)));
  EXPECT_EQ(pending(), 0u);
}

// An image whose VDI record was never written is removed; one whose record
// was written is the VDI's and stays.
TEST_F(RecoveryTest, AnImageNoVdiRecordsIsRemoved) {
  auto sr = call(*c, "pool.get_default_SR", {s, call(*c, "pool.get_all", {s}).as_array().at(0)}).as_string();
  const std::string stray = "11111111-2222-3333-4444-555555555555";
  std::ofstream(sr_dir() + "/" + stray + ".qcow2") << "partial";
  intent("e", {{"op", "vdi_file"}, {"target", stray}, {"sr", sr}});
  auto vm = install("kept");
  auto vdi = call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, vm}).as_array().at(0)}).as_string();
  auto kept = call(*c, "VDI.get_uuid", {s, vdi}).as_string();
  intent("f", {{"op", "vdi_file"}, {"target", kept}, {"sr", sr}});
  restart();
  EXPECT_FALSE(fs::exists(sr_dir() + "/" + stray + ".qcow2"));
  EXPECT_TRUE(fs::exists(sr_dir() + "/" + call(*c, "VDI.get_location", {s, vdi}).as_string()));
  EXPECT_EQ(pending(), 0u);
}

// A domain in a run dir that no VM record accounts for is stopped; an
// intent this build does not know is dropped (with a log line), not retried
// forever.
TEST_F(RecoveryTest, ADomainNoRecordAccountsForIsStopped) {
  hv::DomainSpec spec;
  spec.uuid = "99999999-8888-7777-6666-555555555555";
  spec.run_dir = d.daemon().config().run_dir + "/" + spec.uuid;
  fs::create_directories(spec.run_dir);
  auto dom = hv().launch(spec);
  ASSERT_TRUE(hv().alive(spec.uuid));
  intent("g", {{"op", "frobnicate"}, {"target", "x"}});
  restart();
  EXPECT_FALSE(hv().alive(spec.uuid));
  EXPECT_EQ(pending(), 0u);
}

}  // namespace
}  // namespace vmstack::test
