#include "api/throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vmstack::api {

std::string throttle_source(const std::string& peer_address, int peer_uid) {
  if (peer_address == "unix" || peer_address.empty()) return "unix:" + std::to_string(peer_uid);
  if (peer_address[0] == '[') {  // "[v6]:port": by the /64
    std::string host = peer_address.substr(1, peer_address.find(']') - 1);
    in6_addr a{};
    if (::inet_pton(AF_INET6, host.c_str(), &a) != 1) return host;
    // IPv4-mapped addresses are one host each, like IPv4.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.s6_addr, kMapped, sizeof kMapped) == 0) return host;
    std::memset(a.s6_addr + 8, 0, 8);
    char buf[INET6_ADDRSTRLEN];
    ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
    return std::string(buf) + "/64";
  }
  return peer_address.substr(0, peer_address.rfind(':'));  // "ip:port"
}

// ---- FailureBackoff

void FailureBackoff::forget_locked(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

std::chrono::milliseconds FailureBackoff::retry_after(const std::string& source, clock::time_point now) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) return {};
  if (it->second.locked_until > now)
    return std::chrono::ceil<std::chrono::milliseconds>(it->second.locked_until - now);
  if (now - it->second.last_failure >= p_.window) forget_locked(it);
  return {};
}

std::chrono::milliseconds FailureBackoff::failed(const std::string& source, clock::time_point now) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(source);
  if (it != entries_.end() && now - it->second.last_failure >= p_.window && it->second.locked_until <= now) {
    forget_locked(it);  // an old streak is over: start afresh
    it = entries_.end();
  }
  if (it == entries_.end()) {
    while (!lru_.empty() && entries_.size() >= p_.max_sources) forget_locked(entries_.find(lru_.front()));
    it = entries_.emplace(source, Entry{}).first;
    it->second.lru = lru_.insert(lru_.end(), source);
  } else {
    lru_.splice(lru_.end(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  ++e.failures;
  e.last_failure = now;
  if (e.failures <= p_.free_failures) return {};
  // 1x, 2x, 4x ... first_delay, without overflowing the shift.
  unsigned doublings = std::min(e.failures - p_.free_failures - 1, 30u);
  auto delay = std::min<std::chrono::milliseconds>(p_.first_delay * (int64_t{1} << doublings), p_.max_delay);
  e.locked_until = now + delay;
  return delay;
}

void FailureBackoff::succeeded(const std::string& source) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(source);
  if (it != entries_.end()) forget_locked(it);
}

std::size_t FailureBackoff::sources() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

// ---- ConcurrencyGate

std::optional<ConcurrencyGate::Ticket> ConcurrencyGate::enter() {
  std::unique_lock lk(mu_);
  if (used_ < slots_) {
    ++used_;
    return Ticket(this);
  }
  if (waiting_ >= max_waiters_) return std::nullopt;
  ++waiting_;
  bool got = cv_.wait_for(lk, max_wait_, [&] { return used_ < slots_; });
  --waiting_;
  if (!got) return std::nullopt;
  ++used_;
  return Ticket(this);
}

void ConcurrencyGate::release() {
  {
    std::lock_guard lk(mu_);
    --used_;
  }
  cv_.notify_one();
}

unsigned ConcurrencyGate::in_use() const {
  std::lock_guard lk(mu_);
  return used_;
}

}  // namespace vmstack::api
