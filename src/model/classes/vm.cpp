// VM (templates and snapshots are VMs too) and console.
#include "model/declare.h"

namespace vmstack::model::declare {

namespace {

std::vector<Field> vm_fields() {
  return {
      uuid(), allowed_ops("vm_operations"), current_ops("vm_operations"),
      name_label(), name_description(),
      ro("power_state", en("vm_power_state"), "Current power state of the machine", "Halted"),
      rw("user_version", i64(), "Creators of VMs and templates may store version information here.", 1),
      rw("is_a_template", boolean(), "true if this is a template. Template VMs can never be started, they are used only for cloning other VMs"),
      ro("is_default_template", boolean(), "true if this is a default template (built in, cannot be removed)"),
      ro("suspend_VDI", ref("VDI"), "The VDI that a suspend image is stored on (only has meaning if VM is currently suspended)"),
      ro("resident_on", ref("host"), "the host the VM is currently resident on"),
      rw("affinity", ref("host"), "A host which the VM has some affinity for (or NULL)"),
      ro("memory_overhead", i64(), "Virtualization memory overhead (bytes)."),
      ro("memory_target", i64(), "Dynamically-set memory target (bytes)."),
      rw("memory_static_max", i64(), "Statically-set (i.e. absolute) maximum (bytes).", int64_t{256} << 20),
      rw("memory_dynamic_max", i64(), "Dynamic maximum (bytes)", int64_t{256} << 20),
      rw("memory_dynamic_min", i64(), "Dynamic minimum (bytes)", int64_t{256} << 20),
      rw("memory_static_min", i64(), "Statically-set (i.e. absolute) mininum (bytes).", int64_t{128} << 20),
      rw("VCPUs_params", map_ss(), "configuration parameters for the selected VCPU policy"),
      rw("VCPUs_max", i64(), "Max number of VCPUs", 1),
      rw("VCPUs_at_startup", i64(), "Boot number of VCPUs", 1),
      rw("actions_after_shutdown", en("on_normal_exit"), "action to take after the guest has shutdown itself", "destroy"),
      rw("actions_after_reboot", en("on_normal_exit"), "action to take after the guest has rebooted itself", "restart"),
      rw("actions_after_crash", en("on_crash_behaviour"), "action to take if the guest crashes", "restart"),
      inv("consoles", "console", "VM", "virtual console devices"),
      inv("VIFs", "VIF", "VM", "virtual network interfaces"),
      inv("VBDs", "VBD", "VM", "virtual block devices"),
      rw("PV_bootloader", str(), "name of or path to bootloader"),
      rw("PV_kernel", str(), "path to the kernel (direct kernel boot)"),
      rw("PV_ramdisk", str(), "path to the initrd"),
      rw("PV_args", str(), "kernel command-line arguments"),
      rw("PV_bootloader_args", str(), "miscellaneous arguments for the bootloader"),
      rw("PV_legacy_args", str(), "to make Zurich guests boot"),
      rw("HVM_boot_policy", str(), "HVM boot policy: 'BIOS order' for HVM, empty for direct kernel boot"),
      rw("HVM_boot_params", map_ss(), "HVM boot params (order: c=disk d=cdrom n=network)"),
      rw("HVM_shadow_multiplier", flt(), "multiplier applied to the amount of shadow that will be made available to the guest", 1.0),
      rw("platform", map_ss(), "platform-specific configuration (acpi, vnc, machine)"),
      rw("PCI_bus", str(), "PCI bus path for pass-through devices"),
      other_config(),
      ro("domid", i64(), "domain ID (here: the QEMU process id), -1 when not running", -1),
      ro("domarch", str(), "Domain architecture (if available, null string otherwise)"),
      ro("last_boot_CPU_flags", map_ss(), "describes the CPU flags on which the VM was last booted"),
      ro("is_control_domain", boolean(), "true if this is a control domain (domain 0 or a driver domain)"),
      ro("last_booted_record", str(), "marshalled value containing VM record at time of last boot"),
      rw("recommendations", str(), "An XML specification of recommended values and ranges for properties of this VM"),
      rw("xenstore_data", map_ss(), "data to be inserted into the xenstore tree"),
      ro("is_a_snapshot", boolean(), "true if this is a snapshot"),
      ro("snapshot_of", ref("VM"), "Ref pointing to the VM this snapshot is of."),
      inv("snapshots", "VM", "snapshot_of", "List pointing to all the VM snapshots."),
      ro("snapshot_time", datetime(), "Date/time when this snapshot was created."),
      tags(),
      rw("blocked_operations", map_es("vm_operations"), "List of operations which have been explicitly blocked and an error code"),
      ro("domain_type", en("domain_type"), "The type of domain: pv (direct kernel boot) or hvm (BIOS)", "unspecified"),
      ro("start_time", datetime(), "Time at which the VM was last booted"),
      ro("qmp_socket", str(), "QMP control socket of the running QEMU (vmstack)"),
      ro("VUSBs", set_ref("VUSB"), "vitual usb devices (always empty: vmstack has no VUSB)"),
      ro("crash_dumps", set_ref("crashdump"), "crash dumps associated with this VM (always empty: vmstack has no crashdump)"),
      ro("VTPMs", set_ref("VTPM"), "virtual TPMs (always empty: vmstack has no VTPM)"),
      ro("metrics", ref("VM_metrics"), "metrics associated with this VM"),
      ro("guest_metrics", ref("VM_guest_metrics"), "metrics associated with the running guest"),
      rc("ha_always_run", boolean(), "if true then the system will attempt to keep the VM running as much as possible."),
      rc("ha_restart_priority", str(), "has possible values: \"best-effort\" meaning \"try to restart this VM if possible but don't consider the Pool to be overcommitted if this is not possible\"; \"restart\" meaning \"this VM should be restarted\"; \"\" meaning \"do not try to restart this VM\""),
      ro("transportable_snapshot_id", str(), "Transportable ID of the snapshot VM"),
      ro("blobs", map_sr("blob"), "Binary blobs associated with this VM"),
      ro("snapshot_info", map_ss(), "Human-readable information concerning this snapshot"),
      ro("snapshot_metadata", str(), "Encoded information about the VM's metadata this is a snapshot of"),
      ro("parent", ref("VM"), "Ref pointing to the parent of this VM"),
      inv("children", "VM", "parent", "List pointing to all the children of this VM"),
      ro("bios_strings", map_ss(), "BIOS strings"),
      rc("protection_policy", ref("VMPP"), "Ref pointing to a protection policy for this VM (always empty: vmstack has no VMPP)"),
      rc("is_snapshot_from_vmpp", boolean(), "true if this snapshot was created by the protection policy"),
      rc("snapshot_schedule", ref("VMSS"), "Ref pointing to a snapshot schedule for this VM (always empty: vmstack has no VMSS)"),
      rc("is_vmss_snapshot", boolean(), "true if this snapshot was created by the snapshot schedule"),
      rc("appliance", ref("VM_appliance"), "the appliance to which this VM belongs (always empty: vmstack has no VM_appliance)"),
      rc("start_delay", i64(), "The delay to wait before proceeding to the next order in the startup sequence (seconds)"),
      rc("shutdown_delay", i64(), "The delay to wait before proceeding to the next order in the shutdown sequence (seconds)"),
      rc("order", i64(), "The point in the startup or shutdown sequence at which this VM will be started"),
      ro("VGPUs", set_ref("VGPU"), "Virtual GPUs (always empty: vmstack has no VGPU)"),
      ro("attached_PCIs", set_ref("PCI"), "Currently passed-through PCI devices (always empty: vmstack has no PCI)"),
      rw("suspend_SR", ref("SR"), "The SR on which a suspend image is stored (kept; not consulted yet)"),
      rc("version", i64(), "The number of times this VM has been recovered"),
      rc("generation_id", str(), "Generation ID of the VM", "0:0"),
      rw("hardware_platform_version", i64(), "The host virtual hardware platform version the VM can run on"),
      rc("has_vendor_device", boolean(), "When an HVM guest starts, this controls the presence of the emulated C000 PCI device which triggers Windows Update to fetch or update PV drivers."),
      ro("requires_reboot", boolean(), "Indicates whether a VM requires a reboot in order to update its configuration, e.g. its memory allocation."),
      rc("reference_label", str(), "Textual reference to the template used to create a VM. This can be used by clients in need of an immutable reference to the template since the latter's uuid and name_label may change, for example, after a package installation or upgrade."),
      rc("NVRAM", map_ss(), "initial value for guest NVRAM (containing UEFI variables, etc). Cannot be changed while the VM is running"),
  };
}

// The errors every lifecycle verb can raise from its precondition check.
std::vector<std::string> lifecycle_errors(std::vector<std::string> more = {}) {
  std::vector<std::string> e{"VM_BAD_POWER_STATE", "OTHER_OPERATION_IN_PROGRESS", "OPERATION_NOT_ALLOWED",
                             "VM_IS_TEMPLATE"};
  e.insert(e.end(), more.begin(), more.end());
  return e;
}

Msg vm_verb(std::string name, std::string doc, std::string param_doc, std::vector<std::string> more_errors = {}) {
  std::string op = name;
  return std::move(Msg(std::move(name), std::move(doc))
                       .param(ref("VM"), "vm", std::move(param_doc))
                       .errors(lifecycle_errors(std::move(more_errors)))
                       .operation(std::move(op)));
}

// A setter with checks: declared, so the generic set_<field> is not generated.
Msg setter(std::string field, std::string doc, std::string op, Type t = i64()) {
  Msg m("set_" + field, std::move(doc));
  m.param(ref("VM"), "self", "The VM")
      .param(std::move(t), "value", "The new value")
      .errors(lifecycle_errors({"INVALID_VALUE", "MEMORY_CONSTRAINT_VIOLATION"}));
  if (!op.empty()) m.operation(std::move(op));
  return m;
}

// xapi's explicit setters of constructor fields: any power state.
Msg plain_setter(const std::string& field, Type t, std::string doc) {
  return std::move(Msg("set_" + field, std::move(doc))
                       .param(ref("VM"), "self", "The VM")
                       .param(std::move(t), "value", "The new value")
                       .errors({"HANDLE_INVALID", "INVALID_VALUE"}));
}

std::vector<Message> vm_messages() {
  return {
      Msg("create", "Create a new VM instance from a record (runtime fields in it are ignored), and return its handle.")
          .param(record("VM"), "args", "All constructor arguments")
          .returns(ref("VM")),
      Msg("destroy", "Destroy the VM and its devices (VBDs, VIFs, consoles); its disks (VDIs) are kept, as xapi does.")
          .param(ref("VM"), "self", "The VM")
          .errors(lifecycle_errors())
          .operation("destroy"),
      vm_verb("start", "Start the specified VM. This function can only be called with the VM in the Halted state.",
              "The VM to start", {"VM_HVM_REQUIRED", "HOST_NOT_ENOUGH_FREE_MEMORY", "INVALID_VALUE", "INTERNAL_ERROR"})
          .param(boolean(), "start_paused", "Instantiate VM in paused state if set to true.")
          .param(boolean(), "force", "Attempt to force the VM to start (accepted; vmstack has no pre-boot checks to skip)"),
      vm_verb("start_on", "Start the specified VM on a particular host (this host).", "The VM to start",
              {"HANDLE_INVALID", "INTERNAL_ERROR"})
          .param(ref("host"), "host", "The Host on which to start the VM")
          .param(boolean(), "start_paused", "Instantiate VM in paused state if set to true.")
          .param(boolean(), "force", "Attempt to force the VM to start"),
      vm_verb("clean_shutdown", "Attempt to cleanly shut down the specified VM (ACPI power button, pressed again "
                                "every few seconds, forced after the daemon's clean-shutdown timeout).",
              "The VM to shutdown"),
      vm_verb("shutdown", "Attempts to first clean shutdown a VM and if it should fail then perform a hard shutdown on it.",
              "The VM to shutdown"),
      vm_verb("hard_shutdown", "Stop executing the specified VM without attempting a clean shutdown; a suspended "
                               "VM's memory image is discarded.",
              "The VM to destroy"),
      vm_verb("clean_reboot", "Attempt to cleanly reboot the specified VM (ACPI power button, then reset in place).",
              "The VM to reboot"),
      vm_verb("hard_reboot", "Stop executing the specified VM without attempting a clean shutdown and immediately restart the VM.",
              "The VM to reboot"),
      vm_verb("pause", "Pause the specified VM. This can only be called when the specified VM is in the Running state.",
              "The VM to pause"),
      vm_verb("unpause", "Resume the specified VM. This can only be called when the specified VM is in the Paused state.",
              "The VM to unpause"),
      vm_verb("suspend", "Suspend the specified VM to disk (a suspend VDI beside its disks).", "The VM to suspend",
              {"VM_REQUIRES_SR", "INTERNAL_ERROR"}),
      vm_verb("resume", "Awaken the specified VM and resume it. This can only be called when the specified VM is in "
                        "the Suspended state.",
              "The VM to resume", {"HOST_NOT_ENOUGH_FREE_MEMORY", "INVALID_VALUE", "INTERNAL_ERROR"})
          .param(boolean(), "start_paused", "Resume VM in paused state if set to true.")
          .param(boolean(), "force", "Attempt to force the VM to resume"),
      vm_verb("resume_on", "Awaken the specified VM and resume it on a particular Host (this host).", "The VM to resume",
              {"HANDLE_INVALID", "INTERNAL_ERROR"})
          .param(ref("host"), "host", "The Host on which to resume the VM")
          .param(boolean(), "start_paused", "Resume VM in paused state if set to true.")
          .param(boolean(), "force", "Attempt to force the VM to resume"),
      vm_verb("power_state_reset", "Reset the power-state of the VM to halted (stopping any QEMU still running it).",
              "The VM to reset"),
      vm_verb("clone", "Clones the specified VM, making a new VM (its disks copied in their SRs). Only for a Halted VM "
                       "or a template.",
              "The VM to be cloned", {"SR_FULL", "SR_BACKEND_FAILURE"})
          .param(str(), "new_name", "The name of the cloned VM")
          .returns(ref("VM")),
      vm_verb("copy", "Copies the specified VM, making a new VM with full copies of its disks, into `sr` (or, with a "
                      "null or invalid reference, into the SRs the disks are in).",
              "The VM to be copied", {"SR_FULL", "SR_BACKEND_FAILURE"})
          .param(str(), "new_name", "The name of the copied VM")
          .param(ref("SR"), "sr", "An SR to copy all the VM's disks into (if an invalid reference then it uses the existing SRs)")
          .returns(ref("VM")),
      vm_verb("provision", "Inspects the disk configuration contained within the VM's other_config (disks), creates "
                           "VDIs and VBDs, and makes the VM a normal VM (is_a_template=false).",
              "The VM to be provisioned", {"VM_REQUIRES_SR", "INVALID_VALUE", "SR_BACKEND_FAILURE"}),
      Msg("set_memory_limits", "Set the memory limits of this VM (static_min <= dynamic_min <= dynamic_max <= static_max).")
          .param(ref("VM"), "self", "The VM")
          .param(i64(), "static_min", "The new value of memory_static_min.")
          .param(i64(), "static_max", "The new value of memory_static_max.")
          .param(i64(), "dynamic_min", "The new value of memory_dynamic_min.")
          .param(i64(), "dynamic_max", "The new value of memory_dynamic_max.")
          .errors(lifecycle_errors({"MEMORY_CONSTRAINT_VIOLATION"}))
          .operation("changing_memory_limits"),
      Msg("set_memory_dynamic_range", "Set the minimum and maximum amounts of physical memory the VM is allowed to use "
                                      "(a running VM's balloon follows the new maximum).")
          .param(ref("VM"), "self", "The VM")
          .param(i64(), "min", "The new minimum value")
          .param(i64(), "max", "The new maximum value")
          .errors(lifecycle_errors({"MEMORY_CONSTRAINT_VIOLATION"}))
          .operation("changing_dynamic_range"),
      Msg("set_memory_static_range", "Set the static (ie boot-time) range of virtual memory that the VM is allowed to use.")
          .param(ref("VM"), "self", "The VM")
          .param(i64(), "min", "The new minimum value")
          .param(i64(), "max", "The new maximum value")
          .errors(lifecycle_errors({"MEMORY_CONSTRAINT_VIOLATION"}))
          .operation("changing_static_range"),
      setter("memory_static_min", "Set the value of the memory_static_min field (Halted VMs only).", "changing_static_range"),
      setter("memory_static_max", "Set the value of the memory_static_max field (Halted VMs only).", "changing_static_range"),
      setter("memory_dynamic_min", "Set the value of the memory_dynamic_min field.", "changing_dynamic_range"),
      setter("memory_dynamic_max", "Set the value of the memory_dynamic_max field (a running VM's balloon follows).",
             "changing_dynamic_range"),
      setter("VCPUs_max", "Set the maximum number of VCPUs for a halted VM (at least VCPUs_at_startup).", "changing_VCPUs"),
      setter("VCPUs_at_startup", "Set the number of startup VCPUs for a halted VM (1 to VCPUs_max).", "changing_VCPUs"),
      // Checked by its handler: turning a template back into a VM is not make_into_template.
      setter("is_a_template", "Make the VM a template (Halted VMs only) or a template a normal VM.", "", boolean()),
      setter("memory", "Set the memory allocation of this VM: memory_static_max, memory_dynamic_min and "
                       "memory_dynamic_max to the value, memory_static_min untouched (Halted VMs only).",
             "changing_memory_limits"),
      plain_setter("order", i64(), "Set this VM's boot order (its place in a startup or shutdown sequence)"),
      plain_setter("start_delay", i64(), "Set this VM's start delay in seconds"),
      plain_setter("shutdown_delay", i64(), "Set this VM's shutdown delay in seconds"),
      plain_setter("ha_always_run", boolean(), "Set the value of the ha_always_run (kept; vmstack has no HA)"),
      plain_setter("ha_restart_priority", str(), "Set the value of the ha_restart_priority field (kept; vmstack has no HA)"),
      plain_setter("has_vendor_device", boolean(), "Controls whether, when the VM starts in HVM mode, its virtual hardware "
                                                   "will include the emulated PCI device for which drivers may be "
                                                   "available through Windows Update (kept; QEMU adds no such device)"),
      plain_setter("suspend_VDI", ref("VDI"), "Set this VM's suspend VDI, which must be indentical to its current one"),
      plain_setter("NVRAM", map_ss(), "Set the initial value of the guest's NVRAM"),
      plain_setter("bios_strings", map_ss(), "Set custom BIOS strings to this VM (kept; guests see QEMU's)"),
      plain_setter("domain_type", en("domain_type"), "Set the VM.domain_type field of the given VM (kept; vmstack "
                                                     "sets it again at each start from the boot mode: pv for "
                                                     "direct kernel boot, hvm for BIOS)"),
      // Declared, not generated: allowed_operations follows a block.
      Msg("set_blocked_operations", "Set the blocked_operations field of the given VM (operation -> error code; "
                                    "a blocked operation answers OPERATION_BLOCKED [vm, code])")
          .param(ref("VM"), "self", "The VM")
          .param(map_es("vm_operations"), "value", "The new value")
          .errors({"HANDLE_INVALID", "INVALID_VALUE"})
          .no_async(),
      Msg("add_to_blocked_operations", "Add the given key-value pair to the blocked_operations field of the given VM.")
          .param(ref("VM"), "self", "The VM")
          .param(en("vm_operations"), "key", "The operation to block")
          .param(str(), "value", "The error code it answers")
          .errors({"HANDLE_INVALID", "MAP_DUPLICATE_KEY"})
          .no_async(),
      Msg("remove_from_blocked_operations", "Remove the given key and its corresponding value from the "
                                            "blocked_operations field of the given VM.")
          .param(ref("VM"), "self", "The VM")
          .param(en("vm_operations"), "key", "The operation to unblock")
          .no_async(),
      Msg("add_to_NVRAM", "Add a key and value to the guest's NVRAM")
          .param(ref("VM"), "self", "The VM")
          .param(str(), "key", "The key")
          .param(str(), "value", "The value")
          .errors({"HANDLE_INVALID", "MAP_DUPLICATE_KEY"}),
      Msg("remove_from_NVRAM", "Remove a key from the guest's NVRAM")
          .param(ref("VM"), "self", "The VM")
          .param(str(), "key", "The key"),
      Msg("get_allowed_VBD_devices", "Returns a list of the allowed values that a VBD device field can take")
          .param(ref("VM"), "vm", "The VM to query")
          .returns(set_str()),
      Msg("get_allowed_VIF_devices", "Returns a list of the allowed values that a VIF device field can take")
          .param(ref("VM"), "vm", "The VM to query")
          .returns(set_str()),
      Msg("get_possible_hosts", "Return the list of hosts on which this VM may run (this host, unless the VM is a "
                                "template).")
          .param(ref("VM"), "vm", "The VM")
          .returns(set_ref("host")),
      Msg("assert_can_boot_here", "Returns an error if the VM could not boot on this host for some reason")
          .param(ref("VM"), "self", "The VM")
          .param(ref("host"), "host", "The host")
          .errors({"HANDLE_INVALID", "VM_IS_TEMPLATE", "HOST_NOT_ENOUGH_FREE_MEMORY", "VM_REQUIRES_SR"}),
      Msg("assert_operation_valid", "Check to see whether this operation is acceptable in the current state of the "
                                    "system, raising an error if the operation is invalid for some reason")
          .param(ref("VM"), "self", "reference to the object")
          .param(en("vm_operations"), "op", "proposed operation")
          .errors({"VM_BAD_POWER_STATE", "VM_IS_TEMPLATE", "OTHER_OPERATION_IN_PROGRESS", "OPERATION_BLOCKED"}),
      Msg("update_allowed_operations", "Recomputes the list of acceptable operations")
          .param(ref("VM"), "self", "reference to the object"),
      Msg("get_boot_record", "Returns a record describing the VM's dynamic state, initialised when the VM boots and "
                             "updated to reflect runtime configuration changes e.g. CPU hotplug")
          .param(ref("VM"), "self", "The VM whose boot-time state to return")
          .returns(record("VM"))
          .no_async(),
      Msg("get_cooperative", "Return true if the VM is currently 'co-operative' i.e. is expected to reach a balloon "
                             "target and actually has done")
          .param(ref("VM"), "self", "The VM")
          .returns(boolean()),
      Msg("compute_memory_overhead", "Computes the virtualization memory overhead of a VM.")
          .param(ref("VM"), "vm", "The VM for which to compute the memory overhead")
          .returns(i64())
          .no_async(),
  };
}

}  // namespace

void declare_vm(Datamodel& dm) {
  dm.enums.push_back({"vm_power_state", {"Halted", "Paused", "Running", "Suspended"}});
  dm.enums.push_back(
      {"vm_operations",
       {"snapshot", "clone", "copy", "create_template", "revert", "checkpoint", "provision", "start", "start_on",
        "pause", "unpause", "clean_shutdown", "clean_reboot", "hard_shutdown", "power_state_reset", "hard_reboot",
        "suspend", "resume", "resume_on", "pool_migrate", "migrate_send", "shutdown", "changing_memory_live",
        "changing_dynamic_range", "changing_static_range", "changing_memory_limits", "changing_VCPUs",
        "changing_VCPUs_live", "make_into_template", "import", "export", "destroy"}});
  dm.enums.push_back({"on_normal_exit", {"destroy", "restart"}});
  dm.enums.push_back({"on_crash_behaviour",
                      {"destroy", "coredump_and_destroy", "restart", "coredump_and_restart", "preserve", "rename_restart"}});
  dm.enums.push_back({"domain_type", {"hvm", "pv", "pv_in_pvh", "pvh", "unspecified"}});
  dm.enums.push_back({"console_protocol", {"vt100", "rfb", "rdp"}});

  dm.classes.push_back(cls("VM", "A virtual machine (or 'guest')", "vm", vm_fields(), vm_messages()));
  dm.classes.push_back(cls("console", "A console", "console",
                           {
                               uuid(),
                               ro("protocol", en("console_protocol"), "the protocol used by this console", "vt100"),
                               ro("location", str(), "URI for the console service: https://<host>[:port]/console?ref=<console>, opened with CONNECT or GET and session_id=<session> (bare /console?ref= when the daemon listens on its unix socket only)"),
                               ro("VM", ref("VM"), "VM to which this console is attached"),
                               other_config(),
                           }));
}

}  // namespace vmstack::model::declare
