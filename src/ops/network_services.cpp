#include "ops/network_services.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "net/dnsmasq.h"

namespace vmstack::ops {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto kTick = 1s;
constexpr int kMaxQuickRestarts = 5;  // then the network's DHCP is given up on (logged), not restarted in a loop

std::string other(const Struct& rec, const char* key) {
  auto oc = rec.find("other_config");
  if (oc == rec.end() || !oc->second.is_struct()) return {};
  auto it = oc->second.as_struct().find(key);
  return it != oc->second.as_struct().end() && it->second.is_string() ? it->second.as_string() : std::string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A dnsmasq an earlier daemon started for this bridge (its pid file, its
// command line naming the bridge): stopped, so the new one is the only one.
void stop_stale_dnsmasq(const std::string& dir, const std::string& bridge) {
  std::string pid_text = read_file(dir + "/dnsmasq.pid");
  int pid = std::atoi(pid_text.c_str());
  if (pid <= 1) return;
  std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& ch : cmdline)
    if (ch == '\0') ch = ' ';
  if (cmdline.find("dnsmasq") == std::string::npos || cmdline.find("--interface=" + bridge + " ") == std::string::npos)
    return;
  spdlog::info("network {}: stopping the dnsmasq (pid {}) an earlier vmstackd left", bridge, pid);
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 40 && ::kill(pid, 0) == 0; ++i) {
    // Not our child: init reaps it; a zombie answers kill(0) until then.
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') return;
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGKILL);
}

}  // namespace

std::optional<net::RoutedNetwork> routed_spec(const Struct& rec) {
  const std::string mode = other(rec, "mode"), subnet = other(rec, "subnet");
  if (mode.empty() || mode == "bridged") {
    if (!subnet.empty()) throw ApiError(errors::INVALID_VALUE, {"subnet", subnet + " (only a nat or internal network has one)"});
    return std::nullopt;
  }
  if (mode != "nat" && mode != "internal")
    throw ApiError(errors::INVALID_VALUE, {"mode", mode + " (bridged, nat or internal)"});
  if (subnet.empty()) {
    if (mode == "nat") throw ApiError(errors::INVALID_VALUE, {"subnet", "a nat network needs one, e.g. 192.168.21.0/24"});
    return std::nullopt;  // internal without a subnet: a plain bridge
  }
  std::string why;
  auto s = net::parse_subnet(subnet, other(rec, "gateway"), why);
  if (!s) throw ApiError(errors::INVALID_VALUE, {"subnet", subnet + ": " + why});
  net::RoutedNetwork n;
  auto b = rec.find("bridge");
  n.bridge = b != rec.end() && b->second.is_string() ? b->second.as_string() : std::string();
  n.nat = mode == "nat";
  n.subnet = *s;
  return n;
}

NetworkServices::NetworkServices(model::Store& store, net::Backend& backend, std::string state_dir)
    : store_(store), backend_(backend), state_dir_(std::move(state_dir)) {}

NetworkServices::~NetworkServices() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  // The dnsmasqs stop with their Subprocess (SIGKILL and reaped); the
  // routed side stays: guests keep running across a daemon restart.
}

void NetworkServices::start_dnsmasq(Instance& i) {
  i.reservations = reservations(i);
  SpawnOptions o;
  o.stdout_mode = SpawnOptions::Output::file;  // its log: leases handed out, why it stopped
  o.stdout_path = i.dir + "/dnsmasq.log";
  o.stderr_mode = SpawnOptions::Output::stdout_;
  i.dnsmasq = Subprocess::spawn(net::dnsmasq_argv({i.routed.bridge, i.routed.subnet, i.dir}, i.reservations), o);
  i.started = std::chrono::steady_clock::now();
}

std::vector<net::Reservation> NetworkServices::reservations(const Instance& i) {
  std::vector<net::Reservation> r;
  for (const auto& vif : store_.find("VIF", "network", i.network)) {
    Struct rec;
    try {
      rec = store_.get_record("VIF", vif);
    } catch (const ApiError&) {
      continue;
    }
    std::string ip = other(rec, "ip");
    uint32_t a = 0;
    if (!ip.empty() && net::parse_ipv4(ip, a) && i.routed.subnet.contains(a)) r.push_back({rec["MAC"].as_string(), ip});
  }
  std::sort(r.begin(), r.end(), [](const auto& x, const auto& y) { return x.mac < y.mac; });
  return r;
}

void NetworkServices::ensure(const std::string& network, const Struct& record) {
  auto spec = routed_spec(record);
  if (!spec) return;
  spec->blocked_tcp_ports = blocked_;
  auto inst = std::make_unique<Instance>();
  inst->network = network;
  inst->routed = *spec;
  inst->dir = state_dir_ + "/net/" + spec->bridge;
  try {
    fs::create_directories(inst->dir);
    fs::permissions(inst->dir, fs::perms::owner_all, fs::perm_options::replace);
    backend_.routed_apply(inst->routed);
    std::lock_guard lk(mu_);
    stop_stale_dnsmasq(inst->dir, spec->bridge);
    start_dnsmasq(*inst);
    instances_[network] = std::move(inst);
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    throw ApiError(errors::INTERNAL_ERROR, {"network " + spec->bridge + ": " + e.what()});
  }
}

void NetworkServices::remove(const Struct& record) {
  auto spec = routed_spec(record);
  if (!spec) return;
  std::unique_ptr<Instance> inst;
  {
    std::lock_guard lk(mu_);
    for (auto it = instances_.begin(); it != instances_.end(); ++it)
      if (it->second->routed.bridge == spec->bridge) {
        inst = std::move(it->second);
        instances_.erase(it);
        break;
      }
  }
  const std::string dir = state_dir_ + "/net/" + spec->bridge;
  if (inst && inst->dnsmasq.valid() && !inst->dnsmasq.exited()) {
    inst->dnsmasq.kill(SIGTERM);
    if (!inst->dnsmasq.wait_for(2s)) inst->dnsmasq.kill(SIGKILL);
    inst->dnsmasq.wait_for(2s);
  } else {
    stop_stale_dnsmasq(dir, spec->bridge);
  }
  try {
    backend_.routed_remove(*spec);
  } catch (const std::exception& e) {
    throw ApiError(errors::INTERNAL_ERROR, {"network " + spec->bridge + ": " + e.what()});
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

void NetworkServices::start() {
  std::vector<std::pair<std::string, Struct>> nets;
  store_.for_each("network", [&](const std::string& ref, const Struct& r) { nets.emplace_back(ref, r); });
  for (const auto& [ref, rec] : nets) {
    try {
      if (!rec.at("managed").as_bool()) continue;
      ensure(ref, rec);
    } catch (const std::exception& e) {
      spdlog::warn("network {}: cannot rebuild its host side: {}", ref, e.what());
    }
  }
  supervisor_ = std::thread([this] { loop(); });
}

void NetworkServices::publish_leases(const Instance& i) {
  const auto now = static_cast<int64_t>(std::time(nullptr));
  std::map<std::string, Struct> by_vm;  // VM -> its "<device>/ip" entries from this network
  for (const auto& lease : net::parse_leases(read_file(i.dir + "/leases"))) {
    if (lease.expiry != 0 && lease.expiry < now) continue;
    for (const auto& vif : store_.find("VIF", "MAC", lease.mac)) {
      try {
        auto rec = store_.get_record("VIF", vif);
        if (rec["network"].as_string() != i.network) continue;
        const auto& dev = rec["device"].as_string();
        by_vm[rec["VM"].as_string()][dev + "/ip"] = lease.ip;
        by_vm[rec["VM"].as_string()][dev + "/ipv4/0"] = lease.ip;
      } catch (const ApiError&) {
      }
    }
  }
  for (auto& [vm, entries] : by_vm) {
    try {
      auto gm = store_.get_field("VM", vm, "guest_metrics");
      std::string ref = gm.is_string() ? gm.as_string() : std::string();
      if (!store_.exists("VM_guest_metrics", ref)) {
        ref = store_.create("VM_guest_metrics", {{"networks", entries}, {"last_updated", DateTime::now()}});
        store_.update("VM", vm, {{"guest_metrics", ref}});
        continue;
      }
      Struct merged = store_.get_field("VM_guest_metrics", ref, "networks").as_struct();
      bool changed = false;
      for (auto& [k, v] : entries)
        if (!merged.count(k) || merged[k] != v) {
          merged[k] = v;
          changed = true;
        }
      if (changed) store_.update("VM_guest_metrics", ref, {{"networks", merged}, {"last_updated", DateTime::now()}});
    } catch (const ApiError&) {
      // The VM went away meanwhile.
    }
  }
}

void NetworkServices::tick() {
  std::lock_guard lk(mu_);
  for (auto& [ref, inst] : instances_) {
    Instance& i = *inst;
    if (i.dnsmasq.valid() && i.dnsmasq.try_wait()) {
      if (std::chrono::steady_clock::now() - i.started > 60s) i.restarts = 0;  // it had run a while: not a crash loop
      if (i.restarts >= kMaxQuickRestarts) continue;
      ++i.restarts;
      spdlog::warn("network {}: dnsmasq ended ({}); restarting it", i.routed.bridge, i.dnsmasq.describe_status());
      try {
        start_dnsmasq(i);
      } catch (const std::exception& e) {
        spdlog::warn("network {}: cannot restart dnsmasq: {}", i.routed.bridge, e.what());
      }
      continue;
    }
    auto now = reservations(i);
    if (now != i.reservations) {
      // Started again with them (see net/dnsmasq.h); leases are kept.
      i.dnsmasq.kill(SIGTERM);
      if (!i.dnsmasq.wait_for(2s)) i.dnsmasq.kill(SIGKILL);
      i.dnsmasq.wait_for(2s);
      try {
        start_dnsmasq(i);
      } catch (const std::exception& e) {
        spdlog::warn("network {}: cannot restart dnsmasq: {}", i.routed.bridge, e.what());
      }
    }
    publish_leases(i);
  }
}

void NetworkServices::loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, kTick, [this] { return stopping_; });
    if (stopping_) break;
    lk.unlock();
    try {
      tick();
    } catch (const std::exception& e) {
      spdlog::warn("network supervisor: {}", e.what());
    }
    lk.lock();
  }
}

}  // namespace vmstack::ops
