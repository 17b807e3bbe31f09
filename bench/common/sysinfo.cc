#include "bench/common/sysinfo.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

extern "C" {
char* openblas_get_config(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));
}

namespace quiver::bench {
namespace {

std::string ProcPath(pid_t pid, const char* file) {
  return (pid == 0 ? std::string("/proc/self/") : "/proc/" + std::to_string(pid) + "/") + file;
}

}  // namespace

MemoryInfo ReadMemory(pid_t pid) {
  MemoryInfo m;
  std::ifstream in(ProcPath(pid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kb = std::stoll(line.substr(6));
    else if (line.rfind("VmHWM:", 0) == 0) m.hwm_kb = std::stoll(line.substr(6));
    else if (line.rfind("RssFile:", 0) == 0) m.file_kb = std::stoll(line.substr(8));
  }
  return m;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(ProcPath(pid, "stat"));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may contain spaces; fields after ')' are
  // fixed: utime is field 14, stime field 15 (1-based).
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(s.substr(close + 2));
  std::string tok;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> tok; ++i) {
    if (i == 14) utime = std::stoll(tok);
    if (i == 15) stime = std::stoll(tok);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double MachineBusySeconds(bool include_irq) {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
            steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  if (cpu != "cpu") return -1;
  return static_cast<double>(user + nice + system + steal + (include_irq ? irq + softirq : 0)) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string ExeDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return p.parent_path().string();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
  const size_t idx = rank < 1 ? 0 : std::min(v.size() - 1, static_cast<size_t>(rank) - 1);
  return v[idx];
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "";
}

void PinOmpThreads(int n) {
  omp_set_num_threads(n);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(n);
}

std::string BlasConfig() {
  if (openblas_get_config != nullptr) return openblas_get_config();
  return "not OpenBLAS";
}

}  // namespace quiver::bench
