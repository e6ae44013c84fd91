// The network backend interface: what the toolstack asks of the host's
// networking for networks and VIFs (bridges and the taps guest NICs are
// backed by). One implementation per way of doing it (Linux bridges today;
// Open vSwitch could be another), as libvirt's network drivers.
#pragma once

#include <cstdint>
#include <string>

#include "net/routed.h"

namespace vmstack::net {

struct VifPlug {
  std::string vm_uuid;
  std::string device;  // VIF.device ("0")
  std::string bridge;  // the network's bridge
  int64_t mtu = 0;     // 0: leave the default
  int owner_uid = -1;  // the deprivileged QEMU's user, who may attach to the tap (-1: root only)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // A managed network's bridge: made (idempotent) and brought up with the
  // network, removed with it. Throw std::runtime_error with the system's words.
  virtual void bridge_create(const std::string& bridge, int64_t mtu) = 0;
  virtual void bridge_destroy(const std::string& bridge) = 0;
  virtual bool bridge_exists(const std::string& bridge) = 0;
  // Makes the tap a VIF's NIC is backed by, enslaved to its network's bridge
  // and up; returns its name. Idempotent for the same VIF.
  virtual std::string vif_plug(const VifPlug& v) = 0;
  // Removes the tap (absent is fine).
  virtual void vif_unplug(const std::string& tap) = 0;
  // A NAT or internal network's host side (routed.h): the gateway address
  // on its bridge, forwarding for NAT, its own firewall table. Idempotent:
  // applying again changes nothing. Throw std::runtime_error with the
  // system's words.
  virtual void routed_apply(const RoutedNetwork& n) = 0;
  // All of it gone (what is already gone is fine).
  virtual void routed_remove(const RoutedNetwork& n) = 0;
};

// The tap name of a VIF: "vif" + the VM uuid's first 8 hex digits + "." +
// device, within Linux's 15-character interface names. Xen names taps
// vif<domid>.<device>; here the domain id (QEMU's pid) is not known until
// the tap it needs exists.
std::string tap_name(const std::string& vm_uuid, const std::string& device);

}  // namespace vmstack::net
