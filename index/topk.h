// TopK: the k best (lowest-distance) candidates seen so far for one query.
//
// Scores are kept as distances, lower is better; callers searching by
// similarity (IP, COSINE) push the negated score and negate back on output.
// Not thread-safe: one TopK per query per thread; merge with Merge().
// Does not fail: a TopK owns its candidates and keeps at most k of them.
#ifndef QUIVER_INDEX_TOPK_H_
#define QUIVER_INDEX_TOPK_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace quiver::index {

struct Neighbor {
  float distance;
  uint64_t id;
  bool operator<(const Neighbor& o) const {
    return distance < o.distance || (distance == o.distance && id < o.id);
  }
};

class TopK {
 public:
  explicit TopK(size_t k = 0) : k_(k) { heap_.reserve(k); }

  size_t k() const { return k_; }

  // Distance a candidate must beat to enter; +inf until k are held (and
  // -inf for k = 0, which takes nothing).
  float threshold() const {
    if (k_ == 0) return -std::numeric_limits<float>::infinity();
    return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().distance;
  }

  void Push(float distance, uint64_t id) {
    if (heap_.size() < k_) {
      heap_.push_back({distance, id});
      std::push_heap(heap_.begin(), heap_.end());
    } else if (k_ > 0 && Neighbor{distance, id} < heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {distance, id};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }

  void Merge(const TopK& other) {
    for (const Neighbor& n : other.heap_) Push(n.distance, n.id);
  }

  size_t size() const { return heap_.size(); }

  // Best first. Leaves this TopK empty.
  std::vector<Neighbor> Take() {
    std::sort_heap(heap_.begin(), heap_.end());
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<Neighbor> heap_;  // max-heap on distance
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_TOPK_H_
