// build_qemu_argv: the QEMU command line for a QemuSpec. Pure (no I/O).
// docs/hv.md explains every flag.
#include <cctype>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv/domain.h"

namespace vmstack::hv {

const char* to_string(Accel a) { return a == Accel::kvm ? "kvm" : "tcg"; }

namespace {

// QemuOpts values: a ',' inside a value is written ",,".
std::string esc(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == ',') out += ",,";
    else out += c;
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

bool valid_mac(const std::string& m) {
  if (m.size() != 17) return false;
  for (size_t i = 0; i < m.size(); ++i) {
    char c = m[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// An id fragment from VBD.userdevice ("0", "3", "xvda"): alnum only.
std::string id_fragment(const std::string& device, size_t index) {
  std::string f;
  for (char c : device)
    if (std::isalnum(static_cast<unsigned char>(c))) f += c;
  if (f.empty()) f = "i" + std::to_string(index);
  return f;
}

bool plain_word(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace

std::string machine_for(const QemuSpec& spec) {
  if (!spec.machine.empty()) return spec.machine;
  // PV: microvm boots the PVH vmlinux fastest (docs/hv.md) but has no IDE/
  // AHCI for a CD drive and no VGA for VNC; those PV guests get q35.
  bool needs_pc = spec.vnc;
  for (const auto& d : spec.disks) needs_pc = needs_pc || d.cdrom;
  return !spec.kernel.empty() && !needs_pc ? "microvm" : "q35";
}

std::vector<std::string> build_qemu_argv(const QemuSpec& spec, const std::string& qemu_binary) {
  if (spec.run_dir.empty()) throw std::invalid_argument("QemuSpec.run_dir is empty");
  if (spec.vcpus_at_startup < 1 || spec.vcpus_max < spec.vcpus_at_startup)
    throw std::invalid_argument("QemuSpec: need 1 <= vcpus_at_startup <= vcpus_max");
  if (spec.memory_static_max < (16LL << 20)) throw std::invalid_argument("QemuSpec: memory_static_max below 16 MiB");
  const std::string machine_type = machine_for(spec);
  if (!plain_word(machine_type)) throw std::invalid_argument("QemuSpec: bad machine type '" + machine_type + "'");
  // sockaddr_un holds 108 bytes: QEMU would fail later with a vaguer error.
  if (spec.run_dir.size() + sizeof("/console.sock") > 108)
    throw std::invalid_argument("QemuSpec.run_dir too long for unix sockets (max 94 chars): " + spec.run_dir);
  const bool pv = !spec.kernel.empty();
  const bool microvm = machine_type.rfind("microvm", 0) == 0;
  // "pc" / "pc-i440fx-7.2": PIIX, two IDE buses with two units each;
  // "q35" / "pc-q35-7.2": AHCI, one unit per bus.
  const bool piix = machine_type == "pc" || machine_type.rfind("pc-i440fx", 0) == 0;
  if (microvm && !pv) throw std::invalid_argument("QemuSpec: microvm has no firmware boot; it needs a PV kernel");
  if (microvm && spec.vnc) throw std::invalid_argument("QemuSpec: microvm has no display device for VNC");
  const std::string& dir = spec.run_dir;

  std::vector<std::string> a;
  auto add = [&](std::initializer_list<std::string> xs) { a.insert(a.end(), xs); };

  a.push_back(qemu_binary);
  add({"-name", "guest=" + esc(spec.name.empty() ? spec.uuid : spec.name) + ",debug-threads=on"});
  if (!spec.uuid.empty()) add({"-uuid", spec.uuid});
  add({"-nodefaults", "-no-user-config"});
  add({"-msg", "timestamp=on"});

  // microvm: ACPI for the power button (GED), PCIe for virtio-*-pci (balloon,
  // disks, NICs behave as on q35), RTC for wall-clock time.
  std::string machine = machine_type;
  if (microvm) machine += ",acpi=on,pcie=on,rtc=on";
  add({"-machine", machine});
  add({"-accel", spec.accel == Accel::kvm ? "kvm" : "tcg"});
  if (spec.accel == Accel::kvm) add({"-cpu", "host"});
  add({"-smp", "cpus=" + std::to_string(spec.vcpus_at_startup) + ",maxcpus=" + std::to_string(spec.vcpus_max)});
  int64_t mib = (spec.memory_static_max + (1LL << 20) - 1) >> 20;
  add({"-m", "size=" + std::to_string(mib) + "M"});

  // Lifecycle: QEMU stays up when the guest powers off so we can tell a
  // guest shutdown from a crash and read final state; QMP drives everything.
  add({"-no-shutdown"});
  add({"-chardev", "socket,id=qmp0,path=" + esc(dir + "/qmp.sock") + ",server=on,wait=off"});
  add({"-mon", "chardev=qmp0,mode=control"});
  add({"-pidfile", dir + "/qemu.pid"});

  // Serial console: a unix socket for interactive use plus a log of everything.
  add({"-chardev", "socket,id=console0,path=" + esc(dir + "/console.sock") + ",server=on,wait=off,logfile=" +
                       esc(dir + "/console.log") + ",logappend=on"});
  add({"-serial", "chardev:console0"});

  add({"-display", "none"});
  if ((!pv || spec.vnc) && !microvm) add({"-device", "VGA,id=video0"});
  if (spec.vnc) add({"-vnc", "127.0.0.1:0,to=99"});

  add({"-device", "virtio-balloon-pci,id=balloon0"});

  if (pv) {
    add({"-kernel", spec.kernel});
    if (!spec.ramdisk.empty()) add({"-initrd", spec.ramdisk});
    std::string cmdline = spec.cmdline;
    if (cmdline.find("console=") == std::string::npos)
      cmdline = cmdline.empty() ? "console=ttyS0" : "console=ttyS0 " + cmdline;
    if (microvm && spec.tsc_khz > 0 && cmdline.find("tsc_early_khz=") == std::string::npos)
      cmdline += " tsc_early_khz=" + std::to_string(spec.tsc_khz);
    add({"-append", cmdline});
  } else {
    std::string order;
    for (char c : spec.boot_order)
      if (c == 'c' || c == 'd' || c == 'n') order += c;
    if (order.empty()) order = "cd";
    add({"-boot", "order=" + order + ",menu=off"});
  }

  size_t cd_index = 0;
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const DiskSpec& d = spec.disks[i];
    std::string id = "vbd" + id_fragment(d.device, i);
    std::string drive = "drive-" + id;
    if (d.format != "qcow2" && d.format != "raw")
      throw std::invalid_argument("DiskSpec: unsupported format '" + d.format + "'");
    if (d.cdrom) {
      if (microvm) throw std::invalid_argument("DiskSpec: cdrom needs an IDE/AHCI machine (not microvm)");
      std::string opt = "if=none,id=" + drive + ",media=cdrom,readonly=on";
      if (!d.path.empty()) opt += ",file=" + esc(d.path) + ",format=" + d.format;
      add({"-drive", opt});
      std::string bus = piix ? "ide." + std::to_string(cd_index / 2) + ",unit=" + std::to_string(cd_index % 2)
                             : "ide." + std::to_string(cd_index);
      add({"-device", "ide-cd,drive=" + drive + ",id=" + id + ",bus=" + bus});
      ++cd_index;
    } else {
      if (d.path.empty()) throw std::invalid_argument("DiskSpec: disk " + id + " has no path");
      std::string opt = "file=" + esc(d.path) + ",format=" + d.format + ",if=none,id=" + drive +
                        ",cache=writeback,discard=unmap";
      if (d.readonly) opt += ",readonly=on";
      add({"-drive", opt});
      add({"-device", "virtio-blk-pci,drive=" + drive + ",id=" + id});
    }
  }

  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicSpec& n = spec.nics[i];
    if (!valid_mac(n.mac)) throw std::invalid_argument("NicSpec: bad MAC '" + n.mac + "'");
    if (!plain_word(n.model)) throw std::invalid_argument("NicSpec: bad model '" + n.model + "'");
    std::string idx = std::to_string(i);
    std::string dev = n.model + ",id=nic" + idx + ",mac=" + n.mac;
    if (!n.tap.empty()) {
      add({"-netdev", "tap,id=net" + idx + ",ifname=" + esc(n.tap) + ",script=no,downscript=no"});
      dev += ",netdev=net" + idx;
    }
    add({"-device", dev});
  }

  if (spec.start_paused) add({"-S"});
  if (!spec.incoming_file.empty()) add({"-incoming", "exec:cat " + shell_quote(spec.incoming_file)});

  a.insert(a.end(), spec.extra_args.begin(), spec.extra_args.end());
  return a;
}

}  // namespace vmstack::hv
