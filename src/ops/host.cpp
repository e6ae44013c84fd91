// First-start objects (pool, this host, the default SR, built-in templates),
// the host facts refreshed at every start, and the accelerator choice.
#include "ops/host.h"

#include <spdlog/spdlog.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/strings.h"
#include "ops/dispatch.h"
#include "ops/metrics.h"
#include "ops/vm_record.h"

namespace vmstack::ops {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return trim(line.substr(line.find(':') + 1));
  return "unknown";
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

struct Template {
  std::string name, description;
  Struct fields;
};

// The built-in templates. Paths of the demo guest come from the guest
// fixture directory (tools/guest-fixture.sh), so they follow the config.
std::vector<Template> builtin_templates(const Config& cfg) {
  std::string kernel = cfg.guest_dir + "/vmlinux";
  if (::access(kernel.c_str(), R_OK) != 0 && ::access((cfg.guest_dir + "/vmlinuz").c_str(), R_OK) == 0)
    kernel = cfg.guest_dir + "/vmlinuz";
  std::string args = trim(read_file(cfg.guest_dir + "/cmdline"));
  if (args.find("console=") == std::string::npos) args = trim("console=ttyS0 " + args);
  const int64_t MiB = 1 << 20;
  return {
      {"Demo Linux (direct kernel boot)",
       "A Debian kernel with a busybox initramfs, booted PV-style (direct kernel boot through PVH)",
       {{"PV_kernel", kernel},
        {"PV_ramdisk", cfg.guest_dir + "/initrd.img"},
        {"PV_args", args},
        {"HVM_boot_policy", ""},
        {"memory_static_min", 64 * MiB},
        {"memory_dynamic_min", 256 * MiB},
        {"memory_dynamic_max", 256 * MiB},
        {"memory_static_max", 256 * MiB},
        {"VCPUs_max", 1},
        {"VCPUs_at_startup", 1},
        {"other_config", Struct{{"disks", "<provision><disk device=\"0\" size=\"1073741824\" sr=\"\" bootable=\"false\" type=\"system\"/></provision>"}}}}},
      {"Other install media",
       "HVM guest booting from BIOS (disk, then CD); attach an ISO and install",
       {{"HVM_boot_policy", "BIOS order"},
        {"HVM_boot_params", Struct{{"order", "dc"}}},
        {"platform", Struct{{"vnc", "true"}, {"acpi", "1"}}},
        {"memory_static_min", 128 * MiB},
        {"memory_dynamic_min", 512 * MiB},
        {"memory_dynamic_max", 512 * MiB},
        {"memory_static_max", 512 * MiB},
        {"VCPUs_max", 1},
        {"VCPUs_at_startup", 1},
        {"other_config", Struct{{"disks", "<provision><disk device=\"0\" size=\"8589934592\" sr=\"\" bootable=\"true\" type=\"system\"/></provision>"}}}}},
  };
}

}  // namespace

void ensure_templates(model::Store& db, const Config& cfg) {
  for (auto& t : builtin_templates(cfg)) {
    std::string ref;
    for (const auto& r : db.refs_by_name_label("VM", t.name))
      if (db.get_field("VM", r, "is_default_template").as_bool()) ref = r;
    Struct f = t.fields;
    f["name_label"] = t.name;
    f["name_description"] = t.description;
    f["is_a_template"] = true;
    f["is_default_template"] = true;
    if (ref.empty()) {
      ref = db.create("VM", std::move(f));
      create_vm_metrics(db, ref);
    } else
      db.update("VM", ref, f);  // built-ins follow this version's definition
    refresh_allowed_operations(db, ref);
  }
}

hv::AccelProbe choose_accelerator(model::Store& store, const Config& cfg) {
  if (cfg.accel == "kvm") return {hv::Accel::kvm, "kvm (forced by configuration)"};
  if (cfg.accel == "tcg") return {hv::Accel::tcg, "tcg (forced by configuration)"};
  // The probe boots a guest: do it once per host and remember the verdict.
  if (auto cached = store.get_setting("accel_probe")) {
    auto sep = cached->find('|');
    if (sep != std::string::npos)
      return {cached->substr(0, sep) == "kvm" ? hv::Accel::kvm : hv::Accel::tcg, cached->substr(sep + 1) + " (cached)"};
  }
  std::string kernel = cfg.guest_dir + "/vmlinux", initrd = cfg.guest_dir + "/initrd.img";
  if (::access(kernel.c_str(), R_OK) != 0 || ::access(initrd.c_str(), R_OK) != 0) {
    // No probe guest yet: decide for now, probe on a later start.
    return {hv::Accel::tcg, "tcg (no probe guest in " + cfg.guest_dir + "; not cached)"};
  }
  auto p = hv::probe_accelerator(kernel, initrd);
  store.put_setting("accel_probe", std::string(hv::to_string(p.accel)) + "|" + p.detail);
  return p;
}

std::string bootstrap_host(model::Store& db, const hv::AccelProbe& accel) {
  std::string host;
  auto hosts = db.all("host");
  if (hosts.empty()) {
    host = db.create("host", {{"name_label", hostname()}, {"API_version_major", 2}, {"API_version_minor", 21},
                              {"API_version_vendor", "vmstack"}, {"enabled", true}, {"sched_policy", "linux"}});
  } else {
    host = hosts.front();
  }
  if (db.all("pool").empty()) db.create("pool", {{"name_label", ""}, {"master", host}});
  // The operator's address stays; a new host starts with the loopback one.
  if (db.get_field("host", host, "address").as_string().empty()) db.update("host", host, {{"address", "127.0.0.1"}});
  struct utsname u {};
  ::uname(&u);
  struct sysinfo si {};
  ::sysinfo(&si);
  const char* accel_name = hv::to_string(accel.accel);
  db.update("host", host,
            {{"hostname", hostname()},
             {"memory_total", static_cast<int64_t>(si.totalram) * si.mem_unit},
             {"memory_free", static_cast<int64_t>(si.freeram) * si.mem_unit},
             {"software_version", Struct{{"product_brand", "vmstack"},
                                         {"product_version", "0.1.0"},
                                         {"platform_name", "vmstack"},
                                         {"hypervisor", "qemu"},
                                         {"accelerator", accel_name},
                                         {"linux", u.release}}},
             {"cpu_info", Struct{{"cpu_count", std::to_string(std::thread::hardware_concurrency())},
                                 {"modelname", cpu_model()},
                                 {"accelerator", accel_name},
                                 {"accelerator_probe", accel.detail}}},
             {"capabilities", Array{accel.accel == hv::Accel::kvm ? "hvm-3.0-x86_64" : "tcg-x86_64"}}});
  return host;
}

namespace {

// A running VM cannot leave a pool of one host: xapi's error for a VM no
// other host can take.
Struct vms_preventing_evacuation(model::Store& store, const std::string& host) {
  Struct out;
  for (const auto& vm : store.find("VM", "resident_on", host)) {
    auto rec = store.get_record("VM", vm);
    const auto& ps = rec["power_state"].as_string();
    if (rec["is_control_domain"].as_bool() || (ps != "Running" && ps != "Paused")) continue;
    out[vm] = Array{errors::NO_HOSTS_AVAILABLE};
  }
  return out;
}

}  // namespace

void bind_host(Dispatcher& d, model::Store& store) {
  d.bind("host.list_methods", [&d](const Call&, const Args&) {
    Array out;
    for (auto& n : d.method_names()) out.emplace_back(std::move(n));
    return Value(out);
  });
  d.bind("host.get_server_localtime", [](const Call&, const Args&) {
    // The wall clock shifted by the host's UTC offset (what xapi reports).
    std::time_t t = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&t, &local);
    return Value(DateTime{static_cast<int64_t>(t) + local.tm_gmtoff});
  });
  d.bind("host.compute_memory_overhead", [&store](const Call&, const Args& a) {
    store.get_field("host", a.ref("host"), "uuid");  // HANDLE_INVALID
    return Value(int64_t{0});  // the host's own memory is the admission reserve, not an overhead
  });
  for (bool enable : {true, false}) {
    d.bind(enable ? "host.enable" : "host.disable", [&store, enable](const Call&, const Args& a) {
      store.update("host", a.ref("host"), {{"enabled", enable}});
      return Value();
    });
  }
  d.bind("host.get_vms_which_prevent_evacuation", [&store](const Call&, const Args& a) {
    store.get_field("host", a.ref("self"), "uuid");
    return Value(vms_preventing_evacuation(store, a.ref("self")));
  });
  auto assert_can_evacuate = [&store](const std::string& h) {
    store.get_field("host", h, "uuid");
    if (!vms_preventing_evacuation(store, h).empty()) throw ApiError(errors::NO_HOSTS_AVAILABLE, {});
  };
  d.bind("host.assert_can_evacuate", [assert_can_evacuate](const Call&, const Args& a) {
    assert_can_evacuate(a.ref("host"));
    return Value();
  });
  // Nothing to move when no guest runs; otherwise no host to move it to.
  d.bind("host.evacuate", [assert_can_evacuate](const Call&, const Args& a) {
    assert_can_evacuate(a.ref("host"));
    return Value();
  });
  d.bind("host.get_uncooperative_resident_VMs", [&store](const Call&, const Args& a) {
    store.get_field("host", a.ref("self"), "uuid");
    return Value(Array{});
  });
  d.bind("host.get_servertime", [](const Call&, const Args&) {
    return Value(DateTime{static_cast<int64_t>(std::time(nullptr))});
  });
  d.bind("host.compute_free_memory", [](const Call&, const Args&) {
    struct sysinfo si {};
    ::sysinfo(&si);
    return Value(static_cast<int64_t>(si.freeram) * si.mem_unit);
  });
}

}  // namespace vmstack::ops
