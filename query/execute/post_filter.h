// PostFilterOp: POST_FILTER. Searches the index without the filter,
// fetching about k / selectivity results per query, keeps those that pass,
// and fetches more when too few did.
//
// Forced by the request, it fetches 4x more while fewer than k passed and
// the index had more to give. Chosen by the planner, it fetches again only
// if the share that passed is in line with the estimate: far less means the
// filter avoids this query's neighbourhood, where more fetching goes on
// failing, so the query falls back to the planner's next choice (its third
// child, run for that query alone). How many queries fell back goes to
// PlanFeedback, so a filter that keeps failing stops being post-filtered.
//
// Children: the IndexSearch it fetches from, the Filter it checks, and (when
// the planner chose it) the fallback. Records fetches, fallbacks, rows
// checked against the filter and results given out.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h). Errors:
// CANCELLED or DEADLINE_EXCEEDED between queries; index errors.
#ifndef QUIVER_QUERY_EXECUTE_POST_FILTER_H_
#define QUIVER_QUERY_EXECUTE_POST_FILTER_H_

#include <string>

#include "query/execute/index_search.h"
#include "query/execute/operator.h"

namespace quiver {

class PostFilterOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  IndexSearchOp* fetcher() const { return static_cast<IndexSearchOp*>(child(0)); }
  Operator* fallback() const { return num_children() > 2 ? child(2) : nullptr; }
  bool adaptive(const SegmentRun& run) const {
    return run.ctx.forced != FilterStrategy::kPostFilter;
  }
  // Query q's fetches; *fall_back when it should fall back instead.
  absl::Status FetchAndFilter(SegmentRun& run, size_t q, index::TopK* out, bool* fall_back);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_POST_FILTER_H_
