// The filter planner's cost model and strategy choice.
//
// A search fans out over the segments of a View; for each segment the
// planner picks how to find the k nearest rows that are visible and pass the
// filter:
//   - PRE_FILTER: evaluate the filter to a RowSet (attribute indexes where
//     the attributes are indexed, query/attr_index.h) and compute exact
//     distances over that set only. Also how segments without an ANN index
//     (the growing one, FLAT fields, indexes not built yet) are searched.
//   - FILTERED_INDEX: the ANN index with the filter checked inline (HNSW
//     walks through rejected nodes, IVF skips them in its list scan), ef or
//     nprobe raised as selectivity falls; the filter is checked against a
//     materialized RowSet when that is cheaper than reading rows.
//   - POST_FILTER: the ANN index without the filter, fetching k / selectivity
//     results, keeping those that pass, and fetching more if too few did.
//   - WINDOW_FILTER: for a range on an attribute declared `window`, the
//     partitions of the segment's window index that the range overlaps
//     (query/window_index.h): unfiltered where covered whole.
// The choice comes from the filter's estimated selectivity (EstimateFilter)
// and a cost model in nanoseconds (CostModel), calibrated on this machine
// class by bench/planner_calibrate. A request may force a strategy
// (FilterStrategy, bound from SearchParams.filter_strategy).
//
// ChoosePlan is a pure function of its input; query/plan/segment_planner.h
// gathers that input for a segment and turns the choice into an operator
// tree (query/plan/plan_node.h) that query/execute/ runs.
//
// Ownership: plain values. Thread-safety: ChoosePlan is reentrant;
// PlanFeedback is thread-safe. Errors: none (a plan is always possible).
#ifndef QUIVER_QUERY_PLAN_PLANNER_H_
#define QUIVER_QUERY_PLAN_PLANNER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "index/vector_index.h"
#include "query/plan/strategy.h"

namespace quiver {


// Selectivity below which costs stop growing: the walk cannot cost more than
// visiting every row, and estimates this small are sample noise anyway.
inline constexpr double kMinSelectivity = 1e-6;

// The costs assume the filter is independent of where a query's neighbours
// are. A filter correlated with the vectors (a class label) can leave none
// of the fetched neighbours passing; POST_FILTER then falls back to another
// strategy for that query. The planner prices that as this share of queries
// (times the share the filter rejects: a filter that passes all cannot fail)
// paying for both.
inline constexpr double kPostFilterFailShare = 0.15;

enum class Strategy {
  kIndex, kExactScan, kPreFilter, kFilteredIndex, kPostFilter, kWindow, kEmpty
};
std::string_view StrategyName(Strategy s);

// Nanosecond costs of the planner's unit operations, and the shape of an
// HNSW search. Defaults were measured on this machine class (2 cores, AVX2,
// Fashion-MNIST 784-d, single queries) by bench/planner_calibrate, which
// prints these measurements next to the model's estimates.
struct CostModel {
  double scan_ns_per_float = 0.125;   // IVF list scan: contiguous rows (~100 ns per 784-d row)
  // Exact distance to a row picked from a set: per float, plus per row
  // (lookup, call, top-k): ~110 ns per 784-d row, ~40 ns per 32-d row.
  double gather_ns_per_float = 0.10;
  double gather_ns_per_row = 35;
  double chunk_ns = 400;              // pre-filter: one chunk with a passing row (its mask)
  // HNSW, per visited node: its vector (cache-cold) and the heap and
  // visited-set work: ~285 ns at 784-d, ~110 ns at 32-d.
  double graph_ns_per_float = 0.25;
  double graph_ns_per_visit = 90;
  // Filter::Matches on one row: in a scan over the rows in order, and on a
  // row picked by label during an index search, where its attributes are
  // cache misses (measured: IVF with the filter read per row took 720 us
  // for 2,283 rows against 245 us without).
  double match_scan_ns = 10;
  double match_random_ns = 200;
  double bit_ns = 1.0;                // RowSet test
  double set_ns = 1.0;                // one matching row set from an attribute index
  double word_ns = 0.4;               // one 64-row word of a RowSet pass
  // HNSW visits (distance computations) of an unfiltered search with
  // candidate list ef: graph_visits_scale * ef ^ graph_visits_exponent
  // (M = 16: 278 at ef 16, 615 at 64, 1462 at 256).
  double graph_visits_scale = 60;
  double graph_visits_exponent = 0.58;
  // A filtered walk that accepts a share s of the nodes visits about
  // visits(ef) / s ^ filtered_visits_exponent (uncorrelated filters:
  // 963 at 50%, 4402 at 10%, 20898 at 2%, from 615 unfiltered).
  double filtered_visits_exponent = 0.85;
};

// What the planner knows about one segment and query batch.
struct PlanInput {
  uint32_t rows = 0;
  uint32_t dim = 0;
  uint32_t k = 0;
  size_t nq = 1;
  bool has_index = false;     // an ANN index covers the segment
  index::IndexShape shape;    // its shape, when it does
  index::SearchParams params;                 // as requested (ef, nprobe)
  // The params were chosen by a recall calibration for this selectivity
  // (query/recall_calibration.h): FILTERED_INDEX searches with them as they
  // are, without the raise for selectivity.
  bool calibrated = false;
  double selectivity = 1;        // estimated share of rows passing
  bool indexable = false;        // the filter can be evaluated from attribute indexes alone
  double checked_share = 1;      // share of rows read one by one to evaluate it
  FilterStrategy forced = FilterStrategy::kAuto;
  // A window index applies (query/window_index.h): the partitions the
  // filter's range overlaps, their index shape, and whether the filter has
  // conditions besides the range.
  struct WindowPart {
    uint32_t rows = 0;    // rows in the partition
    uint32_t inside = 0;  // of those, inside the range
  };
  std::vector<WindowPart> window;
  bool has_window = false;
  bool window_rest = false;
  double window_rest_selectivity = 1;  // share of in-range rows the rest passes
  // POST_FILTER's observed share of queries that fell back (PlanFeedback);
  // negative: none observed, use the prior.
  double post_fail_share = -1;
  index::IndexShape window_shape;
};

struct PlanChoice {
  Strategy strategy = Strategy::kPreFilter;
  index::SearchParams params;  // ef / nprobe to search with
  uint32_t fetch = 0;          // POST_FILTER: first fetch per query
  index::SearchParams post_params;  // POST_FILTER: ef / nprobe (ef raised to the fetch)
  bool materialize = true;     // FILTERED_INDEX: check a RowSet, not rows
  // POST_FILTER chosen by the planner: what a query whose fetches find too
  // few passing falls back to (PRE_FILTER or FILTERED_INDEX).
  Strategy fallback = Strategy::kPreFilter;
  // WINDOW_FILTER, per overlapping partition: scan its rows in the range
  // exactly (true) or search its index (false).
  std::vector<bool> window_exact;
  double window_rest_selectivity = 1;  // share of in-range rows the rest passes
  double pre_ns = 0, filtered_ns = 0, post_ns = 0, window_ns = 0;  // estimated (0: n/a)
  std::string reason;
};

// The strategy for one segment. Pure function of its input (tests assert it).
PlanChoice ChoosePlan(const PlanInput& in, const CostModel& model = CostModel());

// What POST_FILTER, when the planner chose it, has met per segment and
// filter: how many queries fell back because too few fetched neighbours
// passed. A filter correlated with the vectors (a class label) fails for
// most queries; the planner reads the observed share instead of its prior
// and stops post-filtering it. Bounded in size; old counts fade.
// Thread-safe.
class PlanFeedback {
 public:
  struct Counts {
    double attempts = 0;
    double fallbacks = 0;
  };
  Counts Get(uint64_t segment, const std::string& filter) const;
  void Add(uint64_t segment, const std::string& filter, uint32_t attempts, uint32_t fallbacks);

 private:
  static constexpr size_t kMaxEntries = 4096;
  static constexpr double kHorizon = 256;
  static std::string Key(uint64_t segment, const std::string& filter);
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, Counts> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_PLANNER_H_
