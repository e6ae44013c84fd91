// dnsmasq as a NAT or internal network's DHCP and DNS server (as libvirt
// runs it): one instance per network, bound to the bridge's gateway
// address only, with its leases, static reservations and pid file in a
// directory of the network's own. The process itself is supervised by
// ops/network_services.h; this is what it is started with and what its
// files say.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "net/ipv4.h"

namespace vmstack::net {

struct DnsmasqConfig {
  std::string bridge;
  Ipv4Subnet subnet;
  std::string dir;  // leases, hosts (reservations) and dnsmasq.pid go here
};

// A static reservation: this MAC always gets this address.
struct Reservation {
  std::string mac;
  std::string ip;
  bool operator==(const Reservation&) const = default;
};

// The command line: no configuration file of the host's (--conf-file=/dev/null),
// in the foreground (the supervisor is its parent), bound to the bridge
// alone, authoritative DHCP over the subnet's range with 1 h leases, the
// reservations as --dhcp-host= (dnsmasq reads files only after dropping to
// an unprivileged user, who cannot enter vmstack's state dir; the lease and
// pid files it opens before).
std::vector<std::string> dnsmasq_argv(const DnsmasqConfig& c, const std::vector<Reservation>& reservations);

struct Lease {
  int64_t expiry = 0;  // seconds since the epoch (0: infinite)
  std::string mac;     // lower case
  std::string ip;
  std::string hostname;  // "" when the client sent none ("*")
};
// dnsmasq's lease file: "expiry mac ip hostname client-id" per line;
// malformed lines are skipped.
std::vector<Lease> parse_leases(const std::string& text);

}  // namespace vmstack::net
