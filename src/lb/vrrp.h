// VRRP-style master election for vmstack-lb (RFC 5798 semantics).
//
// VrrpStateMachine is the pure protocol logic: no sockets, no clocks. Time
// is passed in (milliseconds on any monotonic scale), packets come in as
// VrrpAdvert values, and what to do goes out through callbacks. VrrpNode
// (vrrp_node.h) adds the UDP transport, timers, VIPs and gratuitous ARP.
//
// Timers (RFC 5798 section 6.1, intervals in centiseconds on the wire):
//   Skew_Time            = ((256 - Priority) * Master_Adver_Interval) / 256
//   Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vmstack::lb::ha {

enum class VrrpState { Init, Backup, Master };
const char* to_string(VrrpState);

// One advertisement, decoded.
struct VrrpAdvert {
  uint8_t vrid = 0;
  uint8_t priority = 0;
  uint16_t interval_cs = 100;     // Max Adver Int, centiseconds
  std::vector<uint32_t> addrs;    // IPv4 VIPs, network byte order
  std::vector<uint8_t> sender;    // sender's primary address bytes (tie-break)
};

// Wire format: the RFC 5798 VRRPv3 header (version 3, type 1) carried in a
// UDP payload, followed by the IPv4 addresses; the checksum is the Internet
// checksum over the payload only (there is no IP pseudo-header in UDP mode).
std::vector<uint8_t> encode_advert(const VrrpAdvert& a);
// Returns nullopt (and a reason) for malformed packets. `sender` is not on
// the wire: the caller fills it from the UDP source address.
std::optional<VrrpAdvert> decode_advert(const uint8_t* data, size_t len, std::string* why = nullptr);

class VrrpStateMachine {
 public:
  using Ms = int64_t;

  struct Config {
    uint8_t vrid = 51;
    uint8_t priority = 100;     // 1..255 (255 = address owner: master at once)
    uint16_t advert_int_cs = 100;
    bool preempt = true;
    std::vector<uint8_t> self_addr;  // our primary address (tie-break)
  };
  struct Actions {
    std::function<void(uint8_t priority)> send_advert;
    std::function<void(VrrpState from, VrrpState to)> state_change;
  };

  VrrpStateMachine(Config cfg, Actions act);

  // Startup event (Init -> Master if priority 255, else Backup).
  void startup(Ms now);
  // Shutdown event: a master sends priority 0 so backups take over after
  // Skew_Time instead of Master_Down_Interval. -> Init.
  void shutdown(Ms now);
  // An advertisement from a peer (already checked: vrid matches).
  void on_advert(Ms now, const VrrpAdvert& a);
  // Fire due timers. Call at next_deadline() (calling early is harmless).
  void tick(Ms now);
  // When tick() has something to do next; nullopt in Init.
  std::optional<Ms> next_deadline() const;

  // Change our priority (e.g. tracked health); takes effect in the next
  // advertisement / timer computation.
  void set_priority(uint8_t p);

  VrrpState state() const { return state_; }
  uint8_t priority() const { return cfg_.priority; }
  const Config& config() const { return cfg_; }
  // Master_Adver_Interval learnt from the current master (cs).
  uint16_t master_adver_interval_cs() const { return master_adver_int_cs_; }
  Ms skew_ms() const;
  Ms master_down_interval_ms() const;

 private:
  void become(VrrpState s);
  void send(uint8_t prio);

  Config cfg_;
  Actions act_;
  VrrpState state_ = VrrpState::Init;
  uint16_t master_adver_int_cs_;
  std::optional<Ms> adver_timer_;
  std::optional<Ms> master_down_timer_;
};

}  // namespace vmstack::lb::ha
