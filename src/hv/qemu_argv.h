// The QEMU command line of a domain, built by one small builder per device
// (as libvirt's qemu_command.c does), each appending its options. Pure
// functions of the DomainSpec: golden-file tests pin their output
// (tests/hv/golden/<case>.json -> <case>.args). docs/hv.md explains every flag.
#pragma once

#include <string>
#include <vector>

#include "hv/hypervisor.h"

namespace vmstack::hv {

// The machine type the argv uses (resolves DomainSpec::machine's automatic choice).
std::string machine_for(const DomainSpec& spec);

// The whole argv (argv[0] is the binary). Throws std::invalid_argument on a
// spec QEMU would refuse (checked here so the error names the field).
std::vector<std::string> build_qemu_argv(const DomainSpec& spec, const std::string& qemu_binary = "qemu-system-x86_64");

namespace argv {

using Args = std::vector<std::string>;

// What the builders share: the resolved machine type and its buses.
struct Machine {
  std::string type;    // "q35", "pc", "microvm", "pc-q35-7.2"...
  bool microvm = false;
  bool piix = false;   // "pc"/"pc-i440fx-*": two IDE buses, two units each; q35: AHCI, one unit per bus
  bool pv = false;     // direct kernel boot
};
Machine machine_of(const DomainSpec& spec);

void identity(Args& a, const DomainSpec& s);             // -name, -uuid, -nodefaults, -msg
void machine(Args& a, const DomainSpec& s, const Machine& m);  // -machine, -accel, -cpu
void cpu_memory(Args& a, const DomainSpec& s);           // -smp, -m
void control(Args& a, const DomainSpec& s);              // -no-shutdown, QMP
void console(Args& a);                                  // serial console socket + log
void display(Args& a, const DomainSpec& s, const Machine& m);  // -display none, VGA, -vnc unix:
void balloon(Args& a);                                   // virtio-balloon
void hotplug_ports(Args& a, const DomainSpec& s, const Machine& m);  // spare PCIe root ports
void boot(Args& a, const DomainSpec& s, const Machine& m);     // -kernel/-initrd/-append or -boot
// Disks: -blockdev (protocol node, then format node) + -device. `cd_index`
// counts CD drives already placed (their IDE/AHCI bus slot).
void disk(Args& a, const DomainSpec& s, size_t index, const Machine& m, size_t& cd_index);
void nic(Args& a, const DomainSpec& s, size_t index);    // -netdev tap + -device
void incoming(Args& a, const DomainSpec& s);             // -S, -incoming defer
void sandbox(Args& a, const DomainSpec& s);              // -sandbox

// QEMU's working directory, below the run dir: hv::guest_dir_of(run_dir).
// The run dir itself is root's; this one belongs to the guest's user.
inline constexpr const char* kGuestDir = hv::kGuestDir;
// What QEMU makes in its guest dir, named relative to it: QEMU runs with the
// guest dir as its working directory, so a deprivileged QEMU needs no right
// on the private directories above it.
inline constexpr const char* kQmpSocket = "qmp.sock";
inline constexpr const char* kConsoleSocket = "console.sock";
inline constexpr const char* kConsoleLog = "console.log";
inline constexpr const char* kVncSocket = "vnc.sock";
// In the run dir (root's), written by the toolstack, not by QEMU: -pidfile
// resolves the path from the root, which a deprivileged QEMU cannot
// traverse, and a file QEMU wrote could name any process.
inline constexpr const char* kPidFile = "qemu.pid";
// In the run dir: QEMU's stdout and stderr, opened by the toolstack.
inline constexpr const char* kQemuLog = "qemu.log";

// A deprivileged guest opens no host file by name: each disk image is the
// descriptor the toolstack passes at child fd kFirstDiskFd + index of the
// disk, in QEMU fd set index + 1 (-add-fd), and is opened as /dev/fdset/<n>.
inline constexpr int kFirstDiskFd = 100;
// Likewise each NIC's tap: the toolstack attaches to the tap (it can open
// /dev/net/tun) and passes the descriptor at kFirstNicFd + index of the NIC.
inline constexpr int kFirstNicFd = 200;
int disk_fd(size_t disk_index);
int disk_fdset(size_t disk_index);
// What QEMU opens for the disk: its path, or /dev/fdset/<n> when passed.
std::string disk_filename(const DomainSpec& s, size_t disk_index);

// The -blockdev JSON objects of a disk (protocol node, format node), for the
// command line and for QMP blockdev-add on hotplug; `filename` is what QEMU
// opens (the path, or a /dev/fdset/<n>).
std::vector<std::string> blockdev_nodes(const DiskSpec& d, const std::string& filename);
std::string node_name(const DiskSpec& d);      // the format node the device uses
std::string file_node_name(const DiskSpec& d); // the protocol (file) node
// The root ports hotplug_ports() creates ("hp0"...); none on PCI machines (pc).
std::vector<std::string> hotplug_port_ids(const DomainSpec& s);

}  // namespace argv
}  // namespace vmstack::hv
