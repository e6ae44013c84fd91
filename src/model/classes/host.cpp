// pool and host: the one-host pool vmstack runs today.
#include "model/declare.h"

namespace vmstack::model::declare {

void declare_host(Datamodel& dm) {
  dm.enums.push_back({"pool_allowed_operations", {"ha_enable", "ha_disable", "cluster_create"}});
  dm.enums.push_back({"host_display", {"enabled", "disable_on_reboot", "disabled", "enable_on_reboot"}});
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
                               ro("ha_configuration", map_ss(), "The current HA configuration"),
                               ro("ha_statefiles", set_str(), "HA statefile VDIs in use"),
                               ro("ha_host_failures_to_tolerate", i64(), "Number of host failures to tolerate before the Pool is declared to be overcommitted"),
                               ro("ha_plan_exists_for", i64(), "Number of future host failures we have managed to find a plan for. Once this reaches zero any future host failures will cause the failure of protected VMs."),
                               rw("ha_allow_overcommit", boolean(), "If set to false then operations which would cause the Pool to become overcommitted will be blocked."),
                               ro("ha_overcommitted", boolean(), "True if the Pool is considered to be overcommitted i.e. if there exist insufficient physical resources to tolerate the configured number of host failures"),
                               ro("blobs", map_sr("blob"), "Binary blobs associated with this pool"),
                               rw("gui_config", map_ss(), "gui-specific configuration for pool"),
                               rw("health_check_config", map_ss(), "Configuration for the automatic health check feature"),
                               ro("wlb_url", str(), "Url for the configured workload balancing host"),
                               ro("wlb_username", str(), "Username for accessing the workload balancing host"),
                               rw("wlb_enabled", boolean(), "true if workload balancing is enabled on the pool, false otherwise"),
                               rw("wlb_verify_cert", boolean(), "true if communication with the WLB server should enforce SSL certificate verification."),
                               ro("redo_log_enabled", boolean(), "true a redo-log is to be used other than when HA is enabled, false otherwise"),
                               ro("redo_log_vdi", ref("VDI"), "indicates the VDI to use for the redo-log other than when HA is enabled"),
                               ro("vswitch_controller", str(), "address of the vswitch controller"),
                               ro("restrictions", map_ss(), "Pool-wide restrictions currently in effect"),
                               ro("metadata_VDIs", set_ref("VDI"), "The set of currently known metadata VDIs for this pool"),
                               ro("ha_cluster_stack", str(), "The HA cluster stack that is currently in use. Only valid when HA is enabled."),
                               ro("allowed_operations", set_en("pool_allowed_operations"), "list of the operations allowed in this state. This list is advisory only and the server state may have changed by the time this field is read by a client."),
                               ro("current_operations", map_se("pool_allowed_operations"), "links each of the running tasks using this object (by reference) to a current_operation enum which describes the nature of the task."),
                               ro("guest_agent_config", map_ss(), "Pool-wide guest agent configuration information"),
                               ro("cpu_info", map_ss(), "Details about the physical CPUs on the pool"),
                               rw("policy_no_vendor_device", boolean(), "The pool-wide policy for clients on whether to use the vendor device or not on newly created VMs. This field will also be consulted if the 'has_vendor_device' field is not specified in the VM.create call."),
                               rw("live_patching_disabled", boolean(), "The pool-wide flag to show if the live patching feauture is disabled or not."),
                               ro("igmp_snooping_enabled", boolean(), "true if IGMP snooping is enabled in the pool, false otherwise."),
                               rw("uefi_certificates", str(), "The UEFI certificates allowing Secure Boot"),
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
          rw("hostname", str(), "The hostname of this host (refreshed from the machine at every start)"),
          rw("address", str(), "The address by which this host can be contacted from any other host in the pool (127.0.0.1 until the operator sets it)"),
          ro("memory_total", i64(), "Total host memory (bytes)"),
          ro("memory_free", i64(), "Free host memory (bytes), at the time of the call"),
          ro("capabilities", set_str(), "Xen capabilities"),
          ro("sched_policy", str(), "Scheduler policy currently in force on this host"),
          rw("suspend_image_sr", ref("SR"), "The SR in which VDIs for suspend images are created"),
          rw("crash_dump_sr", ref("SR"), "The SR in which VDIs for crash dumps are created"),
          inv("resident_VMs", "VM", "resident_on", "list of VMs currently resident on host"),
          inv("PBDs", "PBD", "host", "physical blockdevices"),
          other_config(), tags(),
          ro("memory_overhead", i64(), "Virtualization memory overhead (bytes)."),
          ro("API_version_vendor_implementation", map_ss(), "details of vendor implementation"),
          ro("cpu_configuration", map_ss(), "The CPU configuration on this host. May contain keys such as \"nr_nodes\", \"sockets_per_node\", \"cores_per_socket\", or \"threads_per_core\""),
          ro("supported_bootloaders", set_str(), "a list of the bootloaders installed on the machine"),
          rw("logging", map_ss(), "logging configuration"),
          inv("PIFs", "PIF", "host", "physical network interfaces"),
          ro("crashdumps", set_ref("host_crashdump"), "Set of host crash dumps (always empty: vmstack has no host_crashdump)"),
          ro("patches", set_ref("host_patch"), "Set of host patches (always empty: vmstack has no host_patch)"),
          ro("updates", set_ref("pool_update"), "Set of updates (always empty: vmstack has no pool_update)"),
          inv("host_CPUs", "host_cpu", "host", "The physical CPUs on this host"),
          ro("metrics", ref("host_metrics"), "metrics associated with this host"),
          ro("license_params", map_ss(), "State of the current license"),
          ro("ha_statefiles", set_str(), "The set of statefiles accessible from this host"),
          ro("ha_network_peers", set_str(), "The set of hosts visible via the network from this host"),
          ro("blobs", map_sr("blob"), "Binary blobs associated with this host"),
          ro("external_auth_type", str(), "type of external authentication service configured; empty if none configured."),
          ro("external_auth_service_name", str(), "name of external authentication service configured; empty if none configured."),
          ro("external_auth_configuration", map_ss(), "configuration specific to external authentication service"),
          ro("edition", str(), "Product edition"),
          rw("license_server", map_ss(), "Contact information of the license server", Struct{{"address", "localhost"}, {"port", "27000"}}),
          ro("bios_strings", map_ss(), "BIOS strings"),
          ro("power_on_mode", str(), "The power on mode"),
          ro("power_on_config", map_ss(), "The power on config"),
          rc("local_cache_sr", ref("SR"), "The SR that is used as a local cache"),
          ro("chipset_info", map_ss(), "Information about chipset features"),
          ro("PCIs", set_ref("PCI"), "List of PCI devices in the host (always empty: vmstack has no PCI)"),
          ro("PGPUs", set_ref("PGPU"), "List of physical GPUs in the host (always empty: vmstack has no PGPU)"),
          ro("PUSBs", set_ref("PUSB"), "List of physical USBs in the host (always empty: vmstack has no PUSB)"),
          rc("ssl_legacy", boolean(), "Allow SSLv3 protocol and ciphersuites as used by older server versions. This controls both incoming and outgoing connections. When this is set to a different value, the host immediately restarts its SSL/TLS listening service; typically this takes less than a second but existing connections to it will be broken. API login sessions will remain valid.", true),
          rw("guest_VCPUs_params", map_ss(), "VCPUs params to apply to all resident guests"),
          rw("display", en("host_display"), "indicates whether the host is configured to output its console to a physical display device", "enabled"),
          ro("virtual_hardware_platform_versions", set_int(), "The set of versions of the virtual hardware platform that the host can offer to its guests", Array{int64_t{0}}),
          ro("control_domain", ref("VM"), "The control domain (domain 0)"),
          ro("updates_requiring_reboot", set_ref("pool_update"), "List of updates which require reboot (always empty: vmstack has no pool_update)"),
          ro("features", set_ref("Feature"), "List of features available on this host (always empty: vmstack has no Feature)"),
          rc("iscsi_iqn", str(), "The initiator IQN for the host"),
          rc("multipathing", boolean(), "Specifies whether multipathing is enabled"),
          rc("uefi_certificates", str(), "The UEFI certificates allowing Secure Boot"),
      },
      {
          Msg("get_servertime", "This call queries the host's clock for the current time")
              .param(ref("host"), "host", "The host whose clock should be queried")
              .returns(datetime())
              .no_async(),
          Msg("compute_free_memory", "Computes the amount of free memory on the host.")
              .param(ref("host"), "host", "The host to send the request to")
              .returns(i64()),
          Msg("compute_memory_overhead", "Computes the virtualization memory overhead of a host.")
              .param(ref("host"), "host", "The host for which to compute the memory overhead")
              .returns(i64()),
          Msg("get_server_localtime", "This call queries the host's clock for the current time in the host's local "
                                      "timezone")
              .param(ref("host"), "host", "The host whose clock should be queried")
              .returns(datetime())
              .no_async(),
          Msg("list_methods", "List all supported methods")
              .returns(set_str())
              .no_async(),
          Msg("enable", "Puts the host into a state in which new VMs can be started.")
              .param(ref("host"), "host", "The Host to enable"),
          Msg("disable", "Puts the host into a state in which no new VMs can be started. Currently active VMs on "
                         "the host continue to execute.")
              .param(ref("host"), "host", "The Host to disable"),
          Msg("get_vms_which_prevent_evacuation", "Return a set of VMs which prevent the host being evacuated, with "
                                                  "per-VM error codes (here: every running VM, no other host "
                                                  "could take it)")
              .param(ref("host"), "self", "The host to query")
              .returns(Type{Kind::Map, "VM", Kind::Set, Kind::Ref}),
          Msg("assert_can_evacuate", "Check this host can be evacuated.")
              .param(ref("host"), "host", "The host to evacuate")
              .errors({"NO_HOSTS_AVAILABLE"}),
          Msg("evacuate", "Migrate all VMs off of this host, where possible (here: succeeds only when no VM runs, "
                          "as the pool has no other host).")
              .param(ref("host"), "host", "The host to evacuate")
              .param(ref("network"), "network", "Optional preferred network for migration", std::string("OpaqueRef:NULL"))
              .param(i64(), "evacuate_batch_size", "The maximum number of VMs to be migrated per batch 0 will use "
                                                  "the value `evacuation-batch-size` defined in xapi.conf",
                     int64_t{0})
              .errors({"NO_HOSTS_AVAILABLE"}),
          Msg("get_uncooperative_resident_VMs", "Return a set of VMs which are not co-operating with the host's "
                                                "memory control system")
              .param(ref("host"), "self", "The host to query")
              .returns(set_ref("VM")),
      }));
}

}  // namespace vmstack::model::declare
