// FilteredIndexSearchOp: the segment's ANN index with the filter checked
// inline (FILTERED_INDEX, and POST_FILTER's fallback one query at a time):
// HNSW walks through rejected nodes, IVF skips them in its list scan, with
// the ef / nprobe the planner raised for the filter's selectivity.
//
// Its child says how a label is checked: a RowSet child materializes the
// filter once and the index tests bits; a CheckRows child means each visited
// row's attributes are read (cheaper when the walk visits few rows).
// Records the index's distances and label checks and the results given out.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h). Errors:
// CANCELLED or DEADLINE_EXCEEDED between queries, or when a row-by-row walk
// noticed the request stopped (its results never count); index errors.
#ifndef QUIVER_QUERY_EXECUTE_FILTERED_INDEX_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_FILTERED_INDEX_SEARCH_H_

#include <string>

#include "query/execute/operator.h"

namespace quiver {

class FilteredIndexSearchOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  absl::Status ExecuteOne(SegmentRun& run, size_t q, index::TopK* out) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  // The RowSet child, or null when rows are checked one by one.
  Operator* rowset() const {
    return num_children() > 0 && child(0)->node().kind == OpKind::kRowSet ? child(0) : nullptr;
  }
  // Queries [first, last) through the index with the filter inline.
  absl::Status SearchQueries(SegmentRun& run, size_t first, size_t last, index::TopK* topk);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_FILTERED_INDEX_SEARCH_H_
