// The cores quiverd may use: the CPUs its affinity mask allows, capped by
// the CPU quota of the cgroup it runs in (cgroup v2 cpu.max, or v1
// cpu.cfs_quota_us / cpu.cfs_period_us), which is what `docker run --cpus`
// sets. A container on a large host sees every host CPU through
// std::thread::hardware_concurrency(), but its quota lets it run only as
// many threads at once as --cpus says; more build threads than that only
// queue behind each other and behind searches. --expensive-workers defaults
// to it, --index-build-threads to one less (at least 1).
//
// Stateless; reads /proc and /sys on each call (at start-up). Does not
// fail: what cannot be read is left out; the result is at least 1.
#ifndef QUIVER_SERVER_CPU_LIMIT_H_
#define QUIVER_SERVER_CPU_LIMIT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace quiver::server {

struct CpuLimit {
  int cores = 1;
  std::string source;  // "affinity", or the cgroup file that capped it
};

CpuLimit DetectCpuLimit();

// The cores a cgroup v2 cpu.max line allows ("max 100000": 0, no limit;
// "150000 100000": 2, a share rounded up, since 1.5 cores keep two threads
// busy part of the time). 0 for text it cannot read.
int CoresFromCpuMax(std::string_view text);
// The same for cgroup v1's quota and period (quota <= 0: no limit).
int CoresFromCfsQuota(int64_t quota_us, int64_t period_us);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_CPU_LIMIT_H_
