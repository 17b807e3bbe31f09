// IndexSearchOp: the segment's ANN index without the filter, query by query
// (the INDEX strategy, when the request has no filter), or as POST_FILTER's
// fetch (Fetch), which asks it for more than k per query.
//
// Deleted rows are kept out by a visibility check on each label; with none
// deleted the index runs with no per-row check. Records the distances the
// index computed, its label checks and the results it gave out.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h); the index
// is the PhysicalPlan's. Errors: CANCELLED or DEADLINE_EXCEEDED between
// queries; index errors as the index reports them.
#ifndef QUIVER_QUERY_EXECUTE_INDEX_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_INDEX_SEARCH_H_

#include <string>

#include "index/vector_index.h"
#include "query/execute/operator.h"

namespace quiver {

// Searches the plan's index for query q with `params` and `accept` (null:
// every label), pushing up to k hits (as HitIds) into *out; adds the
// index's counts to *stats and the hits to stats->rows_out.
absl::Status SearchIndexOne(const SegmentRun& run, size_t q, uint32_t k,
                            const index::SearchParams& params, const index::LabelFilter* accept,
                            OpStats* stats, index::TopK* out);

class IndexSearchOp final : public Operator {
 public:
  // `under_post_filter`: POST_FILTER's fetch, described without k.
  IndexSearchOp(const PlanNode& node, bool under_post_filter)
      : Operator(node), under_post_filter_(under_post_filter) {}

  // POST_FILTER: the nearest `got->k()` of query q with `params`, as index
  // labels (not HitIds), into *got; counted as one run.
  absl::Status Fetch(SegmentRun& run, size_t q, const index::SearchParams& params,
                     const index::LabelFilter* accept, index::TopK* got);

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  const bool under_post_filter_;
};

// ", ef=96, nprobe=13": the knobs an index operator searches with.
std::string KnobsText(const index::SearchParams& p);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_INDEX_SEARCH_H_
