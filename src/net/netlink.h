// Host networking through rtnetlink (libnl-route-3): links (bridges, taps
// for guest NICs), their state and interface addresses, plus gratuitous ARP.
// Shared by the toolstack's network backend and vmstack-lb (VRRP VIPs).
//
// Every call acts on the calling thread's network namespace, opens its own
// netlink socket (so calls are thread-safe) and throws NetlinkError on
// failure; its message names the interface and carries the netlink (or
// system) error text, e.g. "set mtu 70000 on tap0: Invalid input data or
// parameter". Interface names are checked before anything is sent (1..15
// bytes, no '/', ':' or whitespace). Creating what exists (of the right kind)
// and removing what is absent are not errors.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmstack::net {

class NetlinkError : public std::runtime_error {
 public:
  NetlinkError(const std::string& message, std::string ifname)
      : std::runtime_error(message), ifname_(std::move(ifname)) {}
  // The interface the failed operation was about.
  const std::string& ifname() const { return ifname_; }

 private:
  std::string ifname_;
};

// ---- links ----

struct LinkInfo {
  std::string name;
  int index = 0;
  std::string kind;    // IFLA_INFO_KIND: "bridge", "tun" (tun and tap), "veth", ...; "" if none
  bool tap = false;    // a tun-driver device in tap (Ethernet) mode
  unsigned mtu = 0;
  bool up = false;     // administratively up (IFF_UP)
  std::string master;  // the bridge it is enslaved to, "" if none
  std::string mac;     // "aa:bb:cc:dd:ee:ff" ("" when the link has none)
};

bool link_exists(const std::string& name);
// Throws NetlinkError ("... no such interface") when absent.
int link_index(const std::string& name);
LinkInfo link_info(const std::string& name);
// Every link in the namespace, in ifindex order.
std::vector<std::string> link_names();

// A Linux bridge. Idempotent; an existing link of another kind is an error.
void create_bridge(const std::string& name);
// A persistent tap (/dev/net/tun, IFF_TAP | IFF_NO_PI, TUNSETPERSIST) that a
// guest's QEMU attaches to later; owner_uid >= 0 lets that user attach
// without privileges (TUNSETOWNER). Idempotent: an existing tap is kept
// (its owner is set when owner_uid >= 0, which fails with "busy" while a
// process has it open); an existing link that is not a tap is an error.
void create_tap(const std::string& name, int owner_uid = -1);
// Removes the link (a tap's persistence goes with it). Absent is not an error.
void delete_link(const std::string& name);

void set_link_up(const std::string& name, bool up = true);
// Enslaves `name` to `bridge` / releases it from its bridge.
void set_master(const std::string& name, const std::string& bridge);
void set_nomaster(const std::string& name);
void set_mtu(const std::string& name, unsigned mtu);
// "aa:bb:cc:dd:ee:ff" (hex, ':'-separated; a unicast address).
void set_mac(const std::string& name, const std::string& mac);

// ---- addresses ----

// "10.0.0.100/24", "10.0.0.100" (/32), "fd00::1/64", "fd00::1" (/128).
// Adding an address that is present / deleting one that is absent (or whose
// interface is gone) is fine.
void add_address(const std::string& ifname, const std::string& cidr);
void delete_address(const std::string& ifname, const std::string& cidr);
// Whether `ip` (no prefix) is configured on `ifname` (on any interface if
// ifname is empty).
bool has_address(const std::string& ifname, const std::string& ip);
// The first IPv4 address of `ifname` that is not in `exclude` ("" when none).
std::string first_ipv4(const std::string& ifname, const std::vector<std::string>& exclude = {});

// Broadcasts `count` gratuitous ARP requests for IPv4 `ip` from `ifname`'s
// MAC (AF_PACKET). Nothing is sent on a non-Ethernet link (loopback).
void send_gratuitous_arp(const std::string& ifname, const std::string& ip, int count = 1);

}  // namespace vmstack::net
