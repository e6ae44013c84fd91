#include "net/routed.h"

namespace vmstack::net {

std::string nft_table_name(const std::string& bridge) { return "vmstack-" + bridge; }

std::string nft_script(const RoutedNetwork& n) {
  // inet: IPv6 too (the bridge has a link-local address a guest could
  // reach the API on when it listens on ::); the subnet rules match IPv4.
  const std::string table = "inet " + nft_table_name(n.bridge);
  const std::string br = "\"" + n.bridge + "\"";
  const std::string subnet = n.subnet.cidr();
  std::string s;
  s += "table " + table + "\n";
  s += "delete table " + table + "\n";
  s += "table " + table + " {\n";
  s += "  chain input {\n";
  s += "    type filter hook input priority filter; policy accept;\n";
  if (!n.blocked_tcp_ports.empty()) {
    s += "    iifname " + br + " tcp dport { ";
    for (size_t i = 0; i < n.blocked_tcp_ports.size(); ++i)
      s += (i ? ", " : "") + std::to_string(n.blocked_tcp_ports[i]);
    s += " } drop\n";
  }
  s += "    iifname " + br + " udp dport { 53, 67 } accept\n";
  s += "    iifname " + br + " tcp dport 53 accept\n";
  if (!n.nat) s += "    iifname " + br + " drop\n";
  s += "  }\n";
  s += "  chain forward {\n";
  s += "    type filter hook forward priority filter; policy accept;\n";
  // Guests on the bridge talk to each other: with br_netfilter loaded
  // (bridge-nf-call-iptables, as Docker leaves it) bridged frames pass here.
  s += "    iifname " + br + " oifname " + br + " accept\n";
  if (n.nat) {
    s += "    iifname " + br + " ip saddr " + subnet + " ip daddr != " + subnet + " accept\n";
    s += "    oifname " + br + " ip daddr " + subnet + " ct state established,related accept\n";
  }
  s += "    iifname " + br + " drop\n";
  s += "    oifname " + br + " drop\n";
  s += "  }\n";
  if (n.nat) {
    s += "  chain postrouting {\n";
    s += "    type nat hook postrouting priority srcnat; policy accept;\n";
    s += "    ip saddr " + subnet + " ip daddr != " + subnet + " masquerade\n";
    s += "  }\n";
  }
  s += "}\n";
  return s;
}

}  // namespace vmstack::net
