// Waiting on the quiverd under test: until its segments are indexed, until
// it is idle. Shared by the benchmarks that measure a steady state.
#ifndef QUIVER_BENCH_COMMON_SERVER_WAIT_H_
#define QUIVER_BENCH_COMMON_SERVER_WAIT_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace quiver::bench {

// A collection's segments as describe reports them.
struct SegmentsState {
  bool all_indexed = false;  // at least one segment, every one INDEXED
  size_t segments = 0;
  uint64_t rows = 0;
  uint64_t index_memory = 0;  // per-field memory of the segments
  uint64_t index_disk = 0;
  uint64_t field_memory = 0;  // VectorFieldStats.memory_bytes
  std::string desc;           // "#1 INDEXED 60000 rows HNSW(...), ..."
};
absl::StatusOr<SegmentsState> Segments(client::Client& c, const std::string& coll);

// Polls every `poll_ms` until every segment of every collection is INDEXED
// (quiverd seals a segment after --seal-idle-ms without writes and indexes
// it in the background); returns the seconds waited. Exits the benchmark
// (Die) after `timeout_s`.
double WaitIndexed(client::Client& c, const std::vector<std::string>& colls, double timeout_s,
                   int poll_ms);

// Waits until the process uses (almost) no CPU for two 0.5 s periods, or
// `timeout_s` passed.
void WaitQuiet(pid_t pid, double timeout_s = 120);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_SERVER_WAIT_H_
