// The objects and messages xapi's clients expect beside VMs (issue: XenAPI
// conformance), against a real daemon core on the fake backends: the
// control domain, the metrics objects, SM records, messages, the queries,
// and the messages this host refuses with a reason.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "daemon_fixture.h"

namespace vmstack::test {
namespace {

using Strings = std::vector<std::string>;

class ConformanceTest : public ::testing::Test {
 protected:
  TempDir dir;
  TestDaemon d{dir.path(), 2, Backend::fake};
  std::unique_ptr<api::Client> c = d.client();
  std::string s = d.login(*c);

  Value get(const std::string& cls, const std::string& field, const std::string& ref) {
    return call(*c, cls + ".get_" + field, {s, ref});
  }
  std::string host() { return call(*c, "host.get_all", {s}).as_array().at(0).as_string(); }
  Strings control_domains() {
    Strings out;
    auto all = call(*c, "VM.get_all_records", {s});  // kept: the loop reads into it
    for (const auto& [ref, rec] : all.as_struct())
      if (rec.as_struct().at("is_control_domain").as_bool()) out.push_back(ref);
    return out;
  }
};

TEST_F(ConformanceTest, ControlDomainIsTheHostAndRefusesLifecycleVerbs) {
  auto dom0 = control_domains();
  ASSERT_EQ(dom0.size(), 1u);
  EXPECT_EQ(get("host", "control_domain", host()).as_string(), dom0[0]);
  auto rec = call(*c, "VM.get_record", {s, dom0[0]}).as_struct();
  EXPECT_EQ(rec.at("power_state").as_string(), "Running");
  EXPECT_EQ(rec.at("resident_on").as_string(), host());
  EXPECT_EQ(rec.at("domid").as_int(), 0);
  EXPECT_EQ(rec.at("name_label").as_string().rfind("Control domain on host: ", 0), 0u);
  EXPECT_GT(rec.at("memory_static_max").as_int(), 0);
  EXPECT_GE(rec.at("VCPUs_max").as_int(), 1);
  EXPECT_TRUE(rec.at("allowed_operations").as_array().empty());
  for (const char* verb : {"VM.clean_shutdown", "VM.hard_shutdown", "VM.destroy", "VM.pause"}) {
    auto f = failure(*c, verb, {s, dom0[0]});
    ASSERT_FALSE(f.empty()) << verb;
    EXPECT_EQ(f[0], "OPERATION_NOT_ALLOWED") << verb;
  }
  EXPECT_EQ(control_domains(), dom0);
  // One control domain after a restart, the same one.
  d.restart();
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(control_domains(), dom0);
}

TEST_F(ConformanceTest, HostMetricsCpusAndSmRecords) {
  auto h = host();
  auto metrics = get("host", "metrics", h).as_string();
  auto m = call(*c, "host_metrics.get_record", {s, metrics}).as_struct();
  EXPECT_GT(m.at("memory_total").as_int(), 0);
  EXPECT_GT(m.at("memory_free").as_int(), 0);
  EXPECT_TRUE(m.at("live").as_bool());
  auto cpus = get("host", "host_CPUs", h).as_array();
  size_t processors = 0;  // the kernel's list, one "processor" line per CPU
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) processors += line.rfind("processor", 0) == 0;
  EXPECT_EQ(cpus.size(), processors);
  std::set<int64_t> numbers;
  for (const auto& cpu : cpus) {
    auto r = call(*c, "host_cpu.get_record", {s, cpu}).as_struct();
    EXPECT_EQ(r.at("host").as_string(), h);
    EXPECT_TRUE(r.at("modelname").is_string());
    numbers.insert(r.at("number").as_int());
  }
  EXPECT_EQ(numbers.size(), cpus.size());
  EXPECT_EQ(call(*c, "SR.get_supported_types", {s}).as_array(), Array{"file"});
  auto sms = call(*c, "SM.get_all_records", {s}).as_struct();
  ASSERT_EQ(sms.size(), 1u);
  EXPECT_EQ(sms.begin()->second.as_struct().at("type").as_string(), "file");
  // The figures are refreshed, not duplicated, at the next start.
  d.restart();
  c = d.client();
  s = d.login(*c);
  EXPECT_EQ(call(*c, "host_cpu.get_all", {s}).as_array().size(), cpus.size());
  EXPECT_EQ(call(*c, "host_metrics.get_all", {s}).as_array(), Array{metrics});
  EXPECT_EQ(call(*c, "SM.get_all", {s}).as_array().size(), 1u);
}

TEST_F(ConformanceTest, VmMetricsFollowTheVmFromCreateToDestroy) {
  auto vm = install_demo_vm(*c, s, "metered");
  auto metrics = get("VM", "metrics", vm).as_string();
  ASSERT_TRUE(call(*c, "VM_metrics.get_all", {s}).as_array().size() >= 2u);  // templates have theirs
  auto m = [&] { return call(*c, "VM_metrics.get_record", {s, metrics}).as_struct(); };
  EXPECT_EQ(m().at("VCPUs_number").as_int(), 0);
  EXPECT_EQ(m().at("memory_actual").as_int(), 0);
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(m().at("VCPUs_number").as_int(), get("VM", "VCPUs_at_startup", vm).as_int());
  EXPECT_EQ(m().at("memory_actual").as_int(), get("VM", "memory_dynamic_max", vm).as_int());
  EXPECT_EQ(m().at("state").as_array(), Array{"running"});
  EXPECT_EQ(m().at("VCPUs_flags").as_struct().at("0").as_array(), (Array{"online", "running"}));
  EXPECT_EQ(m().at("start_time").as_datetime().epoch, get("VM", "start_time", vm).as_datetime().epoch);
  call(*c, "VM.hard_shutdown", {s, vm});
  EXPECT_EQ(m().at("VCPUs_number").as_int(), 0);
  EXPECT_TRUE(m().at("state").as_array().empty());
  // A copy gets metrics of its own; a destroyed VM's go with it.
  auto copy = call(*c, "VM.clone", {s, vm, "twin"}).as_string();
  EXPECT_NE(get("VM", "metrics", copy).as_string(), metrics);
  call(*c, "VM.destroy", {s, vm});
  auto gone = failure(*c, "VM_metrics.get_record", {s, metrics});
  ASSERT_FALSE(gone.empty());
  EXPECT_EQ(gone[0], "HANDLE_INVALID");
  EXPECT_EQ(get("VM", "guest_metrics", copy).as_string(), "OpaqueRef:NULL");  // no guest agent
}

TEST_F(ConformanceTest, RefusedMessagesSayWhyAfterAValidSession) {
  auto f = failure(*c, "pool.enable_ha", {s, Array{}, Struct{}});
  EXPECT_EQ(f, (Strings{"OPERATION_NOT_ALLOWED", "pool.enable_ha: vmstack has no high availability (HA)"}));
  // Whatever the arguments, sync or async, and the xapi spelling with '_'.
  EXPECT_EQ(failure(*c, "Async.VM.snapshot", {s, "OpaqueRef:x", "snap"}).at(0), "OPERATION_NOT_ALLOWED");
  EXPECT_EQ(failure(*c, "VM_snapshot", {s}).at(0), "OPERATION_NOT_ALLOWED");
  EXPECT_EQ(failure(*c, "pool.enable_ha", {"OpaqueRef:forged"}).at(0), "SESSION_INVALID");
  EXPECT_EQ(failure(*c, "pool.join", {}).at(0), "SESSION_INVALID");
  // Every refused message is still a method clients can list.
  auto methods = call(*c, "system.listMethods", {}).as_array();
  EXPECT_NE(std::find(methods.begin(), methods.end(), Value("PIF.reconfigure_ip")), methods.end());
  EXPECT_EQ(call(*c, "host.list_methods", {s}).as_array().size(), methods.size());
}

TEST_F(ConformanceTest, MessagesAreKeptAndQueriedByTimeAndObject) {
  auto vm = install_demo_vm(*c, s, "noted");
  auto vm_uuid = get("VM", "uuid", vm).as_string();
  auto before = DateTime{DateTime::now().epoch - 1};
  auto msg = call(*c, "message.create", {s, "VM_NOTE", int64_t{3}, "VM", vm_uuid, "hello"}).as_string();
  auto rec = call(*c, "message.get_record", {s, msg}).as_struct();
  EXPECT_EQ(rec.at("name").as_string(), "VM_NOTE");
  EXPECT_EQ(rec.at("cls").as_string(), "VM");
  EXPECT_EQ(rec.at("priority").as_int(), 3);
  EXPECT_EQ(call(*c, "message.get_since", {s, before}).as_struct().count(msg), 1u);
  EXPECT_EQ(call(*c, "message.get", {s, "VM", vm_uuid, before}).as_struct().count(msg), 1u);
  EXPECT_TRUE(call(*c, "message.get", {s, "Host", vm_uuid, before}).as_struct().empty());
  EXPECT_TRUE(call(*c, "message.get_since", {s, DateTime{DateTime::now().epoch + 60}}).as_struct().empty());
  EXPECT_EQ(failure(*c, "message.create", {s, "X", int64_t{1}, "VM", "no-such-uuid", ""}),
            (Strings{"UUID_INVALID", "VM", "no-such-uuid"}));
  EXPECT_EQ(failure(*c, "message.create", {s, "X", int64_t{1}, "Host", "no-such-uuid", ""}),
            (Strings{"UUID_INVALID", "Host", "no-such-uuid"}));
  EXPECT_EQ(failure(*c, "message.create", {s, "X", int64_t{1}, "Galaxy", vm_uuid, ""}).at(0), "INVALID_VALUE");
  call(*c, "message.destroy", {s, msg});
  EXPECT_TRUE(call(*c, "message.get_all", {s}).as_array().empty());
}

TEST_F(ConformanceTest, HostAndVmQueries) {
  auto h = host();
  auto vm = install_demo_vm(*c, s, "asked");
  EXPECT_EQ(call(*c, "VM.get_possible_hosts", {s, vm}).as_array(), Array{h});
  auto vbd_slots = call(*c, "VM.get_allowed_VBD_devices", {s, vm}).as_array();
  EXPECT_EQ(vbd_slots.size(), 15u);  // 16 slots, the provisioned disk takes 0
  EXPECT_EQ(std::find(vbd_slots.begin(), vbd_slots.end(), Value("0")), vbd_slots.end());
  EXPECT_EQ(call(*c, "VM.get_allowed_VIF_devices", {s, vm}).as_array().size(), 7u);
  call(*c, "VM.assert_can_boot_here", {s, vm, h});
  call(*c, "VM.assert_operation_valid", {s, vm, "start"});
  EXPECT_EQ(failure(*c, "VM.assert_operation_valid", {s, vm, "clean_shutdown"}).at(0), "VM_BAD_POWER_STATE");
  // An operator's block holds for the verb itself, not only for the query;
  // the key is an operation, in any case.
  call(*c, "VM.set_blocked_operations", {s, vm, Struct{{"START", "blocked by the test"}}});
  EXPECT_EQ(get("VM", "blocked_operations", vm).as_struct().count("start"), 1u);
  EXPECT_EQ(failure(*c, "VM.assert_operation_valid", {s, vm, "start"}),
            (Strings{"OPERATION_BLOCKED", vm, "blocked by the test"}));
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false}), (Strings{"OPERATION_BLOCKED", vm, "blocked by the test"}));
  auto allowed = get("VM", "allowed_operations", vm).as_array();
  EXPECT_EQ(std::find(allowed.begin(), allowed.end(), Value("start")), allowed.end());
  EXPECT_EQ(failure(*c, "VM.set_blocked_operations", {s, vm, Struct{{"fly", "x"}}}).at(0), "INVALID_VALUE");
  call(*c, "VM.set_blocked_operations", {s, vm, Struct{}});

  // A disabled host starts nothing.
  call(*c, "host.disable", {s, h});
  EXPECT_EQ(failure(*c, "VM.assert_can_boot_here", {s, vm, h}), (Strings{"HOST_DISABLED", h}));
  EXPECT_EQ(failure(*c, "VM.start", {s, vm, false, false}), (Strings{"HOST_DISABLED", h}));
  call(*c, "host.enable", {s, h});

  // Nothing runs: evacuation is a no-op. A running VM has nowhere to go.
  call(*c, "host.evacuate", {s, h});
  call(*c, "VM.start", {s, vm, false, false});
  EXPECT_EQ(call(*c, "host.get_vms_which_prevent_evacuation", {s, h}).as_struct().count(vm), 1u);
  EXPECT_EQ(failure(*c, "host.evacuate", {s, h}), (Strings{"NO_HOSTS_AVAILABLE"}));
  EXPECT_EQ(failure(*c, "host.assert_can_evacuate", {s, h}), (Strings{"NO_HOSTS_AVAILABLE"}));
  // A running VM's balloon change shows in its metrics.
  call(*c, "VM.set_memory_dynamic_range", {s, vm, int64_t{128} << 20, int64_t{192} << 20});
  EXPECT_EQ(call(*c, "VM_metrics.get_memory_actual", {s, get("VM", "metrics", vm)}).as_int(), int64_t{192} << 20);
  call(*c, "VM.hard_shutdown", {s, vm});

  // xapi's explicit setters.
  call(*c, "VM.set_order", {s, vm, int64_t{4}});
  EXPECT_EQ(get("VM", "order", vm).as_int(), 4);
  call(*c, "VM.add_to_NVRAM", {s, vm, "EFI-variables", "abc"});
  EXPECT_EQ(failure(*c, "VM.add_to_NVRAM", {s, vm, "EFI-variables", "x"}).at(0), "MAP_DUPLICATE_KEY");
  call(*c, "VM.remove_from_NVRAM", {s, vm, "EFI-variables"});
  EXPECT_TRUE(get("VM", "NVRAM", vm).as_struct().empty());
  call(*c, "VM.set_memory", {s, vm, int64_t{192} << 20});
  EXPECT_EQ(get("VM", "memory_static_max", vm).as_int(), int64_t{192} << 20);
  EXPECT_EQ(get("VM", "memory_dynamic_min", vm).as_int(), int64_t{192} << 20);
  EXPECT_EQ(get("session", "this_user", s).as_string(), "OpaqueRef:NULL");
  auto task = call(*c, "task.create", {s, "t", "d"}).as_string();
  call(*c, "task.set_status", {s, task, "cancelled"});
  EXPECT_EQ(get("task", "status", task).as_string(), "cancelled");
}

TEST_F(ConformanceTest, ConsoleLocationsAreTheConsoleRoute) {
  auto vm = install_demo_vm(*c, s, "shown");
  call(*c, "VM.start", {s, vm, false, false});
  auto consoles = get("VM", "consoles", vm).as_array();
  ASSERT_FALSE(consoles.empty());
  for (const auto& con : consoles) {
    // This daemon listens on its unix socket only: the bare route.
    EXPECT_EQ(get("console", "location", con.as_string()).as_string(), "/console?ref=" + con.as_string());
    EXPECT_FALSE(get("console", "other_config", con.as_string())["socket"].as_string().empty());
  }
}

TEST(ConsoleBaseUrl, FollowsTheListeners) {
  ops::Config cfg;
  EXPECT_EQ(cfg.console_base_url("h"), "");
  cfg.tcp_address = "0.0.0.0";
  cfg.tcp_port = 8080;
  EXPECT_EQ(cfg.console_base_url("h"), "http://h:8080");
  cfg.tls_address = "192.0.2.7";
  EXPECT_EQ(cfg.console_base_url("h"), "https://192.0.2.7");  // HTTPS wins; 443 is implied
  cfg.tls_address = "::";
  cfg.tls_port = 8443;
  EXPECT_EQ(cfg.console_base_url("h"), "https://h:8443");
  cfg.tls_address = "fd00::1";
  EXPECT_EQ(cfg.console_base_url("h"), "https://[fd00::1]:8443");
}

}  // namespace
}  // namespace vmstack::test
