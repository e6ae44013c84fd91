// Crash safety, end to end: the real vmstackd is killed with SIGKILL (as a
// crash or kill -9 would) at named steps of start, shutdown, suspend, resume,
// clone, copy, install and destroy (VMSTACK_CRASH_AT, core/crash_point.h),
// then started again. After every round the restarted daemon must have left:
// no orphan process (QEMU or copy helper), no image file no VDI refers to and
// no VDI without its image, every VM in a power state its processes and files
// agree with, no operation lock, and a VM that takes its next verb.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/process.h"
#include "guest_guard.h"
#include "vmstackd_process.h"

namespace vmstack::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// "" when it cannot be read: a /proc file of a process that exits while it
// is read fails with ESRCH, which libstdc++ throws from the stream buffer.
std::string read_file(const std::string& path) {
  try {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  } catch (const std::exception&) {
    return {};
  }
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (guest_dir().empty()) GTEST_SKIP() << "guest fixture could not be built (tools/guest-fixture.sh failed)";
    ASSERT_EQ(d_.start(), "");
    state_ = fs::canonical(d_.state_dir()).string();
  }

  std::string ok(std::vector<std::string> args) {
    auto r = d_.xe(args);
    EXPECT_TRUE(r.ok()) << format_argv(args) << " exit " << r.exit_code << "\n" << r.out << r.err;
    return trim_output(r.out);
  }
  std::string power(const std::string& uuid) { return ok({"vm-param-get", "uuid=" + uuid, "param-name=power-state"}); }
  std::string install(const std::string& name) {
    return ok({"vm-install", "template=Demo Linux (direct kernel boot)", "new-name-label=" + name});
  }
  std::vector<std::string> vms() { return split_commas(ok({"vm-list", "--minimal"})); }

  // Runs `verb` with the daemon set to die at `point`, checks that it died
  // there, starts it again (recovery runs) and checks what it left.
  void crash_at(const std::string& point, const std::vector<std::string>& verb) {
    SCOPED_TRACE("crash at " + point + " during " + format_argv(verb));
    ++rounds_;
    ASSERT_TRUE(d_.stop());
    ASSERT_EQ(d_.start({{"VMSTACK_CRASH_AT", point}}), "");
    auto r = d_.xe(verb);
    EXPECT_FALSE(r.ok()) << "the verb cannot have succeeded: its daemon died under it\n" << r.out << r.err;
    ASSERT_TRUE(d_.process().wait_for(60s)) << "the daemon never reached " << point;
    ASSERT_EQ(d_.process().describe_status(), "signal:" + std::to_string(SIGKILL));
    ASSERT_EQ(d_.start(), "");
    check_consistent();
  }

  // The live processes that belong to this daemon's state dir: QEMUs by their
  // working directory (<state>/run/<vm uuid>), anything else (cp, qemu-img
  // copying an image) by a mention of the state dir on its command line.
  struct Processes {
    std::map<std::string, int> qemus_by_vm;  // vm uuid -> how many
    std::vector<std::string> others;
  };
  Processes processes() {
    Processes p;
    const std::string run = state_ + "/run/";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      const auto pid = e.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      auto cwd = fs::read_symlink(e.path() / "cwd", ec).string();
      if (ec) {
        ec.clear();
        continue;
      }
      auto cmdline = read_file(e.path().string() + "/cmdline");
      for (auto& ch : cmdline)
        if (ch == '\0') ch = ' ';
      if (pid == std::to_string(d_.process().pid()) || pid == std::to_string(::getpid())) continue;
      if (cwd.rfind(run, 0) == 0) {
        p.qemus_by_vm[cwd.substr(run.size(), 36)]++;
      } else if (cmdline.find(state_) != std::string::npos) {
        p.others.push_back(pid + ": " + cmdline);
      }
    }
    return p;
  }

  // Image files in the SRs (everything under the state dir but the run dirs
  // with an image's extension), by VDI uuid.
  std::set<std::string> image_files() const {
    std::set<std::string> out;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(state_, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path() == state_ + "/run") {
        it.disable_recursion_pending();
        continue;
      }
      const auto ext = it->path().extension().string();
      if (ext == ".qcow2" || ext == ".raw" || ext == ".suspend") out.insert(it->path().stem().string());
    }
    return out;
  }

  void check_consistent() {
    auto procs = processes();
    EXPECT_TRUE(procs.others.empty()) << "a helper outlived the daemon: " << procs.others.front();
    std::set<std::string> vm_set;
    for (const auto& vm : vms()) {
      vm_set.insert(vm);
      auto ps = power(vm);
      const int qemus = procs.qemus_by_vm.count(vm) ? procs.qemus_by_vm.at(vm) : 0;
      if (ps == "running" || ps == "paused")
        EXPECT_EQ(qemus, 1) << "VM " << vm << " is " << ps;
      else
        EXPECT_EQ(qemus, 0) << "VM " << vm << " is " << ps << " yet has a QEMU";
      EXPECT_EQ(ok({"vm-param-get", "uuid=" + vm, "param-name=current-operations"}), "") << "VM " << vm;
      // A suspended VM has its image; no other VM keeps one.
      auto suspend_vdi = ok({"vm-param-get", "uuid=" + vm, "param-name=suspend-VDI"});
      if (ps == "suspended")
        EXPECT_TRUE(image_files().count(suspend_vdi)) << "VM " << vm << " is suspended without its image";
      else
        EXPECT_EQ(suspend_vdi, "<not in database>") << "VM " << vm << " is " << ps;
    }
    for (const auto& [vm, n] : procs.qemus_by_vm)
      EXPECT_TRUE(vm_set.count(vm)) << "an orphan QEMU in the run dir of " << vm << ", a VM no record has";
    // Images and VDIs, both ways.
    auto files = image_files();
    std::set<std::string> vdis;
    for (const auto& sr : split_commas(ok({"sr-list", "type=file", "--minimal"})))
      for (const auto& vdi : split_commas(ok({"vdi-list", "sr-uuid=" + sr, "--minimal"}))) vdis.insert(vdi);
    for (const auto& f : files) EXPECT_TRUE(vdis.count(f)) << "the image of " << f << " is referenced by no VDI";
    for (const auto& v : vdis) EXPECT_TRUE(files.count(v)) << "VDI " << v << " has lost its image";
    // Every VBD's VDI exists (a disk is never left pointing at nothing).
    for (const auto& vbd : split_commas(ok({"vbd-list", "type=Disk", "--minimal"}))) {
      auto vdi = ok({"vbd-param-get", "uuid=" + vbd, "param-name=vdi-uuid"});
      EXPECT_TRUE(vdis.count(vdi)) << "VBD " << vbd << " refers to VDI " << vdi;
    }
  }

  size_t disks_of(const std::string& vm) { return split_commas(ok({"vbd-list", "vm-uuid=" + vm, "type=Disk", "--minimal"})).size(); }
  bool exists_named(const std::string& name) { return !ok({"vm-list", "name-label=" + name, "--minimal"}).empty(); }

  VmstackdProcess d_;
  std::string state_;
  int rounds_ = 0;
};

TEST_F(CrashTest, StartAndShutdown) {
  auto vm = install("g");
  // A start cut short before QEMU runs: Halted, no tap, no process; the
  // next start works (before, every later start failed on the orphan).
  crash_at("start.before_launch", {"vm-start", "uuid=" + vm});
  EXPECT_EQ(power(vm), "halted");
  crash_at("start.before_launch", {"vm-start", "uuid=" + vm, "paused=true"});
  EXPECT_EQ(power(vm), "halted");
  // QEMU launched, the record not yet written: the guest is adopted.
  crash_at("launch.after_hypervisor", {"vm-start", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running");
  // Stopped, not yet recorded: Halted.
  crash_at("halt.after_stop", {"vm-shutdown", "uuid=" + vm, "--force"});
  EXPECT_EQ(power(vm), "halted");
  crash_at("launch.after_hypervisor", {"vm-start", "uuid=" + vm, "paused=true"});
  EXPECT_EQ(power(vm), "paused");
  crash_at("halt.after_stop", {"vm-shutdown", "uuid=" + vm, "--force"});
  EXPECT_EQ(power(vm), "halted");
  ok({"vm-start", "uuid=" + vm});
  // A clean shutdown asked of the guest, the daemon gone before it ended:
  // whichever way the guest went, record and process agree (checked).
  crash_at("shutdown.after_powerdown", {"vm-shutdown", "uuid=" + vm});
  if (power(vm) == "running") crash_at("halt.after_stop", {"vm-shutdown", "uuid=" + vm});
  EXPECT_EQ(power(vm), "halted");
  ok({"vm-start", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running");
  EXPECT_GE(rounds_, 7);
}

TEST_F(CrashTest, SuspendAndResume) {
  auto vm = install("g");
  ok({"vm-start", "uuid=" + vm});
  // No complete image: the guest runs on, the partial image goes.
  crash_at("suspend.after_image_created", {"vm-suspend", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running");
  // A complete image: Suspended, whatever step the crash cut.
  crash_at("suspend.after_save", {"vm-suspend", "uuid=" + vm});
  EXPECT_EQ(power(vm), "suspended");
  crash_at("launch.after_hypervisor", {"vm-resume", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running") << "the resumed guest is adopted, its image gone";
  crash_at("halt.after_stop", {"vm-suspend", "uuid=" + vm});
  EXPECT_EQ(power(vm), "suspended");
  crash_at("resume.after_launch", {"vm-resume", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running");
  crash_at("suspend.after_halt", {"vm-suspend", "uuid=" + vm});
  EXPECT_EQ(power(vm), "suspended");
  ok({"vm-resume", "uuid=" + vm});
  EXPECT_EQ(power(vm), "running");
  // A suspended VM's image discarded by a forced shutdown, cut half-way:
  // Halted without an image, not Suspended with a lost one.
  ok({"vm-suspend", "uuid=" + vm});
  crash_at("discard_image.after_destroy", {"vm-shutdown", "uuid=" + vm, "--force"});
  EXPECT_EQ(power(vm), "halted");
  EXPECT_GE(rounds_, 7);
}

TEST_F(CrashTest, CloneCopyInstallDestroy) {
  auto vm = install("g");
  ASSERT_EQ(disks_of(vm), 1u);
  // A half-made clone or copy goes, with its records and its files, and the
  // copy process with the daemon (before, it went on writing 400 MiB).
  for (const auto& [point, verb] : std::vector<std::pair<std::string, std::string>>{{"copy.after_vm", "vm-clone"},
                                                                                      {"vdi_copy.running", "vm-clone"},
                                                                                      {"copy.after_vm", "vm-copy"},
                                                                                      {"vdi_copy.running", "vm-copy"},
                                                                                      {"copy.after_disk", "vm-copy"}}) {
    crash_at(point, {verb, "uuid=" + vm, "new-name-label=half"});
    EXPECT_FALSE(exists_named("half")) << point << " during " << verb;
  }
  // An install cut while it makes the disk: what VM.clone made stays, still
  // a template (vm-install clears that last, as xapi's does), diskless, with
  // its provision spec, and no image is left behind.
  crash_at("vdi_create.after_image", {"vm-install", "template=Demo Linux (direct kernel boot)", "new-name-label=i1"});
  crash_at("provision.after_disk", {"vm-install", "template=Demo Linux (direct kernel boot)", "new-name-label=i2"});
  for (const auto& name : {"i1", "i2"}) {
    auto uuid = ok({"template-list", "name-label=" + std::string(name), "--minimal"});
    ASSERT_FALSE(uuid.empty()) << name;
    EXPECT_EQ(disks_of(uuid), 0u) << name;
    EXPECT_NE(ok({"vm-param-get", "uuid=" + uuid, "param-name=other-config", "param-key=disks"}), "") << name;
  }
  // A destroy cut half-way is finished.
  crash_at("destroy.after_devices", {"vm-destroy", "uuid=" + vm});
  EXPECT_FALSE(exists_named("g"));
  // A disk destroyed half-way (record gone, image not yet): the image goes.
  auto doomed = install("doomed");
  crash_at("vdi_destroy.after_record", {"vm-uninstall", "uuid=" + doomed, "--force"});
  EXPECT_EQ(disks_of(doomed), 0u);
  // And the originals still work.
  auto again = install("g2");
  auto copy = ok({"vm-copy", "uuid=" + again, "new-name-label=whole"});
  EXPECT_EQ(disks_of(copy), 1u);
  ok({"vm-start", "uuid=" + copy});
  check_consistent();
  EXPECT_GE(rounds_, 9);
}

TEST_F(CrashTest, DiskImport) {
  auto vm = install("g");
  auto vdi = ok({"vbd-list", "vm-uuid=" + vm, "type=Disk", "params=vdi-uuid", "--minimal"});
  ASSERT_EQ(vdi.size(), 36u);
  const std::string dir = state_ + "-files";
  fs::create_directories(dir);
  // Compared as qcow2 exports (the 1 GiB disk is mostly empty; qemu-img
  // writes the same contents the same way).
  ok({"vdi-export", "uuid=" + vdi, "format=qcow2", "filename=" + dir + "/before.qcow2"});
  const auto before = read_file(dir + "/before.qcow2");
  ASSERT_EQ(before.substr(0, 4), "QFI\xfb");
  {
    std::ofstream f(dir + "/new.raw", std::ios::binary);
    f << std::string(1 << 20, 'N');
  }
  // Killed with the upload staged, and again with the new image made but
  // not yet in place: the disk keeps its contents, nothing staged stays.
  for (const char* point : {"import_raw_vdi.staged", "vdi_import.converted"}) {
    crash_at(point, {"vdi-import", "uuid=" + vdi, "filename=" + dir + "/new.raw"});
    const std::string out = dir + "/after-" + point;
    ok({"vdi-export", "uuid=" + vdi, "format=qcow2", "filename=" + out});
    EXPECT_TRUE(read_file(out) == before) << point;
    EXPECT_TRUE(fs::is_empty(state_ + "/tmp")) << point;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(state_ + "/sr", ec), end; !ec && it != end; it.increment(ec))
      EXPECT_NE(it->path().extension(), ".import") << it->path();
  }
  // And the import itself then works: the disk is the file, zeros after it.
  ok({"vdi-import", "uuid=" + vdi, "filename=" + dir + "/new.raw"});
  ok({"vdi-export", "uuid=" + vdi, "format=qcow2", "filename=" + dir + "/after.qcow2"});
  auto same = run_command({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", dir + "/new.raw", dir + "/after.qcow2"}, 60s);
  EXPECT_TRUE(same.ok()) << same.out << same.err;
  ok({"vm-start", "uuid=" + vm});
  EXPECT_EQ(rounds_, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vmstack::test
