// RowSetOp: evaluates the filter into the set of the segment's live rows that
// pass it (SegmentRun::set), for the operators above it: an exact scan over
// the set, an index search checking the set, a post-filter's fallback.
//
// Runs at most once per segment (later runs find the set made); a hybrid
// search's fields share one evaluation (SharedSegmentFilter). Records the
// rows checked one by one and the rows in the set.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h). Errors:
// CANCELLED or DEADLINE_EXCEEDED if the request stops during evaluation.
#ifndef QUIVER_QUERY_EXECUTE_ROW_SET_H_
#define QUIVER_QUERY_EXECUTE_ROW_SET_H_

#include <string>

#include "query/execute/operator.h"

namespace quiver {

class RowSetOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  std::string Describe(const SegmentRun& run) const override;
};

// Runs `rowset` (a RowSetOp, or null when the set is not needed) unless the
// set is already made.
absl::Status EnsureRowSet(SegmentRun& run, Operator* rowset);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_ROW_SET_H_
