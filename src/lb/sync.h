// Connection-state synchronisation between a master and backup vmstack-lbd,
// in the spirit of `ipvsadm --start-daemon=master|backup`.
//
// The master sends connection entries and persistence templates over UDP
// (multicast group, default 224.0.0.81:8848 like LVS, or unicast peers):
// every change it is told about (push()) within flush_interval, plus a full
// snapshot every full_sync_interval so a backup that starts late catches up.
// The backup decodes the datagrams, keeps only those with its sync id, marks
// entries synced=true and hands them to an import callback (lb-core's
// ServiceTable::import_connections), which turns templates into real
// persistence templates: after a failover, clients keep their real server.
// Proxied TCP flows themselves cannot move (see docs/lb-ha.md).
//
// Depends only on the value types in lb/types.h (ConnEntry).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "lb/types.h"

namespace vmstack::lb::ha {

struct SyncConfig {
  uint8_t sync_id = 0;                 // --syncid: both ends must agree
  std::string mcast_group = "224.0.0.81";
  uint16_t port = 8848;
  std::string interface;               // multicast interface (optional)
  std::vector<std::string> peers;      // unicast: "ip" or "ip:port"; empty = multicast
  std::string bind_addr;               // backup: local address to bind (default any)
  double flush_interval_s = 0.1;       // master: batching delay for pushed entries
  double full_sync_interval_s = 5.0;   // master: full snapshot period (0 = never)
  size_t max_queue = 100000;           // master: pending pushed entries (oldest dropped)
  size_t mtu = 1400;                   // max datagram payload
};

// Wire codec (exposed for tests). Header: "VLBS" version(1) sync_id(1)
// count(2) seq(4); then entries: flags(1: 1=template 2=ipv6) proto(1)
// state(1) reserved(1) expires_ms(4) client vip dest (addr 4|16, port 2).
std::vector<std::vector<uint8_t>> encode_sync(uint8_t sync_id, uint32_t& seq,
                                              const std::vector<ConnEntry>& entries, size_t mtu = 1400);
// Returns nullopt for malformed datagrams.
struct SyncPacket {
  uint8_t sync_id = 0;
  uint32_t seq = 0;
  std::vector<ConnEntry> entries;
};
std::optional<SyncPacket> decode_sync(const uint8_t* data, size_t len);

class SyncMaster {
 public:
  // snapshot: what to send in a full sync (usually ServiceTable::connections()).
  // Entries with synced=true that are not templates are skipped.
  SyncMaster(SyncConfig cfg, std::function<std::vector<ConnEntry>()> snapshot);
  ~SyncMaster();
  void start();  // throws std::runtime_error
  void stop();
  // Queue one changed entry (thread-safe, non-blocking).
  void push(const ConnEntry& e);
  // Send a full snapshot now (thread-safe).
  void sync_now();
  uint64_t entries_sent() const { return sent_entries_.load(); }
  uint64_t packets_sent() const { return sent_packets_.load(); }

 private:
  void loop();
  void send_entries(const std::vector<ConnEntry>& v);

  SyncConfig cfg_;
  std::function<std::vector<ConnEntry>()> snapshot_;
  std::mutex mu_;
  std::deque<ConnEntry> queue_;
  std::atomic<bool> full_now_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> sent_entries_{0}, sent_packets_{0};
  uint32_t seq_ = 0;
  UniqueFd fd_;       // UDP socket the snapshots/updates leave from
  UniqueFd wake_fd_;  // eventfd: push()/stop() interrupt the flush wait
  std::vector<std::pair<uint32_t, uint16_t>> dests_;  // network order
  std::thread thread_;
};

class SyncBackup {
 public:
  // import: store received entries, return how many were accepted.
  SyncBackup(SyncConfig cfg, std::function<size_t(const std::vector<ConnEntry>&)> import);
  ~SyncBackup();
  void start();  // throws std::runtime_error
  void stop();
  uint64_t entries_received() const { return recv_entries_.load(); }
  uint64_t entries_accepted() const { return accepted_.load(); }
  uint64_t packets_dropped() const { return dropped_.load(); }

 private:
  void loop();

  SyncConfig cfg_;
  std::function<size_t(const std::vector<ConnEntry>&)> import_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> recv_entries_{0}, accepted_{0}, dropped_{0};
  UniqueFd fd_;       // bound UDP socket (group member in multicast mode)
  UniqueFd wake_fd_;  // eventfd: stop() interrupts poll()
  std::thread thread_;
};

}  // namespace vmstack::lb::ha
