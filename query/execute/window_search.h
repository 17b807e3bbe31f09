// WindowSearchOp: WINDOW_FILTER. For a range on an attribute declared
// `window`, searches the partitions of the segment's window index
// (query/window_index.h) that the range overlaps: a partition inside the
// range (and no other condition) is searched whole without a filter; the
// others are searched with the range (and the rest of the filter) checked
// inline, or scanned exactly over their rows in range, as the planner priced
// them.
//
// Its child (Window) describes the range. Records per partition kind how
// many it searched, the distances, the rows checked one by one and the
// results given out.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h); the
// window index is the PhysicalPlan's. Errors: CANCELLED or DEADLINE_EXCEEDED
// between partitions; index errors.
#ifndef QUIVER_QUERY_EXECUTE_WINDOW_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_WINDOW_SEARCH_H_

#include <string>

#include "query/execute/operator.h"
#include "query/window_index.h"

namespace quiver {

class WindowSearchOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  // The rows of partition `p` in [lo, hi) by exact distances.
  void ScanExact(SegmentRun& run, const WindowIndex::Partition& p, uint32_t lo, uint32_t hi,
                 index::TopK* topk);
  // Partition `p`'s index, whole or with the range and rest checked inline.
  absl::Status SearchPartition(SegmentRun& run, const WindowIndex::Partition& p, uint32_t lo,
                               uint32_t hi, index::TopK* topk);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_WINDOW_SEARCH_H_
