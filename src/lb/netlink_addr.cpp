#include "lb/netlink_addr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "core/fd.h"

namespace vmstack::lb::ha {

namespace {

struct NlSock {
  nl_sock* sk = nullptr;
  NlSock() {
    sk = nl_socket_alloc();
    if (!sk) throw std::runtime_error("netlink: cannot allocate socket");
    int rc = nl_connect(sk, NETLINK_ROUTE);
    if (rc < 0) {
      nl_socket_free(sk);
      throw std::runtime_error(std::string("netlink: connect: ") + nl_geterror(rc));
    }
  }
  ~NlSock() { nl_socket_free(sk); }
};

struct Addr {
  rtnl_addr* a = nullptr;
  nl_addr* local = nullptr;
  ~Addr() {
    if (local) nl_addr_put(local);
    if (a) rtnl_addr_put(a);
  }
};

void build(Addr& x, const std::string& ifname, const std::string& cidr) {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) throw std::runtime_error("no such interface: " + ifname);
  std::string c = cidr.find('/') == std::string::npos ? cidr + "/32" : cidr;
  int rc = nl_addr_parse(c.c_str(), AF_INET, &x.local);
  if (rc < 0) throw std::runtime_error("invalid address " + cidr + ": " + nl_geterror(rc));
  x.a = rtnl_addr_alloc();
  if (!x.a) throw std::runtime_error("netlink: out of memory");
  rtnl_addr_set_ifindex(x.a, static_cast<int>(idx));
  rtnl_addr_set_family(x.a, AF_INET);
  rc = rtnl_addr_set_local(x.a, x.local);
  if (rc < 0) throw std::runtime_error(std::string("netlink: ") + nl_geterror(rc));
  rtnl_addr_set_prefixlen(x.a, static_cast<int>(nl_addr_get_prefixlen(x.local)));
}

}  // namespace

void netlink_addr_add(const std::string& ifname, const std::string& cidr) {
  NlSock s;
  Addr x;
  build(x, ifname, cidr);
  int rc = rtnl_addr_add(s.sk, x.a, 0);
  if (rc < 0 && rc != -NLE_EXIST)
    throw std::runtime_error("add " + cidr + " to " + ifname + ": " + nl_geterror(rc));
}

void netlink_addr_del(const std::string& ifname, const std::string& cidr) {
  NlSock s;
  Addr x;
  build(x, ifname, cidr);
  int rc = rtnl_addr_delete(s.sk, x.a, 0);
  if (rc < 0 && rc != -NLE_NOADDR && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_NODEV)
    throw std::runtime_error("delete " + cidr + " from " + ifname + ": " + nl_geterror(rc));
}

bool interface_has_addr(const std::string& ifname, const std::string& ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  char buf[INET6_ADDRSTRLEN];
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || (!ifname.empty() && ifname != i->ifa_name)) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      found = ip == buf;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof buf);
      found = ip == buf;
    }
  }
  freeifaddrs(list);
  return found;
}

std::string interface_ipv4(const std::string& ifname, const std::vector<std::string>& exclude) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  char buf[INET_ADDRSTRLEN];
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || ifname != i->ifa_name || i->ifa_addr->sa_family != AF_INET) continue;
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (std::find(exclude.begin(), exclude.end(), std::string(buf)) != exclude.end()) continue;
    out = buf;
    break;
  }
  freeifaddrs(list);
  return out;
}

void send_gratuitous_arp(const std::string& ifname, const std::string& ip, int count) {
  in_addr addr{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1) throw std::runtime_error("GARP: not an IPv4 address: " + ip);
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) throw std::runtime_error("GARP: no such interface: " + ifname);
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) throw std::runtime_error(std::string("GARP: packet socket: ") + std::strerror(errno));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd.get(), SIOCGIFHWADDR, &ifr) < 0)
    throw std::runtime_error(std::string("GARP: SIOCGIFHWADDR: ") + std::strerror(errno));
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) return;  // loopback etc.: nothing to announce
  ether_arp arp{};
  arp.arp_hrd = htons(ARPHRD_ETHER);
  arp.arp_pro = htons(ETHERTYPE_IP);
  arp.arp_hln = ETH_ALEN;
  arp.arp_pln = 4;
  arp.arp_op = htons(ARPOP_REQUEST);
  std::memcpy(arp.arp_sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
  std::memcpy(arp.arp_spa, &addr, 4);
  std::memset(arp.arp_tha, 0, ETH_ALEN);
  std::memcpy(arp.arp_tpa, &addr, 4);
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ARP);
  ll.sll_ifindex = ifindex;
  ll.sll_halen = ETH_ALEN;
  std::memset(ll.sll_addr, 0xff, ETH_ALEN);
  for (int i = 0; i < count; ++i) {
    if (::sendto(fd.get(), &arp, sizeof arp, 0, reinterpret_cast<sockaddr*>(&ll), sizeof ll) < 0)
      throw std::runtime_error(std::string("GARP: sendto: ") + std::strerror(errno));
  }
}

}  // namespace vmstack::lb::ha
