// IPv4 subnets as a NAT or internal network has them: the subnet, the
// host's (gateway) address on the bridge and the range DHCP hands out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmstack::net {

bool parse_ipv4(std::string_view text, uint32_t& out);  // dotted quad, host order
std::string ipv4_text(uint32_t addr);

struct Ipv4Subnet {
  uint32_t network = 0;  // host order, host bits zero
  int prefix = 0;
  uint32_t gateway = 0;  // the host's address on the bridge

  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  uint32_t broadcast() const { return network | ~mask(); }
  bool contains(uint32_t a) const { return (a & mask()) == network; }
  std::string cidr() const;          // "192.168.21.0/24"
  std::string gateway_ip() const;    // "192.168.21.1"
  std::string gateway_cidr() const;  // "192.168.21.1/24"
  std::string netmask() const;       // "255.255.255.0"
  // What DHCP hands out: every host address but the gateway's side of it
  // (after it when it is the first, else up to it), to broadcast - 1.
  std::string dhcp_first() const;
  std::string dhcp_last() const;
};

// "192.168.21.0/24" with prefix 8..30 and no host bits; `gateway` an
// address inside it that is neither the network nor the broadcast address
// ("" = the first host address). nullopt with `why` (for INVALID_VALUE).
std::optional<Ipv4Subnet> parse_subnet(std::string_view cidr, std::string_view gateway, std::string& why);

}  // namespace vmstack::net
