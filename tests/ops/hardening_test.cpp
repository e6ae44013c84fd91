// What an API caller can and cannot reach: host files through boot paths or
// extra QEMU arguments, other users' sessions, the host's memory; text the
// store would mangle; and the modes of what the daemon keeps on disk. On the
// fake hypervisor: no guest boots.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "daemon_fixture.h"
#include "ops/admission.h"

namespace vmstack::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

int mode_of(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

class HardeningTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 30, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  std::string install(const std::string& name) { return install_demo_vm(*c, s, name); }
  std::string uuid(const std::string& vm) { return call(*c, "VM.get_uuid", {s, vm}).as_string(); }
};

TEST_F(HardeningTest, BootFilesOnlyFromTheBootDirectoriesWithOneAnswer) {
  auto vm = install("nosy");
  // Whatever the file (absent, root's secret, a directory, a symlink out of
  // an allowed dir), the refusal says the same: it never tells what exists.
  fs::create_directories(dir.path() + "/boot");
  fs::create_symlink("/etc/shadow", dir.path() + "/boot/escape");
  std::string reason;
  for (const std::string& path : Strings{"/etc/shadow", "/no/such/kernel", "/etc", dir.path() + "/boot/escape", "relative/vmlinux"}) {
    call(*c, "VM.set_PV_kernel", {s, vm, path});
    auto e = failure(*c, "VM.start", {s, vm, false, false});
    ASSERT_EQ(e.size(), 4u) << path;
    EXPECT_EQ(e[0], "INVALID_VALUE");
    EXPECT_EQ(e[1], "PV_kernel");
    EXPECT_EQ(e[2], path);
    if (reason.empty()) reason = e[3];
    EXPECT_EQ(e[3], reason) << "the same words for " << path;
    EXPECT_EQ(call(*c, "VM.get_power_state", {s, vm}).as_string(), "Halted");
  }
  EXPECT_NE(reason.find(dir.path() + "/boot"), std::string::npos) << "says where boot files may be: " << reason;
  // A file in a boot directory is fine, reached through a symlink or not.
  std::ofstream(dir.path() + "/boot/vmlinuz") << "not really a kernel";
  fs::create_symlink(dir.path() + "/boot/vmlinuz", dir.path() + "/boot/current");
  call(*c, "VM.set_PV_kernel", {s, vm, dir.path() + "/boot/current"});
  call(*c, "VM.set_PV_ramdisk", {s, vm, "/etc/passwd"});
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false}).at(1), "PV_ramdisk");
  call(*c, "VM.set_PV_ramdisk", {s, vm, ""});
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(d.fake_hv().last_spec(uuid(vm)).kernel, dir.path() + "/boot/vmlinuz") << "the resolved path is launched";
}

TEST_F(HardeningTest, ExtraQemuArgumentsComeOnlyFromRootsFiles) {
  auto vm = install("args");
  // The API cannot add arguments any more...
  call(*c, "VM.add_to_platform", {s, vm, "qemu-args", "-incoming exec:id>/tmp/pwned"});
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_TRUE(d.fake_hv().last_spec(uuid(vm)).extra_args.empty());
  call(*c, "VM.hard_shutdown", {s, vm});
  // ...the operator can, in a file of root's that only root may write.
  const std::string args_dir = dir.path() + "/qemu-args.d";
  fs::create_directories(args_dir);
  const std::string file = args_dir + "/" + uuid(vm) + ".args";
  std::ofstream(file) << "# for the record\n-global\nkvm-pit.lost_tick_policy=discard\n\n";
  ::chmod(file.c_str(), 0644);
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(d.fake_hv().last_spec(uuid(vm)).extra_args, (Strings{"-global", "kvm-pit.lost_tick_policy=discard"}));
  call(*c, "VM.hard_shutdown", {s, vm});
  ::chmod(file.c_str(), 0666);  // writable by anyone: ignored
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_TRUE(d.fake_hv().last_spec(uuid(vm)).extra_args.empty());
  call(*c, "VM.hard_shutdown", {s, vm});
  // A good file in a directory others may write to (who could swap it): ignored.
  ::chmod(file.c_str(), 0644);
  ::chmod(args_dir.c_str(), 0777);
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_TRUE(d.fake_hv().last_spec(uuid(vm)).extra_args.empty());
  call(*c, "VM.hard_shutdown", {s, vm});
  // A symlink to a good file: ignored (never followed).
  ::chmod(args_dir.c_str(), 0755);
  fs::rename(file, args_dir + "/real");
  fs::create_symlink(args_dir + "/real", file);
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_TRUE(d.fake_hv().last_spec(uuid(vm)).extra_args.empty());
}

TEST_F(HardeningTest, AdmissionKeepsGuestsWithinTheHostsMemory) {
  // Two guests each wanting a little more than half the host.
  int64_t half = ((ops::host_mem_total() / 2) & ~((int64_t{1} << 20) - 1)) + (int64_t{64} << 20);
  auto a = install("big-a");
  auto b = install("big-b");
  for (const auto& vm : {a, b}) call(*c, "VM.set_memory_limits", {s, vm, int64_t{64} << 20, half, half, half});
  call(*c, "VM.start", {s, a, false, false});
  auto e = failure(*c, "VM.start", {s, b, false, false});
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], "HOST_NOT_ENOUGH_FREE_MEMORY");
  EXPECT_GT(std::stoll(e[1]), std::stoll(e[2])) << "needed > available";
  EXPECT_EQ(call(*c, "VM.get_power_state", {s, b}).as_string(), "Halted");
  // Once the first is off there is room again.
  call(*c, "VM.hard_shutdown", {s, a});
  call(*c, "VM.start", {s, b, false, false});
  EXPECT_EQ(call(*c, "VM.get_power_state", {s, b}).as_string(), "Running");
}

TEST_F(HardeningTest, TextTheStoreWouldMangleIsRefused) {
  api::Endpoint ep;
  ep.unix_path = d.socket();
  ep.json = true;  // JSON can carry \u0000 (XML-RPC cannot)
  api::Client j(ep);
  auto vm = install("text");
  auto e = failure(j, "VM.set_name_label", {s, vm, std::string("a\0b", 3)});
  EXPECT_EQ(e, (Strings{"INVALID_VALUE", "value", "a\\0b"}));
  e = failure(j, "VM.add_to_other_config", {s, vm, std::string("k\0", 2), "v"});
  EXPECT_EQ(e.at(0), "INVALID_VALUE");
  e = failure(j, "VM.create", {s, Struct{{"name_label", std::string("x\0y", 3)}}});
  EXPECT_EQ(e.at(0), "INVALID_VALUE");
  EXPECT_EQ(call(j, "VM.get_name_label", {s, vm}).as_string(), "text") << "nothing was stored cut";
  // Unicode that is well formed is kept whole across a restart.
  call(j, "VM.set_name_label", {s, vm, "caf\xc3\xa9 \xe2\x98\x95"});
  c.reset();
  d.restart();
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(call(*c, "VM.get_name_label", {s, vm}).as_string(), "caf\xc3\xa9 \xe2\x98\x95");
}

TEST_F(HardeningTest, ASessionSeesOnlyItself) {
  auto other = d.login(*c);
  // As xapi: no listing of sessions at all.
  EXPECT_EQ(failure(*c, "session.get_all", {s}), (Strings{"MESSAGE_METHOD_UNKNOWN", "session.get_all"}));
  EXPECT_EQ(failure(*c, "session.get_all_records", {s}), (Strings{"MESSAGE_METHOD_UNKNOWN", "session.get_all_records"}));
  EXPECT_EQ(failure(*c, "session.get_record", {s, other}), (Strings{"HANDLE_INVALID", "session", other}));
  EXPECT_EQ(failure(*c, "session.get_auth_user_name", {s, other}), (Strings{"HANDLE_INVALID", "session", other}));
  auto other_uuid = call(*c, "session.get_uuid", {other, other}).as_string();
  EXPECT_EQ(failure(*c, "session.get_by_uuid", {s, other_uuid}), (Strings{"UUID_INVALID", "session", other_uuid}));
  EXPECT_TRUE(call(*c, "session.get_record", {s, s}).is_struct());
  // Nor through the event feed.
  auto ev = call(*c, "event.from", {s, Array{"session"}, "", 0.1});
  for (const auto& e : ev["events"].as_array()) EXPECT_EQ(e["ref"].as_string(), s);
  EXPECT_EQ(ev["valid_ref_counts"]["session"].as_int(), 1);
}

TEST(HardeningSessions, ExpireWhenUnusedAndAreCappedPerUser) {
  TempDir dir;
  TestDaemon d(dir.path(), 30, Backend::fake, [](ops::Config& cfg) {
    cfg.session_timeout = std::chrono::seconds(1);
    cfg.max_sessions_per_user = 3;
  });
  auto c = d.client();
  auto first = d.login(*c);
  auto second = d.login(*c);
  auto third = d.login(*c);
  auto fourth = d.login(*c);  // over the cap: the least recently used goes
  EXPECT_EQ(failure(*c, "VM.get_all", {first}), (Strings{"SESSION_INVALID", first}));
  EXPECT_FALSE(call(*c, "VM.get_all", {fourth}).as_array().empty());
  std::this_thread::sleep_for(2100ms);
  EXPECT_EQ(failure(*c, "VM.get_all", {second}), (Strings{"SESSION_INVALID", second})) << "unused for longer than the timeout";
  EXPECT_EQ(failure(*c, "VM.get_all", {third}), (Strings{"SESSION_INVALID", third}));
  auto fresh = d.login(*c);
  EXPECT_FALSE(call(*c, "VM.get_all", {fresh}).as_array().empty());
}

TEST_F(HardeningTest, WhatTheDaemonKeepsOnDiskIsPrivate) {
  // A guest's QEMU (its own user) works in its run dir, needing nothing above it.
  EXPECT_EQ(mode_of(dir.path()), 0700);
  EXPECT_EQ(mode_of(dir.path() + "/vmstack.db"), 0600);
  EXPECT_EQ(mode_of(dir.path() + "/run"), 0700);
  auto vm = install("private");
  auto vdi = call(*c, "VBD.get_VDI", {s, call(*c, "VM.get_VBDs", {s, vm}).as_array().at(0)}).as_string();
  auto sr = call(*c, "VDI.get_SR", {s, vdi}).as_string();
  auto pbd = call(*c, "SR.get_PBDs", {s, sr}).as_array().at(0);
  auto sr_dir = call(*c, "PBD.get_device_config", {s, pbd})["location"].as_string();
  EXPECT_EQ(mode_of(sr_dir), 0700);
  EXPECT_EQ(mode_of(sr_dir + "/" + call(*c, "VDI.get_location", {s, vdi}).as_string()), 0600);
  // An installation from before: opened up modes are closed again at start.
  ::chmod(dir.path().c_str(), 0755);
  ::chmod((dir.path() + "/vmstack.db").c_str(), 0644);
  ::chmod(sr_dir.c_str(), 0755);
  c.reset();
  d.restart();
  EXPECT_EQ(mode_of(dir.path()), 0700);
  EXPECT_EQ(mode_of(dir.path() + "/vmstack.db"), 0600);
  EXPECT_EQ(mode_of(sr_dir), 0700);
}

}  // namespace
}  // namespace vmstack::test
