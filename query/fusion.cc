#include "query/fusion.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace quiver {

std::vector<FusedHit> Fuse(FusionKind kind, const std::vector<RankedList>& lists, size_t k,
                           double rrf_k) {
  absl::flat_hash_map<uint64_t, double> scores;
  for (const RankedList& list : lists) {
    if (list.hits.empty()) continue;
    // Lists arrive best first; min-max bounds are the two ends, but a list
    // assembled by hand need not be sorted, so take them explicitly.
    float best = list.hits.front().distance, worst = best;
    for (const index::Neighbor& nb : list.hits) {
      best = std::min(best, nb.distance);
      worst = std::max(worst, nb.distance);
    }
    const double span = static_cast<double>(worst) - best;
    absl::flat_hash_set<uint64_t> seen;
    size_t rank = 0;
    for (const index::Neighbor& nb : list.hits) {
      ++rank;
      if (!seen.insert(nb.id).second) continue;
      double contribution;
      if (kind == FusionKind::kRrf) {
        contribution = list.weight / (rrf_k + static_cast<double>(rank));
      } else {
        const double norm = span > 0 ? (static_cast<double>(worst) - nb.distance) / span : 1.0;
        contribution = list.weight * norm;
      }
      scores[nb.id] += contribution;
    }
  }
  std::vector<FusedHit> fused;
  fused.reserve(scores.size());
  for (const auto& [id, score] : scores) fused.push_back({id, score});
  auto better = [](const FusedHit& a, const FusedHit& b) {
    return a.score > b.score || (a.score == b.score && a.id < b.id);
  };
  if (fused.size() > k) {
    std::partial_sort(fused.begin(), fused.begin() + static_cast<ptrdiff_t>(k), fused.end(),
                      better);
    fused.resize(k);
  } else {
    std::sort(fused.begin(), fused.end(), better);
  }
  return fused;
}

}  // namespace quiver
