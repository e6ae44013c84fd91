#include "net/dnsmasq.h"

#include <cctype>
#include <sstream>
#include <stdexcept>

namespace vmstack::net {

std::vector<std::string> dnsmasq_argv(const DnsmasqConfig& c, const std::vector<Reservation>& reservations) {
  std::vector<std::string> argv{"dnsmasq",
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--strict-order",
          "--bind-interfaces",
          "--except-interface=lo",
          "--interface=" + c.bridge,
          "--listen-address=" + c.subnet.gateway_ip(),
          "--dhcp-range=" + c.subnet.dhcp_first() + "," + c.subnet.dhcp_last() + "," + c.subnet.netmask() + ",1h",
          "--dhcp-option=option:router," + c.subnet.gateway_ip(),
          "--dhcp-authoritative",
          "--dhcp-no-override",
          "--dhcp-leasefile=" + c.dir + "/leases",
          "--pid-file=" + c.dir + "/dnsmasq.pid",
          "--log-facility=-"};
  for (const auto& r : reservations) argv.push_back("--dhcp-host=" + r.mac + "," + r.ip);
  return argv;
}

std::vector<Lease> parse_leases(const std::string& text) {
  std::vector<Lease> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    Lease l;
    std::string expiry, host;
    if (!(f >> expiry >> l.mac >> l.ip >> host)) continue;
    bool digits = !expiry.empty();
    for (char ch : expiry) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
    uint32_t ip = 0;
    if (!digits || l.mac.size() != 17 || !parse_ipv4(l.ip, ip)) continue;
    try {
      l.expiry = std::stoll(expiry);
    } catch (const std::out_of_range&) {
      continue;
    }
    for (auto& ch : l.mac) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    l.hostname = host == "*" ? "" : host;
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace vmstack::net
