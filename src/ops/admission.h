// Admission control for guest memory. QEMU allocates a guest's memory as the
// guest touches it, so the host's free memory at start time says little:
// ten 6 GiB guests all "fit" on a host with 20 GiB free until they boot.
// A start is admitted only if memory_static_max (plus QEMU's own overhead)
// of every running, paused or starting guest, this one included, fits in the
// host's MemTotal minus a reserve for the host itself.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "model/store.h"

namespace vmstack::ops {

// The host's MemTotal (/proc/meminfo) in bytes; 0 when unreadable.
int64_t host_mem_total();

class Admission {
 public:
  // total: the host's memory (0: read MemTotal from /proc/meminfo).
  Admission(model::Store& store, int64_t host_reserve, int64_t total = 0);

  // Holds `vm`'s memory while it starts; released by the destructor, by
  // which time the VM's record says Running (and counts) or Halted.
  class Ticket {
   public:
    Ticket(Admission& a, std::string vm) : a_(&a), vm_(std::move(vm)) {}
    Ticket(Ticket&& o) noexcept : a_(o.a_), vm_(std::move(o.vm_)) { o.a_ = nullptr; }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();

   private:
    Admission* a_;
    std::string vm_;
  };

  // Throws HOST_NOT_ENOUGH_FREE_MEMORY [needed, available] (bytes) when the
  // VM does not fit beside the others.
  Ticket admit(const std::string& vm);
  // The same verdict (and HOST_DISABLED [host] when the host is disabled),
  // reserving nothing: VM.assert_can_boot_here.
  void check(const std::string& vm);

  // QEMU's own memory beside the guest's (page tables, device state, TCG's
  // code cache): what a 256 MiB TCG guest's QEMU measures above its RAM, rounded up.
  static constexpr int64_t kOverhead = int64_t{64} << 20;

 private:
  // The bytes `vm` needs, or the error why they are not there.
  int64_t needed_locked(const std::string& vm);

  model::Store& store_;
  int64_t reserve_;
  int64_t total_;
  std::mutex mu_;
  std::map<std::string, int64_t> starting_;  // vm -> bytes held while it starts
};

}  // namespace vmstack::ops
