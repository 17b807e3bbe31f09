#include "query/execute/mmr.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "index/kernels.h"

namespace quiver {

std::vector<size_t> SelectMmr(const std::vector<MmrCandidate>& cands, size_t k, double lambda,
                              size_t dim, index::Similarity similarity, uint64_t* distances) {
  const size_t n = cands.size();
  std::vector<size_t> picked;
  if (n == 0 || k == 0) return picked;
  picked.reserve(std::min(k, n));
  if (lambda >= 1) {
    // Novelty has no weight: the picks are the relevance order, which the
    // candidates already are; no similarity is needed.
    for (size_t i = 0; i < std::min(k, n); ++i) picked.push_back(i);
    return picked;
  }
  const index::KernelTable& kernels = index::ActiveKernels();
  auto sim = [&](const float* a, const float* b) -> double {
    return similarity == index::Similarity::kL2 ? -static_cast<double>(kernels.l2sqr(a, b, dim))
                                                : static_cast<double>(kernels.dot(a, b, dim));
  };
  // Per candidate: its greatest similarity to those picked so far.
  std::vector<double> nearest(n, -std::numeric_limits<double>::infinity());
  std::vector<uint8_t> taken(n, 0);
  while (picked.size() < std::min(k, n)) {
    size_t best = n;
    double best_value = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      const double relevance = -static_cast<double>(cands[i].hit.distance);
      // Before the first pick there is nothing to be redundant with.
      const double value = picked.empty() ? relevance
                                          : lambda * relevance - (1 - lambda) * nearest[i];
      if (best == n || value > best_value) {
        best = i;
        best_value = value;
      }
    }
    taken[best] = 1;
    picked.push_back(best);
    if (picked.size() == std::min(k, n)) break;
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      nearest[i] = std::max(nearest[i], sim(cands[i].vector, cands[best].vector));
      ++*distances;
    }
  }
  return picked;
}

std::vector<index::Neighbor> MmrOp::Run(const std::vector<MmrCandidate>& cands) {
  const Timed timed(&stats_);
  ++queries_;
  const std::vector<size_t> picked =
      SelectMmr(cands, k_, lambda_, dim_, similarity_, &stats_.distances);
  std::vector<index::Neighbor> out;
  out.reserve(picked.size());
  for (size_t i : picked) out.push_back(cands[i].hit);
  stats_.rows_in += cands.size();
  stats_.rows_out += out.size();
  return out;
}

std::string MmrOp::Describe() const {
  return absl::StrCat("MMR(k=", k_, ", lambda=", lambda_, ", fetch_k=", fetch_k_,
                      ", queries=", queries_, ")");
}

}  // namespace quiver
