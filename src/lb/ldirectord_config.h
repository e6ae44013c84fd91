// ldirectord.cf-style configuration for vmstack-lb health checking.
//
// A subset of ldirectord(8)'s configuration language: global keys, then
// `virtual=ip:port` blocks whose keys are indented. See docs/lb-ha.md for the
// supported subset. Parsing is strict: unknown keys and malformed values are
// errors carrying the 1-based line number; a few keys that make no sense for
// vmstack-lb (emailalert*, callback, ...) are accepted and ignored with a
// warning so that existing files load.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmstack::lb::ha {

// A numeric IPv4/IPv6 address and port. `addr` is the canonical text form
// (inet_ntop), without brackets.
struct HostPort {
  std::string addr;
  uint16_t port = 0;
  bool v6 = false;

  std::string str() const;  // "1.2.3.4:80" or "[::1]:80"
  friend bool operator==(const HostPort&, const HostPort&) = default;
  friend auto operator<=>(const HostPort&, const HostPort&) = default;
};

// Parses "1.2.3.4:80" / "[::1]:80". With allow_no_port, "1.2.3.4" gives
// port 0 (ldirectord allows a port-less fallback). Returns nullopt on error.
std::optional<HostPort> parse_hostport(const std::string& text, bool allow_no_port = false);

enum class CheckType { Connect, Negotiate, Off, On };
enum class ServiceKind { None, Http, Tcp };
enum class Protocol { Tcp, Udp };

const char* to_string(CheckType);
const char* to_string(ServiceKind);
const char* to_string(Protocol);

struct RealServer {
  HostPort ep;
  int weight = 1;
  // Per-real overrides of the virtual's request/receive (ldirectord's
  // `real=ip:port masq 1 "request", "receive"` form).
  std::optional<std::string> request;
  std::optional<std::string> receive;
  int line = 0;
};

struct VirtualService {
  HostPort vip;
  Protocol protocol = Protocol::Tcp;
  std::string scheduler = "wrr";
  std::optional<unsigned> persistent;  // seconds; unset = not persistent
  ServiceKind service = ServiceKind::None;
  CheckType checktype = CheckType::Negotiate;
  std::string request = "/";
  std::string receive;  // empty: any response accepted
  std::string virtualhost;  // Host header; default: real's address
  std::string httpmethod = "GET";
  std::optional<uint16_t> checkport;
  double checkinterval = 0;   // seconds, resolved (global default applied)
  double checktimeout = 0;    // connect check timeout
  double negotiatetimeout = 0;  // negotiate check timeout
  unsigned failurecount = 1;  // consecutive failures before a real is down
  bool quiescent = false;
  std::optional<HostPort> fallback;
  int fallback_weight = 1;
  std::vector<RealServer> reals;
  int line = 0;

  std::string key() const;  // "tcp 1.2.3.4:80"
};

struct LdirectordConfig {
  // Globals (resolved defaults as in ldirectord).
  double checkinterval = 10;
  double checktimeout = 5;
  double negotiatetimeout = 30;
  bool quiescent = true;  // ldirectord's default
  bool autoreload = false;
  std::optional<HostPort> fallback;
  std::string logfile;
  std::vector<VirtualService> virtuals;
  // Non-fatal notes: ignored keys etc. "line N: ..." form.
  std::vector<std::string> warnings;
};

// Error with the offending line: what() is "<source>:<line>: <message>".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string source, int line, const std::string& msg);
  int line() const { return line_; }
  const std::string& message() const { return msg_; }

 private:
  int line_;
  std::string msg_;
};

// Parse text. `source` names the file in messages. Throws ConfigError.
LdirectordConfig parse_ldirectord_config(const std::string& text,
                                         const std::string& source = "<config>");
// Read and parse a file. Throws ConfigError (line 0 when unreadable).
LdirectordConfig load_ldirectord_config(const std::string& path);

}  // namespace vmstack::lb::ha
