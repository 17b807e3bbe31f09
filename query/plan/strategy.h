// FilterStrategy: how a filtered search finds its rows in a segment. The
// binder sets it from the request; the planner (query/plan/planner.h) either
// prices the strategies (kAuto) or uses the one forced wherever it applies.
//
// Plain enum and a name function; no state, so safe from any thread.
// FilterStrategyName does not fail (an out-of-range value names kAuto).
#ifndef QUIVER_QUERY_PLAN_STRATEGY_H_
#define QUIVER_QUERY_PLAN_STRATEGY_H_

#include <string_view>

namespace quiver {

enum class FilterStrategy { kAuto, kPreFilter, kFilteredIndex, kPostFilter, kWindow };

// The API's name for it ("FILTER_STRATEGY_AUTO", "PRE_FILTER", ...), for explain.
std::string_view FilterStrategyName(FilterStrategy s);

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_STRATEGY_H_
