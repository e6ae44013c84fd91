// Throttles for expensive, attackable work, used around password checks:
// a per-source failure backoff (a client that keeps guessing is refused
// quickly instead of costing a hash per guess) and a concurrency gate (at
// most N password hashes at once, each ~16 MiB of memory for yescrypt).
// Both are generic: the caller decides what a "source" and a "slot" mean.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace vmstack::api {

// The key a caller is throttled under: the IP address of a TCP peer (an IPv6
// address by its /64, which one host can fill at will), "unix:<uid>" for a
// unix-socket peer. `peer_address` and `peer_uid` as in RpcCall.
std::string throttle_source(const std::string& peer_address, int peer_uid);

// Failed attempts per source: the first `free_failures` within `window` cost
// nothing; after that each failure locks the source out for
// `first_delay`, doubling per further failure up to `max_delay`. A source
// without failures for `window` is forgotten, as is one that succeeds. At
// most `max_sources` are remembered (the stalest go first), so a flood of
// sources cannot grow it without bound. Thread-safe.
class FailureBackoff {
 public:
  using clock = std::chrono::steady_clock;
  struct Policy {
    unsigned free_failures = 5;
    std::chrono::seconds window{300};
    std::chrono::milliseconds first_delay{1000};
    std::chrono::milliseconds max_delay{60000};
    std::size_t max_sources = 65536;
  };
  FailureBackoff() : FailureBackoff(Policy{}) {}
  explicit FailureBackoff(Policy p) : p_(p) {}

  // How long `source` must still wait before its next attempt (zero: now).
  std::chrono::milliseconds retry_after(const std::string& source, clock::time_point now = clock::now());
  // Records a failed attempt; returns the lock-out it starts (zero: none).
  std::chrono::milliseconds failed(const std::string& source, clock::time_point now = clock::now());
  void succeeded(const std::string& source);
  std::size_t sources() const;

 private:
  struct Entry {
    unsigned failures = 0;
    clock::time_point last_failure;
    clock::time_point locked_until;
    std::list<std::string>::iterator lru;
  };
  void forget_locked(std::unordered_map<std::string, Entry>::iterator it);
  Policy p_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // least recently failed first
};

// At most `slots` holders at once; up to `max_waiters` more wait up to
// `max_wait` for a slot, anyone beyond is refused at once. Thread-safe.
class ConcurrencyGate {
 public:
  ConcurrencyGate(unsigned slots, unsigned max_waiters, std::chrono::milliseconds max_wait)
      : slots_(slots), max_waiters_(max_waiters), max_wait_(max_wait) {}

  // A held slot, released by its destructor.
  class Ticket {
   public:
    explicit Ticket(ConcurrencyGate* g) : g_(g) {}
    Ticket(Ticket&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (g_) g_->release();
    }

   private:
    ConcurrencyGate* g_;
  };
  // A slot, or nullopt when none came free in time or too many wait already.
  std::optional<Ticket> enter();
  unsigned in_use() const;

 private:
  void release();
  const unsigned slots_, max_waiters_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  unsigned used_ = 0, waiting_ = 0;
};

}  // namespace vmstack::api
