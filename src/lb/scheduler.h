// vmstack-lb schedulers with LVS semantics. Each is a small class behind one
// interface; a Service calls schedule() under its own lock, so
// implementations need no locking of their own.
//
// Common rules (as LVS): a destination with weight <= 0 (quiesced) or with
// the overloaded flag (-x/-y thresholds) gets no new connections.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lb/service_table.h"

namespace vmstack::lb {

struct SchedInput {
  Addr client;  // source address of the new connection (sh)
  Addr target;  // destination address of the packet, i.e. the VIP (dh, lblc, lblcr)
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::string_view name() const = 0;
  // The destination list or a weight changed.
  virtual void update(const std::vector<DestPtr>& dests) { (void)dests; }
  // nullptr: no destination available.
  virtual DestPtr schedule(const std::vector<DestPtr>& dests, const SchedInput& in) = 0;
};

// rr wrr lc wlc lblc lblcr dh sh sed nq; nullptr for an unknown name.
std::unique_ptr<Scheduler> make_scheduler(std::string_view name);
bool is_known_scheduler(std::string_view name);
const std::vector<std::string>& scheduler_names();

}  // namespace vmstack::lb
