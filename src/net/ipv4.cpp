#include "net/ipv4.h"

#include <arpa/inet.h>

#include <charconv>

namespace vmstack::net {

bool parse_ipv4(std::string_view text, uint32_t& out) {
  std::string s(text);
  in_addr a{};
  if (s.empty() || ::inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

std::string ipv4_text(uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string Ipv4Subnet::cidr() const { return ipv4_text(network) + "/" + std::to_string(prefix); }
std::string Ipv4Subnet::gateway_ip() const { return ipv4_text(gateway); }
std::string Ipv4Subnet::gateway_cidr() const { return ipv4_text(gateway) + "/" + std::to_string(prefix); }
std::string Ipv4Subnet::netmask() const { return ipv4_text(mask()); }
std::string Ipv4Subnet::dhcp_first() const { return ipv4_text(gateway == network + 1 ? gateway + 1 : network + 1); }
std::string Ipv4Subnet::dhcp_last() const {
  return ipv4_text(gateway == network + 1 ? broadcast() - 1 : gateway - 1);
}

std::optional<Ipv4Subnet> parse_subnet(std::string_view cidr, std::string_view gateway, std::string& why) {
  auto slash = cidr.find('/');
  Ipv4Subnet s;
  if (slash == std::string_view::npos || !parse_ipv4(cidr.substr(0, slash), s.network)) {
    why = "a subnet is an IPv4 network/prefix, e.g. 192.168.21.0/24";
    return std::nullopt;
  }
  auto p = cidr.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), s.prefix);
  if (ec != std::errc() || ptr != p.data() + p.size() || s.prefix < 8 || s.prefix > 30) {
    why = "the prefix must be 8 to 30";
    return std::nullopt;
  }
  if ((s.network & ~s.mask()) != 0) {
    why = "host bits are set: the network is " + ipv4_text(s.network & s.mask()) + "/" + std::to_string(s.prefix);
    return std::nullopt;
  }
  if (gateway.empty()) {
    s.gateway = s.network + 1;
  } else if (!parse_ipv4(gateway, s.gateway) || !s.contains(s.gateway) || s.gateway == s.network ||
             s.gateway == s.broadcast()) {
    why = "the gateway must be a host address inside " + s.cidr();
    return std::nullopt;
  }
  return s;
}

}  // namespace vmstack::net
