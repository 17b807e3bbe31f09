// Fusion of several ranked lists into one: the last step of a hybrid search,
// where one request carries a query vector for each of several vector fields
// and each field's search returns its own nearest points.
//
// Three methods, chosen per request:
//   - RRF (reciprocal rank fusion, Cormack et al. 2009): a point scores
//     sum over lists of weight / (rrf_k + rank), rank 1-based in that list.
//     Only ranks matter, so fields whose distances live on different scales
//     (squared L2 on pixels, cosine on embeddings) fuse without tuning.
//     rrf_k defaults to 60, the paper's value and Milvus's default.
//   - WEIGHTED: each list's distances are min-max normalized over the list
//     itself (its best candidate 1, its worst 0; a list whose candidates all
//     tie gives each 1), and a point scores sum over lists of
//     weight * normalized. Normalizing per list is scale-free like RRF but
//     keeps how far apart candidates are; a metric-based map such as
//     Milvus's arctan saturates on squared L2 distances of raw pixels.
//   - DBSF (distribution-based score fusion, as Qdrant names it): each
//     list's distances are normalized by their own mean m and population
//     standard deviation sd, (m + 3 sd - d) / (6 sd) clamped to [0, 1] (a
//     list whose candidates all tie gives each 0.5), and a point scores sum
//     over lists of weight * normalized. Unlike min-max, one outlier does
//     not squash the rest of its list towards 0 or 1.
// In all three, a point absent from a list gets nothing from it, and the fused
// score is higher-is-better. Ties are broken by id (ascending) so results
// are deterministic.
//
// Pure functions; thread-safe. They do not fail; the ranked lists are the
// caller's and only read.
#ifndef QUIVER_QUERY_FUSION_H_
#define QUIVER_QUERY_FUSION_H_

#include <cstdint>
#include <vector>

#include "index/topk.h"

namespace quiver {

enum class FusionKind { kRrf, kWeighted, kDbsf };

inline constexpr double kDefaultRrfK = 60;

// One field's candidates, best first (lower distance is better, as
// index/topk.h), and the weight its scores get.
struct RankedList {
  std::vector<index::Neighbor> hits;
  double weight = 1;
};

struct FusedHit {
  uint64_t id = 0;
  double score = 0;  // higher is better
};

// The best `k` points of the fused ranking, best first. REQUIRES: weights
// finite and >= 0; rrf_k > 0. A point listed twice in one list counts once
// (its best rank).
std::vector<FusedHit> Fuse(FusionKind kind, const std::vector<RankedList>& lists, size_t k,
                           double rrf_k = kDefaultRrfK);

}  // namespace quiver

#endif  // QUIVER_QUERY_FUSION_H_
