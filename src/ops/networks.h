// network and VIF records kept in step with the network backend (src/net/):
// a managed network's bridge exists while the network does; a running VM's
// VIFs are backed by taps on their networks' bridges.
#pragma once

#include <string>
#include <vector>

#include "hv/hypervisor.h"
#include "model/store.h"
#include "net/backend.h"

namespace vmstack::ops {

class Dispatcher;
class NetworkServices;

class Networks {
 public:
  Networks(model::Store& store, net::Backend& backend) : store_(store), backend_(backend) {}
  // NAT and internal networks' host side and DHCP (network_services.h);
  // without it every network is a plain bridge.
  void set_services(NetworkServices* s) { services_ = s; }

  // network.create: the bridge is `bridge` when given, else the first free
  // xenbrN; a managed network's bridge is made now, and a NAT or internal
  // network's host side and DHCP with it (other_config mode=, subnet=,
  // gateway=; a subnet overlapping another network's is INVALID_VALUE).
  std::string network_create(Struct record);
  // Refused (NETWORK_CONTAINS_VIF [vifs]) while VIFs use it.
  void network_destroy(const std::string& network);
  // VIF.create: a locally administered MAC unless one is given; the device
  // number is unique per VM (DEVICE_ALREADY_EXISTS [device]).
  std::string vif_create(Struct record);
  void vif_destroy(const std::string& vif);

  // A starting VM's NICs: every VIF's tap made and enslaved; undone if any
  // fails. Records VIF.runtime_properties:tap and currently_attached.
  // `owner_uid`: the guest's QEMU user, who may attach to the taps.
  std::vector<hv::NicSpec> plug_vm(const std::string& vm, int owner_uid = -1);
  // A halted VM's taps removed (what is already gone is fine).
  void unplug_vm(const std::string& vm);
  // After a host reboot: the bridges of managed networks exist again.
  void ensure_bridges();

 private:
  std::string free_bridge_name() const;
  model::Store& store_;
  net::Backend& backend_;
  NetworkServices* services_ = nullptr;
};

void bind_networks(Dispatcher& d, Networks& networks);

}  // namespace vmstack::ops
