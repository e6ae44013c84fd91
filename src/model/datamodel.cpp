#include "model/datamodel.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace vmstack::model {

namespace {

// ---- table-building helpers: keep the declarations below one line a field.
Type str() { return {Kind::String, "", Kind::String}; }
Type i64() { return {Kind::Int, "", Kind::String}; }
Type flt() { return {Kind::Float, "", Kind::String}; }
Type boolean() { return {Kind::Bool, "", Kind::String}; }
Type dt() { return {Kind::DateTime, "", Kind::String}; }
Type en(std::string e) { return {Kind::Enum, std::move(e), Kind::String}; }
Type ref(std::string c) { return {Kind::Ref, std::move(c), Kind::String}; }
Type set_ref(std::string c) { return {Kind::Set, std::move(c), Kind::Ref}; }
Type set_str() { return {Kind::Set, "", Kind::String}; }
Type set_en(std::string e) { return {Kind::Set, std::move(e), Kind::Enum}; }
Type map_ss() { return {Kind::Map, "", Kind::String}; }
Type map_se(std::string e) { return {Kind::Map, std::move(e), Kind::Enum}; }

Value default_for(const Type& t) {
  switch (t.kind) {
    case Kind::String: return std::string();
    case Kind::Int: return int64_t{0};
    case Kind::Float: return 0.0;
    case Kind::Bool: return false;
    case Kind::DateTime: return DateTime{0};
    case Kind::Enum: return std::string();
    case Kind::Ref: return std::string("OpaqueRef:NULL");
    case Kind::Set: return Array{};
    case Kind::Map: return Struct{};
  }
  return {};
}

Field mk(std::string name, Type t, Qual q, std::string doc, Value def) {
  Field f;
  f.name = std::move(name);
  f.default_value = def.is_nil() ? default_for(t) : std::move(def);
  f.type = std::move(t);
  f.qual = q;
  f.doc = std::move(doc);
  return f;
}
Field ro(std::string n, Type t, std::string doc, Value def = {}) {
  return mk(std::move(n), std::move(t), Qual::RO_runtime, std::move(doc), std::move(def));
}
Field rc(std::string n, Type t, std::string doc, Value def = {}) {
  return mk(std::move(n), std::move(t), Qual::RO_constructor, std::move(doc), std::move(def));
}
Field rw(std::string n, Type t, std::string doc, Value def = {}) {
  return mk(std::move(n), std::move(t), Qual::RW, std::move(doc), std::move(def));
}
// A one-to-many set computed from the other side's reference field.
Field inv(std::string n, std::string other_class, std::string other_field, std::string doc) {
  Field f = ro(std::move(n), set_ref(std::move(other_class)), std::move(doc));
  f.inverse_of = std::move(other_field);
  return f;
}

Field uuid() { return ro("uuid", str(), "Unique identifier/object reference"); }
Field name_label() { return rw("name_label", str(), "a human-readable name"); }
Field name_description() { return rw("name_description", str(), "a notes field containing human-readable description"); }
Field allowed_ops(std::string e) { return ro("allowed_operations", set_en(std::move(e)), "list of the operations allowed in this state"); }
Field current_ops(std::string e) { return ro("current_operations", map_se(std::move(e)), "links each of the running tasks using this object (by reference) to a current_operation enum"); }
Field other_config() { return rw("other_config", map_ss(), "additional configuration"); }
Field tags() { return rw("tags", set_str(), "user-specified tags for categorization purposes"); }

Datamodel build() {
  Datamodel dm;
  dm.enums = {
      {"vm_power_state", {"Halted", "Paused", "Running", "Suspended"}},
      {"vm_operations",
       {"snapshot", "clone", "copy", "provision", "start", "start_on", "pause", "unpause", "clean_shutdown",
        "clean_reboot", "hard_shutdown", "power_state_reset", "hard_reboot", "suspend", "resume", "destroy",
        "export", "migrate_send", "changing_memory_limits", "changing_VCPUs", "make_into_template"}},
      {"on_normal_exit", {"destroy", "restart"}},
      {"on_crash_behaviour", {"destroy", "coredump_and_destroy", "restart", "coredump_and_restart", "preserve", "rename_restart"}},
      {"domain_type", {"hvm", "pv", "pv_in_pvh", "pvh", "unspecified"}},
      {"vbd_operations", {"attach", "eject", "insert", "plug", "unplug", "unplug_force", "pause", "unpause"}},
      {"vbd_type", {"CD", "Disk", "Floppy"}},
      {"vbd_mode", {"RO", "RW"}},
      {"vdi_operations", {"clone", "copy", "resize", "resize_online", "snapshot", "destroy", "forget", "update", "force_unlock", "generate_config", "scan"}},
      {"vdi_type", {"system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata", "redo_log", "rrd", "pvs_cache", "cbt_metadata"}},
      {"on_boot", {"reset", "persist"}},
      {"storage_operations", {"scan", "destroy", "forget", "plug", "unplug", "update", "vdi_create", "vdi_introduce", "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot", "vdi_mirror", "pbd_create", "pbd_destroy"}},
      {"network_operations", {"attaching"}},
      {"vif_operations", {"attach", "plug", "unplug"}},
      {"vif_locking_mode", {"network_default", "locked", "unlocked", "disabled"}},
      {"console_protocol", {"vt100", "rfb", "rdp"}},
      {"task_status_type", {"pending", "success", "failure", "cancelling", "cancelled"}},
      {"task_allowed_operations", {"cancel", "destroy"}},
      {"host_allowed_operations", {"provision", "evacuate", "shutdown", "reboot", "power_on", "vm_start", "vm_resume", "vm_migrate"}},
      {"event_operation", {"add", "del", "mod"}},
  };

  dm.classes.push_back({"session", "A session", "session", false, true, {
      uuid(),
      ro("this_host", ref("host"), "Currently connected host"),
      ro("last_active", dt(), "Timestamp for last time session was active"),
      ro("pool", boolean(), "True if this session relates to a intra-pool login, false otherwise"),
      ro("is_local_superuser", boolean(), "true iff this session was created using local superuser credentials"),
      ro("auth_user_name", str(), "the user name of the session's authenticated user"),
      ro("originator", str(), "the originator of the session (client identifier)"),
      other_config(),
  }});

  dm.classes.push_back({"pool", "Pool-wide information", "pool", true, true, {
      uuid(), name_label(), name_description(),
      ro("master", ref("host"), "The host that is pool master"),
      rw("default_SR", ref("SR"), "Default SR for VDIs"),
      rw("suspend_image_SR", ref("SR"), "The SR in which VDIs for suspend images are created"),
      rw("crash_dump_SR", ref("SR"), "The SR in which VDIs for crash dumps are created"),
      ro("ha_enabled", boolean(), "true if HA is enabled on the pool, false otherwise"),
      other_config(), tags(),
  }});

  dm.classes.push_back({"host", "A physical host", "host", true, true, {
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
  }});

  dm.classes.push_back({"VM", "A virtual machine (or 'guest')", "vm", true, true, {
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
      rw("platform", map_ss(), "platform-specific configuration (acpi, vnc, machine, qemu-args)"),
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
      ro("snapshot_time", dt(), "Date/time when this snapshot was created."),
      tags(),
      rw("blocked_operations", map_se("vm_operations"), "List of operations which have been explicitly blocked and an error code"),
      ro("domain_type", en("domain_type"), "The type of domain: pv (direct kernel boot) or hvm (BIOS)", "unspecified"),
      ro("start_time", dt(), "Time at which the VM was last booted"),
      ro("qmp_socket", str(), "QMP control socket of the running QEMU (vmstack)"),
  }});

  dm.classes.push_back({"VBD", "A virtual block device", "vbd", true, true, {
      uuid(), allowed_ops("vbd_operations"), current_ops("vbd_operations"),
      rc("VM", ref("VM"), "the virtual machine"),
      rc("VDI", ref("VDI"), "the virtual disk"),
      ro("device", str(), "device seen by the guest e.g. xvda"),
      rw("userdevice", str(), "user-friendly device name e.g. 0,1,2,etc."),
      rw("bootable", boolean(), "true if this VBD is bootable"),
      rw("mode", en("vbd_mode"), "the mode the VBD should be mounted with", "RW"),
      rw("type", en("vbd_type"), "how the VBD will appear to the guest (e.g. disk or CD)", "Disk"),
      rw("unpluggable", boolean(), "true if this VBD will support hot-unplug", true),
      ro("storage_lock", boolean(), "true if a storage level lock was acquired"),
      ro("empty", boolean(), "if true this represents an empty drive"),
      other_config(),
      ro("currently_attached", boolean(), "is the device currently attached (erased on reboot)"),
      ro("status_code", i64(), "error/success code associated with last attach-operation (erased on reboot)"),
      ro("status_detail", str(), "error/success information associated with last attach-operation status (erased on reboot)"),
      ro("runtime_properties", map_ss(), "Device runtime properties"),
      rw("qos_algorithm_type", str(), "QoS algorithm to use"),
      rw("qos_algorithm_params", map_ss(), "parameters for chosen QoS algorithm"),
  }});

  dm.classes.push_back({"VDI", "A virtual disk image", "vdi", true, true, {
      uuid(), name_label(), name_description(),
      allowed_ops("vdi_operations"), current_ops("vdi_operations"),
      rc("SR", ref("SR"), "storage repository in which the VDI resides"),
      inv("VBDs", "VBD", "VDI", "list of vbds that refer to this disk"),
      rc("virtual_size", i64(), "size of disk as presented to the guest (in bytes)"),
      ro("physical_utilisation", i64(), "amount of physical space that the disk image is currently taking up on the storage repository (in bytes)"),
      rc("type", en("vdi_type"), "type of the VDI", "user"),
      rc("sharable", boolean(), "true if this disk may be shared"),
      rc("read_only", boolean(), "true if this disk may ONLY be mounted read-only"),
      other_config(),
      ro("storage_lock", boolean(), "true if this disk is locked at the storage level"),
      ro("location", str(), "location information (here: the image file's path)"),
      ro("managed", boolean(), "", true),
      ro("missing", boolean(), "true if SR scan operation reported this VDI as not present on disk"),
      rw("xenstore_data", map_ss(), "data to be inserted into the xenstore tree"),
      rw("sm_config", map_ss(), "SM dependent data (format: qcow2|raw)"),
      ro("is_a_snapshot", boolean(), "true if this is a snapshot."),
      ro("snapshot_of", ref("VDI"), "Ref pointing to the VDI this snapshot is of."),
      inv("snapshots", "VDI", "snapshot_of", "List pointing to all the VDIs snapshots."),
      ro("snapshot_time", dt(), "Date/time when this snapshot was created."),
      tags(),
      rw("allow_caching", boolean(), "true if this VDI is to be cached in the local cache SR"),
      rw("on_boot", en("on_boot"), "The behaviour of this VDI on a VM boot", "persist"),
      ro("is_tools_iso", boolean(), "Whether this VDI is a Tools ISO"),
  }});

  dm.classes.push_back({"SR", "A storage repository", "sr", true, true, {
      uuid(), name_label(), name_description(),
      allowed_ops("storage_operations"), current_ops("storage_operations"),
      inv("VDIs", "VDI", "SR", "all virtual disks known to this storage repository"),
      inv("PBDs", "PBD", "SR", "describes how particular hosts can see this storage repository"),
      ro("virtual_allocation", i64(), "sum of virtual_sizes of all VDIs in this storage repository (in bytes)"),
      ro("physical_utilisation", i64(), "physical space currently utilised on this storage repository (in bytes)"),
      rc("physical_size", i64(), "total physical size of the repository (in bytes)"),
      rc("type", str(), "type of the storage repository (file, iso, lvm)"),
      rc("content_type", str(), "the type of the SR's content, if required (e.g. ISOs)"),
      rw("shared", boolean(), "true if this SR is (capable of being) shared between multiple hosts"),
      other_config(), tags(),
      ro("sm_config", map_ss(), "SM dependent data"),
      ro("is_tools_sr", boolean(), "True if this is the SR that contains the Tools ISO VDIs"),
  }});

  dm.classes.push_back({"PBD", "The physical block devices through which hosts access SRs", "pbd", true, true, {
      uuid(),
      rc("host", ref("host"), "physical machine on which the pbd is available"),
      rc("SR", ref("SR"), "the storage repository that the pbd realises"),
      rc("device_config", map_ss(), "a config string to string map that is provided to the host's SR-backend-driver (location=...)"),
      ro("currently_attached", boolean(), "is the SR currently attached on this host?"),
      other_config(),
  }});

  dm.classes.push_back({"network", "A virtual network", "network", true, true, {
      uuid(), name_label(), name_description(),
      allowed_ops("network_operations"), current_ops("network_operations"),
      inv("VIFs", "VIF", "network", "list of connected vifs"),
      rw("MTU", i64(), "MTU in octets", 1500),
      other_config(),
      ro("bridge", str(), "name of the bridge corresponding to this network on the local host"),
      ro("managed", boolean(), "true if the bridge is managed by the toolstack", true),
      tags(),
      rw("default_locking_mode", en("vif_locking_mode"), "The network will use this value to determine the behaviour of all VIFs where locking_mode = default", "unlocked"),
  }});

  dm.classes.push_back({"VIF", "A virtual network interface", "vif", true, true, {
      uuid(), allowed_ops("vif_operations"), current_ops("vif_operations"),
      rc("device", str(), "order in which VIF backends are created"),
      rc("network", ref("network"), "virtual network to which this vif is connected"),
      rc("VM", ref("VM"), "virtual machine to which this vif is connected"),
      rc("MAC", str(), "ethernet MAC address of virtual interface, as exposed to guest"),
      rc("MTU", i64(), "MTU in octets", 1500),
      other_config(),
      ro("currently_attached", boolean(), "is the device currently attached (erased on reboot)"),
      ro("status_code", i64(), "error/success code associated with last attach-operation (erased on reboot)"),
      ro("status_detail", str(), "error/success information associated with last attach-operation status (erased on reboot)"),
      ro("runtime_properties", map_ss(), "Device runtime properties (tap device name)"),
      ro("MAC_autogenerated", boolean(), "true if the MAC was autogenerated; false indicates it was set manually"),
      rw("locking_mode", en("vif_locking_mode"), "current locking mode of the VIF", "network_default"),
  }});

  dm.classes.push_back({"console", "A console", "console", true, true, {
      uuid(),
      ro("protocol", en("console_protocol"), "the protocol used by this console", "vt100"),
      ro("location", str(), "URI for the console service (unix:<path> for serial, vnc://127.0.0.1:<port> for rfb)"),
      ro("VM", ref("VM"), "VM to which this console is attached"),
      other_config(),
  }});

  dm.classes.push_back({"task", "A long-running asynchronous task", "task", false, true, {
      uuid(), name_label(), name_description(),
      ro("allowed_operations", set_en("task_allowed_operations"), "list of the operations allowed in this state"),
      current_ops("task_allowed_operations"),
      ro("created", dt(), "Time task was created"),
      ro("finished", dt(), "Time task finished (i.e. succeeded or failed). If task-status is pending, then the value of this field has no meaning"),
      ro("status", en("task_status_type"), "current status of the task", "pending"),
      ro("resident_on", ref("host"), "the host on which the task is running"),
      ro("progress", flt(), "This field contains the estimated fraction of the task which is complete."),
      ro("type", str(), "if the task has completed successfully, this field contains the type of the encoded result"),
      ro("result", str(), "if the task has completed successfully, this field contains the result value (either Void or an object reference)"),
      ro("error_info", set_str(), "if the task has failed, this field contains the set of associated error strings"),
      other_config(),
      ro("subtask_of", ref("task"), "Ref pointing to the task this is a substask of."),
      inv("subtasks", "task", "subtask_of", "List pointing to all the substasks."),
      ro("backtrace", str(), "Function call trace for debugging."),
  }});

  dm.classes.push_back({"event", "Asynchronous event registration and handling", "event", false, false, {
      ro("id", i64(), "An ID, monotonically increasing, and local to the current session"),
      ro("timestamp", dt(), "The time at which the event occurred"),
      ro("class", str(), "The name of the class of the object that changed"),
      ro("operation", en("event_operation"), "The operation that was performed"),
      ro("ref", str(), "A reference to the object that changed"),
      ro("obj_uuid", str(), "The uuid of the object that changed"),
  }});
  return dm;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string Type::to_string() const {
  auto scalar = [](Kind k, const std::string& t) -> std::string {
    switch (k) {
      case Kind::String: return "string";
      case Kind::Int: return "int";
      case Kind::Float: return "float";
      case Kind::Bool: return "bool";
      case Kind::DateTime: return "datetime";
      case Kind::Enum: return "enum " + t;
      case Kind::Ref: return t + " ref";
      default: return "?";
    }
  };
  switch (kind) {
    case Kind::Set: return "(" + scalar(elem, target) + ") Set";
    case Kind::Map: return "(string -> " + scalar(elem, target) + ") Map";
    default: return scalar(kind, target);
  }
}

const Field* ClassDef::field(std::string_view n) const {
  for (const auto& f : fields)
    if (f.name == n) return &f;
  return nullptr;
}

const ClassDef* Datamodel::cls(std::string_view n) const {
  for (const auto& c : classes)
    if (c.name == n) return &c;
  return nullptr;
}

const ClassDef* Datamodel::cls_ci(std::string_view n) const {
  auto l = lower(n);
  for (const auto& c : classes)
    if (lower(c.name) == l) return &c;
  return nullptr;
}

const EnumDef* Datamodel::enumeration(std::string_view n) const {
  for (const auto& e : enums)
    if (e.name == n) return &e;
  return nullptr;
}

Struct Datamodel::default_record(const ClassDef& c) const {
  Struct r;
  for (const auto& f : c.fields)
    if (!f.derived()) r[f.name] = f.default_value;
  return r;
}

Value Datamodel::coerce(const ClassDef& c, const Field& f, const Value& v) const {
  auto bad = [&](const Value& x) -> ApiError {
    return ApiError(errors::INVALID_VALUE, {c.name + "." + f.name, x.to_display()});
  };
  auto scalar = [&](Kind k, const std::string& target, const Value& x) -> Value {
    switch (k) {
      case Kind::String: return x.as_string();
      case Kind::Int: return x.as_int();
      case Kind::Float: return x.as_double();
      case Kind::Bool: return x.as_bool();
      case Kind::DateTime: return x.as_datetime();
      case Kind::Ref: {
        const auto& s = x.as_string();
        if (s.rfind("OpaqueRef:", 0) != 0) throw bad(x);
        return s;
      }
      case Kind::Enum: {
        const auto* e = enumeration(target);
        const auto& s = x.as_string();
        // Enums are matched case-insensitively, as xapi does, then stored in
        // their canonical spelling.
        if (e)
          for (const auto& val : e->values)
            if (lower(val) == lower(s)) return val;
        throw bad(x);
      }
      default: throw bad(x);
    }
  };
  try {
    switch (f.type.kind) {
      case Kind::Set: {
        Array out;
        for (const auto& e : v.as_array()) out.push_back(scalar(f.type.elem, f.type.target, e));
        return out;
      }
      case Kind::Map: {
        Struct out;
        for (const auto& [k, e] : v.as_struct()) out[k] = scalar(f.type.elem, f.type.target, e);
        return out;
      }
      default: return scalar(f.type.kind, f.type.target, v);
    }
  } catch (const ApiError& e) {
    if (e.code() == errors::INVALID_VALUE) throw;
    throw ApiError(errors::FIELD_TYPE_ERROR, {f.name});
  }
}

const Datamodel& datamodel() {
  static const Datamodel dm = build();  // immutable after construction
  return dm;
}

std::string cli_name(std::string_view api) {
  std::string out(api);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string api_name_from_cli(std::string_view cli) {
  std::string out(cli);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

}  // namespace vmstack::model
