#include "ops/metrics.h"

#include <sys/sysinfo.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/strings.h"
#include "ops/admission.h"

namespace vmstack::ops {

namespace {

struct CpuInfo {
  std::map<std::string, std::string> fields;  // "vendor_id" -> "GenuineIntel"
};

// /proc/cpuinfo, one entry per logical CPU.
std::vector<CpuInfo> read_cpuinfo() {
  std::vector<CpuInfo> out;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  CpuInfo cur;
  auto flush = [&] {
    if (!cur.fields.empty()) out.push_back(std::move(cur));
    cur = {};
  };
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (trim(line).empty()) flush();
    else if (colon != std::string::npos) cur.fields[trim(line.substr(0, colon))] = trim(line.substr(colon + 1));
  }
  flush();
  return out;
}

int64_t to_int(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    return 0;
  }
}

bool valid(model::Store& store, const std::string& cls, const Value& ref) {
  return ref.is_string() && store.exists(cls, ref.as_string());
}

Struct vm_metrics_of(const Struct& vm) {
  auto get = [&](const char* k) -> const Value& {
    static const Value nil;  // immutable sentinel
    auto it = vm.find(k);
    return it == vm.end() ? nil : it->second;
  };
  const std::string ps = get("power_state").is_string() ? get("power_state").as_string() : "Halted";
  const bool live = ps == "Running" || ps == "Paused";
  Struct m{{"last_updated", DateTime::now()}};
  if (get("domain_type").is_string()) m["current_domain_type"] = get("domain_type");
  m["hvm"] = get("HVM_boot_policy").is_string() && !get("HVM_boot_policy").as_string().empty();
  if (live) {
    m["memory_actual"] = get("memory_dynamic_max").is_int() ? get("memory_dynamic_max") : Value(int64_t{0});
    int64_t vcpus = get("VCPUs_at_startup").is_int() ? get("VCPUs_at_startup").as_int() : 1;
    m["VCPUs_number"] = vcpus;
    Struct cpus;
    for (int64_t i = 0; i < vcpus; ++i) cpus[std::to_string(i)] = Array{"online", "running"};
    m["VCPUs_flags"] = cpus;
    m["VCPUs_params"] = get("VCPUs_params").is_struct() ? get("VCPUs_params") : Value(Struct{});
    m["state"] = Array{ps == "Paused" ? "paused" : "running"};
    if (get("start_time").is_datetime()) m["start_time"] = get("start_time");
  } else {
    m["memory_actual"] = int64_t{0};
    m["VCPUs_number"] = int64_t{0};
    m["VCPUs_flags"] = Struct{};
    m["VCPUs_utilisation"] = Struct{};
    m["state"] = Array{};
  }
  return m;
}

}  // namespace

void refresh_host_memory(model::Store& store, const std::string& host) {
  struct sysinfo si {};
  ::sysinfo(&si);
  const int64_t total = host_mem_total() > 0 ? host_mem_total() : static_cast<int64_t>(si.totalram) * si.mem_unit;
  const int64_t free = static_cast<int64_t>(si.freeram) * si.mem_unit;
  Struct figures{{"memory_total", total}, {"memory_free", free}, {"live", true}, {"last_updated", DateTime::now()}};
  auto metrics = store.get_field("host", host, "metrics");
  if (valid(store, "host_metrics", metrics)) {
    store.update("host_metrics", metrics.as_string(), figures);
    store.update("host", host, {{"memory_free", free}});
  } else {
    store.update("host", host, {{"metrics", store.create("host_metrics", figures)}, {"memory_free", free}});
  }
}

void ensure_host_metrics(model::Store& store, const std::string& host) {
  refresh_host_memory(store, host);

  // A host_cpu per CPU; remade when the count changed (a new machine).
  auto cpus = read_cpuinfo();
  auto have = store.find("host_cpu", "host", host);
  if (have.size() != cpus.size()) {
    for (const auto& c : have) store.destroy("host_cpu", c);
    have.clear();
  }
  for (size_t i = 0; i < cpus.size(); ++i) {
    auto& f = cpus[i].fields;
    Struct rec{{"host", host},
               {"number", static_cast<int64_t>(i)},
               {"vendor", f["vendor_id"]},
               {"speed", to_int(f["cpu MHz"])},
               {"modelname", f["model name"]},
               {"family", to_int(f["cpu family"])},
               {"model", to_int(f["model"])},
               {"stepping", f["stepping"]},
               {"flags", f["flags"]},
               {"features", ""}};
    if (i < have.size()) {
      // Numbered as the kernel numbers them: match by number, not order.
      for (const auto& c : have)
        if (store.get_field("host_cpu", c, "number").as_int() == static_cast<int64_t>(i)) store.update("host_cpu", c, rec);
    } else {
      store.create("host_cpu", rec);
    }
  }
}

std::string ensure_control_domain(model::Store& store, const std::string& host) {
  std::string dom0;
  for (const auto& vm : store.find("VM", "is_control_domain", true))
    if (store.get_field("VM", vm, "resident_on").as_string() == host) dom0 = vm;
  struct sysinfo si {};
  ::sysinfo(&si);
  const int64_t mem = host_mem_total() > 0 ? host_mem_total() : static_cast<int64_t>(si.totalram) * si.mem_unit;
  const auto cpus = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  const DateTime booted{DateTime::now().epoch - static_cast<int64_t>(si.uptime)};
  Struct rec{{"is_control_domain", true},
             {"power_state", "Running"},
             {"resident_on", host},
             {"domid", int64_t{0}},
             {"domarch", "x64"},
             {"memory_static_min", mem},
             {"memory_static_max", mem},
             {"memory_dynamic_min", mem},
             {"memory_dynamic_max", mem},
             {"memory_target", mem},
             {"VCPUs_max", cpus},
             {"VCPUs_at_startup", cpus},
             {"HVM_boot_policy", ""},
             {"start_time", booted}};
  if (dom0.empty()) {
    // Named once: the operator may rename it.
    rec["name_label"] = "Control domain on host: " + store.get_field("host", host, "hostname").as_string();
    rec["name_description"] = "The domain which manages physical devices and manages other domains";
    dom0 = store.create("VM", rec);
  } else {
    store.update("VM", dom0, rec);
  }
  store.update("host", host, {{"control_domain", dom0}});
  return dom0;
}

void ensure_sm_records(model::Store& store, const std::vector<std::string>& types) {
  for (const auto& type : types) {
    Struct rec{{"name_label", type},
               {"name_description", "vmstack's " + type + " SR driver"},
               {"type", type},
               {"vendor", "vmstack"},
               {"copyright", "vmstack developers"},
               {"version", "1.0"},
               {"required_api_version", "1.0"},
               {"capabilities", Array{"SR_SCAN", "VDI_CREATE", "VDI_DELETE", "VDI_CLONE"}},
               {"features", Struct{{"SR_SCAN", int64_t{1}}, {"VDI_CREATE", int64_t{1}}, {"VDI_DELETE", int64_t{1}},
                                   {"VDI_CLONE", int64_t{1}}}}};
    auto have = store.find("SM", "type", type);
    if (have.empty()) store.create("SM", rec);
    else store.update("SM", have.front(), rec);
  }
}

void create_vm_metrics(model::Store& store, const std::string& vm) {
  auto rec = store.get_record("VM", vm);
  Struct m = vm_metrics_of(rec);
  m["install_time"] = DateTime::now();
  store.update("VM", vm, {{"metrics", store.create("VM_metrics", std::move(m))}});
}

void sync_vm_metrics(model::Store& store, const std::string& vm) {
  try {
    // Read after the caller's write: of two racing writers, the later sync
    // sees both writes.
    auto rec = store.get_record("VM", vm);
    auto m = rec["metrics"];
    if (valid(store, "VM_metrics", m)) store.update("VM_metrics", m.as_string(), vm_metrics_of(rec));
    if (auto host = rec["resident_on"]; valid(store, "host", host)) refresh_host_memory(store, host.as_string());
  } catch (const ApiError&) {
    // The VM or its metrics went away meanwhile.
  }
}

void destroy_vm_metrics(model::Store& store, const Struct& vm_record) {
  for (const char* f : {"metrics", "guest_metrics"}) {
    const char* cls = f[0] == 'm' ? "VM_metrics" : "VM_guest_metrics";
    auto it = vm_record.find(f);
    if (it != vm_record.end() && valid(store, cls, it->second)) store.destroy(cls, it->second.as_string());
  }
}

void reconcile_vm_metrics(model::Store& store) {
  std::set<std::string> used;
  for (const auto& vm : store.all("VM")) {
    auto m = store.get_field("VM", vm, "metrics");
    if (valid(store, "VM_metrics", m)) {
      used.insert(m.as_string());
      sync_vm_metrics(store, vm);
    } else {
      create_vm_metrics(store, vm);
      used.insert(store.get_field("VM", vm, "metrics").as_string());
    }
  }
  for (const auto& m : store.all("VM_metrics"))
    if (!used.count(m)) store.destroy("VM_metrics", m);
}

}  // namespace vmstack::ops
