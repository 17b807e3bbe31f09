// The memory quiverd may use: the smaller of the machine's RAM and the
// memory limit of the cgroup it runs in (cgroup v2 memory.max, or v1
// memory.limit_in_bytes), which is what an OOM kill enforces in a
// container. The defaults of --memory-budget-mb and
// --max-request-memory-mb are fractions of it.
//
// Stateless; reads /proc and /sys on each call (at start-up). Does not
// fail: what cannot be read is left out, and with nothing readable the
// result is 0 (unknown).
#ifndef QUIVER_SERVER_MEMORY_LIMIT_H_
#define QUIVER_SERVER_MEMORY_LIMIT_H_

#include <cstdint>
#include <string>

namespace quiver::server {

struct MemoryLimit {
  uint64_t bytes = 0;  // 0: unknown
  std::string source;  // "RAM" or the cgroup file that set it
};

MemoryLimit DetectMemoryLimit();

}  // namespace quiver::server

#endif  // QUIVER_SERVER_MEMORY_LIMIT_H_
