#include "net/bridge_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/fd.h"
#include "core/process.h"
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

namespace {

void run_nft(const std::string& script, bool ignore_absent) {
  auto r = run_command({"nft", "-f", "-"}, std::chrono::seconds(30), script);
  if (r.ok()) return;
  if (ignore_absent && r.err.find("No such file or directory") != std::string::npos) return;
  throw std::runtime_error("nft: " + (r.err.empty() ? "exit " + std::to_string(r.exit_code) : r.err));
}

}  // namespace

void BridgeBackend::routed_apply(const RoutedNetwork& n) {
  if (!link_exists(n.bridge)) throw std::runtime_error("bridge " + n.bridge + " does not exist");
  add_address(n.bridge, n.subnet.gateway_cidr());
  if (n.nat) {
    // As libvirt's NAT networks: the host routes for its guests. (A host
    // firewall whose own forward chain drops still has the last word.)
    UniqueFd f(::open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC));
    if (!f || ::write(f.get(), "1\n", 2) != 2)
      throw std::runtime_error(std::string("cannot enable IPv4 forwarding: ") + std::strerror(errno));
  }
  run_nft(nft_script(n), false);
}

void BridgeBackend::routed_remove(const RoutedNetwork& n) {
  run_nft("delete table inet " + nft_table_name(n.bridge) + "\n", true);
  if (link_exists(n.bridge)) delete_address(n.bridge, n.subnet.gateway_cidr());
}

}  // namespace vmstack::net
