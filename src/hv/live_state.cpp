// Device ids and the saved live state of a domain (<run_dir>/domain.json).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "core/fd.h"
#include "hv/argv/common.h"
#include "hv/hypervisor.h"

namespace vmstack::hv {

using json = nlohmann::json;

const char* to_string(Accel a) { return a == Accel::kvm ? "kvm" : "tcg"; }

void assign_device_ids(DomainSpec& spec) {
  std::set<std::string> used;
  for (const auto& d : spec.disks)
    if (!d.id.empty()) used.insert(d.id);
  for (const auto& n : spec.nics)
    if (!n.id.empty()) used.insert(n.id);
  auto fresh = [&](const std::string& stem, size_t index) {
    std::string id = stem;
    for (size_t i = index; used.count(id); ++i) id = stem + "-" + std::to_string(i);
    used.insert(id);
    return id;
  };
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    auto& d = spec.disks[i];
    if (!d.id.empty()) continue;
    std::string frag = argv::detail::id_fragment(d.device);
    d.id = fresh("vbd" + (frag.empty() ? "i" + std::to_string(i) : frag), i);
  }
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    auto& n = spec.nics[i];
    if (!n.id.empty()) continue;
    std::string frag = argv::detail::id_fragment(n.device);
    n.id = fresh("vif" + (frag.empty() ? "i" + std::to_string(i) : frag), i);
  }
}

namespace {

json disk_json(const DiskSpec& d) {
  return {{"id", d.id},         {"path", d.path},         {"format", d.format}, {"cdrom", d.cdrom},
          {"readonly", d.readonly}, {"bootable", d.bootable}, {"device", d.device}, {"port", d.port}, {"fdset", d.fdset}};
}
DiskSpec disk_from(const json& j) {
  DiskSpec d;
  d.id = j.value("id", "");
  d.path = j.value("path", "");
  d.format = j.value("format", "qcow2");
  d.cdrom = j.value("cdrom", false);
  d.readonly = j.value("readonly", false);
  d.bootable = j.value("bootable", false);
  d.device = j.value("device", "");
  d.port = j.value("port", "");
  d.fdset = j.value("fdset", 0);
  return d;
}
json nic_json(const NicSpec& n) {
  return {{"id", n.id}, {"mac", n.mac}, {"tap", n.tap}, {"model", n.model}, {"mtu", n.mtu}, {"device", n.device}, {"port", n.port}};
}
NicSpec nic_from(const json& j) {
  NicSpec n;
  n.id = j.value("id", "");
  n.mac = j.value("mac", "");
  n.tap = j.value("tap", "");
  n.model = j.value("model", "virtio-net-pci");
  n.mtu = j.value("mtu", int64_t{0});
  n.device = j.value("device", "");
  n.port = j.value("port", "");
  return n;
}

json spec_json(const DomainSpec& s) {
  json disks = json::array(), nics = json::array();
  for (const auto& d : s.disks) disks.push_back(disk_json(d));
  for (const auto& n : s.nics) nics.push_back(nic_json(n));
  return {{"uuid", s.uuid},
          {"name", s.name},
          {"run_dir", s.run_dir},
          {"accel", to_string(s.accel)},
          {"vcpus_max", s.vcpus_max},
          {"vcpus_at_startup", s.vcpus_at_startup},
          {"memory_static_max", s.memory_static_max},
          {"memory_target", s.memory_target},
          {"kernel", s.kernel},
          {"ramdisk", s.ramdisk},
          {"cmdline", s.cmdline},
          {"boot_order", s.boot_order},
          {"disks", disks},
          {"nics", nics},
          {"vnc", s.vnc},
          {"start_paused", s.start_paused},
          {"incoming_file", s.incoming_file},
          {"extra_args", s.extra_args},
          {"machine", s.machine},
          {"tsc_khz", s.tsc_khz},
          {"hotplug_slots", s.hotplug_slots},
          {"uid", s.uid},
          {"gid", s.gid},
          {"sandbox", s.sandbox}};
}

DomainSpec spec_from(const json& j) {
  if (!j.is_object()) throw std::runtime_error("domain spec: not a JSON object");
  DomainSpec s;
  s.uuid = j.value("uuid", "");
  s.name = j.value("name", "");
  s.run_dir = j.value("run_dir", "");
  s.accel = j.value("accel", "tcg") == "kvm" ? Accel::kvm : Accel::tcg;
  s.vcpus_max = j.value("vcpus_max", 1);
  s.vcpus_at_startup = j.value("vcpus_at_startup", 1);
  s.memory_static_max = j.value("memory_static_max", int64_t{256} << 20);
  s.memory_target = j.value("memory_target", s.memory_static_max);
  s.kernel = j.value("kernel", "");
  s.ramdisk = j.value("ramdisk", "");
  s.cmdline = j.value("cmdline", "");
  s.boot_order = j.value("boot_order", "cd");
  if (j.contains("disks"))
    for (const auto& d : j["disks"]) s.disks.push_back(disk_from(d));
  if (j.contains("nics"))
    for (const auto& n : j["nics"]) s.nics.push_back(nic_from(n));
  s.vnc = j.value("vnc", false);
  s.start_paused = j.value("start_paused", false);
  s.incoming_file = j.value("incoming_file", "");
  if (j.contains("extra_args")) s.extra_args = j["extra_args"].get<std::vector<std::string>>();
  s.machine = j.value("machine", "");
  s.tsc_khz = j.value("tsc_khz", int64_t{0});
  s.hotplug_slots = j.value("hotplug_slots", 2);
  s.uid = j.value("uid", -1);
  s.gid = j.value("gid", -1);
  s.sandbox = j.value("sandbox", true);
  return s;
}

std::string state_path(const std::string& run_dir) { return run_dir + "/domain.json"; }

}  // namespace

std::string spec_to_json(const DomainSpec& s) { return spec_json(s).dump(2); }

DomainSpec spec_from_json(const std::string& text) {
  try {
    return spec_from(json::parse(text));
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("domain spec: ") + e.what());
  }
}

void save_live_state(const LiveState& s) {
  json j{{"spec", spec_json(s.spec)},
         {"driver", s.driver},
         {"pid", s.pid},
         {"qmp_socket", s.qmp_socket},
         {"console_socket", s.console_socket},
         {"console_log", s.console_log},
         {"vnc_socket", s.vnc_socket},
         {"started", s.started}};
  const std::string path = state_path(s.spec.run_dir), tmp = path + ".tmp";
  std::string text = j.dump(2) + "\n";
  {
    // A new file, never one found under the name (a leftover, or a link an
    // older layout let the guest's user plant): root writes nowhere else.
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("cannot remove " + tmp + ": " + std::strerror(errno));
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
      off += static_cast<size_t>(n);
    }
    // Re-attach after a host crash reads this: it must be whole or absent.
    ::fsync(fd.get());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + ": " + std::strerror(errno));
}

std::optional<LiveState> load_live_state(const std::string& run_dir) {
  // What it says (a pid, socket paths, a uid) is acted on as root: only a
  // file root wrote counts. O_NONBLOCK: a FIFO under the name must not hang us.
  const std::string path = state_path(run_dir);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return std::nullopt;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != ::geteuid())
    return std::nullopt;
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  try {
    json j = json::parse(text);
    LiveState s;
    s.spec = spec_from(j.at("spec"));
    s.driver = j.value("driver", "qemu");
    s.pid = j.value("pid", 0);
    s.qmp_socket = j.value("qmp_socket", "");
    s.console_socket = j.value("console_socket", "");
    s.console_log = j.value("console_log", "");
    s.vnc_socket = j.value("vnc_socket", "");
    s.started = j.value("started", int64_t{0});
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void remove_live_state(const std::string& run_dir) {
  std::error_code ec;
  std::filesystem::remove(state_path(run_dir), ec);
}

}  // namespace vmstack::hv
