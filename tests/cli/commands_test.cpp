// xe's commands against an in-process API server backed by a real
// model::Database: what is printed, what is called, what changes, and the
// exit codes.
#include <gtest/gtest.h>

#include <filesystem>

#include <fstream>
#include <thread>

#include "cli/complete.h"
#include "cli/fields.h"
#include "xe_runner.h"

using namespace vmstack;
using namespace vmstack::cli;
using namespace vmstack::cli::testing;

namespace {

class XeCommands : public ::testing::Test {
 protected:
  TestDaemon d;
  XeResult xe(const std::vector<std::string>& argv, const std::string& input = {}) { return run_xe(d, argv, input); }
  std::string uuid(const std::string& cls, const std::string& ref) { return uuid_of(d, cls, ref); }
  Value field(const std::string& cls, const std::string& ref, const std::string& f) {
    return d.db().get_field(cls, ref, f);
  }
  size_t count(const std::string& method) {
    auto c = d.calls();
    return static_cast<size_t>(std::count(c.begin(), c.end(), method));
  }
  std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
      if (c == sep) out.push_back(cur), cur.clear();
      else if (c != '\n') cur.push_back(c);
    }
    out.push_back(cur);
    return out;
  }
};

const std::string kBadPowerDoc =
    "You attempted an operation on a VM that was not in an appropriate power state at the time; for example, you "
    "attempted to start a VM that was already running. The parameters returned are the VM's handle, and the "
    "expected and actual VM state at the time of the call.";

}  // namespace

// ---- lists

TEST_F(XeCommands, VmListShowsVmsInXeLayout) {
  auto r = xe({"vm-list"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::string alpha = "uuid ( RO)           : " + uuid("VM", d.alpha) +
                      "\n     name-label ( RW): alpha\n    power-state ( RO): halted\n\n";
  std::string beta = "uuid ( RO)           : " + uuid("VM", d.beta) +
                     "\n     name-label ( RW): beta\n    power-state ( RO): running\n\n";
  EXPECT_NE(r.out.find(alpha), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(beta), std::string::npos) << r.out;
  // Templates and the control domain are not VMs for vm-list.
  EXPECT_EQ(r.out.size(), alpha.size() + beta.size()) << r.out;
  EXPECT_EQ(d.live_sessions(), 0u) << "xe must log out";
}

TEST_F(XeCommands, MinimalAndFilters) {
  auto all = xe({"vm-list", "--minimal"});
  ASSERT_EQ(all.rc, 0);
  auto uuids = split(all.out, ',');
  std::sort(uuids.begin(), uuids.end());
  std::vector<std::string> want = {uuid("VM", d.alpha), uuid("VM", d.beta)};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(uuids, want);

  EXPECT_EQ(xe({"vm-list", "power-state=running", "params=name-label", "--minimal"}).out, "beta\n");
  // Enum values compare case-insensitively.
  EXPECT_EQ(xe({"vm-list", "power-state=Running", "params=name-label", "--minimal"}).out, "beta\n");
  EXPECT_EQ(xe({"vm-list", "other-config:tier=gold", "params=name-label", "--minimal"}).out, "alpha\n");
  EXPECT_EQ(xe({"vm-list", "tags:contains=web", "params=name-label", "--minimal"}).out, "alpha\n");
  EXPECT_EQ(xe({"vm-list", "name-label=nobody", "--minimal"}).out, "\n");
  // The control domain is there when asked for.
  EXPECT_EQ(xe({"vm-list", "is-control-domain=true", "params=uuid", "--minimal"}).out, uuid("VM", d.dom0) + "\n");
  // A template's description with a comma is escaped in minimal output.
  EXPECT_EQ(xe({"template-list", "params=name-description", "--minimal"}).out, "a template\\, with a comma\n");
}

// The classes added for xapi's clients list like any other.
TEST_F(XeCommands, HostCpusSmAndMessagesList) {
  auto cpus = xe({"host-cpu-list", "params=number", "--minimal"});
  ASSERT_EQ(cpus.rc, 0) << cpus.err;
  EXPECT_EQ(split(cpus.out, ',').size(), std::thread::hardware_concurrency()) << cpus.out;
  EXPECT_EQ(xe({"sm-list", "params=type", "--minimal"}).out, "file\n");
  EXPECT_EQ(xe({"pif-list", "--minimal"}).out, "\n");  // host interfaces come with the networking work
  EXPECT_EQ(xe({"message-list", "--minimal"}).out, "\n");
}

// network-create/-destroy and vif-create/-destroy as the operator's notes
// run them (the NAT and internal kinds' host side is tested in test_ops'
// NatNetworkTest, on real networking).
TEST_F(XeCommands, NetworkAndVifCreateAndDestroy) {
  auto net = xe({"network-create", "name-label=lan", "MTU=9000"});
  ASSERT_EQ(net.rc, 0) << net.err;
  auto net_uuid = net.out.substr(0, net.out.find('\n'));
  ASSERT_EQ(net_uuid.size(), 36u) << net.out;
  auto bridge = xe({"network-list", "uuid=" + net_uuid, "params=bridge", "--minimal"}).out;
  EXPECT_EQ(bridge.rfind("xenbr", 0), 0u) << bridge;
  EXPECT_EQ(xe({"network-list", "bridge=" + bridge.substr(0, bridge.size() - 1), "--minimal"}).out, net_uuid + "\n");
  EXPECT_EQ(xe({"network-param-get", "uuid=" + net_uuid, "param-name=MTU"}).out, "9000\n");

  auto vif = xe({"vif-create", "vm-uuid=" + uuid("VM", d.alpha), "network-uuid=" + net_uuid, "device=1"});
  ASSERT_EQ(vif.rc, 0) << vif.err;
  auto vif_uuid = vif.out.substr(0, vif.out.find('\n'));
  auto mac = xe({"vif-param-get", "uuid=" + vif_uuid, "param-name=MAC"}).out;
  EXPECT_EQ(mac.substr(0, 3), "02:") << mac;  // generated, locally administered
  EXPECT_EQ(xe({"vif-param-get", "uuid=" + vif_uuid, "param-name=MTU"}).out, "9000\n");  // the network's
  auto dup = xe({"vif-create", "vm-uuid=" + uuid("VM", d.alpha), "network-uuid=" + net_uuid, "device=1",
                 "mac=02:11:22:33:44:55"});
  EXPECT_EQ(dup.rc, 1);
  EXPECT_NE(dup.err.find("The device name is already in use.\ndevice: 1"), std::string::npos) << dup.err;
  auto busy = xe({"network-destroy", "uuid=" + net_uuid});
  EXPECT_EQ(busy.rc, 1);
  EXPECT_NE(busy.err.find("NETWORK_CONTAINS_VIF"), std::string::npos) << busy.err;
  EXPECT_EQ(xe({"vif-destroy", "uuid=" + vif_uuid}).rc, 0);
  EXPECT_EQ(xe({"network-destroy", "uuid=" + net_uuid}).rc, 0);
  EXPECT_EQ(xe({"network-list", "uuid=" + net_uuid, "--minimal"}).out, "\n");

  auto bad = xe({"network-create", "name-label=x", "mode=routed", "subnet=10.0.0.0/24"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("The value given is invalid\nfield: mode\nvalue: routed (bridged, nat or internal)"),
            std::string::npos)
      << bad.err;
  auto nosubnet = xe({"network-create", "name-label=x", "mode=nat"});
  EXPECT_EQ(nosubnet.rc, 1);
  EXPECT_NE(nosubnet.err.find("subnet"), std::string::npos) << nosubnet.err;
}

// What a guest reports (its addresses from DHCP leases, NatNetworkTest) is
// shown on the VM as xapi's xe shows it: networks, os-version,
// PV-drivers-version from its VM_guest_metrics.
TEST_F(XeCommands, VmShowsItsGuestMetrics) {
  auto vm = uuid("VM", d.alpha);
  EXPECT_EQ(xe({"vm-param-get", "uuid=" + vm, "param-name=networks"}).out, "<not in database>\n");
  auto gm = d.db().create("VM_guest_metrics", {{"networks", Struct{{"0/ip", "10.0.0.5"}, {"0/ipv4/0", "10.0.0.5"}}}});
  d.db().update("VM", d.alpha, {{"guest_metrics", gm}});
  EXPECT_EQ(xe({"vm-param-get", "uuid=" + vm, "param-name=networks"}).out, "0/ip: 10.0.0.5; 0/ipv4/0: 10.0.0.5\n");
  EXPECT_EQ(xe({"vm-param-get", "uuid=" + vm, "param-name=networks", "param-key=0/ip"}).out, "10.0.0.5\n");
  auto list = xe({"vm-param-list", "uuid=" + vm}).out;
  EXPECT_NE(list.find("networks (MRO): 0/ip: 10.0.0.5; 0/ipv4/0: 10.0.0.5"), std::string::npos) << list;
  EXPECT_EQ(xe({"vm-list", "networks:0/ip=10.0.0.5", "params=name-label", "--minimal"}).out, "alpha\n");
  auto set = xe({"vm-param-set", "uuid=" + vm, "networks:0/ip=1.2.3.4"});
  EXPECT_EQ(set.rc, 1);
}

TEST_F(XeCommands, ListRejectsUnknownFields) {
  auto r = xe({"vm-list", "bogus=1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error: Unknown field 'bogus'\n");
  EXPECT_EQ(r.out, "");
  auto s = xe({"vm-list", "tags:has=x"});
  EXPECT_EQ(s.rc, 1);
  EXPECT_EQ(s.err, "Error: Invalid syntax for set filtering (should be set-param:contains=key)\n");
}

TEST_F(XeCommands, TemplateListAndParamsAll) {
  auto r = xe({"template-list", "params=uuid,name-label"});
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "uuid ( RO)          : " + uuid("VM", d.tmpl) + "\n    name-label ( RW): Debian Template\n\n");
  auto all = xe({"vm-list", "name-label=alpha", "params=all"});
  // params=all prints every field of the datamodel, one line each.
  size_t lines = static_cast<size_t>(std::count(all.out.begin(), all.out.end(), '\n'));
  EXPECT_EQ(lines, cli_fields(*model::datamodel().cls("VM")).size() + 1);
}

TEST_F(XeCommands, ReferencesShowAsUuidsAndNames) {
  auto r = xe({"vbd-list"});
  ASSERT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("vm-uuid ( RO): " + uuid("VM", d.beta)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vm-name-label ( RO): beta"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vdi-uuid ( RO): " + uuid("VDI", d.beta_vdi)), std::string::npos) << r.out;
  auto vbd_of_beta = xe({"vbd-list", "vm-name-label=beta", "params=uuid", "--minimal"});
  EXPECT_EQ(vbd_of_beta.out, uuid("VBD", d.beta_vbd) + "\n");
}

// ---- param-list / param-get

TEST_F(XeCommands, ParamListShowsEveryFieldWithQualifiers) {
  auto r = xe({"vm-param-list", "uuid=" + uuid("VM", d.alpha)});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("other-config (MRW): owner: ops; tier: gold\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tags (SRW): web\n"), std::string::npos);
  EXPECT_NE(r.out.find("power-state ( RO): halted\n"), std::string::npos);
  EXPECT_NE(r.out.find("resident-on ( RO): <not in database>\n"), std::string::npos);
  // Computed by the daemon from the lifecycle table: a halted VM can start.
  EXPECT_NE(r.out.find("allowed-operations (SRO): "), std::string::npos);
  EXPECT_NE(r.out.substr(r.out.find("allowed-operations (SRO): ")).find("start"), std::string::npos);
  auto b = xe({"vm-param-list", "uuid=" + uuid("VM", d.beta)});
  EXPECT_NE(b.out.find("resident-on ( RO): " + uuid("host", d.host) + "\n"), std::string::npos);
  EXPECT_NE(b.out.find("VBDs (SRO): " + uuid("VBD", d.beta_vbd) + "\n"), std::string::npos);
  EXPECT_NE(b.out.find("HVM-shadow-multiplier ( RW): 1.000\n"), std::string::npos);
}

TEST_F(XeCommands, ParamListOfUnknownUuid) {
  auto r = xe({"vm-param-list", "uuid=00000000-0000-0000-0000-000000000000"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("The uuid you supplied was invalid.\ntype: VM\nuuid: 00000000-0000-0000-0000-000000000000"),
            std::string::npos)
      << r.err;
  auto m = xe({"vm-param-list"});
  EXPECT_EQ(m.rc, 1);
  EXPECT_EQ(m.err, "Required parameter not found: uuid\nFor usage run: 'xe help'\n");
}

TEST_F(XeCommands, ParamGet) {
  std::string u = "uuid=" + uuid("VM", d.alpha);
  EXPECT_EQ(xe({"vm-param-get", u, "param-name=name-label"}).out, "alpha\n");
  EXPECT_EQ(xe({"vm-param-get", u, "param-name=other-config", "param-key=tier"}).out, "gold\n");
  EXPECT_EQ(xe({"vm-param-get", u, "param-name=other-config"}).out, "owner: ops; tier: gold\n");
  EXPECT_EQ(xe({"vm-param-get", u, "param-name=memory-static-max"}).out, std::to_string(256 << 20) + "\n");
  auto missing = xe({"vm-param-get", u, "param-name=other-config", "param-key=nope"});
  EXPECT_EQ(missing.rc, 1);
  EXPECT_EQ(missing.err, "Error: Key nope not found in map\n");
  auto bogus = xe({"vm-param-get", u, "param-name=bogus"});
  EXPECT_EQ(bogus.rc, 1);
  EXPECT_EQ(bogus.err, "Error code: Missing parameter\nError parameters: bogus\n");
}

// ---- param-set / add / remove / clear

TEST_F(XeCommands, ParamSetScalarsAndMapKeys) {
  std::string u = "uuid=" + uuid("VM", d.alpha);
  auto r = xe({"vm-param-set", u, "name-label=alpha-2", "other-config:tier=silver", "other-config:new=1",
               "memory-static-max=512MiB", "HVM-shadow-multiplier=2.5", "affinity=" + uuid("host", d.host)});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(field("VM", d.alpha, "name_label").as_string(), "alpha-2");
  auto oc = field("VM", d.alpha, "other_config").as_struct();
  EXPECT_EQ(oc.at("tier").as_string(), "silver");  // replaced
  EXPECT_EQ(oc.at("new").as_string(), "1");        // added
  EXPECT_EQ(oc.at("owner").as_string(), "ops");    // untouched
  EXPECT_EQ(field("VM", d.alpha, "memory_static_max").as_int(), 512LL << 20);
  EXPECT_DOUBLE_EQ(field("VM", d.alpha, "HVM_shadow_multiplier").as_double(), 2.5);
  EXPECT_EQ(field("VM", d.alpha, "affinity").as_string(), d.host);
  // Clearing a reference with an empty value.
  ASSERT_EQ(xe({"vm-param-set", u, "affinity="}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "affinity").as_string(), "OpaqueRef:NULL");
}

TEST_F(XeCommands, ParamSetRefusesReadOnlyAndChangesNothing) {
  std::string u = "uuid=" + uuid("VM", d.alpha);
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"name-label=zzz", "power-state=running"}, "Error: Field 'power-state' is read-only.\n"},
      {{"name-label=zzz", "other-config=x"},
       "Error: Field 'other-config' is a map or set. use the 'name:key=value' syntax.\n"},
      {{"name-label=zzz", "tags=a"}, "Error: Cannot param-set on set fields\n"},
      {{"name-label=zzz", "bogus=1"}, "Error: Unknown field 'bogus'\n"},
      {{"name-label=zzz", "last-boot-CPU-flags:a=b"}, "Error: Map field 'last-boot-CPU-flags' is read-only.\n"},
      {{"name-label=zzz", "VCPUs-max=many"}, "Error: Parameter VCPUs-max must be an integer\n"},
      {{"name-label=zzz", "is-a-template=perhaps"}, "Error: Parameter is-a-template must be a boolean (true or false)\n"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {"vm-param-set", u};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = xe(argv);
    EXPECT_EQ(r.rc, 1) << c.args.back();
    EXPECT_EQ(r.err, c.err);
    EXPECT_EQ(field("VM", d.alpha, "name_label").as_string(), "alpha") << "applied before failing: " << c.args.back();
  }
  // The daemon's own validation comes back as its error.
  auto bad_enum = xe({"vm-param-set", u, "actions-after-crash=explode"});
  EXPECT_EQ(bad_enum.rc, 1);
  EXPECT_NE(bad_enum.err.find("The value given is invalid"), std::string::npos) << bad_enum.err;
}

TEST_F(XeCommands, ParamAddRemoveClear) {
  std::string u = "uuid=" + uuid("VM", d.alpha);
  ASSERT_EQ(xe({"vm-param-add", u, "param-name=tags", "param-key=db"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "tags"), Value(Array{"web", "db"}));
  ASSERT_EQ(xe({"vm-param-remove", u, "param-name=tags", "param-key=web"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "tags"), Value(Array{"db"}));
  auto gone = xe({"vm-param-remove", u, "param-name=tags", "param-key=web"});
  EXPECT_EQ(gone.rc, 1);
  EXPECT_EQ(gone.err, "Error: Key web is not in the set\n");

  ASSERT_EQ(xe({"vm-param-add", u, "param-name=platform", "acpi=1", "vnc=0"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "platform"), Value(Struct{{"acpi", "1"}, {"vnc", "0"}}));
  auto dup = xe({"vm-param-add", u, "param-name=platform", "acpi=0"});
  EXPECT_EQ(dup.rc, 1);
  EXPECT_NE(dup.err.find("You tried to add a key-value pair to a map, but that key is already there."),
            std::string::npos);
  ASSERT_EQ(xe({"vm-param-remove", u, "param-name=platform", "param-key=vnc"}).rc, 0);
  EXPECT_EQ(xe({"vm-param-remove", u, "param-name=platform", "param-key=vnc"}).err, "Error: Key vnc is not in map\n");

  ASSERT_EQ(xe({"vm-param-clear", u, "param-name=other-config"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "other_config"), Value(Struct{}));
  ASSERT_EQ(xe({"vm-param-clear", u, "param-name=name-description"}).rc, 0);
  EXPECT_EQ(xe({"vm-param-clear", u, "param-name=power-state"}).err, "Error: Can only clear RW parameters\n");
  EXPECT_EQ(xe({"vm-param-clear", u, "param-name=VCPUs-max"}).err, "Error: Cannot clear this parameter\n");
  EXPECT_EQ(xe({"vm-param-add", u, "param-name=name-label", "param-key=x"}).err,
            "Error: Can only add to parameters of type Set or Map\n");
  EXPECT_EQ(xe({"vm-param-add", u, "param-name=allowed-operations", "param-key=x"}).err,
            "Error: Parameter is read-only\n");
  EXPECT_EQ(xe({"vm-param-add", u, "param-name=tags"}).err,
            "Error: When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>\n");
}

// ---- VM verbs and selectors

TEST_F(XeCommands, StartAndShutdownCallTheRightVerbs) {
  auto r = xe({"vm-start", "vm=alpha"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(field("VM", d.alpha, "power_state").as_string(), "Running");
  EXPECT_EQ(count("VM.start"), 1u);
  ASSERT_EQ(xe({"vm-shutdown", "uuid=" + uuid("VM", d.alpha)}).rc, 0);
  EXPECT_EQ(count("VM.clean_shutdown"), 1u);
  ASSERT_EQ(xe({"vm-start", "vm=" + uuid("VM", d.alpha), "paused=true"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "power_state").as_string(), "Paused");
  ASSERT_EQ(xe({"vm-unpause", "vm=alpha"}).rc, 0);
  ASSERT_EQ(xe({"vm-reboot", "vm=alpha", "--force"}).rc, 0);
  EXPECT_EQ(count("VM.hard_reboot"), 1u);
  ASSERT_EQ(xe({"vm-shutdown", "vm=alpha", "--force"}).rc, 0);
  EXPECT_EQ(count("VM.hard_shutdown"), 1u);
  EXPECT_EQ(field("VM", d.alpha, "power_state").as_string(), "Halted");
}

TEST_F(XeCommands, BadPowerStateIsPrintedAsXeDoes) {
  auto r = xe({"vm-start", "vm=beta"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, kBadPowerDoc + "\nvm: " + uuid("VM", d.beta) + " (beta)\nexpected: halted\nactual: running\n");
  EXPECT_EQ(d.live_sessions(), 0u);
}

TEST_F(XeCommands, SelectorRules) {
  auto none = xe({"vm-start", "vm=nobody"});
  EXPECT_EQ(none.rc, 1);
  EXPECT_EQ(none.err, "Error: No matching VMs found\n");
  // Templates are never selected by VM verbs.
  EXPECT_EQ(xe({"vm-start", "vm=Debian Template"}).err, "Error: No matching VMs found\n");
  auto bad = xe({"vm-start", "colour=blue"});
  EXPECT_EQ(bad.err, "Error: Parameter 'colour' is not a field of the VM class. Failed to select VM for operation.\n");

  // No selector: every VM, which needs --multiple.
  auto many = xe({"vm-start"});
  EXPECT_EQ(many.rc, 1);
  EXPECT_EQ(many.err, "Error: Multiple matches VMs found. --multiple required to complete the operation\n");
  EXPECT_EQ(count("VM.start"), 0u);
  // With --multiple: alpha starts, beta's failure is reported on stdout.
  auto multi = xe({"vm-start", "--multiple"});
  EXPECT_EQ(multi.rc, 1);
  EXPECT_EQ(multi.out, "operation failed on " + uuid("VM", d.beta) + ": " + kBadPowerDoc + "\nvm: " +
                           uuid("VM", d.beta) + " (beta)\nexpected: halted\nactual: running\n");
  EXPECT_EQ(field("VM", d.alpha, "power_state").as_string(), "Running");
  // Any field selects: both are running now.
  ASSERT_EQ(xe({"vm-suspend", "power-state=running", "--multiple"}).rc, 0);
  EXPECT_EQ(field("VM", d.alpha, "power_state").as_string(), "Suspended");
  EXPECT_EQ(field("VM", d.beta, "power_state").as_string(), "Suspended");
  ASSERT_EQ(xe({"vm-resume", "name-label=beta"}).rc, 0);
  EXPECT_EQ(field("VM", d.beta, "power_state").as_string(), "Running");
  // Clone takes exactly one VM.
  EXPECT_EQ(xe({"vm-clone", "new-name-label=x"}).err,
            "Error: Multiple matches VMs found. Operation can only be performed on one VM at a time\n");
}

TEST_F(XeCommands, InstallFromTemplate) {
  auto r = xe({"vm-install", "template=Debian Template", "new-name-label=gamma"});
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string u = r.out.substr(0, r.out.size() - 1);
  std::string vm = d.db().ref_by_uuid("VM", u);
  EXPECT_EQ(field("VM", vm, "name_label").as_string(), "gamma");
  EXPECT_FALSE(field("VM", vm, "is_a_template").as_bool());
  auto vbds = d.db().find("VBD", "VM", vm);
  ASSERT_EQ(vbds.size(), 1u);
  auto vdi = field("VBD", vbds[0], "VDI").as_string();
  EXPECT_EQ(field("VDI", vdi, "SR").as_string(), d.sr);
  auto calls = d.calls();
  auto pos = [&](const std::string& m) { return std::find(calls.begin(), calls.end(), m) - calls.begin(); };
  EXPECT_LT(pos("VM.clone"), pos("VM.provision"));
  EXPECT_LT(pos("VM.provision"), pos("VM.set_is_a_template"));
  // By uuid, on an explicit SR: the provisioning spec is rewritten first.
  auto sr2 = d.db().create("SR", {{"name_label", "second"}, {"type", "file"}});
  std::filesystem::create_directories(d.dir() / "sr2");
  d.db().create("PBD", {{"SR", sr2}, {"host", d.host}, {"device_config", Struct{{"location", (d.dir() / "sr2").string()}}}});
  auto r2 = xe({"vm-install", "template=" + uuid("VM", d.tmpl), "new-name-label=delta", "sr-uuid=" + uuid("SR", sr2)});
  ASSERT_EQ(r2.rc, 0) << r2.err;
  std::string vm2 = d.db().ref_by_uuid("VM", r2.out.substr(0, r2.out.size() - 1));
  auto vbds2 = d.db().find("VBD", "VM", vm2);
  ASSERT_EQ(vbds2.size(), 1u);
  EXPECT_EQ(field("VDI", field("VBD", vbds2[0], "VDI").as_string(), "SR").as_string(), sr2);

  EXPECT_EQ(xe({"vm-install", "template=nope", "new-name-label=x"}).err, "Error: Template not found\n");
  EXPECT_EQ(xe({"vm-install", "template=alpha", "new-name-label=x"}).err, "Error: Template not found\n");
  auto bad_sr = xe({"vm-install", "template=Debian Template", "new-name-label=x", "sr-uuid=nope"});
  EXPECT_EQ(bad_sr.rc, 1);
  EXPECT_NE(bad_sr.err.find("The uuid you supplied was invalid."), std::string::npos);
  EXPECT_TRUE(d.db().refs_by_name_label("VM", "x").empty()) << "a failed install leaves nothing behind";
}

TEST_F(XeCommands, CloneCopyDestroy) {
  auto c = xe({"vm-clone", "vm=alpha", "new-name-label=alpha-clone", "new-name-description=copy of alpha"});
  ASSERT_EQ(c.rc, 0) << c.err;
  std::string clone = d.db().ref_by_uuid("VM", c.out.substr(0, c.out.size() - 1));
  EXPECT_EQ(field("VM", clone, "name_description").as_string(), "copy of alpha");
  auto cp = xe({"vm-copy", "vm=alpha", "new-name-label=alpha-copy", "sr-uuid=" + uuid("SR", d.sr)});
  ASSERT_EQ(cp.rc, 0) << cp.err;
  ASSERT_EQ(xe({"vm-destroy", "uuid=" + uuid("VM", clone)}).rc, 0);
  EXPECT_FALSE(d.db().exists("VM", clone));
  auto dom0 = xe({"vm-destroy", "uuid=" + uuid("VM", d.dom0)});
  EXPECT_EQ(dom0.err, "Error: Cannot destroy a control domain\n");
  EXPECT_TRUE(d.db().exists("VM", d.dom0));
  // Selectors work too, but one is required.
  EXPECT_EQ(xe({"vm-destroy"}).err, "Required parameter not found: uuid\nFor usage run: 'xe help'\n");
  EXPECT_EQ(xe({"vm-destroy", "--multiple"}).err, "Required parameter not found: uuid\nFor usage run: 'xe help'\n");
  auto running = xe({"vm-destroy", "vm=beta"});
  EXPECT_EQ(running.rc, 1);
  EXPECT_NE(running.err.find("actual: running"), std::string::npos);
  std::string copy = d.db().refs_by_name_label("VM", "alpha-copy").at(0);
  ASSERT_EQ(xe({"vm-destroy", "vm=alpha-copy"}).rc, 0);
  EXPECT_FALSE(d.db().exists("VM", copy));
}

TEST_F(XeCommands, UninstallDestroysTheVmAndItsDisks) {
  auto running = xe({"vm-uninstall", "vm=beta", "--force"});
  EXPECT_EQ(running.rc, 1);
  EXPECT_NE(running.err.find("expected: halted"), std::string::npos) << running.err;
  EXPECT_TRUE(d.db().exists("VDI", d.beta_vdi)) << "a refused uninstall must not lose disks";

  ASSERT_EQ(xe({"vm-shutdown", "vm=beta"}).rc, 0);
  auto no = xe({"vm-uninstall", "vm=beta"}, "no\n");
  EXPECT_EQ(no.rc, 0);
  EXPECT_NE(no.out.find("VDI: " + uuid("VDI", d.beta_vdi) + " (beta disk)"), std::string::npos) << no.out;
  EXPECT_NE(no.out.find("Aborted (you typed: 'no')"), std::string::npos) << no.out;
  EXPECT_TRUE(d.db().exists("VM", d.beta));

  auto yes = xe({"vm-uninstall", "vm=beta"}, "yes\n");
  ASSERT_EQ(yes.rc, 0) << yes.err;
  EXPECT_FALSE(d.db().exists("VM", d.beta));
  EXPECT_FALSE(d.db().exists("VDI", d.beta_vdi));
  EXPECT_NE(yes.out.find("All objects destroyed"), std::string::npos);
}

TEST_F(XeCommands, UninstallKeepsDisksOtherVmsUse) {
  auto shared = d.db().create("VDI", {{"name_label", "shared"}, {"SR", d.sr}});
  d.db().create("VBD", {{"VM", d.alpha}, {"VDI", shared}, {"type", "Disk"}});
  d.db().create("VBD", {{"VM", d.beta}, {"VDI", shared}, {"type", "Disk"}});
  ASSERT_EQ(xe({"vm-uninstall", "vm=alpha", "--force"}).rc, 0);
  EXPECT_FALSE(d.db().exists("VM", d.alpha));
  EXPECT_TRUE(d.db().exists("VDI", shared));
}

TEST_F(XeCommands, MemoryLimits) {
  auto r = xe({"vm-memory-limits-set", "vm=alpha", "static-min=128MiB", "static-max=1GiB", "dynamic-min=512MiB",
               "dynamic-max=536870912"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(field("VM", d.alpha, "memory_static_min").as_int(), 128LL << 20);
  EXPECT_EQ(field("VM", d.alpha, "memory_static_max").as_int(), 1LL << 30);
  EXPECT_EQ(field("VM", d.alpha, "memory_dynamic_min").as_int(), 512LL << 20);
  EXPECT_EQ(field("VM", d.alpha, "memory_dynamic_max").as_int(), 512LL << 20);
  auto bad = xe({"vm-memory-limits-set", "vm=alpha", "static-min=1GiB", "static-max=128MiB", "dynamic-min=512MiB",
                 "dynamic-max=512MiB"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("The dynamic memory range does not satisfy the following constraint.\nconstraint: "),
            std::string::npos)
      << bad.err;
  auto junk = xe({"vm-memory-limits-set", "vm=alpha", "static-min=lots", "static-max=1", "dynamic-min=1",
                  "dynamic-max=1"});
  EXPECT_EQ(junk.err, "Error: Failed to parse parameter 'static-min': expecting an integer (possibly with suffix)\n");
  EXPECT_EQ(xe({"vm-memory-limits-set", "vm=alpha"}).err,
            "Required parameter not found: static-min\nFor usage run: 'xe help'\n");
}

TEST_F(XeCommands, DiskList) {
  auto r = xe({"vm-disk-list", "vm=beta"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Disk 0 VBD:\nuuid ( RO)", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("Disk 0 VDI:\n"), std::string::npos);
  EXPECT_NE(r.out.find("virtual-size ( RO): 8589934592"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sr-name-label ( RO): Local storage"), std::string::npos) << r.out;
  // --minimal: the uuids alone, as xapi's printer gives them (the VDI's,
  // printed last, first).
  auto m = xe({"vm-disk-list", "vm=beta", "--minimal"});
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_EQ(m.out, uuid("VDI", d.beta_vdi) + "," + uuid("VBD", d.beta_vbd) + "\n");
}

// ---- event-wait

TEST_F(XeCommands, EventWaitReturnsWhenTheConditionHolds) {
  // Already true: returns at once.
  EXPECT_EQ(xe({"event-wait", "class=vm", "name-label=beta", "power-state=running"}).rc, 0);
  // Becomes true later.
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    d.db().set_field("VM", d.alpha, "power_state", std::string("Running"));
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = xe({"event-wait", "class=vm", "name-label=alpha", "power-state=running", "timeout=20"});
  later.join();
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  // "/=" means not-equal.
  EXPECT_EQ(xe({"event-wait", "class=vm", "name-label=alpha", "power-state=/=halted"}).rc, 0);
  auto never = xe({"event-wait", "class=vm", "name-label=nobody", "timeout=0.3"});
  EXPECT_EQ(never.rc, 1);
  EXPECT_EQ(never.err, "Error: Timed out waiting for a matching vm\n");
  EXPECT_EQ(xe({"event-wait", "class=vm", "colour=blue"}).err, "Error: Unknown field 'colour'\n");
  EXPECT_EQ(xe({"event-wait", "class=gizmo"}).err, "Error: Cli listening for class 'gizmo' not currently implemented\n");
}

// ---- sessions and errors

TEST_F(XeCommands, Credentials) {
  EXPECT_EQ(xe({"-u", "alice", "-pw", "s3cret", "vm-list", "--minimal", "params=name-label", "name-label=alpha"}).out,
            "alpha\n");
  auto wrong = xe({"-u", "alice", "-pw", "nope", "vm-list"});
  EXPECT_EQ(wrong.rc, 1);
  EXPECT_EQ(wrong.err, "Authentication failed\nFor usage run: 'xe help'\n");
  auto pwf = d.dir() / "pwfile";
  std::ofstream(pwf) << "alice\ns3cret\n";
  EXPECT_EQ(xe({"-pwf", pwf.string(), "vm-list", "--minimal", "params=name-label", "name-label=beta"}).out, "beta\n");
  auto short_pwf = d.dir() / "short";
  std::ofstream(short_pwf) << "alice\n";
  EXPECT_EQ(xe({"-pwf", short_pwf.string(), "vm-list"}).err,
            "Error: password file format: expecting username on the first line, password on the second line\n");
  EXPECT_EQ(xe({"-pwf", (d.dir() / "absent").string(), "vm-list"}).err,
            "Error opening password file '" + (d.dir() / "absent").string() + "'\n");
  EXPECT_EQ(d.live_sessions(), 0u);
}

TEST_F(XeCommands, UsageAndUnknownCommand) {
  auto none = xe({});
  EXPECT_EQ(none.rc, 0);
  EXPECT_EQ(none.err.rfind("Usage:\n  xe <command>", 0), 0u);
  auto unk = xe({"vm-frobnicate"});
  EXPECT_EQ(unk.rc, 1);
  EXPECT_EQ(unk.err, "Unknown command: vm-frobnicate\nFor usage run: 'xe help'\n");
  EXPECT_TRUE(d.calls().empty()) << "nothing is called for a command that does not exist";
}

TEST_F(XeCommands, Help) {
  auto one = xe({"help", "vm-param-get"});
  ASSERT_EQ(one.rc, 0);
  EXPECT_EQ(one.out.rfind("command name            : vm-param-get\n"
                          "        reqd params     : uuid, param-name\n"
                          "        optional params : param-key\n"
                          "        description     : Gets the parameter",
                          0),
            0u)
      << one.out;
  auto sel = xe({"help", "vm-shutdown"});
  EXPECT_NE(sel.out.find("optional params : force, vm, <vm-selectors>"), std::string::npos) << sel.out;
  EXPECT_EQ(xe({"help", "nope"}).out, "Unknown command 'nope'\n");
  auto all = xe({"help", "--all"});
  EXPECT_NE(all.out.find("vm-param-set"), std::string::npos);
  EXPECT_NE(all.out.find("template-list"), std::string::npos);
  auto common = xe({"help"});
  EXPECT_NE(common.out.find("Common command list"), std::string::npos);
  EXPECT_EQ(common.out.find("vm-param-set"), std::string::npos);
  auto minimal = xe({"help", "--all", "--minimal"});
  EXPECT_EQ(std::count(minimal.out.begin(), minimal.out.end(), '\n'), 1);
  EXPECT_TRUE(d.calls().empty()) << "help works without the daemon";
}

// ---- completion

TEST_F(XeCommands, CompletionFromTheCommandTableAndDatamodel) {
  auto offline = [](const ConnOptions&) -> Session* { return nullptr; };
  EXPECT_EQ(complete({"vm-star"}, offline), std::vector<std::string>{"vm-start"});
  EXPECT_EQ(complete({"help", "vm-unp"}, offline), std::vector<std::string>{"vm-unpause"});
  EXPECT_EQ(complete({"vm-start", "power-s"}, offline), std::vector<std::string>{"power-state="});
  EXPECT_EQ(complete({"vm-start", "power-state=r"}, offline), std::vector<std::string>{"power-state=running"});
  EXPECT_EQ(complete({"vm-param-set", "other-c"}, offline), std::vector<std::string>{"other-config:"});
  EXPECT_EQ(complete({"vm-param-set", "power-st"}, offline), std::vector<std::string>{}) << "read-only";
  EXPECT_EQ(complete({"vm-list", "is-a-template="}, offline),
            (std::vector<std::string>{"is-a-template=true", "is-a-template=false"}));
  EXPECT_EQ(complete({"vm-shutdown", "--f"}, offline), std::vector<std::string>{"--force"});
  // A key already given is not offered again.
  EXPECT_EQ(complete({"vm-start", "paused=true", "pau"}, offline), std::vector<std::string>{});
  EXPECT_EQ(complete({"-s", "host", "vm-sh"}, offline), std::vector<std::string>{"vm-shutdown"});
  // vm= needs the daemon; without one there is simply nothing.
  EXPECT_TRUE(complete({"vm-start", "vm="}, offline).empty());
}

TEST_F(XeCommands, CompletionAsksTheDaemonForVmNames) {
  auto r = xe({"--complete", "vm-start", "vm="});
  ASSERT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("vm=alpha\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vm=beta\n"), std::string::npos);
  EXPECT_NE(r.out.find("vm=" + uuid("VM", d.alpha) + "\n"), std::string::npos);
  EXPECT_EQ(r.out.find("Debian Template"), std::string::npos) << "templates are not VMs";
  EXPECT_EQ(xe({"--complete", "vm-install", "template=Deb"}).out, "template=Debian Template\n");
  EXPECT_EQ(xe({"--complete", "vm-param-list", "uuid=" + uuid("VM", d.tmpl)}).out, "") << "vm-* uuids exclude templates";
  EXPECT_EQ(xe({"--complete", "template-param-list", "uuid=" + uuid("VM", d.tmpl).substr(0, 8)}).out,
            "uuid=" + uuid("VM", d.tmpl) + "\n");
  EXPECT_EQ(xe({"--complete", "vm-copy", "sr-uuid="}).out, "sr-uuid=" + uuid("SR", d.sr) + "\n");
  EXPECT_EQ(d.live_sessions(), 0u);
}
