// Small system helpers for the benchmarks: resident memory and CPU time from
// /proc, the executable's folder, timing and percentiles.
#ifndef QUIVER_BENCH_COMMON_SYSINFO_H_
#define QUIVER_BENCH_COMMON_SYSINFO_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace quiver::bench {

struct MemoryInfo {
  int64_t rss_kb = -1;  // VmRSS: resident now
  int64_t hwm_kb = -1;  // VmHWM: peak resident
  int64_t file_kb = -1;  // RssFile: resident pages of mapped files (part of rss_kb)
};
// From /proc/<pid>/status (pid 0 = this process). -1 fields if unreadable.
MemoryInfo ReadMemory(pid_t pid = 0);

// User + system CPU seconds of a process (all its threads) from
// /proc/<pid>/stat (pid 0 = this process). -1 if unreadable.
double ProcessCpuSeconds(pid_t pid = 0);

// CPU seconds all processes on the machine spent busy (not idle/iowait),
// from /proc/stat. The difference over a run, minus our own processes' CPU
// time, is what others used meanwhile: the noise on a shared machine.
// include_irq = false leaves out irq and softirq time: loopback TCP is
// processed in softirq and accounted to no process, so gRPC runs would
// otherwise look as if other processes were busy.
double MachineBusySeconds(bool include_irq = true);

// Folder of the running executable (from /proc/self/exe).
std::string ExeDir();

// Seconds on a monotonic clock.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// p in [0, 100]; nearest-rank on a sorted copy. NaN if empty.
double Percentile(std::vector<double> v, double p);
double Median(std::vector<double> v);

// /proc/loadavg's first three fields ("2.59 2.17 1.18"): the machine is
// shared, so reports say how busy it was.
std::string LoadAverage();

// "Intel(R) Xeon(R) ..." from /proc/cpuinfo, or "".
std::string CpuModel();

// Sets OpenMP's thread count for the calling thread (OpenMP's setting is
// per thread) and OpenBLAS's global one. Call it in every thread that runs
// FAISS or BLAS.
void PinOmpThreads(int n);
// OpenBLAS build string, or "not OpenBLAS".
std::string BlasConfig();

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_SYSINFO_H_
