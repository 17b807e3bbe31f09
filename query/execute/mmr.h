// MMR: diversity-aware results (SearchRequest.diversity). A search of one
// vector field fetches the best fetch_k candidates by relevance; this picks
// k of them by maximal marginal relevance (Carbonell and Goldstein, "The
// use of MMR, diversity-based reranking for reordering documents and
// producing summaries", SIGIR 1998): one at a time, the candidate with the
// best
//   lambda * relevance - (1 - lambda) * (its greatest similarity to the
//                                         candidates already picked),
// so the top k are relevant but not near-duplicates of each other.
// Relevance and similarity are on the field's own scale: for IP and COSINE
// the inner product (of the query with a candidate, of two candidates), for
// L2 the negated squared distance. The first pick is the most relevant;
// equal values go to the more relevant candidate.
//
// Ownership: MmrOp borrows the candidates' vectors for a Run; owns its
// statistics. Thread-safety: none (one per search). Does not fail.
#ifndef QUIVER_QUERY_EXECUTE_MMR_H_
#define QUIVER_QUERY_EXECUTE_MMR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/flat_search.h"
#include "index/topk.h"
#include "query/execute/result_operator.h"

namespace quiver {

// One candidate: as the search's heaps hold it (distance lower is better:
// squared L2, or a negated similarity) and its full vector (dim floats).
struct MmrCandidate {
  index::Neighbor hit;
  const float* vector = nullptr;
};

// The indexes into `cands` (best first by relevance) of the k picked, in the
// order picked. REQUIRES: 0 <= lambda <= 1.
std::vector<size_t> SelectMmr(const std::vector<MmrCandidate>& cands, size_t k, double lambda,
                              size_t dim, index::Similarity similarity, uint64_t* distances);

class MmrOp final : public ResultOperator {
 public:
  MmrOp(size_t k, double lambda, uint32_t fetch_k, size_t dim, index::Similarity similarity)
      : k_(k), lambda_(lambda), fetch_k_(fetch_k), dim_(dim), similarity_(similarity) {}

  // The k picked of `cands` (one query's, best first), as hits in the
  // order picked.
  std::vector<index::Neighbor> Run(const std::vector<MmrCandidate>& cands);

 protected:
  std::string Describe() const override;

 private:
  const size_t k_;
  const double lambda_;
  const uint32_t fetch_k_;
  const size_t dim_;
  const index::Similarity similarity_;
  size_t queries_ = 0;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_MMR_H_
