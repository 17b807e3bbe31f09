// MeasureMetricsOverhead: what quiverd's Prometheus metrics
// (--metrics-listen, scraped every second here, more often than Prometheus
// usually does) and the recall audit at its default rate cost searches.
// Two quiverd processes serve copies of the same data directory at once, one
// with --recall-audit-rate 0 and no metrics ("off"), one with
// --metrics-listen and the default audit rate ("on"); single-query searches
// from `threads` client threads go to one, then the other, in blocks, the
// order alternating per round, so a change in the machine's background load
// hits both alike. Reports the median QPS of each and the median of the
// per-round ratios on/off of QPS, and the ratio of the servers' CPU time per
// search over all rounds (from /proc; less sensitive than QPS to what else
// the machine runs).
//
// Used by ann_bench --metrics-overhead. Not thread-safe; ends the benchmark
// (Die) when a server does not start or a search fails.
#ifndef QUIVER_BENCH_COMMON_METRICS_OVERHEAD_H_
#define QUIVER_BENCH_COMMON_METRICS_OVERHEAD_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/common/testkit.h"
#include "quiver/v1/search.pb.h"

namespace quiver::bench {

struct MetricsOverheadOptions {
  int rounds = 40;
  size_t calls_per_block = 250;  // searches per server and round
  int threads = 2;                // client threads, one channel each
  double scrape_interval_s = 1;
};

// `server` describes how to start quiverd (binary, flags); `data_dir` holds
// the indexed collections `collections` (the server on it must be
// stopped); `reqs` are the searches, used round-robin. Prints a table and
// returns the figures as JSON.
nlohmann::json MeasureMetricsOverhead(const QuiverdOptions& server, const std::string& data_dir,
                                      const std::vector<std::string>& collections,
                                      const std::vector<v1::SearchRequest>& reqs,
                                      const MetricsOverheadOptions& options);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_METRICS_OVERHEAD_H_
