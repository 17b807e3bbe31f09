// This process's cgroup, from /proc/self/cgroup: the shared helper of
// memory_limit.cc and cpu_limit.cc, which read the limits the cgroup sets.
// Stateless; does not fail (what cannot be read stays empty).
#ifndef QUIVER_SERVER_CGROUP_H_
#define QUIVER_SERVER_CGROUP_H_

#include <string>

namespace quiver::server {

// The cgroup v2 path ("0::/path") into *v2 and the path of cgroup v1's
// `controller` ("memory", "cpu") into *v1; either stays empty when absent.
void CgroupPaths(const std::string& controller, std::string* v2, std::string* v1);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_CGROUP_H_
