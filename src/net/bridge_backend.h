// Linux bridges and persistent taps, made over netlink (net/netlink.h); a
// NAT or internal network's address over netlink too, its firewall table
// with nft(8) (one atomic script, net/routed.h).
#pragma once

#include "net/backend.h"

namespace vmstack::net {

class BridgeBackend final : public Backend {
 public:
  std::string name() const override { return "bridge"; }
  void bridge_create(const std::string& bridge, int64_t mtu) override;
  void bridge_destroy(const std::string& bridge) override;
  bool bridge_exists(const std::string& bridge) override;
  std::string vif_plug(const VifPlug& v) override;
  void vif_unplug(const std::string& tap) override;
  void routed_apply(const RoutedNetwork& n) override;
  void routed_remove(const RoutedNetwork& n) override;
};

}  // namespace vmstack::net
