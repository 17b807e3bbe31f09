#include "server/cpu_limit.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "server/cgroup.h"

namespace quiver::server {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t ReadInt(const std::string& path, bool* ok) {
  std::ifstream in(path);
  int64_t v = 0;
  *ok = static_cast<bool>(in >> v);
  return v;
}

// The directory and its parents up to /sys/fs/cgroup<root>: a quota set
// on a parent (a systemd slice, a pod) caps the children too.
std::vector<std::string> Ancestry(const std::string& root, std::string path) {
  std::vector<std::string> dirs;
  for (;;) {
    dirs.push_back(root + path);
    if (path.empty() || path == "/") break;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
  return dirs;
}

}  // namespace

int CoresFromCpuMax(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string quota;
  int64_t period = 0;
  if (!(in >> quota)) return 0;
  if (quota == "max") return 0;
  if (!(in >> period)) period = 100000;  // the kernel's default period
  int64_t q = 0;
  try {
    q = std::stoll(quota);
  } catch (...) {
    return 0;
  }
  return CoresFromCfsQuota(q, period);
}

int CoresFromCfsQuota(int64_t quota_us, int64_t period_us) {
  if (quota_us <= 0 || period_us <= 0) return 0;
  return static_cast<int>(std::max<int64_t>(1, (quota_us + period_us - 1) / period_us));
}

CpuLimit DetectCpuLimit() {
  CpuLimit out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
    out.cores = CPU_COUNT(&set);
    out.source = "affinity";
  } else {
    out.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    out.source = "hardware_concurrency";
  }
  std::string v2, v1;
  CgroupPaths("cpu", &v2, &v1);
  // Inside a container the cgroup is usually mounted as the root; outside,
  // under its path: both are looked at, the tightest limit wins.
  auto cap = [&](int cores, const std::string& file) {
    if (cores > 0 && cores < out.cores) {
      out.cores = cores;
      out.source = file;
    }
  };
  if (!v2.empty()) {
    for (const std::string& dir : Ancestry("/sys/fs/cgroup", v2)) {
      const std::string file = dir + (dir.back() == '/' ? "" : "/") + "cpu.max";
      cap(CoresFromCpuMax(ReadAll(file)), file);
    }
  }
  if (!v1.empty()) {
    for (const std::string& root : {std::string("/sys/fs/cgroup/cpu"),
                                    std::string("/sys/fs/cgroup/cpu,cpuacct")}) {
      for (const std::string& dir : Ancestry(root, v1)) {
        const std::string base = dir + (dir.back() == '/' ? "" : "/");
        bool ok_q = false, ok_p = false;
        const int64_t q = ReadInt(base + "cpu.cfs_quota_us", &ok_q);
        const int64_t p = ReadInt(base + "cpu.cfs_period_us", &ok_p);
        if (ok_q && ok_p) cap(CoresFromCfsQuota(q, p), base + "cpu.cfs_quota_us");
      }
    }
  }
  return out;
}

}  // namespace quiver::server
