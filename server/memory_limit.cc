#include "server/memory_limit.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "server/cgroup.h"

namespace quiver::server {
namespace {

// The first number in `path`, or 0 ("max", missing, unreadable).
uint64_t ReadNumber(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (!(in >> v)) return 0;
  return v;
}

}  // namespace

MemoryLimit DetectMemoryLimit() {
  MemoryLimit out;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) {
    out.bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
    out.source = "RAM";
  }
  std::string v2, v1;
  CgroupPaths("memory", &v2, &v1);
  // Inside a container the cgroup is usually mounted as the root; outside,
  // under its path. Unlimited reads as "max" (v2) or a huge number (v1).
  std::vector<std::string> candidates;
  if (!v2.empty()) {
    candidates.push_back("/sys/fs/cgroup" + v2 + "/memory.max");
    candidates.push_back("/sys/fs/cgroup/memory.max");
  }
  if (!v1.empty()) {
    candidates.push_back("/sys/fs/cgroup/memory" + v1 + "/memory.limit_in_bytes");
    candidates.push_back("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  }
  for (const std::string& path : candidates) {
    const uint64_t limit = ReadNumber(path);
    if (limit == 0 || limit >= (uint64_t{1} << 60)) continue;
    if (out.bytes == 0 || limit < out.bytes) {
      out.bytes = limit;
      out.source = path;
    }
    break;
  }
  return out;
}

}  // namespace quiver::server
