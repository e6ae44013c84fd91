#include "net/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/if_ether.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/fd.h"

namespace vmstack::net {

namespace {

// ---- RAII for libnl objects ----
template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using SockPtr = std::unique_ptr<nl_sock, Deleter<nl_socket_free>>;
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link_put>>;
using CachePtr = std::unique_ptr<nl_cache, Deleter<nl_cache_free>>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr_put>>;
using NlAddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr_put>>;
using IfAddrsPtr = std::unique_ptr<ifaddrs, Deleter<freeifaddrs>>;

[[noreturn]] void fail(const std::string& what, const std::string& ifname, const std::string& why) {
  throw NetlinkError(what + ": " + why, ifname);
}
[[noreturn]] void fail_nl(const std::string& what, const std::string& ifname, int rc) {
  fail(what, ifname, nl_geterror(rc));
}
[[noreturn]] void fail_errno(const std::string& what, const std::string& ifname, int err) {
  fail(what, ifname, std::strerror(err));
}

bool is_absent(int rc) { return rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND; }

// Interface names as the kernel takes them: 1..15 bytes, no '/', ':' or
// whitespace, not "." or "..". Checked up front so the error says why.
void check_name(const std::string& what, const std::string& name) {
  const char* why = nullptr;
  if (name.empty())
    why = "empty interface name";
  else if (name.size() >= IFNAMSIZ)
    why = "interface name longer than 15 characters";
  else if (name == "." || name == ".." ||
           name.find_first_of("/: \t\n\r\f\v") != std::string::npos)
    why = "invalid interface name";
  if (why) fail(what, name, why);
}

SockPtr connect(const std::string& what, const std::string& ifname) {
  SockPtr sk(nl_socket_alloc());
  if (!sk) fail(what, ifname, "netlink: cannot allocate a socket");
  int rc = nl_connect(sk.get(), NETLINK_ROUTE);
  if (rc < 0) fail_nl(what, ifname, rc);
  return sk;
}

// The link called `name`, or nullptr when there is none.
LinkPtr find_link(nl_sock* sk, const std::string& what, const std::string& name) {
  rtnl_link* l = nullptr;
  int rc = rtnl_link_get_kernel(sk, 0, name.c_str(), &l);
  LinkPtr link(l);
  if (rc < 0) {
    if (is_absent(rc)) return nullptr;
    fail_nl(what, name, rc);
  }
  return link;
}

LinkPtr must_find_link(nl_sock* sk, const std::string& what, const std::string& name) {
  check_name(what, name);
  LinkPtr link = find_link(sk, what, name);
  if (!link) fail(what, name, "no such interface");
  return link;
}

std::string link_kind(rtnl_link* l) {
  const char* k = rtnl_link_get_type(l);
  return k ? k : "";
}

bool is_tap(rtnl_link* l) { return link_kind(l) == "tun" && rtnl_link_get_arptype(l) == ARPHRD_ETHER; }

// Applies `fill(change)` to the link `name` (RTM_NEWLINK, libnl falls back to
// RTM_SETLINK on old kernels).
template <class Fill>
void change_link(const std::string& what, const std::string& name, Fill fill) {
  SockPtr sk = connect(what, name);
  LinkPtr orig = must_find_link(sk.get(), what, name);
  LinkPtr change(rtnl_link_alloc());
  if (!change) fail(what, name, "netlink: out of memory");
  fill(sk.get(), change.get());
  int rc = rtnl_link_change(sk.get(), orig.get(), change.get(), 0);
  if (rc < 0) fail_nl(what, name, rc);
}

// ---- addresses ----

struct ParsedAddr {
  int family = AF_INET;
  NlAddrPtr local;
};

ParsedAddr parse_cidr(const std::string& what, const std::string& ifname, const std::string& cidr) {
  ParsedAddr p;
  p.family = cidr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  std::string c = cidr;
  if (c.find('/') == std::string::npos) c += p.family == AF_INET6 ? "/128" : "/32";
  nl_addr* a = nullptr;
  int rc = nl_addr_parse(c.c_str(), p.family, &a);
  p.local.reset(a);
  if (rc < 0) fail(what, ifname, "invalid address '" + cidr + "': " + nl_geterror(rc));
  return p;
}

RtAddrPtr build_addr(nl_sock* sk, const std::string& what, const std::string& ifname, const std::string& cidr) {
  LinkPtr link = must_find_link(sk, what, ifname);
  ParsedAddr p = parse_cidr(what, ifname, cidr);
  RtAddrPtr a(rtnl_addr_alloc());
  if (!a) fail(what, ifname, "netlink: out of memory");
  rtnl_addr_set_ifindex(a.get(), rtnl_link_get_ifindex(link.get()));
  rtnl_addr_set_family(a.get(), p.family);
  int rc = rtnl_addr_set_local(a.get(), p.local.get());
  if (rc < 0) fail_nl(what, ifname, rc);
  rtnl_addr_set_prefixlen(a.get(), static_cast<int>(nl_addr_get_prefixlen(p.local.get())));
  return a;
}

IfAddrsPtr interface_addresses(const std::string& what, const std::string& ifname) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) fail_errno(what, ifname, errno);
  return IfAddrsPtr(list);
}

std::string addr_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

}  // namespace

// ------------------------------------------------------------------ links

bool link_exists(const std::string& name) {
  const std::string what = "look up " + name;
  check_name(what, name);
  SockPtr sk = connect(what, name);
  return find_link(sk.get(), what, name) != nullptr;
}

int link_index(const std::string& name) {
  const std::string what = "look up " + name;
  SockPtr sk = connect(what, name);
  return rtnl_link_get_ifindex(must_find_link(sk.get(), what, name).get());
}

LinkInfo link_info(const std::string& name) {
  const std::string what = "look up " + name;
  SockPtr sk = connect(what, name);
  LinkPtr l = must_find_link(sk.get(), what, name);
  LinkInfo info;
  info.name = rtnl_link_get_name(l.get());
  info.index = rtnl_link_get_ifindex(l.get());
  info.kind = link_kind(l.get());
  info.tap = is_tap(l.get());
  info.mtu = rtnl_link_get_mtu(l.get());
  info.up = (rtnl_link_get_flags(l.get()) & IFF_UP) != 0;
  if (int m = rtnl_link_get_master(l.get()); m > 0) {
    rtnl_link* ml = nullptr;
    int rc = rtnl_link_get_kernel(sk.get(), m, nullptr, &ml);
    LinkPtr master(ml);
    if (rc < 0) fail_nl("look up the master of " + name, name, rc);
    info.master = rtnl_link_get_name(master.get());
  }
  if (nl_addr* a = rtnl_link_get_addr(l.get()); a && nl_addr_get_len(a) == ETH_ALEN) {
    char buf[32];
    info.mac = nl_addr2str(a, buf, sizeof buf);
  }
  return info;
}

std::vector<std::string> link_names() {
  const std::string what = "list links";
  SockPtr sk = connect(what, "");
  nl_cache* c = nullptr;
  int rc = rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &c);
  CachePtr cache(c);
  if (rc < 0) fail_nl(what, "", rc);
  std::vector<std::pair<int, std::string>> links;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    links.emplace_back(rtnl_link_get_ifindex(l), rtnl_link_get_name(l));
  }
  std::sort(links.begin(), links.end());
  std::vector<std::string> names;
  for (auto& [idx, n] : links) names.push_back(std::move(n));
  return names;
}

void create_bridge(const std::string& name) {
  const std::string what = "create bridge " + name;
  check_name(what, name);
  SockPtr sk = connect(what, name);
  LinkPtr link(rtnl_link_bridge_alloc());
  if (!link) fail(what, name, "netlink: out of memory");
  rtnl_link_set_name(link.get(), name.c_str());
  int rc = rtnl_link_add(sk.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (rc == -NLE_EXIST) {
    LinkPtr have = find_link(sk.get(), what, name);
    if (have && link_kind(have.get()) == "bridge") return;
    std::string kind = have ? link_kind(have.get()) : "";
    fail(what, name, "exists and is not a bridge" + (kind.empty() ? std::string() : " (" + kind + ")"));
  }
  if (rc < 0) fail_nl(what, name, rc);
}

void create_tap(const std::string& name, int owner_uid) {
  const std::string what = "create tap " + name;
  check_name(what, name);
  {
    SockPtr sk = connect(what, name);
    if (LinkPtr have = find_link(sk.get(), what, name)) {
      if (!is_tap(have.get())) {
        std::string kind = link_kind(have.get());
        fail(what, name, "exists and is not a tap" + (kind.empty() ? std::string() : " (" + kind + ")"));
      }
      if (owner_uid < 0) return;  // nothing to change
    }
  }
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) fail(what, name, std::string("/dev/net/tun: ") + std::strerror(errno));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());  // checked: < IFNAMSIZ
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) fail(what, name, std::string("TUNSETIFF: ") + std::strerror(errno));
  if (owner_uid >= 0 && ::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(owner_uid)) < 0)
    fail(what, name, std::string("TUNSETOWNER: ") + std::strerror(errno));
  if (::ioctl(fd.get(), TUNSETPERSIST, 1UL) < 0)
    fail(what, name, std::string("TUNSETPERSIST: ") + std::strerror(errno));
}

void delete_link(const std::string& name) {
  const std::string what = "delete " + name;
  check_name(what, name);
  SockPtr sk = connect(what, name);
  LinkPtr link(rtnl_link_alloc());
  if (!link) fail(what, name, "netlink: out of memory");
  rtnl_link_set_name(link.get(), name.c_str());
  int rc = rtnl_link_delete(sk.get(), link.get());
  if (rc < 0 && !is_absent(rc)) fail_nl(what, name, rc);
}

void set_link_up(const std::string& name, bool up) {
  change_link(std::string("set ") + (up ? "up " : "down ") + name, name, [&](nl_sock*, rtnl_link* c) {
    if (up)
      rtnl_link_set_flags(c, IFF_UP);
    else
      rtnl_link_unset_flags(c, IFF_UP);
  });
}

void set_master(const std::string& name, const std::string& bridge) {
  const std::string what = "enslave " + name + " to " + bridge;
  check_name(what, name);
  check_name(what, bridge);
  int master = 0;
  {
    SockPtr sk = connect(what, bridge);
    LinkPtr b = find_link(sk.get(), what, bridge);
    if (!b) fail(what, name, "no such bridge " + bridge);
    master = rtnl_link_get_ifindex(b.get());
  }
  change_link(what, name, [&](nl_sock*, rtnl_link* c) { rtnl_link_set_master(c, master); });
}

void set_nomaster(const std::string& name) {
  change_link("release " + name + " from its bridge", name,
              [](nl_sock*, rtnl_link* c) { rtnl_link_set_master(c, 0); });
}

void set_mtu(const std::string& name, unsigned mtu) {
  change_link("set mtu " + std::to_string(mtu) + " on " + name, name,
              [&](nl_sock*, rtnl_link* c) { rtnl_link_set_mtu(c, mtu); });
}

void set_mac(const std::string& name, const std::string& mac) {
  const std::string what = "set mac " + mac + " on " + name;
  std::array<unsigned char, ETH_ALEN> b{};
  unsigned v[ETH_ALEN];
  char tail = 0;
  if (mac.size() != 17 ||
      std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    fail(what, name, "not a MAC address (aa:bb:cc:dd:ee:ff)");
  for (int i = 0; i < ETH_ALEN; ++i) b[i] = static_cast<unsigned char>(v[i]);
  if (b[0] & 1) fail(what, name, "a multicast MAC address cannot be an interface's");
  NlAddrPtr addr(nl_addr_build(AF_LLC, b.data(), b.size()));
  if (!addr) fail(what, name, "netlink: out of memory");
  change_link(what, name, [&](nl_sock*, rtnl_link* c) { rtnl_link_set_addr(c, addr.get()); });
}

// -------------------------------------------------------------- addresses

void add_address(const std::string& ifname, const std::string& cidr) {
  const std::string what = "add " + cidr + " to " + ifname;
  SockPtr sk = connect(what, ifname);
  RtAddrPtr a = build_addr(sk.get(), what, ifname, cidr);
  int rc = rtnl_addr_add(sk.get(), a.get(), 0);
  if (rc < 0 && rc != -NLE_EXIST) fail_nl(what, ifname, rc);
}

void delete_address(const std::string& ifname, const std::string& cidr) {
  const std::string what = "delete " + cidr + " from " + ifname;
  check_name(what, ifname);
  SockPtr sk = connect(what, ifname);
  if (!find_link(sk.get(), what, ifname)) return;  // gone with its interface
  RtAddrPtr a = build_addr(sk.get(), what, ifname, cidr);
  int rc = rtnl_addr_delete(sk.get(), a.get(), 0);
  if (rc < 0 && rc != -NLE_NOADDR && !is_absent(rc)) fail_nl(what, ifname, rc);
}

bool has_address(const std::string& ifname, const std::string& ip) {
  IfAddrsPtr list = interface_addresses("list addresses of " + (ifname.empty() ? "all interfaces" : ifname), ifname);
  for (ifaddrs* i = list.get(); i; i = i->ifa_next) {
    if (!i->ifa_addr || (!ifname.empty() && ifname != i->ifa_name)) continue;
    if (addr_text(i->ifa_addr) == ip) return true;
  }
  return false;
}

std::string first_ipv4(const std::string& ifname, const std::vector<std::string>& exclude) {
  IfAddrsPtr list = interface_addresses("list addresses of " + ifname, ifname);
  for (ifaddrs* i = list.get(); i; i = i->ifa_next) {
    if (!i->ifa_addr || ifname != i->ifa_name || i->ifa_addr->sa_family != AF_INET) continue;
    std::string a = addr_text(i->ifa_addr);
    if (std::find(exclude.begin(), exclude.end(), a) == exclude.end()) return a;
  }
  return "";
}

void send_gratuitous_arp(const std::string& ifname, const std::string& ip, int count) {
  const std::string what = "gratuitous ARP for " + ip + " on " + ifname;
  in_addr addr{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1) fail(what, ifname, "not an IPv4 address");
  check_name(what, ifname);
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) fail(what, ifname, "no such interface");
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) fail(what, ifname, std::string("packet socket: ") + std::strerror(errno));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd.get(), SIOCGIFHWADDR, &ifr) < 0) fail(what, ifname, std::string("SIOCGIFHWADDR: ") + std::strerror(errno));
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
      fail(what, ifname, std::string("sendto: ") + std::strerror(errno));
  }
}

}  // namespace vmstack::net
