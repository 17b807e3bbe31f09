// hnswlib (Debian's libhnswlib-dev 0.6.2, header-only) as the benchmarks'
// in-process HNSW baseline: the header with its warnings silenced, a
// parallel build, the index's size from its structures, and a search that
// writes ids where the benchmarks keep them.
//
// Header-only on purpose: hnswlib picks its SIMD kernels at compile time,
// so its code must be compiled in the benchmark's own translation unit,
// with that target's -march flags (bench/CMakeLists.txt), not once in
// quiver_bench_common. Thread-safety: hnswlib's (addPoint and searchKnn
// from many threads; setEf never while threads search).
#ifndef QUIVER_BENCH_COMMON_HNSWLIB_BASELINE_H_
#define QUIVER_BENCH_COMMON_HNSWLIB_BASELINE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench/common/sysinfo.h"
#include "index/hnswlib_wrapped.h"

namespace quiver::bench {

// Adds rows [0, n) of `data` (`dim` floats each; label = row) to `index`
// from `threads` threads; returns the seconds it took. Row 0 goes in alone
// first, as the entry point every other insert starts from.
template <typename Dist>
double BuildHnswlib(hnswlib::HierarchicalNSW<Dist>& index, const float* data, size_t n, size_t dim,
                    int threads) {
  const double t0 = NowSeconds();
  if (n == 0) return 0;
  index.addPoint(data, 0);
  std::atomic<size_t> next{1};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) index.addPoint(data + i * dim, i);
    });
  }
  for (auto& th : pool) th.join();
  return NowSeconds() - t0;
}

// Bytes of the index's vectors and links: level 0 (vector, links, label per
// element) plus the upper levels' link lists. Leaves out the per-element
// lock array, the label map and the visited-list pool (the process's RSS
// has them).
template <typename Dist>
size_t HnswlibIndexBytes(const hnswlib::HierarchicalNSW<Dist>& index) {
  size_t bytes = index.cur_element_count * index.size_data_per_element_;
  for (size_t i = 0; i < index.cur_element_count; ++i) {
    bytes += static_cast<size_t>(index.element_levels_[i]) * index.size_links_per_element_;
  }
  return bytes;
}

// The k nearest labels of `query`, best first, into out[0, k) (-1 where
// fewer were found), at the index's current ef.
template <typename Dist>
void HnswlibSearchInto(const hnswlib::HierarchicalNSW<Dist>& index, const float* query, size_t k,
                       int64_t* out) {
  auto pq = index.searchKnn(query, k);
  for (size_t j = k; j-- > pq.size();) out[j] = -1;
  for (size_t j = pq.size(); j-- > 0;) {
    if (j < k) out[j] = static_cast<int64_t>(pq.top().second);
    pq.pop();
  }
}

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_HNSWLIB_BASELINE_H_
