// The machine: type, accelerator, CPU model, vCPUs and memory.
#include <stdexcept>

#include "hv/argv/common.h"
#include "hv/qemu_argv.h"

namespace vmstack::hv {

std::string machine_for(const DomainSpec& spec) {
  if (!spec.machine.empty()) return spec.machine;
  // PV: microvm boots the PVH vmlinux fastest (docs/hv.md) but has no IDE/
  // AHCI for a CD drive and no VGA for VNC; those PV guests get q35.
  bool needs_pc = spec.vnc;
  for (const auto& d : spec.disks) needs_pc = needs_pc || d.cdrom;
  return !spec.kernel.empty() && !needs_pc ? "microvm" : "q35";
}

namespace argv {

Machine machine_of(const DomainSpec& spec) {
  Machine m;
  m.type = machine_for(spec);
  if (!detail::plain_word(m.type)) throw std::invalid_argument("DomainSpec: bad machine type '" + m.type + "'");
  m.microvm = m.type.rfind("microvm", 0) == 0;
  m.piix = m.type == "pc" || m.type.rfind("pc-i440fx", 0) == 0;
  m.pv = !spec.kernel.empty();
  if (m.microvm && !m.pv) throw std::invalid_argument("DomainSpec: microvm has no firmware boot; it needs a PV kernel");
  if (m.microvm && spec.vnc) throw std::invalid_argument("DomainSpec: microvm has no display device for VNC");
  return m;
}

void machine(Args& a, const DomainSpec& s, const Machine& m) {
  // microvm: ACPI for the power button (GED), PCIe for virtio-*-pci (balloon,
  // disks, NICs behave as on q35), RTC for wall-clock time.
  std::string type = m.type;
  if (m.microvm) type += ",acpi=on,pcie=on,rtc=on";
  a.insert(a.end(), {"-machine", type});
  a.insert(a.end(), {"-accel", s.accel == Accel::kvm ? "kvm" : "tcg"});
  if (s.accel == Accel::kvm) a.insert(a.end(), {"-cpu", "host"});
}

void cpu_memory(Args& a, const DomainSpec& s) {
  if (s.vcpus_at_startup < 1 || s.vcpus_max < s.vcpus_at_startup)
    throw std::invalid_argument("DomainSpec: need 1 <= vcpus_at_startup <= vcpus_max");
  if (s.memory_static_max < (16LL << 20)) throw std::invalid_argument("DomainSpec: memory_static_max below 16 MiB");
  a.insert(a.end(), {"-smp", "cpus=" + std::to_string(s.vcpus_at_startup) + ",maxcpus=" + std::to_string(s.vcpus_max)});
  int64_t mib = (s.memory_static_max + (1LL << 20) - 1) >> 20;
  a.insert(a.end(), {"-m", "size=" + std::to_string(mib) + "M"});
}

void balloon(Args& a) { a.insert(a.end(), {"-device", "virtio-balloon-pci,id=balloon0"}); }

std::vector<std::string> hotplug_port_ids(const DomainSpec& s) {
  std::vector<std::string> out;
  const auto m = machine_of(s);
  if (m.piix) return out;  // PCI: ACPI hotplug straight onto pci.0
  for (int i = 0; i < s.hotplug_slots; ++i) out.push_back("hp" + std::to_string(i));
  return out;
}

void hotplug_ports(Args& a, const DomainSpec& s, const Machine& m) {
  if (m.piix) return;
  for (int i = 0; i < s.hotplug_slots; ++i)
    a.insert(a.end(), {"-device", "pcie-root-port,id=hp" + std::to_string(i) + ",chassis=" + std::to_string(i + 1) +
                                      ",slot=" + std::to_string(i) + ",bus=pcie.0"});
}

}  // namespace argv
}  // namespace vmstack::hv
