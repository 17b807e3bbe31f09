// Recall: the one recall@k of the tests and benchmarks. Each test or
// benchmark finds its own truth (brute force, a cached ground-truth file,
// an exact MaxSim or fused ranking) and its own answer ids; counting the
// hits is done here, the same way everywhere:
//
//   - an id counts at most once, and at most k ids count;
//   - an id is a hit if it is one of the true top k, or (given its exact
//     distance) if that distance is within `tolerance` of the k-th true
//     distance: a tie, where the true top k is not unique, so the answer
//     may hold a different member of the tie.
//
// Distances are "smaller is better"; pass a negated score for similarities.
// ExactL2TopK is the plain brute-force truth engine tests over a few
// thousand random rows share.
// Header-only (templates over the id type); stateless and thread-safe.
#ifndef QUIVER_TESTS_COMMON_RECALL_H_
#define QUIVER_TESTS_COMMON_RECALL_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <set>
#include <utility>
#include <vector>

namespace quiver::testing {

// The k rows of `rows` (n x dim, row-major) nearest to `q` by squared L2,
// computed in double, nearest first, skipping rows `skip` names (deleted,
// never written).
inline std::vector<size_t> ExactL2TopK(const float* rows, size_t n, size_t dim, const float* q,
                                       size_t k, const std::function<bool(size_t)>& skip) {
  std::vector<std::pair<double, size_t>> d;
  for (size_t i = 0; i < n; ++i) {
    if (skip(i)) continue;
    double s = 0;
    for (size_t j = 0; j < dim; ++j) {
      const double x = double{q[j]} - rows[i * dim + j];
      s += x * x;
    }
    d.push_back({s, i});
  }
  k = std::min(k, d.size());
  std::partial_sort(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
  std::vector<size_t> out;
  for (size_t i = 0; i < k; ++i) out.push_back(d[i].second);
  return out;
}

// How a returned id is judged beyond membership of the true top k.
template <typename Id>
struct TieRule {
  // The k-th true distance; NaN (default) counts members only.
  double kth = std::numeric_limits<double>::quiet_NaN();
  // Exact distance of a returned id (same kernel as the truth's).
  std::function<double(const Id&)> distance;
  // A returned id ties when distance(id) <= kth + tolerance.
  double tolerance = 0;
};

// Hits among `got` against the true top `truth` (its size is k).
template <typename Id>
size_t RecallHits(const std::vector<Id>& got, const std::vector<Id>& truth,
                  const TieRule<Id>& ties = {}) {
  const std::set<Id> want(truth.begin(), truth.end());
  std::set<Id> seen;
  size_t hits = 0;
  const bool use_ties = ties.distance != nullptr && !std::isnan(ties.kth);
  for (const Id& id : got) {
    if (hits >= truth.size()) break;
    if (!seen.insert(id).second) continue;
    if (want.count(id) > 0 || (use_ties && ties.distance(id) <= ties.kth + ties.tolerance)) {
      ++hits;
    }
  }
  return hits;
}

// recall@k of one answer: hits / k; 1 when the truth is empty.
template <typename Id>
double RecallAtK(const std::vector<Id>& got, const std::vector<Id>& truth,
                 const TieRule<Id>& ties = {}) {
  if (truth.empty()) return 1.0;
  return static_cast<double>(RecallHits(got, truth, ties)) / static_cast<double>(truth.size());
}

// Recall over many queries: total hits / total truth size (equal to the
// mean of the per-query recalls when every truth holds k ids).
class RecallSum {
 public:
  template <typename Id>
  void Add(const std::vector<Id>& got, const std::vector<Id>& truth,
           const TieRule<Id>& ties = {}) {
    hits_ += RecallHits(got, truth, ties);
    wanted_ += truth.size();
  }
  // 1 when nothing was wanted.
  double value() const {
    return wanted_ == 0 ? 1.0 : static_cast<double>(hits_) / static_cast<double>(wanted_);
  }

 private:
  size_t hits_ = 0;
  size_t wanted_ = 0;
};

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_RECALL_H_
