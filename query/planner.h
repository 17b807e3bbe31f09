// Compatibility header: the planner and the per-segment executor moved to
// query/plan/ (cost model, strategy choice, a segment's operator tree) and
// query/execute/ (one operator per file, SearchSegment). Callers written
// against the old single header keep compiling through this one; new code
// includes what it uses directly.
//
// Ownership, thread-safety, errors: see the headers below.
#ifndef QUIVER_QUERY_PLANNER_H_
#define QUIVER_QUERY_PLANNER_H_

#include "query/execute/rerank.h"          // IWYU pragma: export
#include "query/execute/segment_search.h"  // IWYU pragma: export
#include "query/plan/planner.h"            // IWYU pragma: export
#include "query/plan/search_context.h"     // IWYU pragma: export
#include "query/plan/segment_filter.h"     // IWYU pragma: export
#include "query/plan/segment_planner.h"    // IWYU pragma: export

#endif  // QUIVER_QUERY_PLANNER_H_
