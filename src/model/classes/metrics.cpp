// The metrics classes clients read at connect: host_cpu, host_metrics,
// VM_metrics, VM_guest_metrics and the device metrics. vmstack keeps one
// host_metrics, a host_cpu per CPU and a VM_metrics per VM (the daemon fills
// them in); VM_guest_metrics exist only where a guest reports (a guest
// agent, DHCP leases), and the device metrics are declared for clients that
// read them (xapi, too, has long left them to its RRDs).
#include "model/declare.h"

#include <utility>

namespace vmstack::model::declare {

void declare_metrics(Datamodel& dm) {
  dm.enums.push_back({"tristate_type", {"yes", "no", "unspecified"}});

  dm.classes.push_back(cls(
      "host_cpu", "A physical CPU", "host-cpu",
      {
          uuid(),
          ro("host", ref("host"), "the host the CPU is in"),
          ro("number", i64(), "the number of the physical CPU within the host"),
          ro("vendor", str(), "the vendor of the physical CPU"),
          ro("speed", i64(), "the speed of the physical CPU"),
          ro("modelname", str(), "the model name of the physical CPU"),
          ro("family", i64(), "the family (number) of the physical CPU"),
          ro("model", i64(), "the model number of the physical CPU"),
          ro("stepping", str(), "the stepping of the physical CPU"),
          ro("flags", str(), "the flags of the physical CPU (a decoded version of the features field)"),
          ro("features", str(), "the physical CPU feature bitmap"),
          ro("utilisation", flt(), "the current CPU utilisation"),
          other_config(),
      }));

  dm.classes.push_back(cls(
      "host_metrics", "The metrics associated with a host", "",
      {
          uuid(),
          ro("memory_total", i64(), "Total host memory (bytes)"),
          ro("memory_free", i64(), "Free host memory (bytes)"),
          ro("live", boolean(), "Pool master thinks this host is live"),
          ro("last_updated", datetime(), "Time at which this information was last updated"),
          other_config(),
      }));

  dm.classes.push_back(cls(
      "VM_metrics", "The metrics associated with a VM", "",
      {
          uuid(),
          ro("memory_actual", i64(), "Guest's actual memory (bytes)"),
          ro("VCPUs_number", i64(), "Current number of VCPUs"),
          ro("VCPUs_utilisation", map_if(), "Utilisation for all of guest's current VCPUs"),
          ro("VCPUs_CPU", map_ii(), "VCPU to PCPU map"),
          ro("VCPUs_params", map_ss(), "The live equivalent to VM.VCPUs_params"),
          ro("VCPUs_flags", map_i_set(), "CPU flags (blocked,online,running)"),
          ro("state", set_str(), "The state of the guest, eg blocked, dying etc"),
          ro("start_time", datetime(), "Time at which this VM was last booted"),
          ro("install_time", datetime(), "Time at which the VM was installed"),
          ro("last_updated", datetime(), "Time at which this information was last updated"),
          other_config(),
          ro("hvm", boolean(), "hardware virtual machine"),
          ro("nested_virt", boolean(), "VM supports nested virtualisation"),
          ro("nomigrate", boolean(), "VM is immobile and can't migrate between hosts"),
          ro("current_domain_type", en("domain_type"), "The current domain type of the VM (for running,suspended, or paused VMs). The last-known domain type for halted VMs.", "unspecified"),
      }));

  dm.classes.push_back(cls(
      "VM_guest_metrics", "The metrics reported by the guest (as opposed to inferred from outside)", "",
      {
          uuid(),
          ro("os_version", map_ss(), "version of the OS"),
          ro("PV_drivers_version", map_ss(), "version of the PV drivers"),
          ro("PV_drivers_up_to_date", boolean(), "Logically equivalent to PV_drivers_detected"),
          ro("memory", map_ss(), "This field exists but has no data. Use the memory and memory_internal_free RRD data-sources instead."),
          ro("disks", map_ss(), "This field exists but has no data."),
          ro("networks", map_ss(), "network configuration"),
          ro("other", map_ss(), "anything else"),
          ro("last_updated", datetime(), "Time at which this information was last updated"),
          other_config(),
          ro("live", boolean(), "True if the guest is sending heartbeat messages via the guest agent"),
          ro("can_use_hotplug_vbd", en("tristate_type"), "The guest's statement of whether it supports VBD hotplug, i.e. whether it is capable of responding immediately to instantiation of a new VBD by bringing online a new PV block device. If the guest states that it is not capable, then the VBD plug and unplug operations will not be allowed while the guest is running.", "unspecified"),
          ro("can_use_hotplug_vif", en("tristate_type"), "The guest's statement of whether it supports VIF hotplug, i.e. whether it is capable of responding immediately to instantiation of a new VIF by bringing online a new PV network device. If the guest states that it is not capable, then the VIF plug and unplug operations will not be allowed while the guest is running.", "unspecified"),
          ro("PV_drivers_detected", boolean(), "At least one of the guest's devices has successfully connected to the backend."),
      }));

  // The device metrics: bandwidths (here: left to the RRDs of the
  // monitoring work, so zero).
  for (const auto& [name, doc] : {std::pair{"VBD_metrics", "The metrics associated with a virtual block device"},
                                  std::pair{"VIF_metrics", "The metrics associated with a virtual network device"}}) {
    dm.classes.push_back(cls(name, doc, "",
                             {
                                 uuid(),
                                 ro("io_read_kbs", flt(), "Read bandwidth (KiB/s)"),
                                 ro("io_write_kbs", flt(), "Write bandwidth (KiB/s)"),
                                 ro("last_updated", datetime(), "Time at which this information was last updated"),
                                 other_config(),
                             }));
  }

  dm.classes.push_back(cls(
      "PIF_metrics", "The metrics associated with a physical network interface", "",
      {
          uuid(),
          ro("io_read_kbs", flt(), "Read bandwidth (KiB/s)"),
          ro("io_write_kbs", flt(), "Write bandwidth (KiB/s)"),
          ro("carrier", boolean(), "Report if the PIF got a carrier or not"),
          ro("vendor_id", str(), "Report vendor ID"),
          ro("vendor_name", str(), "Report vendor name"),
          ro("device_id", str(), "Report device ID"),
          ro("device_name", str(), "Report device name"),
          ro("speed", i64(), "Speed of the link (if available)"),
          ro("duplex", boolean(), "Full duplex capability of the link (if available)"),
          ro("pci_bus_path", str(), "PCI bus path of the pif (if available)"),
          ro("last_updated", datetime(), "Time at which this information was last updated"),
          other_config(),
      }));
}

}  // namespace vmstack::model::declare
