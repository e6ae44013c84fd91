#include "net/bridge_backend.h"

#include <stdexcept>

#include "net/netlink.h"

namespace vmstack::net {

void BridgeBackend::bridge_create(const std::string& bridge, int64_t mtu) {
  create_bridge(bridge);
  if (mtu > 0) set_mtu(bridge, static_cast<unsigned>(mtu));
  set_link_up(bridge, true);
}

void BridgeBackend::bridge_destroy(const std::string& bridge) { delete_link(bridge); }

bool BridgeBackend::bridge_exists(const std::string& bridge) { return link_exists(bridge); }

std::string BridgeBackend::vif_plug(const VifPlug& v) {
  if (!link_exists(v.bridge))
    throw std::runtime_error("bridge " + v.bridge + " of the VIF's network does not exist on this host");
  std::string tap = tap_name(v.vm_uuid, v.device);
  create_tap(tap, v.owner_uid);
  if (v.mtu > 0) set_mtu(tap, static_cast<unsigned>(v.mtu));
  set_master(tap, v.bridge);
  set_link_up(tap, true);
  return tap;
}

void BridgeBackend::vif_unplug(const std::string& tap) { delete_link(tap); }

}  // namespace vmstack::net
