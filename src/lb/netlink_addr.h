// Interface address management for VRRP VIPs (libnl-route-3) and gratuitous
// ARP (AF_PACKET). Act on the calling process's network namespace.
#pragma once

#include <string>
#include <vector>

namespace vmstack::lb::ha {

// "10.0.0.100/24" or "10.0.0.100" (/32). Throws std::runtime_error with the
// netlink error on failure; adding an address that is already present and
// deleting one that is absent are not errors.
void netlink_addr_add(const std::string& ifname, const std::string& cidr);
void netlink_addr_del(const std::string& ifname, const std::string& cidr);
// Whether `ip` (no prefix) is configured on `ifname` (any interface if empty).
bool interface_has_addr(const std::string& ifname, const std::string& ip);
// The first IPv4 address of the interface that is not in `exclude` ("" when
// none).
std::string interface_ipv4(const std::string& ifname, const std::vector<std::string>& exclude = {});

// Broadcast `count` gratuitous ARP requests for IPv4 `ip` from `ifname`'s MAC.
// Throws std::runtime_error on socket errors.
void send_gratuitous_arp(const std::string& ifname, const std::string& ip, int count = 1);

// What VrrpNode uses to move VIPs; the default is the netlink one above.
class VipManager {
 public:
  virtual ~VipManager() = default;
  virtual void add(const std::string& ifname, const std::string& cidr) = 0;
  virtual void del(const std::string& ifname, const std::string& cidr) = 0;
  virtual void announce(const std::string& ifname, const std::string& ip) = 0;  // GARP
};

class NetlinkVipManager : public VipManager {
 public:
  explicit NetlinkVipManager(int garp_count = 3) : garp_count_(garp_count) {}
  void add(const std::string& ifname, const std::string& cidr) override { netlink_addr_add(ifname, cidr); }
  void del(const std::string& ifname, const std::string& cidr) override { netlink_addr_del(ifname, cidr); }
  void announce(const std::string& ifname, const std::string& ip) override {
    send_gratuitous_arp(ifname, ip, garp_count_);
  }

 private:
  int garp_count_;
};

}  // namespace vmstack::lb::ha
