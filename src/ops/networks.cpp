#include "ops/networks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "core/names.h"
#include "core/strings.h"
#include "core/uuid.h"
#include "ops/dispatch.h"
#include "ops/network_services.h"

namespace vmstack::ops {

namespace {


// Xen's style of a locally administered unicast MAC: 02: + random bytes.
std::string random_mac() {
  auto u = make_uuid();
  return "02:" + u.substr(0, 2) + ":" + u.substr(2, 2) + ":" + u.substr(4, 2) + ":" + u.substr(6, 2) + ":" + u.substr(9, 2);
}

std::string get_str(const Struct& r, const char* k) {
  auto it = r.find(k);
  return it != r.end() && it->second.is_string() ? it->second.as_string() : std::string();
}

}  // namespace

std::string Networks::free_bridge_name() const {
  std::set<std::string> used;
  store_.for_each("network", [&](const std::string&, const Struct& r) { used.insert(r.at("bridge").as_string()); });
  for (int n = 0;; ++n) {
    std::string name = "xenbr" + std::to_string(n);
    // A bridge the operator made by hand is theirs: skip it too.
    if (!used.count(name) && !backend_.bridge_exists(name)) return name;
  }
}

std::string Networks::network_create(Struct r) {
  std::string bridge = get_str(r, "bridge");
  if (bridge.empty()) {
    bridge = free_bridge_name();
  } else {
    if (!valid_ifname(bridge)) throw ApiError(errors::INVALID_VALUE, {"bridge", bridge});
    for (const auto& other : store_.find("network", "bridge", bridge))
      throw ApiError(errors::INVALID_VALUE, {"bridge", bridge + " is already the bridge of network " +
                                                           store_.get_field("network", other, "uuid").as_string()});
  }
  r["bridge"] = bridge;
  bool managed = !r.count("managed") || r.at("managed").as_bool();
  r["managed"] = managed;
  // A NAT or internal network's subnet: checked before anything is made.
  if (auto spec = routed_spec(r)) {
    if (!managed) throw ApiError(errors::INVALID_VALUE, {"managed", "a nat or internal network is managed by vmstack"});
    store_.for_each("network", [&](const std::string&, const Struct& o) {
      auto other = routed_spec(o);
      if (other && (other->subnet.contains(spec->subnet.network) || spec->subnet.contains(other->subnet.network)))
        throw ApiError(errors::INVALID_VALUE,
                       {"subnet", spec->subnet.cidr() + " overlaps " + other->subnet.cidr() + " of bridge " + other->bridge});
    });
  }
  for (auto k : {"uuid", "allowed_operations", "current_operations", "VIFs"}) r.erase(k);
  int64_t mtu = r.count("MTU") ? r.at("MTU").as_int() : 1500;
  if (mtu < 68 || mtu > 65535) throw ApiError(errors::INVALID_VALUE, {"MTU", std::to_string(mtu)});
  if (managed) {
    try {
      backend_.bridge_create(bridge, mtu);
    } catch (const std::exception& e) {
      throw ApiError(errors::INTERNAL_ERROR, {"cannot create bridge " + bridge + ": " + e.what()});
    }
  }
  std::string ref;
  try {
    ref = store_.create("network", r);
    if (managed && services_) services_->ensure(ref, r);
    return ref;
  } catch (...) {
    if (!ref.empty()) {
      try {
        if (managed && services_) services_->remove(r);  // whatever part of its host side was made
        store_.destroy("network", ref);
      } catch (const std::exception&) {
      }
    }
    if (managed) {
      try {
        backend_.bridge_destroy(bridge);
      } catch (const std::exception&) {
      }
    }
    throw;
  }
}

void Networks::network_destroy(const std::string& network) {
  auto rec = store_.get_record("network", network);
  const auto& vifs = rec["VIFs"].as_array();
  if (!vifs.empty()) {
    std::vector<std::string> refs;
    for (const auto& v : vifs) refs.push_back(v.as_string());
    throw ApiError("NETWORK_CONTAINS_VIF", refs);
  }
  const auto& bridge = rec["bridge"].as_string();
  if (rec["managed"].as_bool() && services_) services_->remove(rec);
  if (rec["managed"].as_bool() && !bridge.empty()) {
    try {
      backend_.bridge_destroy(bridge);
    } catch (const std::exception& e) {
      throw ApiError(errors::INTERNAL_ERROR, {"cannot remove bridge " + bridge + ": " + e.what()});
    }
  }
  store_.destroy("network", network);
}

std::string Networks::vif_create(Struct f) {
  for (auto [cls, key] : {std::pair{"VM", "VM"}, std::pair{"network", "network"}})
    if (!f.count(key) || !f.at(key).is_string() || !store_.exists(cls, f.at(key).as_string()))
      throw ApiError(errors::HANDLE_INVALID, {cls, f.count(key) ? f.at(key).to_display() : ""});
  std::string device = get_str(f, "device");
  if (device.empty() || device.size() > 3 || !std::all_of(device.begin(), device.end(), ::isdigit))
    throw ApiError(errors::INVALID_VALUE, {"device", device});
  for (const auto& other : store_.find("VIF", "VM", f.at("VM").as_string()))
    if (store_.get_field("VIF", other, "device").as_string() == device)
      throw ApiError(errors::DEVICE_ALREADY_EXISTS, {device});
  std::string mac = get_str(f, "MAC");
  if (mac.empty()) {
    f["MAC"] = random_mac();
    f["MAC_autogenerated"] = true;
  } else {
    if (!valid_mac(mac)) throw ApiError(errors::INVALID_VALUE, {"MAC", mac});
    f["MAC"] = lower(mac);
    f["MAC_autogenerated"] = false;
  }
  for (auto k : {"uuid", "currently_attached", "status_code", "status_detail", "runtime_properties",
                 "allowed_operations", "current_operations"})
    f.erase(k);
  return store_.create("VIF", std::move(f));
}

void Networks::vif_destroy(const std::string& vif) {
  if (store_.get_field("VIF", vif, "currently_attached").as_bool())
    throw ApiError(errors::OPERATION_NOT_ALLOWED, {"VIF is attached to a running VM"});
  store_.destroy("VIF", vif);
}

std::vector<hv::NicSpec> Networks::plug_vm(const std::string& vm, int owner_uid) {
  auto vm_uuid = store_.get_field("VM", vm, "uuid").as_string();
  std::vector<std::pair<std::string, Struct>> vifs;
  for (const auto& v : store_.find("VIF", "VM", vm)) vifs.emplace_back(v, store_.get_record("VIF", v));
  std::sort(vifs.begin(), vifs.end(), [](const auto& a, const auto& b) {
    return std::stoi(a.second.at("device").as_string()) < std::stoi(b.second.at("device").as_string());
  });
  std::vector<hv::NicSpec> nics;
  std::vector<std::string> made;
  try {
    for (const auto& [ref, rec] : vifs) {
      auto net = rec.at("network").as_string();
      auto bridge = store_.get_field("network", net, "bridge").as_string();
      hv::NicSpec n;
      n.mac = rec.at("MAC").as_string();
      n.device = rec.at("device").as_string();
      n.mtu = rec.at("MTU").as_int();
      try {
        n.tap = backend_.vif_plug({vm_uuid, n.device, bridge, n.mtu, owner_uid});
      } catch (const std::exception& e) {
        throw ApiError(errors::INTERNAL_ERROR, {"VIF " + n.device + ": " + e.what()});
      }
      made.push_back(n.tap);
      store_.update("VIF", ref, {{"currently_attached", true}, {"runtime_properties", Struct{{"tap", n.tap}}}});
      nics.push_back(n);
    }
  } catch (...) {
    for (const auto& tap : made) {
      try {
        backend_.vif_unplug(tap);
      } catch (const std::exception&) {
      }
    }
    for (const auto& [ref, rec] : vifs) store_.update("VIF", ref, {{"currently_attached", false}, {"runtime_properties", Struct{}}});
    throw;
  }
  return nics;
}

void Networks::unplug_vm(const std::string& vm) {
  for (const auto& v : store_.find("VIF", "VM", vm)) {
    auto rp = store_.get_field("VIF", v, "runtime_properties");
    const auto& tap = rp["tap"];
    if (tap.is_string() && !tap.as_string().empty()) {
      try {
        backend_.vif_unplug(tap.as_string());
      } catch (const std::exception& e) {
        spdlog::warn("VIF {}: removing tap {}: {}", v, tap.as_string(), e.what());
      }
    }
    store_.update("VIF", v, {{"currently_attached", false}, {"runtime_properties", Struct{}}});
  }
}

void Networks::ensure_bridges() {
  store_.for_each("network", [&](const std::string& ref, const Struct& r) {
    if (!r.at("managed").as_bool()) return;
    const auto& bridge = r.at("bridge").as_string();
    try {
      if (!bridge.empty() && !backend_.bridge_exists(bridge)) backend_.bridge_create(bridge, r.at("MTU").as_int());
    } catch (const std::exception& e) {
      spdlog::warn("network {}: cannot create bridge {}: {}", ref, bridge, e.what());
    }
  });
}

void bind_networks(Dispatcher& d, Networks& networks) {
  d.bind("network.create", [&networks](const Call&, const Args& a) { return Value(networks.network_create(a.map("args"))); });
  d.bind("network.destroy", [&networks](const Call&, const Args& a) {
    networks.network_destroy(a.ref("self"));
    return Value();
  });
  d.bind("VIF.create", [&networks](const Call&, const Args& a) { return Value(networks.vif_create(a.map("args"))); });
  d.bind("VIF.destroy", [&networks](const Call&, const Args& a) {
    networks.vif_destroy(a.ref("self"));
    return Value();
  });
}

}  // namespace vmstack::ops
