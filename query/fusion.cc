#include "query/fusion.h"

#include <algorithm>
#include <cmath>

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
    // DBSF's bounds, over the list's distinct points (a repeat counts once,
    // as it does in the scores).
    double lo = 0, width = 0;
    if (kind == FusionKind::kDbsf) {
      absl::flat_hash_set<uint64_t> ids;
      double sum = 0, sum_sq = 0;
      for (const index::Neighbor& nb : list.hits) {
        if (!ids.insert(nb.id).second) continue;
        sum += nb.distance;
        sum_sq += static_cast<double>(nb.distance) * nb.distance;
      }
      const double n = static_cast<double>(ids.size());
      const double mean = sum / n;
      const double sd = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
      lo = mean - 3 * sd;  // the distance that normalizes to 1
      width = 6 * sd;
    }
    absl::flat_hash_set<uint64_t> seen;
    size_t rank = 0;
    for (const index::Neighbor& nb : list.hits) {
      ++rank;
      if (!seen.insert(nb.id).second) continue;
      double contribution;
      if (kind == FusionKind::kRrf) {
        contribution = list.weight / (rrf_k + static_cast<double>(rank));
      } else if (kind == FusionKind::kDbsf) {
        // Lower distances are better: lo maps to 1, lo + width to 0. A
        // deviation below float precision of the mean counts as none.
        const double norm =
            width > 1e-12 * std::max(1.0, std::abs(lo))
                ? std::clamp((lo + width - nb.distance) / width, 0.0, 1.0)
                : 0.5;
        contribution = list.weight * norm;
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
