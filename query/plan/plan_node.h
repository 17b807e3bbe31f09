// PlanNode: one operator of a segment's physical plan, as the planner
// decides it (kind, parameters, estimates), before anything runs.
//
// The planner (query/plan/segment_planner.h) builds a small tree of these
// per segment and query batch; query/execute/segment_search.h turns each
// node into an operator (query/execute/operator.h) that runs it and records
// what it actually did, and explain prints the tree those operators filled.
// Some kinds only describe (kFilter, kWindow, kCheckRows): they do no work
// of their own and appear in explain under the operator that uses them.
//
// Ownership: a node owns its children by value. Thread-safety: plain data,
// read-only once built. Errors: none.
#ifndef QUIVER_QUERY_PLAN_PLAN_NODE_H_
#define QUIVER_QUERY_PLAN_PLAN_NODE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "index/vector_index.h"

namespace quiver {

enum class OpKind : uint8_t {
  kEmpty,                // the filter matches no row: nothing to search
  kExactScan,            // exact distances over every visible row, or a RowSet child's rows
  kIndexSearch,          // the ANN index, no filter
  kFilteredIndexSearch,  // the ANN index with the filter checked inline
  kPostFilter,           // the ANN index unfiltered, then the filter; per-query fallback
  kWindowSearch,         // the window index's partitions overlapping a range
  kRerank,               // exact distances for a compressed index's candidates
  kRowSet,               // evaluates the filter into a set of live, passing rows
  kCheckRows,            // describes: the filter read row by row during a walk
  kFilter,               // describes: the filter, its estimate and count
  kWindow,               // describes: the window range
};
std::string_view OpKindName(OpKind kind);

struct PlanNode {
  OpKind kind = OpKind::kEmpty;
  uint32_t k = 0;               // results per query
  index::SearchParams params;   // index operators: the knobs searched with
  uint32_t fetch = 0;           // kPostFilter: first fetch; kRerank: candidates per query
  double est_rows = -1;         // rows the planner expects it to touch (<0: not estimated)
  double est_ns = 0;            // its estimated cost for the batch (0: not priced)
  std::vector<PlanNode> children;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_PLAN_NODE_H_
