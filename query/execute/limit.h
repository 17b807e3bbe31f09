// Limit: the top operator of every search, which keeps each query's best k
// of what the operators under it produced (the merged top-k heaps of a
// single-field or late-interaction search, the fused ranking of a hybrid
// one, a multi-stage search's last stage), best first; also the cut of a
// fused ranking to a multi-stage search's candidates.
//
// Ownership: takes the candidates it is given; owns its statistics.
// Thread-safety: none (one per search). Does not fail.
#ifndef QUIVER_QUERY_EXECUTE_LIMIT_H_
#define QUIVER_QUERY_EXECUTE_LIMIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/topk.h"
#include "query/execute/result_operator.h"
#include "query/fusion.h"

namespace quiver {

class LimitOp final : public ResultOperator {
 public:
  explicit LimitOp(uint32_t k) : k_(k) {}

  // Each query's best k, best first; leaves the heaps empty.
  std::vector<std::vector<index::Neighbor>> Run(std::vector<index::TopK>* topk);
  // The first k of a ranking that is best first.
  std::vector<FusedHit> Run(std::vector<FusedHit> ranked);
  std::vector<index::Neighbor> Run(std::vector<index::Neighbor> ranked);

 protected:
  std::string Describe() const override;

 private:
  template <typename Hit>
  std::vector<Hit> Cut(std::vector<Hit> ranked);

  const uint32_t k_;
  size_t queries_ = 0;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_LIMIT_H_
