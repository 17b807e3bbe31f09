// Drive: runs a benchmark's calls over N threads and times each one; the
// Run it returns is what every benchmark reports from (QPS, latencies, the
// ids returned for recall).
#ifndef QUIVER_BENCH_COMMON_DRIVER_H_
#define QUIVER_BENCH_COMMON_DRIVER_H_

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/ground_truth.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"

namespace quiver::bench {

struct Run {
  double seconds = 0;
  std::vector<double> latency_ms;  // per call
  std::vector<int64_t> ids;        // nq * k, -1 where fewer hits
  double cpu_server_s = 0;         // quiverd, where measured
  double cpu_self_s = 0;           // this process, where measured
  double other_cores = 0;          // CPU other processes used meanwhile / wall
};

// Calls `call(c, thread, run)` for c in [0, calls) over `threads` threads
// (each pulls the next index), timing each call. `thread_init(thread)` runs
// in each thread before the clock starts (e.g. to pin OpenMP threads, which
// is a per-thread setting).
template <typename Call>
Run Drive(size_t calls, int threads, size_t nq, size_t k, Call&& call,
          const std::function<void(int)>& thread_init = nullptr) {
  Run run;
  run.ids.assign(nq * k, -1);
  std::vector<std::vector<double>> lat(threads);
  std::atomic<size_t> next{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      if (thread_init) thread_init(t);
      lat[t].reserve(calls);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (size_t c; (c = next.fetch_add(1)) < calls;) {
        const double t0 = NowSeconds();
        call(c, t, &run);
        lat[t].push_back((NowSeconds() - t0) * 1e3);
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const double t0 = NowSeconds();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  run.seconds = NowSeconds() - t0;
  for (auto& l : lat) run.latency_ms.insert(run.latency_ms.end(), l.begin(), l.end());
  return run;
}

// Runs `run_fn` (returning a Run), recording the CPU seconds this process
// and `server_pid` (0: none) used, and how many cores other processes kept
// busy meanwhile: the noise on a shared machine. irq and softirq time is
// left out, since loopback TCP is processed there and belongs to no process.
template <typename RunFn>
Run MeasureOthers(pid_t server_pid, RunFn&& run_fn) {
  const double busy0 = MachineBusySeconds(/*include_irq=*/false);
  const double self0 = ProcessCpuSeconds();
  const double srv0 = server_pid > 0 ? ProcessCpuSeconds(server_pid) : 0;
  Run run = run_fn();
  run.cpu_self_s = ProcessCpuSeconds() - self0;
  run.cpu_server_s = server_pid > 0 ? ProcessCpuSeconds(server_pid) - srv0 : 0;
  const double used = run.cpu_self_s + run.cpu_server_s;
  const double others = MachineBusySeconds(/*include_irq=*/false) - busy0 - used;
  run.other_cores = run.seconds > 0 ? std::max(0.0, others / run.seconds) : 0;
  return run;
}

// A point id "<digits>" as the benchmarks write them; -1 otherwise.
inline int64_t ParseId(const std::string& s) {
  int64_t v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Mean recall@k of a run's ids (see Recall for `allowed`).
inline double MeanRecall(const Run& run, const GroundTruth& gt, const Matrix& base,
                         const Matrix& queries, size_t nq, size_t k,
                         const std::vector<bool>& allowed = {}) {
  double sum = 0;
  for (size_t q = 0; q < nq; ++q) {
    sum += Recall(gt, q, run.ids.data() + q * k, k, base, queries.row(q), allowed);
  }
  return sum / static_cast<double>(nq);
}

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_DRIVER_H_
