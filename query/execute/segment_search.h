// SearchSegment: one segment's part of a search: plan it, build its
// operators, run them, and (with explain) report what they did.
//
// The plan comes from query/plan/segment_planner.h (a tree of PlanNodes);
// OperatorTree makes one operator per node (one class per file in this
// folder: exact_scan, index_search, filtered_index_search, post_filter,
// window_search, rerank, row_set); the root runs, each operator recording
// its own counts and time; the explain message is filled from the tree they
// filled: the operator lines with their "| actual:" lines, and the
// segment's totals.
//
// Ownership: the operators live for one SearchSegment call; hits go into the
// caller's TopKs, explain into the caller's message. A DISK segment's
// rerank may still be pending in ctx.rerank when this returns (its
// RerankQueue::Finish completes it). Thread-safety: reentrant; one call
// reads one segment and writes only the TopKs and message it is given.
// Errors: CANCELLED or DEADLINE_EXCEEDED once ctx.stop says so; index and
// rerank-table read errors.
#ifndef QUIVER_QUERY_EXECUTE_SEGMENT_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_SEGMENT_SEARCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "index/topk.h"
#include "query/execute/operator.h"
#include "query/execute/rerank.h"
#include "query/plan/search_context.h"
#include "query/plan/segment_filter.h"
#include "query/plan/segment_planner.h"
#include "query/segment.h"

namespace quiver {

// The operators of one segment's plan, one per node of plan.root.
class OperatorTree {
 public:
  explicit OperatorTree(const PhysicalPlan& plan);
  Operator* root() const { return root_; }

 private:
  Operator* Build(const PlanNode& node, bool under_post_filter);
  std::vector<std::unique_ptr<Operator>> ops_;
  Operator* root_ = nullptr;
};

// Searches rows [0, rows) of `seg` visible at `seq`, pushing hits (ids
// HitId(part, offset)) into topk[q] for each query. If `plan` is set, fills
// it (explain). CANCELLED or DEADLINE_EXCEEDED once ctx.stop says so.
absl::Status SearchSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, index::TopK* topk, v1::SegmentPlan* plan);

// SearchSegment's second half: runs `p` (PlanSegment's plan for the same
// segment, rows and part; planning took plan_us, for explain), pushing
// hits into topk as SearchSegment does. For callers that look at the plan
// first (late interaction with target_recall runs exact MaxSim itself
// where the plan has no index).
absl::Status RunSegmentPlan(const PhysicalPlan& p, double plan_us, const Segment& seg,
                            uint32_t rows, uint64_t seq, size_t part, index::TopK* topk,
                            v1::SegmentPlan* plan);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_SEGMENT_SEARCH_H_
