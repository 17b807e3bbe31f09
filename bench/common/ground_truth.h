// Exact k-NN ground truth (squared L2), computed once with FAISS
// IndexFlatL2 and cached as a binary file under the build folder.
//
// FAISS computes |q|^2 + |x|^2 - 2<q,x> in float; on Fashion-MNIST (pixel
// values 0..255, squared norms up to ~5e7) that rounds by a few units, so
// near-ties can come out in the wrong order. We therefore ask FAISS for
// k + kRerankPad candidates and re-rank them by the exact distance computed
// in double. The stored distances are those exact values.
//
// Recall (tests/common/recall.h): a returned id is a hit if it is one of the
// true top k, or if its (exact) distance equals the k-th true distance (a
// tie). Returned ids are re-scored exactly here, so the server's own float
// rounding does not matter.
#ifndef QUIVER_BENCH_COMMON_GROUND_TRUTH_H_
#define QUIVER_BENCH_COMMON_GROUND_TRUTH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/common/testkit.h"

namespace quiver::bench {

inline constexpr size_t kRerankPad = 90;

struct GroundTruth {
  size_t nq = 0;
  size_t k = 0;
  std::vector<int64_t> ids;   // nq * k, best first (ids index the base set)
  std::vector<double> dist;   // nq * k, exact squared L2
  const int64_t* ids_of(size_t q) const { return ids.data() + q * k; }
  double kth(size_t q) const { return dist[q * k + k - 1]; }
};

// Exact squared L2 in double.
double ExactL2(const float* a, const float* b, size_t dim);

// Top-k of the first `nq` rows of `queries` over `base`, restricted to
// `subset` (base row ids, ascending) when it is non-empty. `key` names the
// dataset and any filter (e.g. "fmnist-60000" or "fmnist-60000-label3"); the
// cache file is <cache_dir>/gt_<key>_k<k>_nq<nq>.bin and also records a hash
// of the data, so a changed dataset is recomputed rather than trusted.
absl::StatusOr<GroundTruth> LoadOrComputeGroundTruth(const std::string& key,
                                                     const Matrix& base,
                                                     const Matrix& queries, size_t nq,
                                                     size_t k,
                                                     const std::vector<int64_t>& subset,
                                                     const std::string& cache_dir);

// recall@k of one query's answer (`n` returned ids, best first). With
// `allowed` non-empty, ids whose allowed[id] is false never count (filtered
// search).
double Recall(const GroundTruth& gt, size_t q, const int64_t* returned, size_t n,
              const Matrix& base, const float* query, const std::vector<bool>& allowed = {});

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_GROUND_TRUTH_H_
