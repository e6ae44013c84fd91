// pool and host: the one-host pool vmstack runs today.
#include "model/declare.h"

namespace vmstack::model::declare {

void declare_host(Datamodel& dm) {
  dm.enums.push_back({"host_allowed_operations",
                      {"provision", "evacuate", "shutdown", "reboot", "power_on", "vm_start", "vm_resume", "vm_migrate"}});

  dm.classes.push_back(cls("pool", "Pool-wide information", "pool",
                           {
                               uuid(), name_label(), name_description(),
                               ro("master", ref("host"), "The host that is pool master"),
                               rw("default_SR", ref("SR"), "Default SR for VDIs"),
                               rw("suspend_image_SR", ref("SR"), "The SR in which VDIs for suspend images are created"),
                               rw("crash_dump_SR", ref("SR"), "The SR in which VDIs for crash dumps are created"),
                               ro("ha_enabled", boolean(), "true if HA is enabled on the pool, false otherwise"),
                               other_config(), tags(),
                           }));

  dm.classes.push_back(cls(
      "host", "A physical host", "host",
      {
          uuid(), name_label(), name_description(),
          ro("allowed_operations", set_en("host_allowed_operations"), "list of the operations allowed in this state"),
          current_ops("host_allowed_operations"),
          ro("API_version_major", i64(), "major version number"),
          ro("API_version_minor", i64(), "minor version number"),
          ro("API_version_vendor", str(), "identification of vendor"),
          ro("software_version", map_ss(), "version strings (includes the accelerator in use)"),
          ro("enabled", boolean(), "True if the host is currently enabled"),
          ro("cpu_info", map_ss(), "Details about the physical CPUs and the accelerator (kvm|tcg) with the probe's verdict"),
          ro("hostname", str(), "The hostname of this host"),
          ro("address", str(), "The address by which this host can be contacted from any other host in the pool"),
          ro("memory_total", i64(), "Total host memory (bytes)"),
          ro("memory_free", i64(), "Free host memory (bytes), at the time of the call"),
          ro("capabilities", set_str(), "Xen capabilities"),
          ro("sched_policy", str(), "Scheduler policy currently in force on this host"),
          rw("suspend_image_sr", ref("SR"), "The SR in which VDIs for suspend images are created"),
          rw("crash_dump_sr", ref("SR"), "The SR in which VDIs for crash dumps are created"),
          inv("resident_VMs", "VM", "resident_on", "list of VMs currently resident on host"),
          inv("PBDs", "PBD", "host", "physical blockdevices"),
          other_config(), tags(),
      },
      {
          Msg("get_servertime", "This call queries the host's clock for the current time")
              .param(ref("host"), "host", "The host whose clock should be queried")
              .returns(datetime())
              .no_async(),
          Msg("compute_free_memory", "Computes the amount of free memory on the host.")
              .param(ref("host"), "host", "The host to send the request to")
              .returns(i64()),
      }));
}

}  // namespace vmstack::model::declare
