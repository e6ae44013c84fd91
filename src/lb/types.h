// vmstack-lb: basic value types shared by the table, the schedulers, the
// proxy and the CLI. IPv4 and IPv6 endpoints, protocols, rule configs,
// connection entries as `ipvsadm -L -c` shows them, and the error type whose
// messages are ipvsadm's.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vmstack::lb {

enum class Proto : uint8_t { TCP = 0, UDP = 1 };
const char* proto_name(Proto p);  // "TCP" / "UDP"

// An IPv4 or IPv6 address (no port).
struct Addr {
  int family = AF_INET;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4 bytes (network order)

  static std::optional<Addr> parse(std::string_view s);
  static Addr v4(uint32_t host_order);
  std::string str() const;
  uint32_t v4host() const;  // host-order IPv4 value (0 for v6)
  bool is_v6() const { return family == AF_INET6; }
  // A 32-bit digest of the address (v4: the address itself; v6: folded).
  uint32_t hash32() const;
  Addr masked(uint32_t v4_netmask, int v6_prefix) const;
  auto operator<=>(const Addr&) const = default;
};

// addr:port. Printed as 1.2.3.4:80 or [::1]:80 like ipvsadm -n.
struct Endpoint {
  Addr addr;
  uint16_t port = 0;

  // Accepts "1.2.3.4:80", "1.2.3.4" (port 0 when allow_no_port),
  // "[::1]:80", "[::1]". Host names are resolved with getaddrinfo only when
  // resolve is true (the CLI); the daemon never resolves.
  static std::optional<Endpoint> parse(std::string_view s, bool allow_no_port = false,
                                       bool resolve = false);
  static Endpoint from_sockaddr(const sockaddr* sa);
  socklen_t to_sockaddr(sockaddr_storage* ss) const;
  std::string str() const;
  auto operator<=>(const Endpoint&) const = default;
};

struct ServiceKey {
  Proto proto = Proto::TCP;
  Endpoint vip;
  std::string str() const;  // "TCP  1.2.3.4:80" style used by the listing
  auto operator<=>(const ServiceKey&) const = default;
};

// Packet forwarding method as ipvsadm names it. Only Masq (NAT) can be done
// by a user-space data plane; Route (-g) and Tunnel (-i) are refused.
enum class FwdMethod : uint8_t { Masq, Route, Tunnel };
const char* fwd_name(FwdMethod f);    // "Masq" / "Route" / "Tunnel"
const char* fwd_switch(FwdMethod f);  // "-m" / "-g" / "-i"

struct DestConfig {
  Endpoint addr;
  int weight = 1;
  FwdMethod fwd = FwdMethod::Masq;
  uint32_t u_threshold = 0;  // -x, 0 = no limit
  uint32_t l_threshold = 0;  // -y
};

struct ServiceConfig {
  ServiceKey key;
  std::string scheduler = "wlc";
  bool persistent = false;
  uint32_t timeout = 300;          // persistence timeout (seconds) when persistent
  uint32_t netmask = 0xffffffff;   // persistence granularity, IPv4 (host order)
  int v6_prefix = 128;             // persistence granularity, IPv6
};

// ipvsadm --set tcp tcpfin udp (seconds)
struct Timeouts {
  uint32_t tcp = 900;
  uint32_t tcpfin = 120;
  uint32_t udp = 300;
};

struct StatsSnapshot {
  uint64_t conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0;
};
struct RateSnapshot {
  double cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0;
};

// One line of `ipvsadm -L -c`: a proxied connection or a persistence
// template (is_template, client port 0, state "NONE").
struct ConnEntry {
  Proto proto = Proto::TCP;
  Endpoint client;
  Endpoint vip;
  Endpoint dest;
  std::string state;        // ESTABLISHED, SYN_SENT, FIN_WAIT, CLOSE_WAIT, UDP, NONE
  uint32_t expires_ms = 0;  // time left before the entry expires
  bool is_template = false;
  bool synced = false;      // imported from a sync master (no live socket)
};

// Errors carry the message ipvsadm prints for the equivalent kernel errno.
class LbError : public std::runtime_error {
 public:
  enum class Code {
    ServiceExists,      // "Service already exists"
    NoScheduler,        // "Scheduler or persistence engine not found"
    NoService,          // "No such service"
    ServiceNotDefined,  // "Service not defined"
    DestExists,         // "Destination already exists"
    NoDest,             // "No such destination"
    NoMemory,           // "Memory allocation problem"
    Invalid,            // free text
    NeedsKernel,        // -g / -i: "... needs kernel IPVS"
    DaemonExists,       // "Daemon has already run"
    NoDaemon,           // "No daemon is running"
  };
  LbError(Code c, std::string msg = {});
  Code code() const { return code_; }
  static std::string default_message(Code c);

 private:
  Code code_;
};

}  // namespace vmstack::lb
