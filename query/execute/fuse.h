// Fuse: a hybrid search's step that merges the fields' ranked lists into
// one ranking (RRF or weighted, query/fusion.h). It ranks every point any
// list holds; the Limit above it keeps the request's k.
//
// Ownership: reads the lists it is given; owns its statistics.
// Thread-safety: none (one per search). Does not fail.
#ifndef QUIVER_QUERY_EXECUTE_FUSE_H_
#define QUIVER_QUERY_EXECUTE_FUSE_H_

#include <string>
#include <vector>

#include "query/execute/result_operator.h"
#include "query/fusion.h"

namespace quiver {

class FuseOp final : public ResultOperator {
 public:
  FuseOp(FusionKind kind, double rrf_k) : kind_(kind), rrf_k_(rrf_k) {}

  // Every point of `lists`, best first.
  std::vector<FusedHit> Run(const std::vector<RankedList>& lists);

 protected:
  std::string Describe() const override;

 private:
  const FusionKind kind_;
  const double rrf_k_;
  size_t lists_ = 0;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_FUSE_H_
