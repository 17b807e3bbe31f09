// MaxSimRerank: the last step of a late-interaction search. Candidate
// points (from the MUVERA encodings' index or the token-vector index, or
// every row) are scored by exact MaxSim against the query set and pushed
// into the query's top k. Also GatheredSets, candidates' vector sets laid
// out contiguously for blocked MaxSim.
//
// Ownership: the operator borrows the field spec (which outlives the
// search) and owns its scratch and statistics. Thread-safety: none; one
// search thread runs it. Errors: Run returns a rerank table's read error
// as the table reports it (DISK fields).
#ifndef QUIVER_QUERY_EXECUTE_MAXSIM_RERANK_H_
#define QUIVER_QUERY_EXECUTE_MAXSIM_RERANK_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "index/maxsim.h"
#include "index/topk.h"
#include "query/execute/result_operator.h"
#include "query/segment.h"
#include "storage/schema.h"

namespace quiver {

// Vector sets gathered back to back, with each set's first vector.
struct GatheredSets {
  std::vector<float> vectors;
  std::vector<uint64_t> offsets{0};
  void Add(const float* data, size_t count, size_t dim) {
    vectors.insert(vectors.end(), data, data + count * dim);
    offsets.push_back(offsets.back() + count);
  }
  index::MultiVectorDocs Docs(size_t dim) const {
    return {vectors.data(), offsets.data(), offsets.size() - 1, dim};
  }
};

class MaxSimRerankOp final : public ResultOperator {
 public:
  // Reranks field `f` (spec `field`). read_table: take the sets of a DISK
  // field from its segment's rerank table (one batched read per run)
  // instead of memory. `candidates`: the candidates per query asked of the
  // stage before, for explain (0: not a fixed number).
  MaxSimRerankOp(size_t f, const VectorFieldSpec& field, bool read_table, uint32_t candidates)
      : f_(f), field_(field), read_table_(read_table), candidates_(candidates) {}

  // Scores rows `rows` of `seg` (part `part` of the view) and pushes each
  // as HitId(part, row) into *out.
  absl::Status Run(const index::MaxSimQuery& query, const Segment& seg, size_t part,
                   const std::vector<uint32_t>& rows, index::TopK* out);

 protected:
  std::string Describe() const override;

 private:
  const size_t f_;
  const VectorFieldSpec& field_;
  const bool read_table_;
  const uint32_t candidates_;
  index::MaxSimScratch scratch_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_MAXSIM_RERANK_H_
