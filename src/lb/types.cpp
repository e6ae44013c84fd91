#include "lb/types.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace vmstack::lb {

const char* proto_name(Proto p) { return p == Proto::TCP ? "TCP" : "UDP"; }

const char* fwd_name(FwdMethod f) {
  switch (f) {
    case FwdMethod::Masq: return "Masq";
    case FwdMethod::Route: return "Route";
    case FwdMethod::Tunnel: return "Tunnel";
  }
  return "?";
}

const char* fwd_switch(FwdMethod f) {
  switch (f) {
    case FwdMethod::Masq: return "-m";
    case FwdMethod::Route: return "-g";
    case FwdMethod::Tunnel: return "-i";
  }
  return "?";
}

std::optional<Addr> Addr::parse(std::string_view s) {
  std::string str(s);
  Addr a;
  if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

Addr Addr::v4(uint32_t host_order) {
  Addr a;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes.data(), &n, 4);
  return a;
}

std::string Addr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

uint32_t Addr::v4host() const {
  if (family != AF_INET) return 0;
  uint32_t n;
  std::memcpy(&n, bytes.data(), 4);
  return ntohl(n);
}

uint32_t Addr::hash32() const {
  if (family == AF_INET) return v4host();
  uint32_t h = 0;
  for (int i = 0; i < 16; i += 4) {
    uint32_t w;
    std::memcpy(&w, bytes.data() + i, 4);
    h ^= ntohl(w);
  }
  return h;
}

Addr Addr::masked(uint32_t v4_netmask, int v6_prefix) const {
  Addr a = *this;
  if (family == AF_INET) return Addr::v4(v4host() & v4_netmask);
  for (int i = 0; i < 16; ++i) {
    int bits = v6_prefix - i * 8;
    uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : uint8_t(0xff << (8 - bits));
    a.bytes[i] &= m;
  }
  return a;
}

static bool parse_port(std::string_view s, uint16_t* out, bool resolve) {
  if (s.empty()) return false;
  unsigned v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size()) {
    if (v > 65535) return false;
    *out = uint16_t(v);
    return true;
  }
  if (!resolve) return false;
  std::string name(s);
  servent* se = getservbyname(name.c_str(), "tcp");
  if (!se) return false;
  *out = ntohs(uint16_t(se->s_port));
  return true;
}

static std::optional<Addr> parse_host(std::string_view h, bool resolve) {
  if (auto a = Addr::parse(h)) return a;
  if (!resolve || h.empty()) return std::nullopt;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  std::string host(h);
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return std::nullopt;
  Endpoint e = Endpoint::from_sockaddr(res->ai_addr);
  freeaddrinfo(res);
  return e.addr;
}

std::optional<Endpoint> Endpoint::parse(std::string_view s, bool allow_no_port, bool resolve) {
  Endpoint e;
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    auto colon = s.rfind(':');
    if (colon != std::string_view::npos && s.find(':') == colon) {
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    } else {
      host = s;  // no port, or bare IPv6 without brackets
    }
  }
  auto a = parse_host(host, resolve);
  if (!a) return std::nullopt;
  e.addr = *a;
  if (port.empty()) {
    if (!allow_no_port) return std::nullopt;
    e.port = 0;
  } else if (!parse_port(port, &e.port, resolve)) {
    return std::nullopt;
  }
  return e;
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa) {
  Endpoint e;
  if (sa->sa_family == AF_INET) {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
    e.addr.family = AF_INET;
    std::memcpy(e.addr.bytes.data(), &s4->sin_addr, 4);
    e.port = ntohs(s4->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.addr.family = AF_INET6;
    std::memcpy(e.addr.bytes.data(), &s6->sin6_addr, 16);
    e.port = ntohs(s6->sin6_port);
  }
  return e;
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage* ss) const {
  std::memset(ss, 0, sizeof *ss);
  if (addr.family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, addr.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(port);
  std::memcpy(&s6->sin6_addr, addr.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::string Endpoint::str() const {
  if (addr.is_v6()) return "[" + addr.str() + "]:" + std::to_string(port);
  return addr.str() + ":" + std::to_string(port);
}

std::string ServiceKey::str() const { return std::string(proto_name(proto)) + "  " + vip.str(); }

std::string LbError::default_message(Code c) {
  switch (c) {
    case Code::ServiceExists: return "Service already exists";
    case Code::NoScheduler: return "Scheduler or persistence engine not found";
    case Code::NoService: return "No such service";
    case Code::ServiceNotDefined: return "Service not defined";
    case Code::DestExists: return "Destination already exists";
    case Code::NoDest: return "No such destination";
    case Code::NoMemory: return "Memory allocation problem";
    case Code::Invalid: return "Invalid operation";
    case Code::NeedsKernel:
      return "Forwarding method not supported: direct routing (-g) and tunneling (-i) "
             "each needs kernel IPVS; vmstack-lb only does NAT (-m)";
    case Code::DaemonExists: return "Daemon has already run";
    case Code::NoDaemon: return "No daemon is running";
  }
  return "error";
}

LbError::LbError(Code c, std::string msg)
    : std::runtime_error(msg.empty() ? default_message(c) : msg), code_(c) {}

}  // namespace vmstack::lb
