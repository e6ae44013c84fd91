// The QEMU command line. Golden files (as libvirt's qemuxml2argv tests): each
// tests/hv/golden/<case>.json is a DomainSpec, <case>.args the argv it must
// produce, one argument per line. VMSTACK_REGENERATE_GOLDEN=1 rewrites the
// .args files from the builders (then read the diff before committing).
// Below them, the builders' refusals and automatic choices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hv/qemu_argv.h"
#include "hv/qemu_hypervisor.h"

using namespace vmstack::hv;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(VMSTACK_SOURCE_DIR) / "tests/hv/golden";

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string args_text(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += a + "\n";
  return out;
}

DomainSpec base() {
  DomainSpec s;
  s.uuid = "0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11";
  s.name = "vm1";
  s.run_dir = "/run/vmstack/vm1";
  return s;
}

std::string after(const std::vector<std::string>& a, const std::string& flag) {
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag) return a[i + 1];
  return "";
}

}  // namespace

TEST(QemuArgvGolden, EveryCaseMatchesItsArgsFile) {
  bool regenerate = std::getenv("VMSTACK_REGENERATE_GOLDEN") != nullptr;
  std::set<std::string> cases, args_files;
  for (const auto& e : fs::directory_iterator(kGolden)) {
    if (e.path().extension() == ".json") cases.insert(e.path().stem().string());
    if (e.path().extension() == ".args") args_files.insert(e.path().stem().string());
  }
  ASSERT_GE(cases.size(), 8u) << "golden cases missing from " << kGolden;
  for (const auto& name : cases) {
    SCOPED_TRACE(name);
    auto spec = spec_from_json(slurp(kGolden / (name + ".json")));
    std::string got = args_text(build_qemu_argv(spec));
    auto expected_path = kGolden / (name + ".args");
    if (regenerate) {
      std::ofstream(expected_path) << got;
      continue;
    }
    ASSERT_TRUE(fs::exists(expected_path)) << "no " << expected_path << " (VMSTACK_REGENERATE_GOLDEN=1 writes it)";
    EXPECT_EQ(got, slurp(expected_path));
  }
  for (const auto& name : args_files) EXPECT_TRUE(cases.count(name)) << name << ".args has no " << name << ".json";
}

TEST(QemuArgvGolden, SpecJsonRoundTrips) {
  auto spec = spec_from_json(slurp(kGolden / "hvm_install_cd.json"));
  auto again = spec_from_json(spec_to_json(spec));
  EXPECT_EQ(args_text(build_qemu_argv(again)), args_text(build_qemu_argv(spec)));
  EXPECT_THROW(spec_from_json("{not json"), std::runtime_error);
  EXPECT_THROW(spec_from_json("[1,2]"), std::runtime_error);
}

TEST(QemuArgv, RefusesWhatQemuWould) {
  auto s = base();
  s.vcpus_at_startup = 2;
  s.vcpus_max = 1;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s = base();
  s.vcpus_at_startup = 0;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s = base();
  s.memory_static_max = 1 << 20;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s = base();
  s.run_dir.clear();
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s = base();
  s.machine = "q35,accel=kvm";  // no smuggled options through the machine type
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, DiskValidation) {
  auto s = base();
  DiskSpec d;
  d.device = "0";
  d.path = "/x";
  d.format = "vmdk";
  s.disks = {d};
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.disks[0].format = "raw";
  s.disks[0].path.clear();  // a disk (not a CD) needs an image
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.disks[0].path = "/x";
  s.disks[0].device.clear();  // no userdevice: an index-based id
  EXPECT_NE(args_text(build_qemu_argv(s)).find("virtio-blk-pci,id=vbdi0,drive=drive-vbdi0"), std::string::npos);
  s.disks[0].cdrom = true;
  s.machine = "microvm";
  s.kernel = "/k";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);  // microvm has no IDE
}

TEST(QemuArgv, NicValidation) {
  auto s = base();
  NicSpec n;
  n.device = "0";
  n.mac = "aa:bb:cc:dd:ee:02,x=y";
  n.tap = "vif1.0";
  s.nics = {n};
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.nics[0].mac = "aa:bb:cc:dd:ee:02";
  s.nics[0].model = "e1000,romfile=/etc/shadow";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.nics[0].model = "virtio-net-pci";
  s.nics[0].tap = "x,script=/tmp/evil";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.nics[0].tap.clear();
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, DeviceIdsAreUniqueAndStable) {
  DomainSpec s = base();
  DiskSpec a, b, c;
  a.device = "0";
  b.device = "xvda0";
  c.device = "0";  // a duplicate userdevice still gets its own id
  s.disks = {a, b, c};
  NicSpec n;
  n.device = "0";
  s.nics = {n};
  assign_device_ids(s);
  EXPECT_EQ(s.disks[0].id, "vbd0");
  EXPECT_EQ(s.disks[1].id, "vbdxvda0");
  EXPECT_NE(s.disks[2].id, "vbd0");
  EXPECT_EQ(s.nics[0].id, "vif0");
  auto again = s;
  assign_device_ids(again);  // ids once given are kept
  EXPECT_EQ(again.disks[2].id, s.disks[2].id);
}

TEST(QemuArgv, AutomaticMachine) {
  auto s = base();
  EXPECT_EQ(machine_for(s), "q35");  // HVM: BIOS boot on q35
  s.kernel = "/k";
  EXPECT_EQ(machine_for(s), "microvm");  // PV: fastest reliable path
  s.vnc = true;  // microvm has no display device
  EXPECT_EQ(machine_for(s), "q35");
  s.vnc = false;
  DiskSpec cd;
  cd.cdrom = true;
  cd.device = "3";
  s.disks = {cd};  // nor IDE for a CD drive
  EXPECT_EQ(machine_for(s), "q35");
  s.machine = "pc";  // an explicit choice (platform:machine) wins
  EXPECT_EQ(machine_for(s), "pc");
  s = base();
  s.machine = "microvm";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);  // no firmware: needs a kernel
}

TEST(QemuArgv, MicrovmTscEarlyKhz) {
  auto s = base();
  s.kernel = "/k";
  s.cmdline = "quiet";
  s.tsc_khz = 2096014;
  s.hotplug_slots = 0;
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet tsc_early_khz=2096014");
  s.cmdline = "quiet tsc_early_khz=1000000";  // the guest's own setting wins
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet tsc_early_khz=1000000");
  s.hotplug_slots = 2;  // microvm needs the kernel's own PCIe hotplug for its root ports
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet tsc_early_khz=1000000 pcie_ports=native");
  s.cmdline = "quiet";
  s.machine = "q35";  // HPET and the PM timer make calibration reliable there
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet");
}

TEST(QemuArgv, RunDirTooLongForSockets) {
  auto s = base();
  // 89 chars: <run_dir>/qemu/console.sock, the longest path the toolstack
  // connects to, is exactly 107 (sun_path holds 108 with the NUL).
  s.run_dir = "/" + std::string(88, 'x');
  EXPECT_EQ((s.run_dir + "/qemu/console.sock").size(), 107u);
  EXPECT_NO_THROW(build_qemu_argv(s));
  s.run_dir += "x";
  try {
    build_qemu_argv(s);
    ADD_FAILURE() << "a 90-char run dir was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max 89 chars"), std::string::npos) << e.what();
  }
}

TEST(HostTsc, PlausibleAndStable) {
  int64_t khz = host_tsc_khz();
  ASSERT_GT(khz, 0) << "x86 host expected";
  EXPECT_GT(khz, 200'000);       // > 200 MHz
  EXPECT_LT(khz, 10'000'000);    // < 10 GHz
  EXPECT_EQ(host_tsc_khz(), khz);  // measured once
  // Where the kernel knows the TSC rate exactly (VMs, modern CPUs) it shows
  // in /proc/cpuinfo as "cpu MHz"; the measurement must agree within 1%.
  std::ifstream f("/proc/cpuinfo");
  std::string line, mhz;
  bool known = false;
  while (std::getline(f, line)) {
    if (mhz.empty() && line.rfind("cpu MHz", 0) == 0) mhz = line.substr(line.find(':') + 1);
    if (line.rfind("flags", 0) == 0 && line.find(" tsc_known_freq") != std::string::npos) known = true;
  }
  if (known && !mhz.empty()) {
    EXPECT_NEAR(static_cast<double>(khz), std::stod(mhz) * 1000, std::stod(mhz) * 10);
  }
}
