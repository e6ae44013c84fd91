// VrrpNode: a running VRRP instance for vmstack-lbd. UDP transport (unicast
// peers or a multicast group), a timer thread driving VrrpStateMachine,
// VIPs added/removed through a VipManager (netlink) and gratuitous ARP on
// becoming master. One node = one virtual router (VRID) on one interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "lb/vip_manager.h"
#include "lb/vrrp.h"

namespace vmstack::lb::ha {

struct VrrpNodeConfig {
  std::string interface;             // VIPs go here; multicast uses it too
  uint8_t vrid = 51;
  uint8_t priority = 100;            // 1..255
  double advert_int_s = 1.0;         // 0.01 .. 40.95
  bool preempt = true;
  std::vector<std::string> vips;     // "10.0.0.100/24" (IPv4)
  // Unicast mode when non-empty: adverts go to each peer, and only packets
  // from a peer are accepted. Otherwise multicast to mcast_group.
  std::vector<std::string> unicast_peers;
  std::string mcast_group = "224.0.0.18";
  uint16_t port = 5798;              // UDP port for adverts
  // Our primary address: source of adverts and the tie-break for equal
  // priorities. Default: the interface's first IPv4 address.
  std::string src_addr;
  bool manage_vips = true;           // add/remove VIPs (false: only report)
  bool remove_vips_on_start = true;  // a node starting as backup drops stale VIPs
  // Gratuitous ARP: once on becoming master, then `garp_repeats` more times
  // every `garp_repeat_s`. The repeats matter: a neighbour ignores an ARP
  // update within its locktime (1 s) of the last one, and a crashed master
  // may still answer ARP for the VIP it never removed.
  int garp_repeats = 2;
  double garp_repeat_s = 1.0;

  // Parses a keepalived-flavoured key = value file (see docs/lb-ha.md):
  // interface, vrid, priority, advert_int, preempt (yes|no) / nopreempt,
  // vip (repeatable), unicast_peer (repeatable), unicast_src, mcast_group,
  // port. `#` comments. Throws std::runtime_error("file:line: ...").
  static VrrpNodeConfig parse(const std::string& text, const std::string& source = "<vrrp>");
  static VrrpNodeConfig load(const std::string& path);
};

class VrrpNode {
 public:
  struct Callbacks {
    // Called on the node's thread after VIPs were added (to Master) or
    // before they are removed (from Master). Keep it short.
    std::function<void(VrrpState from, VrrpState to)> on_state;
  };

  // `vips` may be null: a NetlinkVipManager is used.
  VrrpNode(VrrpNodeConfig cfg, Callbacks cb, std::shared_ptr<VipManager> vips = nullptr);
  ~VrrpNode();  // stop(true)
  VrrpNode(const VrrpNode&) = delete;
  VrrpNode& operator=(const VrrpNode&) = delete;

  // Opens the socket (throws std::runtime_error) and starts the thread.
  void start();
  // graceful: a master sends a priority-0 advert first so a backup takes
  // over after Skew_Time. VIPs are removed either way.
  void stop(bool graceful = true);

  VrrpState state() const { return state_.load(); }
  bool is_master() const { return state() == VrrpState::Master; }
  // Runtime priority change (e.g. lower it while no real server is up).
  void set_priority(uint8_t p);
  uint64_t adverts_sent() const { return sent_.load(); }
  uint64_t adverts_received() const { return received_.load(); }

 private:
  void loop();
  void send_advert(uint8_t prio);
  void handle_transition(VrrpState from, VrrpState to);
  void announce_vips();

  VrrpNodeConfig cfg_;
  Callbacks cb_;
  std::shared_ptr<VipManager> vips_;
  std::unique_ptr<VrrpStateMachine> sm_;
  std::mutex mu_;  // guards sm_
  std::vector<std::pair<VrrpState, VrrpState>> transitions_;
  std::atomic<VrrpState> state_{VrrpState::Init};
  std::atomic<bool> running_{false};
  std::atomic<bool> graceful_{true};
  std::atomic<int> pending_priority_{-1};
  std::atomic<uint64_t> sent_{0}, received_{0};
  UniqueFd fd_;       // UDP socket for adverts
  UniqueFd wake_fd_;  // eventfd: stop()/set_priority() interrupt poll()
  uint32_t src_ = 0;  // network order
  std::vector<uint32_t> peers_;
  std::vector<uint32_t> vip_addrs_;
  int64_t garp_next_ms_ = 0;  // loop thread only
  int garp_left_ = 0;
  std::thread thread_;
};

}  // namespace vmstack::lb::ha
