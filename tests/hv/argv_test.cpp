#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hv/domain.h"

using namespace vmstack::hv;

namespace {

QemuSpec base() {
  QemuSpec s;
  s.uuid = "0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11";
  s.name = "vm1";
  s.run_dir = "/run/vmstack/vm1";
  return s;
}

// Value following `flag` (first occurrence); "" if absent.
std::string after(const std::vector<std::string>& a, const std::string& flag, int nth = 0) {
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag && nth-- == 0) return a[i + 1];
  return "";
}
bool has(const std::vector<std::string>& a, const std::string& x) { return std::find(a.begin(), a.end(), x) != a.end(); }
std::vector<std::string> all_after(const std::vector<std::string>& a, const std::string& flag) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag) out.push_back(a[i + 1]);
  return out;
}
bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

}  // namespace

TEST(QemuArgv, Basics) {
  auto a = build_qemu_argv(base());
  EXPECT_EQ(a[0], "qemu-system-x86_64");
  EXPECT_EQ(after(a, "-name"), "guest=vm1,debug-threads=on");
  EXPECT_EQ(after(a, "-uuid"), "0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11");
  EXPECT_TRUE(has(a, "-nodefaults"));
  EXPECT_TRUE(has(a, "-no-user-config"));
  EXPECT_TRUE(has(a, "-no-shutdown"));
  EXPECT_EQ(after(a, "-display"), "none");
  EXPECT_EQ(after(a, "-machine"), "q35");
  EXPECT_EQ(after(a, "-accel"), "tcg");
  EXPECT_FALSE(has(a, "-cpu"));
  EXPECT_EQ(after(a, "-smp"), "cpus=1,maxcpus=1");
  EXPECT_EQ(after(a, "-m"), "size=256M");
  EXPECT_EQ(after(a, "-pidfile"), "/run/vmstack/vm1/qemu.pid");
  EXPECT_FALSE(has(a, "-S"));
  EXPECT_FALSE(has(a, "-incoming"));
  EXPECT_FALSE(has(a, "-vnc"));
  auto devs = all_after(a, "-device");
  EXPECT_TRUE(has(devs, "virtio-balloon-pci,id=balloon0"));
  EXPECT_EQ(build_qemu_argv(base(), "/opt/qemu/bin/qemu")[0], "/opt/qemu/bin/qemu");
}

TEST(QemuArgv, QmpAndConsole) {
  auto a = build_qemu_argv(base());
  auto chardevs = all_after(a, "-chardev");
  ASSERT_EQ(chardevs.size(), 2u);
  EXPECT_EQ(chardevs[0], "socket,id=qmp0,path=/run/vmstack/vm1/qmp.sock,server=on,wait=off");
  EXPECT_EQ(after(a, "-mon"), "chardev=qmp0,mode=control");
  EXPECT_EQ(chardevs[1],
            "socket,id=console0,path=/run/vmstack/vm1/console.sock,server=on,wait=off,"
            "logfile=/run/vmstack/vm1/console.log,logappend=on");
  EXPECT_EQ(after(a, "-serial"), "chardev:console0");
}

TEST(QemuArgv, KvmUsesHostCpu) {
  auto s = base();
  s.accel = Accel::kvm;
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-accel"), "kvm");
  EXPECT_EQ(after(a, "-cpu"), "host");
  EXPECT_STREQ(to_string(Accel::kvm), "kvm");
  EXPECT_STREQ(to_string(Accel::tcg), "tcg");
}

TEST(QemuArgv, CpusAndMemory) {
  auto s = base();
  s.vcpus_at_startup = 2;
  s.vcpus_max = 4;
  s.memory_static_max = (1LL << 30) + 1;  // rounds up to whole MiB
  s.memory_target = 512LL << 20;
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-smp"), "cpus=2,maxcpus=4");
  EXPECT_EQ(after(a, "-m"), "size=1025M");
  s.vcpus_at_startup = 5;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.vcpus_at_startup = 0;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.vcpus_at_startup = 1;
  s.memory_static_max = 1 << 20;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, PvDirectKernelBoot) {
  auto s = base();
  s.kernel = "/boot/vmlinux";
  s.ramdisk = "/boot/initrd.img";
  s.cmdline = "root=/dev/vda1 ro";
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-kernel"), "/boot/vmlinux");
  EXPECT_EQ(after(a, "-initrd"), "/boot/initrd.img");
  EXPECT_EQ(after(a, "-append"), "console=ttyS0 root=/dev/vda1 ro");
  EXPECT_FALSE(has(a, "-boot"));
  EXPECT_FALSE(any_contains(all_after(a, "-device"), "VGA"));  // PV: serial console only
  s.cmdline = "console=hvc0 quiet";
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=hvc0 quiet");
  s.cmdline.clear();
  s.ramdisk.clear();
  a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-append"), "console=ttyS0");
  EXPECT_FALSE(has(a, "-initrd"));
}

TEST(QemuArgv, HvmBootOrderAndVga) {
  auto s = base();
  s.boot_order = "dc";
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-boot"), "order=dc,menu=off");
  EXPECT_FALSE(has(a, "-kernel"));
  EXPECT_TRUE(has(all_after(a, "-device"), "VGA,id=video0"));
  s.boot_order = "ncx";  // unknown letters dropped
  EXPECT_EQ(after(build_qemu_argv(s), "-boot"), "order=nc,menu=off");
  s.boot_order = "";
  EXPECT_EQ(after(build_qemu_argv(s), "-boot"), "order=cd,menu=off");
}

TEST(QemuArgv, Vnc) {
  auto s = base();
  s.vnc = true;
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-vnc"), "127.0.0.1:0,to=99");
  EXPECT_EQ(after(a, "-display"), "none");
  s.kernel = "/k";  // PV with VNC still gets a display device
  EXPECT_TRUE(has(all_after(build_qemu_argv(s), "-device"), "VGA,id=video0"));
}

TEST(QemuArgv, Disks) {
  auto s = base();
  s.disks.push_back({"/srv/sr/a.qcow2", "qcow2", false, false, true, "0"});
  s.disks.push_back({"/srv/sr/b.raw", "raw", false, true, false, "1"});
  s.disks.push_back({"/srv/iso/inst,all.iso", "raw", true, true, false, "3"});
  s.disks.push_back({"", "raw", true, true, false, "4"});  // empty CD drive
  auto a = build_qemu_argv(s);
  auto drives = all_after(a, "-drive");
  ASSERT_EQ(drives.size(), 4u);
  EXPECT_EQ(drives[0], "file=/srv/sr/a.qcow2,format=qcow2,if=none,id=drive-vbd0,cache=writeback,discard=unmap");
  EXPECT_EQ(drives[1], "file=/srv/sr/b.raw,format=raw,if=none,id=drive-vbd1,cache=writeback,discard=unmap,readonly=on");
  EXPECT_EQ(drives[2], "if=none,id=drive-vbd3,media=cdrom,readonly=on,file=/srv/iso/inst,,all.iso,format=raw");
  EXPECT_EQ(drives[3], "if=none,id=drive-vbd4,media=cdrom,readonly=on");
  auto devs = all_after(a, "-device");
  EXPECT_TRUE(has(devs, "virtio-blk-pci,drive=drive-vbd0,id=vbd0"));
  EXPECT_TRUE(has(devs, "virtio-blk-pci,drive=drive-vbd1,id=vbd1"));
  EXPECT_TRUE(has(devs, "ide-cd,drive=drive-vbd3,id=vbd3,bus=ide.0"));
  EXPECT_TRUE(has(devs, "ide-cd,drive=drive-vbd4,id=vbd4,bus=ide.1"));

  s.machine = "pc";  // PIIX: two buses, two units each
  devs = all_after(build_qemu_argv(s), "-device");
  EXPECT_TRUE(has(devs, "ide-cd,drive=drive-vbd3,id=vbd3,bus=ide.0,unit=0"));
  EXPECT_TRUE(has(devs, "ide-cd,drive=drive-vbd4,id=vbd4,bus=ide.0,unit=1"));
}

TEST(QemuArgv, DiskValidation) {
  auto s = base();
  s.disks.push_back({"/x", "vmdk", false, false, false, "0"});
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.disks[0] = {"", "raw", false, false, false, "0"};
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.disks[0] = {"/x", "raw", false, false, false, ""};  // no userdevice: index-based id
  EXPECT_TRUE(has(all_after(build_qemu_argv(s), "-device"), "virtio-blk-pci,drive=drive-vbdi0,id=vbdi0"));
  s.disks[0] = {"/x", "raw", true, true, false, "3"};
  s.machine = "microvm";
  s.kernel = "/k";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, Nics) {
  auto s = base();
  s.nics.push_back({"aa:bb:cc:dd:ee:01", "vif1.0", "virtio-net-pci"});
  s.nics.push_back({"aa:bb:cc:dd:ee:02", "", "e1000"});
  auto a = build_qemu_argv(s);
  auto netdevs = all_after(a, "-netdev");
  ASSERT_EQ(netdevs.size(), 1u);
  EXPECT_EQ(netdevs[0], "tap,id=net0,ifname=vif1.0,script=no,downscript=no");
  auto devs = all_after(a, "-device");
  EXPECT_TRUE(has(devs, "virtio-net-pci,id=nic0,mac=aa:bb:cc:dd:ee:01,netdev=net0"));
  EXPECT_TRUE(has(devs, "e1000,id=nic1,mac=aa:bb:cc:dd:ee:02"));
  s.nics[1].mac = "aa:bb:cc:dd:ee:02,x=y";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.nics[1].mac = "aa:bb:cc:dd:ee:02";
  s.nics[1].model = "e1000,romfile=/etc/shadow";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, PausedIncomingExtra) {
  auto s = base();
  s.start_paused = true;
  s.incoming_file = "/var/lib/vmstack/suspend/it's.img";
  s.extra_args = {"-no-reboot", "-global", "x=y"};
  auto a = build_qemu_argv(s);
  EXPECT_TRUE(has(a, "-S"));
  EXPECT_EQ(after(a, "-incoming"), "exec:cat '/var/lib/vmstack/suspend/it'\\''s.img'");
  ASSERT_GE(a.size(), 3u);
  EXPECT_EQ(a[a.size() - 3], "-no-reboot");
  EXPECT_EQ(a.back(), "x=y");
}

TEST(QemuArgv, EscapesCommasAndValidates) {
  auto s = base();
  s.name = "web,1";
  s.run_dir = "/run/a,b";
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-name"), "guest=web,,1,debug-threads=on");
  EXPECT_EQ(all_after(a, "-chardev")[0], "socket,id=qmp0,path=/run/a,,b/qmp.sock,server=on,wait=off");
  s.name.clear();  // falls back to the uuid
  EXPECT_EQ(after(build_qemu_argv(s), "-name"), "guest=0f6e5b0e-6d7a-4d3b-9a3e-2b1f0c7e9d11,debug-threads=on");
  s.run_dir.clear();
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s = base();
  s.machine = "q35,accel=kvm";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
}

TEST(QemuArgv, Microvm) {
  auto s = base();
  s.machine = "microvm";
  s.kernel = "/k";
  auto a = build_qemu_argv(s);
  EXPECT_EQ(after(a, "-machine"), "microvm,acpi=on,pcie=on,rtc=on");
  EXPECT_FALSE(any_contains(all_after(a, "-device"), "VGA"));
}

TEST(QemuArgv, AutomaticMachine) {
  auto s = base();
  EXPECT_EQ(machine_for(s), "q35");  // HVM: BIOS boot on q35
  s.kernel = "/k";
  EXPECT_EQ(machine_for(s), "microvm");  // PV: fastest reliable path
  EXPECT_EQ(after(build_qemu_argv(s), "-machine"), "microvm,acpi=on,pcie=on,rtc=on");
  s.vnc = true;  // microvm has no display device
  EXPECT_EQ(machine_for(s), "q35");
  s.vnc = false;
  s.disks.push_back({"", "raw", true, true, false, "3"});  // nor IDE for a CD drive
  EXPECT_EQ(machine_for(s), "q35");
  EXPECT_TRUE(has(all_after(build_qemu_argv(s), "-device"), "ide-cd,drive=drive-vbd3,id=vbd3,bus=ide.0"));
  s.disks.clear();
  s.machine = "pc";  // an explicit choice (platform:machine) wins
  EXPECT_EQ(after(build_qemu_argv(s), "-machine"), "pc");
}

TEST(QemuArgv, MicrovmTscEarlyKhz) {
  auto s = base();
  s.kernel = "/k";
  s.cmdline = "quiet";
  s.tsc_khz = 2096014;
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet tsc_early_khz=2096014");
  s.cmdline = "quiet tsc_early_khz=1000000";  // the guest's own setting wins
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet tsc_early_khz=1000000");
  s.cmdline = "quiet";
  s.machine = "q35";  // HPET and the PM timer make calibration reliable there
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet");
  s.machine.clear();
  s.tsc_khz = 0;  // unknown: nothing added (launch() measures it)
  EXPECT_EQ(after(build_qemu_argv(s), "-append"), "console=ttyS0 quiet");
}

TEST(QemuArgv, MicrovmRejectsWhatItCannotDo) {
  auto s = base();
  s.machine = "microvm";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);  // no firmware: needs a kernel
  s.kernel = "/k";
  s.vnc = true;
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
  s.vnc = false;
  EXPECT_NO_THROW(build_qemu_argv(s));
}

TEST(QemuArgv, NamedMachineVersions) {
  auto s = base();
  s.disks.push_back({"/a.iso", "raw", true, true, false, "3"});
  s.machine = "pc-i440fx-7.2";
  EXPECT_TRUE(has(all_after(build_qemu_argv(s), "-device"), "ide-cd,drive=drive-vbd3,id=vbd3,bus=ide.0,unit=0"));
  s.machine = "pc-q35-7.2";  // AHCI: one unit per bus, like q35
  EXPECT_TRUE(has(all_after(build_qemu_argv(s), "-device"), "ide-cd,drive=drive-vbd3,id=vbd3,bus=ide.0"));
}

TEST(QemuArgv, RunDirTooLongForSockets) {
  auto s = base();
  s.run_dir = "/" + std::string(93, 'x');  // 94 chars: console.sock path is exactly 107
  EXPECT_NO_THROW(build_qemu_argv(s));
  s.run_dir += "x";
  EXPECT_THROW(build_qemu_argv(s), std::invalid_argument);
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
