// Rescore: a stage of a multi-stage search (SearchRequest.stages). It takes
// the candidates the stage before passed on (HitIds of one view), has each
// scored exactly by one field against the stage's query, and keeps the
// best `limit` for the next stage. The scoring itself reads the view's rows
// and the collection's text statistics, so the Collection does it
// (Collection::ScoreCandidates, query/execute/multi_stage.cc) through the
// Scorer it is given; the operator orders, cuts and accounts.
//
// Ownership: borrows the ids and scorer for each Run; owns its statistics.
// Thread-safety: none (one per stage of one search). Errors: whatever the
// scorer returns (CANCELLED or DEADLINE_EXCEEDED, a rerank table's read).
#ifndef QUIVER_QUERY_EXECUTE_RESCORE_H_
#define QUIVER_QUERY_EXECUTE_RESCORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/topk.h"
#include "query/execute/result_operator.h"

namespace quiver {

class RescoreOp final : public ResultOperator {
 public:
  // Fills dist[i] (lower is better, as the searches' heaps hold scores) and
  // present[i] (0: candidate i lacks the field and is dropped) for each of
  // `ids`; counts its distance computations and reads into *stats.
  using Scorer = std::function<absl::Status(const std::vector<uint64_t>& ids,
                                            std::vector<float>* dist,
                                            std::vector<uint8_t>* present, OpStats* stats)>;

  // `field` and `scoring` (e.g. "MaxSim") name the stage in explain.
  RescoreOp(std::string field, std::string scoring, uint32_t limit)
      : field_(std::move(field)), scoring_(std::move(scoring)), limit_(limit) {}

  // The best `limit` of `ids` by the scorer, best first (ties by id).
  absl::StatusOr<std::vector<index::Neighbor>> Run(const std::vector<uint64_t>& ids,
                                                   const Scorer& score);

 protected:
  std::string Describe() const override;

 private:
  const std::string field_;
  const std::string scoring_;
  const uint32_t limit_;
  uint64_t dropped_ = 0;  // candidates lacking the field
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_RESCORE_H_
