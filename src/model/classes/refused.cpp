// xapi's messages this host lacks, each group with the reason a caller
// reads in OPERATION_NOT_ALLOWED ["<Class>.<message>: <reason>"]. Declared
// last, after the classes they belong to; a message that starts working
// moves from here to its class's declarations and gets a handler in ops/.
#include "model/declare.h"

namespace vmstack::model::declare {

void declare_refused(Datamodel& dm) {
  const std::string ha = "vmstack has no high availability (HA)";
  refused(dm, "pool", ha,
          {"enable_ha", "disable_ha", "ha_prevent_restarts_for", "ha_failover_plan_exists",
           "ha_compute_max_host_failures_to_tolerate", "ha_compute_hypothetical_max_host_failures_to_tolerate",
           "ha_compute_vm_failover_plan", "set_ha_host_failures_to_tolerate"});
  refused(dm, "host", ha, {"emergency_ha_disable"});
  refused(dm, "SR", ha, {"assert_can_host_ha_statefile"});

  const std::string one_host = "this pool has one host; pools of several hosts and migration between them are not built yet";
  refused(dm, "pool", one_host,
          {"join", "join_force", "eject", "emergency_reset_master", "emergency_transition_to_master", "recover_slaves",
           "designate_new_master", "sync_database"});
  refused(dm, "host", one_host, {"declare_dead", "migrate_receive", "destroy"});
  refused(dm, "VM", one_host, {"pool_migrate", "migrate_send", "assert_can_migrate", "assert_agile"});
  refused(dm, "VDI", one_host, {"pool_migrate"});

  const std::string wlb = "vmstack has no workload balancing (WLB)";
  refused(dm, "pool", wlb,
          {"initialize_wlb", "deconfigure_wlb", "send_wlb_configuration", "retrieve_wlb_configuration",
           "retrieve_wlb_recommendations", "send_test_post"});
  refused(dm, "host", wlb, {"retrieve_wlb_evacuate_recommendations"});
  refused(dm, "VM", wlb, {"retrieve_wlb_recommendations"});

  const std::string auth = "vmstack has no external directory or RBAC: local accounts (PAM) log in, each with full rights";
  refused(dm, "pool", auth, {"enable_external_auth", "disable_external_auth", "detect_nonhomogeneous_external_auth"});
  refused(dm, "host", auth, {"enable_external_auth", "disable_external_auth"});
  refused(dm, "role", auth,
          {"get_permissions", "get_permissions_name_label", "get_by_permission", "get_by_permission_name_label"});
  refused(dm, "subject", auth, {"add_to_roles", "remove_from_roles", "get_permissions_name_label"});
  refused(dm, "session", "vmstack keeps its database in SQLite and opens no xapi database files", {"create_from_db_file"});

  const std::string tls = "the TLS certificate and key are files the operator replaces (vmstackd --tls-cert, --tls-key); "
                          "no API call manages them";
  refused(dm, "pool", tls,
          {"certificate_install", "certificate_uninstall", "certificate_list", "crl_install", "crl_uninstall",
           "crl_list", "certificate_sync", "enable_ssl_legacy", "disable_ssl_legacy"});
  refused(dm, "host", tls, {"get_server_certificate", "set_ssl_legacy"});

  const std::string licence = "vmstack is free software: no licences or editions";
  refused(dm, "pool", licence, {"apply_edition", "get_license_state"});
  refused(dm, "host", licence, {"apply_edition", "license_add", "license_remove", "refresh_pack_info"});

  const std::string dr = "vmstack has no disaster-recovery metadata replication";
  refused(dm, "pool", dr, {"enable_redo_log", "disable_redo_log"});
  refused(dm, "SR", dr,
          {"enable_database_replication", "disable_database_replication", "assert_supports_database_replication"});
  refused(dm, "VDI", dr, {"open_database", "read_database_pool_uuid"});
  refused(dm, "VM", dr, {"recover", "get_SRs_required_for_recovery", "assert_can_be_recovered"});

  const std::string host_net = "vmstack does not manage the host's interfaces, VLANs, management address or syslog yet";
  refused(dm, "pool", host_net,
          {"create_VLAN", "create_VLAN_from_PIF", "management_reconfigure", "set_vswitch_controller",
           "set_igmp_snooping_enabled"});
  refused(dm, "host", host_net,
          {"get_management_interface", "management_disable", "local_management_reconfigure", "management_reconfigure",
           "syslog_reconfigure", "set_hostname_live"});
  refused(dm, "PIF", host_net,
          {"create_VLAN", "destroy", "reconfigure_ip", "reconfigure_ipv6", "set_primary_address_type", "scan",
           "introduce", "forget", "unplug", "set_disallow_unplug", "plug", "db_introduce", "db_forget", "set_property"});
  refused(dm, "network", "vmstack serves no NBD on its networks", {"add_purpose", "remove_purpose"});
  refused(dm, "VIF", "VIF hot-plug, moves and address filtering are not built yet (a VIF's NIC comes and goes with its VM)",
          {"plug", "unplug", "unplug_force", "move", "set_ipv4_allowed", "add_ipv4_allowed", "remove_ipv4_allowed",
           "set_ipv6_allowed", "add_ipv6_allowed", "remove_ipv6_allowed", "configure_ipv4", "configure_ipv6"});

  const std::string storage = "this host has one file SR; SR management and VDI snapshots, resizing and tracking are "
                              "not built yet";
  refused(dm, "pool", storage, {"enable_local_storage_caching", "disable_local_storage_caching", "test_archive_target"});
  refused(dm, "host", storage, {"enable_local_storage_caching", "disable_local_storage_caching"});
  refused(dm, "SR", storage,
          {"create", "introduce", "make", "destroy", "forget", "update", "probe", "probe_ext", "set_physical_size"});
  refused(dm, "PBD", storage, {"plug", "unplug", "set_device_config"});
  refused(dm, "VDI", storage,
          {"snapshot", "resize", "introduce", "forget", "update", "set_read_only", "set_sharable", "data_destroy",
           "enable_cbt", "disable_cbt", "list_changed_blocks", "get_nbd_info"});
  refused(dm, "VBD", "disk and CD hot-plug, insert and eject are not built yet (a VBD is attached when its VM starts)",
          {"plug", "unplug", "unplug_force", "insert", "eject", "assert_attachable"});
  refused(dm, "VM", "VM snapshots and checkpoints need disk snapshots, which are not built yet",
          {"snapshot", "snapshot_with_quiesce", "checkpoint", "revert"});
  refused(dm, "VM", "VM.import takes no URL here; imports are not built yet", {"import", "import_convert"});

  const std::string rrd = "vmstack keeps no RRD data sources yet";
  for (const char* c : {"host", "VM", "SR"})
    refused(dm, c, rrd, {"get_data_sources", "query_data_source", "record_data_source", "forget_data_source_archives"});
  refused(dm, "host", rrd, {"backup_rrds", "sync_data"});

  refused(dm, "host",
          "vmstack does not power or administer the machine it runs on; use the host's own tools (systemctl, "
          "journalctl, dmesg)",
          {"reboot", "shutdown", "power_on", "set_power_on_mode", "shutdown_agent", "restart_agent", "enable_display",
           "disable_display", "send_debug_keys", "bugreport_upload", "get_system_status_capabilities", "dmesg",
           "dmesg_clear", "get_log", "set_uefi_certificates", "set_multipathing", "set_iscsi_iqn"});

  const std::string plugins = "vmstack runs no host plugins or extensions";
  refused(dm, "host", plugins, {"call_plugin", "call_extension", "has_extension"});
  refused(dm, "pool", plugins, {"has_extension"});
  refused(dm, "VM", plugins, {"call_plugin"});

  const std::string blobs = "vmstack stores no binary blobs";
  for (const char* c : {"pool", "host", "network", "SR", "VM"}) refused(dm, c, blobs, {"create_new_blob"});
  refused(dm, "blob", blobs, {"create", "destroy"});

  refused(dm, "pool", "vmstack has no guest agent to configure", {"add_to_guest_agent_config", "remove_from_guest_agent_config"});
  refused(dm, "VM", "vmstack has no guest agent", {"query_services"});
  refused(dm, "VM",
          "a running VM's VCPU count and memory target do not change live (its balloon follows memory_dynamic_max)",
          {"set_VCPUs_number_live", "add_to_VCPUs_params_live", "set_memory_target_live", "wait_memory_target_live",
           "set_shadow_multiplier_live", "maximise_memory"});
  refused(dm, "VM", "vmstack cannot send sysrq keys or triggers to a guest yet", {"send_sysrq", "send_trigger"});
  refused(dm, "VM", "vmstack has no VM appliances, protection policies or snapshot schedules",
          {"set_appliance", "set_protection_policy", "set_snapshot_schedule"});
  refused(dm, "VM", "guests see QEMU's BIOS strings; vmstack does not copy the host's", {"copy_bios_strings"});
  refused(dm, "message", "vmstack takes no query expressions; use message.get_since or message.get_all_records",
          {"get_all_records_where"});
}

}  // namespace vmstack::model::declare
