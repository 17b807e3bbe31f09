// How the benchmarks start quiverd and wait for it to settle.
#include "bench/common/testkit.h"

#include <chrono>
#include <thread>

#include "bench/common/report.h"
#include "bench/common/sysinfo.h"

namespace quiver::bench {

QuiverdOptions BenchQuiverdOptions() {
  QuiverdOptions o;
  o.durability = "sync";
  o.search_threads = 1;
  o.capture_log = true;
  o.wait_healthy = true;
  o.start_timeout = absl::Seconds(60);
  o.stop_timeout = absl::Seconds(60);
  return o;
}

double WaitIndexedOrDie(client::Client& c, const std::vector<std::string>& colls,
                        double timeout_s, int poll_ms) {
  auto waited = testing::WaitIndexed(c, colls, timeout_s, poll_ms);
  if (!waited.ok()) Die("wait for indexes", waited.status());
  return *waited;
}

void WaitQuiet(pid_t pid, double timeout_s) {
  const double t0 = NowSeconds();
  for (int quiet = 0; quiet < 2 && NowSeconds() - t0 < timeout_s;) {
    const double c0 = ProcessCpuSeconds(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    quiet = ProcessCpuSeconds(pid) - c0 < 0.03 ? quiet + 1 : 0;
  }
}

}  // namespace quiver::bench
