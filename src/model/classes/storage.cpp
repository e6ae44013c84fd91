// SR, PBD, VDI and VBD.
#include "model/declare.h"

namespace vmstack::model::declare {

namespace {

ClassDef sr_class() {
  return cls("SR", "A storage repository", "sr",
             {
                 uuid(), name_label(), name_description(),
                 allowed_ops("storage_operations"), current_ops("storage_operations"),
                 inv("VDIs", "VDI", "SR", "all virtual disks known to this storage repository"),
                 inv("PBDs", "PBD", "SR", "describes how particular hosts can see this storage repository"),
                 ro("virtual_allocation", i64(), "sum of virtual_sizes of all VDIs in this storage repository (in bytes)"),
                 ro("physical_utilisation", i64(), "physical space currently utilised on this storage repository (in bytes)"),
                 rc("physical_size", i64(), "total physical size of the repository (in bytes)"),
                 rc("type", str(), "type of the storage repository: the SR driver that serves it (file)"),
                 rc("content_type", str(), "the type of the SR's content, if required (e.g. ISOs)"),
                 rw("shared", boolean(), "true if this SR is (capable of being) shared between multiple hosts"),
                 other_config(), tags(),
                 rw("sm_config", map_ss(), "SM dependent data"),
                 ro("is_tools_sr", boolean(), "True if this is the SR that contains the Tools ISO VDIs"),
                 ro("blobs", map_sr("blob"), "Binary blobs associated with this SR"),
                 ro("local_cache_enabled", boolean(), "True if this SR is assigned to be the local cache for its host"),
                 ro("introduced_by", ref("DR_task"), "The disaster recovery task which introduced this SR (always null: vmstack has no DR_task)"),
                 ro("clustered", boolean(), "True if the SR is using aggregated local storage"),
             },
             {
                 Msg("get_supported_types", "Return a set of all the SR types supported by the system")
                     .returns(set_str()),
                 Msg("scan", "Refreshes the list of VDIs associated with an SR and its usage figures")
                     .param(ref("SR"), "sr", "The SR to scan")
                     .errors({"SR_BACKEND_FAILURE"}),
             });
}

ClassDef pbd_class() {
  return cls("PBD", "The physical block devices through which hosts access SRs", "pbd",
             {
                 uuid(),
                 rc("host", ref("host"), "physical machine on which the pbd is available"),
                 rc("SR", ref("SR"), "the storage repository that the pbd realises"),
                 rc("device_config", map_ss(), "a config string to string map that is provided to the host's SR-backend-driver (location=...)"),
                 ro("currently_attached", boolean(), "is the SR currently attached on this host?"),
                 other_config(),
             });
}

ClassDef vdi_class() {
  return cls("VDI", "A virtual disk image", "vdi",
             {
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
                 ro("location", str(), "location information: the SR driver's name for the image (a file name for file SRs)"),
                 ro("managed", boolean(), "", true),
                 ro("missing", boolean(), "true if SR scan operation reported this VDI as not present on disk"),
                 ro("crash_dumps", set_ref("crashdump"), "list of crash dumps that refer to this disk (always empty: vmstack has no crashdump)"),
                 ro("parent", ref("VDI"), "This field is always null. Deprecated"),
                 ro("metadata_of_pool", ref("pool"), "The pool whose metadata is contained in this VDI"),
                 ro("metadata_latest", boolean(), "Whether this VDI contains the latest known accessible metadata for the pool"),
                 ro("cbt_enabled", boolean(), "True if changed blocks are tracked for this VDI"),
                 rw("xenstore_data", map_ss(), "data to be inserted into the xenstore tree"),
                 rw("sm_config", map_ss(), "SM dependent data (informational: the image format is the SR driver's fact, never read from here)"),
                 ro("is_a_snapshot", boolean(), "true if this is a snapshot."),
                 ro("snapshot_of", ref("VDI"), "Ref pointing to the VDI this snapshot is of."),
                 inv("snapshots", "VDI", "snapshot_of", "List pointing to all the VDIs snapshots."),
                 ro("snapshot_time", datetime(), "Date/time when this snapshot was created."),
                 tags(),
                 rw("allow_caching", boolean(), "true if this VDI is to be cached in the local cache SR"),
                 rw("on_boot", en("on_boot"), "The behaviour of this VDI on a VM boot", "persist"),
                 ro("is_tools_iso", boolean(), "Whether this VDI is a Tools ISO"),
             },
             {
                 Msg("create", "Create a new VDI in the SR the record names (name_label, virtual_size, type, ...), "
                               "and return its handle.")
                     .param(record("VDI"), "args", "All constructor arguments")
                     .returns(ref("VDI"))
                     .errors({"HANDLE_INVALID", "INVALID_VALUE", "SR_BACKEND_FAILURE"}),
                 Msg("destroy", "Destroy the VDI and its image; refused while a running VM uses it.")
                     .param(ref("VDI"), "self", "The VDI")
                     .errors({"VDI_IN_USE", "SR_BACKEND_FAILURE"}),
                 Msg("copy", "Copies a VDI into an SR, making a full (not thin) copy.")
                     .param(ref("VDI"), "vdi", "The VDI to copy")
                     .param(ref("SR"), "sr", "The destination SR")
                     .returns(ref("VDI"))
                     .errors({"HANDLE_INVALID", "SR_BACKEND_FAILURE"}),
                 Msg("clone", "Take an exact copy of the VDI in its own SR and return a reference to the new disk.")
                     .param(ref("VDI"), "vdi", "The VDI to clone")
                     .param(map_ss(), "driver_params", "Optional parameters that are passed through to the backend driver", Struct{})
                     .returns(ref("VDI"))
                     .errors({"SR_BACKEND_FAILURE"}),
             });
}

ClassDef vbd_class() {
  return cls("VBD", "A virtual block device", "vbd",
             {
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
                 ro("qos_supported_algorithms", set_str(), "supported QoS algorithms for this VBD"),
             },
             {
                 Msg("create", "Create a new VBD (a VM's disk or CD drive) from a record, and return its handle.")
                     .param(record("VBD"), "args", "All constructor arguments")
                     .returns(ref("VBD"))
                     .errors({"HANDLE_INVALID", "INVALID_VALUE"}),
                 Msg("destroy", "Destroy the VBD; refused while it is attached to a running VM.")
                     .param(ref("VBD"), "self", "The VBD")
                     .errors({"OPERATION_NOT_ALLOWED"}),
             });
}

}  // namespace

void declare_storage(Datamodel& dm) {
  dm.enums.push_back({"vbd_operations", {"attach", "eject", "insert", "plug", "unplug", "unplug_force", "pause", "unpause"}});
  dm.enums.push_back({"vbd_type", {"CD", "Disk", "Floppy"}});
  dm.enums.push_back({"vbd_mode", {"RO", "RW"}});
  dm.enums.push_back({"vdi_operations", {"clone", "copy", "resize", "resize_online", "snapshot", "destroy", "forget",
                                         "update", "force_unlock", "generate_config", "scan"}});
  dm.enums.push_back({"vdi_type", {"system", "user", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata",
                                   "redo_log", "rrd", "pvs_cache", "cbt_metadata"}});
  dm.enums.push_back({"on_boot", {"reset", "persist"}});
  dm.enums.push_back({"storage_operations", {"scan", "destroy", "forget", "plug", "unplug", "update", "vdi_create",
                                             "vdi_introduce", "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot",
                                             "vdi_mirror", "pbd_create", "pbd_destroy"}});
  dm.classes.push_back(sr_class());
  dm.classes.push_back(pbd_class());
  dm.classes.push_back(vdi_class());
  dm.classes.push_back(vbd_class());

  // One per SR driver (SR.type): what `xe sm-list` shows.
  dm.classes.push_back(cls(
      "SM", "A storage manager plugin", "sm",
      {
          uuid(),
          ro("name_label", str(), "a human-readable name"),
          ro("name_description", str(), "a notes field containing human-readable description"),
          ro("type", str(), "SR.type"),
          ro("vendor", str(), "Vendor who created this plugin"),
          ro("copyright", str(), "Entity which owns the copyright of this plugin"),
          ro("version", str(), "Version of the plugin"),
          ro("required_api_version", str(), "Minimum SM API version required on the server"),
          ro("configuration", map_ss(), "names and descriptions of device config keys"),
          ro("capabilities", set_str(), "capabilities of the SM plugin"),
          ro("features", map_si(), "capabilities of the SM plugin, with capability version numbers"),
          other_config(),
          ro("driver_filename", str(), "filename of the storage driver"),
          ro("required_cluster_stack", set_str(), "The storage plugin requires that one of these cluster stacks is configured and running."),
      }));
}

}  // namespace vmstack::model::declare
