// How the guest boots: a kernel given directly (PV-style) or firmware in a
// device order (HVM).
#include "hv/qemu_argv.h"

namespace vmstack::hv::argv {

void boot(Args& a, const DomainSpec& s, const Machine& m) {
  if (m.pv) {
    a.insert(a.end(), {"-kernel", s.kernel});
    if (!s.ramdisk.empty()) a.insert(a.end(), {"-initrd", s.ramdisk});
    std::string cmdline = s.cmdline;
    if (cmdline.find("console=") == std::string::npos)
      cmdline = cmdline.empty() ? "console=ttyS0" : "console=ttyS0 " + cmdline;
    if (m.microvm && s.tsc_khz > 0 && cmdline.find("tsc_early_khz=") == std::string::npos)
      cmdline += " tsc_early_khz=" + std::to_string(s.tsc_khz);
    // microvm's ACPI tables have no _OSC, so Linux leaves PCIe hotplug to a
    // firmware that is not there and ignores devices added to the root
    // ports; this hands it to the kernel's own pciehp (q35's firmware grants
    // it through _OSC).
    if (m.microvm && s.hotplug_slots > 0 && cmdline.find("pcie_ports=") == std::string::npos)
      cmdline += " pcie_ports=native";
    a.insert(a.end(), {"-append", cmdline});
    return;
  }
  std::string order;
  for (char c : s.boot_order)
    if (c == 'c' || c == 'd' || c == 'n') order += c;
  if (order.empty()) order = "cd";
  a.insert(a.end(), {"-boot", "order=" + order + ",menu=off"});
}

}  // namespace vmstack::hv::argv
