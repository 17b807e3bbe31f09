// What the benchmarks send quiverd (search requests over a query set) and
// read back from it (the hits of a response, the index builds in its log).
//
// Pure functions; thread-safe. A log that cannot be read gives no builds.
#ifndef QUIVER_BENCH_COMMON_QUIVERD_IO_H_
#define QUIVER_BENCH_COMMON_QUIVERD_IO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/common/testkit.h"
#include "quiver/v1/search.pb.h"

namespace quiver::bench {

// Search requests over queries [0, nq) of `field`, `per_call` query vectors
// each (1: single-query calls; more: the batched form of the same RPC).
std::vector<v1::SearchRequest> MakeSearches(const std::string& coll, const Matrix& queries,
                                            size_t nq, size_t per_call, size_t k,
                                            const std::string& field = "image");

// Copies the ids of `resp`'s hits ("<digits>", as the benchmarks write
// them) to ids[(first + r) * k + h] for result r and hit h < k.
void HitIdsInto(const v1::SearchResponse& resp, size_t first, size_t k, int64_t* ids);

// One index build quiverd logged at info level (query/index_builder.cc):
//   collection "C" segment N field "F": built HNSW(...) over R rows in 12.34s;
//       self-check in 0.32s: ...
//   collection "C" segment N field "F": recall calibrated on ... (held out
//       of the build) in 8.70s
struct LoggedBuild {
  uint64_t segment = 0;
  std::string field;
  std::string index;         // what was built: "HNSW(M=16, ...)", "WINDOW(...)"
  double build_s = 0;        // the build alone
  double check_s = 0;        // its self-check against exact search
  double calibration_s = 0;  // its recall calibration, when logged
  double total() const { return build_s + check_s + calibration_s; }
};

// The builds of collection `coll` ("" = every collection) in the log at
// `path`, in log order, each with its calibration.
std::vector<LoggedBuild> LoggedBuilds(const std::string& path, const std::string& coll = "");

// build_s of each of LoggedBuilds(path, coll).
std::vector<double> BuildTimesFromLog(const std::string& path, const std::string& coll);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_QUIVERD_IO_H_
