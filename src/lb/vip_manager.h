// How VrrpNode moves its virtual IPs: add/remove them on an interface and
// announce them (gratuitous ARP). The default goes through the shared
// netlink helpers (net/netlink.h); tests substitute a fake.
#pragma once

#include <string>

#include "net/netlink.h"

namespace vmstack::lb::ha {

class VipManager {
 public:
  virtual ~VipManager() = default;
  // "10.0.0.100/24". Adding a present / removing an absent VIP is fine.
  virtual void add(const std::string& ifname, const std::string& cidr) = 0;
  virtual void del(const std::string& ifname, const std::string& cidr) = 0;
  virtual void announce(const std::string& ifname, const std::string& ip) = 0;  // GARP
};

class NetlinkVipManager : public VipManager {
 public:
  explicit NetlinkVipManager(int garp_count = 3) : garp_count_(garp_count) {}
  void add(const std::string& ifname, const std::string& cidr) override { net::add_address(ifname, cidr); }
  void del(const std::string& ifname, const std::string& cidr) override { net::delete_address(ifname, cidr); }
  void announce(const std::string& ifname, const std::string& ip) override {
    net::send_gratuitous_arp(ifname, ip, garp_count_);
  }

 private:
  int garp_count_;
};

}  // namespace vmstack::lb::ha
