// The host side of a NAT or internal network (xapi has none of its own;
// libvirt's NAT networks are the model): the host's address on the bridge,
// IPv4 forwarding, and an nftables table of vmstack's own per network,
// `inet vmstack-<bridge>` (IPv4 and IPv6), scoped to its bridge and
// subnet, that goes with the network. Nothing else of the host's firewall is touched.
#pragma once

#include <string>
#include <vector>

#include "net/ipv4.h"

namespace vmstack::net {

struct RoutedNetwork {
  std::string bridge;
  bool nat = false;  // forwarding and MASQUERADE to the host's uplinks; else isolated (internal)
  Ipv4Subnet subnet;
  // TCP ports of the host guests must never reach (the API's listeners).
  std::vector<unsigned short> blocked_tcp_ports;
};

std::string nft_table_name(const std::string& bridge);  // "vmstack-<bridge>"

// The whole nftables script that (re)defines the network's table in one
// transaction: made if absent, emptied, defined again. Applying it twice
// leaves exactly one copy of every rule.
//   input: the blocked ports dropped from the bridge; DHCP and DNS to the
//     host accepted; an internal network's guests reach nothing else of
//     the host.
//   forward: guests on the bridge with each other (bridged frames come
//     here when br_netfilter is loaded); a NAT network's guests out (from
//     their own subnet only: no spoofed sources) and the answers back in;
//     nothing else to or from the bridge is forwarded (no other network,
//     nothing from outside).
//   postrouting: MASQUERADE of the subnet to everything outside it.
std::string nft_script(const RoutedNetwork& n);

}  // namespace vmstack::net
