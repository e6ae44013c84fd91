// LVS scheduling algorithms, re-implemented from their documented behaviour
// (ipvsadm(8), the LVS "job scheduling" pages).
#include "lb/scheduler.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

namespace vmstack::lb {
namespace {

using Clock = std::chrono::steady_clock;

bool usable(const DestPtr& d) { return d->weight() > 0 && !d->overloaded(); }

// LVS connection overhead used by lc/wlc/lblc/lblcr: active connections
// weigh 256 times an inactive one.
uint64_t conn_overhead(const Destination& d) {
  return (uint64_t(d.active_conns()) << 8) + d.inact_conns();
}

// Weighted least-connection pick: minimise overhead/weight without division.
DestPtr pick_wlc(const std::vector<DestPtr>& dests) {
  DestPtr least;
  uint64_t loh = 0;
  for (const auto& d : dests) {
    if (!usable(d)) continue;
    uint64_t doh = conn_overhead(*d);
    if (!least || loh * uint64_t(d->weight()) > doh * uint64_t(least->weight())) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

// Knuth multiplicative hash onto 2^bits buckets (as dh/sh do).
uint32_t hash_bucket(uint32_t key, int bits) {
  return uint32_t((uint64_t(key) * 2654435761ULL) & 0xffffffffULL) >> (32 - bits);
}

// ---------------------------------------------------------------- rr
class RoundRobin : public Scheduler {
 public:
  std::string_view name() const override { return "rr"; }
  void update(const std::vector<DestPtr>& dests) override {
    // Keep the position on the last picked server if it is still there.
    if (!last_) return;
    for (size_t i = 0; i < dests.size(); ++i)
      if (dests[i].get() == last_) { pos_ = int(i); return; }
    pos_ = -1;
    last_ = nullptr;
  }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    const int n = int(dests.size());
    for (int k = 1; k <= n; ++k) {
      int i = (pos_ + k) % n;
      if (i < 0) i += n;
      if (usable(dests[i])) {
        pos_ = i;
        last_ = dests[i].get();
        return dests[i];
      }
    }
    return nullptr;
  }

 private:
  int pos_ = -1;
  const Destination* last_ = nullptr;
};

// ---------------------------------------------------------------- wrr
// Interleaved weighted round robin: walk the list repeatedly; each pass
// lowers the current weight cw by gcd(weights); a server is picked when its
// weight >= cw. Weights 3:1 give A A A B A A A B ...
class WeightedRoundRobin : public Scheduler {
 public:
  std::string_view name() const override { return "wrr"; }
  void update(const std::vector<DestPtr>& dests) override {
    int mw = 0;
    for (auto& d : dests) mw = std::max(mw, d->weight());
    if (cw_ > mw) { cw_ = 0; i_ = -1; }
    if (i_ >= int(dests.size())) i_ = -1;
  }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    const int n = int(dests.size());
    if (n == 0) return nullptr;
    int mw = 0, g = 0;
    for (auto& d : dests) {
      int w = d->weight();
      if (w <= 0) continue;
      mw = std::max(mw, w);
      g = std::gcd(g, w);
    }
    if (mw == 0) return nullptr;
    if (cw_ > mw) cw_ = mw;
    // At most mw/g passes over the list are needed to hit every weight level.
    long limit = long(n) * (mw / g + 1) + n;
    for (long step = 0; step < limit; ++step) {
      i_ = (i_ + 1) % n;
      if (i_ == 0) {
        cw_ -= g;
        if (cw_ <= 0) cw_ = mw;
      }
      const auto& d = dests[i_];
      if (d->weight() >= cw_ && usable(d)) return d;
    }
    return nullptr;  // all overloaded
  }

 private:
  int i_ = -1;
  int cw_ = 0;
};

// ---------------------------------------------------------------- lc
class LeastConnection : public Scheduler {
 public:
  std::string_view name() const override { return "lc"; }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    DestPtr least;
    uint64_t loh = 0;
    for (const auto& d : dests) {
      if (!usable(d)) continue;
      uint64_t doh = conn_overhead(*d);
      if (!least || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
};

// ---------------------------------------------------------------- wlc
class WeightedLeastConnection : public Scheduler {
 public:
  std::string_view name() const override { return "wlc"; }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    return pick_wlc(dests);
  }
};

// ---------------------------------------------------------------- sed
// Shortest expected delay: (active + 1) / weight; inactive ignored.
DestPtr pick_sed(const std::vector<DestPtr>& dests) {
  DestPtr least;
  uint64_t loh = 0;
  for (const auto& d : dests) {
    if (!usable(d)) continue;
    uint64_t doh = uint64_t(d->active_conns()) + 1;
    if (!least || loh * uint64_t(d->weight()) > doh * uint64_t(least->weight())) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

class ShortestExpectedDelay : public Scheduler {
 public:
  std::string_view name() const override { return "sed"; }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    return pick_sed(dests);
  }
};

// ---------------------------------------------------------------- nq
// Never queue: an idle server (no active connection) is taken at once,
// otherwise sed.
class NeverQueue : public Scheduler {
 public:
  std::string_view name() const override { return "nq"; }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput&) override {
    for (const auto& d : dests)
      if (usable(d) && d->active_conns() == 0) return d;
    return pick_sed(dests);
  }
};

// lblc/lblcr overload test: a server is "overloaded" for locality purposes
// when it has more active connections than its weight and some other server
// is below half of its weight.
bool locality_overloaded(const Destination& dest, const std::vector<DestPtr>& dests) {
  if (dest.active_conns() > uint32_t(std::max(0, dest.weight()))) {
    for (const auto& d : dests)
      if (uint64_t(d->active_conns()) * 2 < uint64_t(std::max(0, d->weight()))) return true;
  }
  return false;
}

bool contains(const std::vector<DestPtr>& dests, const DestPtr& d) {
  return std::any_of(dests.begin(), dests.end(), [&](const DestPtr& x) { return x == d; });
}

// ---------------------------------------------------------------- lblc
// Locality-based least connection: a target address sticks to one server
// unless that server is down or overloaded (then wlc picks a new one).
class LocalityLeastConnection : public Scheduler {
 public:
  static constexpr auto kExpire = std::chrono::hours(24);
  std::string_view name() const override { return "lblc"; }
  void update(const std::vector<DestPtr>& dests) override {
    for (auto it = table_.begin(); it != table_.end();)
      it = contains(dests, it->second.dest) ? std::next(it) : table_.erase(it);
  }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput& in) override {
    expire(in.now);
    auto it = table_.find(in.target);
    if (it != table_.end()) {
      DestPtr d = it->second.dest;
      if (contains(dests, d) && d->weight() > 0 && !d->overloaded() &&
          !locality_overloaded(*d, dests)) {
        it->second.lastuse = in.now;
        return d;
      }
    }
    DestPtr d = pick_wlc(dests);
    if (!d) return nullptr;
    table_[in.target] = {d, in.now};
    return d;
  }

 private:
  void expire(Clock::time_point now) {
    if (now - last_gc_ < std::chrono::minutes(1)) return;
    last_gc_ = now;
    for (auto it = table_.begin(); it != table_.end();)
      it = now - it->second.lastuse > kExpire ? table_.erase(it) : std::next(it);
  }
  struct Entry {
    DestPtr dest;
    Clock::time_point lastuse;
  };
  std::map<Addr, Entry> table_;
  Clock::time_point last_gc_{};
};

// ---------------------------------------------------------------- lblcr
// Locality-based least connection with replication: a target maps to a set
// of servers; the least loaded member is used; when it is overloaded a new
// server (wlc) joins the set; a set that has not changed for kCompress
// sheds its most loaded member.
class LocalityLeastConnectionReplication : public Scheduler {
 public:
  static constexpr auto kExpire = std::chrono::hours(24);
  static constexpr auto kCompress = std::chrono::minutes(6);
  std::string_view name() const override { return "lblcr"; }
  void update(const std::vector<DestPtr>& dests) override {
    for (auto it = table_.begin(); it != table_.end();) {
      auto& set = it->second.set;
      set.erase(std::remove_if(set.begin(), set.end(),
                               [&](const DestPtr& d) { return !contains(dests, d); }),
                set.end());
      it = set.empty() ? table_.erase(it) : std::next(it);
    }
  }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput& in) override {
    expire(in.now);
    auto it = table_.find(in.target);
    if (it == table_.end()) {
      DestPtr d = pick_wlc(dests);
      if (!d) return nullptr;
      table_[in.target] = Entry{{d}, in.now, in.now};
      return d;
    }
    Entry& en = it->second;
    en.lastuse = in.now;
    DestPtr d = set_min(en.set);
    // Compress a long-unmodified set: drop its most loaded member.
    if (en.set.size() > 1 && in.now - en.lastmod > kCompress) {
      DestPtr m = set_max(en.set);
      if (m) {
        en.set.erase(std::find(en.set.begin(), en.set.end(), m));
        en.lastmod = in.now;
        if (m == d) d = set_min(en.set);
      }
    }
    if (!d || locality_overloaded(*d, dests)) {
      DestPtr n = pick_wlc(dests);
      if (!n) return nullptr;
      if (!contains(en.set, n)) {
        en.set.push_back(n);
        en.lastmod = in.now;
      }
      d = n;
    }
    return d;
  }

 private:
  struct Entry {
    std::vector<DestPtr> set;
    Clock::time_point lastuse, lastmod;
  };
  static DestPtr set_min(const std::vector<DestPtr>& set) {
    DestPtr least;
    uint64_t loh = 0;
    for (const auto& d : set) {
      if (!usable(d)) continue;
      uint64_t doh = conn_overhead(*d);
      if (!least || loh * uint64_t(d->weight()) > doh * uint64_t(least->weight())) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
  static DestPtr set_max(const std::vector<DestPtr>& set) {
    DestPtr most;
    uint64_t moh = 0;
    for (const auto& d : set) {
      uint64_t w = uint64_t(std::max(0, d->weight()));
      uint64_t doh = conn_overhead(*d);
      uint64_t mw = most ? uint64_t(std::max(0, most->weight())) : 0;
      if (!most || doh * mw > moh * w) {
        most = d;
        moh = doh;
      }
    }
    return most;
  }
  void expire(Clock::time_point now) {
    if (now - last_gc_ < std::chrono::minutes(1)) return;
    last_gc_ = now;
    for (auto it = table_.begin(); it != table_.end();)
      it = now - it->second.lastuse > kExpire ? table_.erase(it) : std::next(it);
  }
  std::map<Addr, Entry> table_;
  Clock::time_point last_gc_{};
};

// ---------------------------------------------------------------- dh / sh
// Static hash tables of 256 buckets. dh: buckets dealt round robin over the
// servers, hashed by destination (target) address. sh: each server gets
// `weight` consecutive buckets per round, hashed by client address. An
// unavailable bucket owner means no server (no fallback), as LVS.
class HashScheduler : public Scheduler {
 public:
  static constexpr int kBits = 8;
  static constexpr int kSize = 1 << kBits;
  explicit HashScheduler(bool source) : source_(source) {}
  std::string_view name() const override { return source_ ? "sh" : "dh"; }
  void update(const std::vector<DestPtr>& dests) override {
    table_.assign(kSize, nullptr);
    if (dests.empty()) return;
    size_t di = 0;
    int count = 0;
    for (int b = 0; b < kSize; ++b) {
      table_[b] = dests[di];
      if (!source_ || ++count >= std::max(1, dests[di]->weight())) {
        di = (di + 1) % dests.size();
        count = 0;
      }
    }
  }
  DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput& in) override {
    if (table_.size() != size_t(kSize)) update(dests);
    const Addr& key = source_ ? in.client : in.target;
    DestPtr d = table_[hash_bucket(key.hash32(), kBits)];
    if (!d || !usable(d)) return nullptr;
    return d;
  }

 private:
  bool source_;
  std::vector<DestPtr> table_;
};

}  // namespace

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = {"rr",    "wrr", "lc", "wlc", "lblc",
                                                 "lblcr", "dh",  "sh", "sed", "nq"};
  return names;
}

bool is_known_scheduler(std::string_view name) {
  const auto& n = scheduler_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

std::unique_ptr<Scheduler> make_scheduler(std::string_view name) {
  if (name == "rr") return std::make_unique<RoundRobin>();
  if (name == "wrr") return std::make_unique<WeightedRoundRobin>();
  if (name == "lc") return std::make_unique<LeastConnection>();
  if (name == "wlc") return std::make_unique<WeightedLeastConnection>();
  if (name == "lblc") return std::make_unique<LocalityLeastConnection>();
  if (name == "lblcr") return std::make_unique<LocalityLeastConnectionReplication>();
  if (name == "dh") return std::make_unique<HashScheduler>(false);
  if (name == "sh") return std::make_unique<HashScheduler>(true);
  if (name == "sed") return std::make_unique<ShortestExpectedDelay>();
  if (name == "nq") return std::make_unique<NeverQueue>();
  return nullptr;
}

}  // namespace vmstack::lb
