// Giving freed heap memory back to the kernel. glibc keeps the pages of
// freed chunks in its arenas, so one large answer (get_all_records of
// thousands of VMs, an xe listing) would leave the daemon's RSS at that
// high-water mark for good.
#pragma once

#include <cstddef>

namespace vmstack {

// Answers at least this large are followed by trim_heap().
inline constexpr std::size_t kTrimAfterBytes = 256u << 10;

// malloc_trim(0): returns free pages of every arena (a few hundred µs).
void trim_heap();

// trim_heap() when `answer_bytes` >= kTrimAfterBytes.
inline void trim_heap_after(std::size_t answer_bytes) {
  if (answer_bytes >= kTrimAfterBytes) trim_heap();
}

}  // namespace vmstack
