#include "core/heap.h"

#include <malloc.h>

namespace vmstack {

void trim_heap() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  ::malloc_trim(0);
#endif
}

}  // namespace vmstack
