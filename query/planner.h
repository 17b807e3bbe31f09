// The filter planner and the per-segment search executor.
//
// A search fans out over the segments of a View; for each segment,
// SearchSegment picks how to find the k nearest rows that are visible and
// pass the filter, and runs it:
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
// (SearchParams.filter_strategy).
//
// With explain, each segment reports its plan as a printed operator tree,
// the estimated and counted selectivity, and what it did.
//
// Thread-safety: everything here is reentrant; a SearchSegment call reads
// the segment and writes only the TopKs and explain message it is given.
#ifndef QUIVER_QUERY_PLANNER_H_
#define QUIVER_QUERY_PLANNER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "index/topk.h"
#include "index/vector_index.h"
#include "query/attr_index.h"
#include "query/filter/filter.h"
#include "query/segment.h"
#include "query/stop.h"
#include "base/mutex.h"
#include "storage/rerank_table.h"
#include "quiver/v1/search.pb.h"

namespace quiver {

// Search hits carry (part << 32 | offset) until they are resolved to points.
inline uint64_t HitId(size_t part, uint32_t offset) {
  return (static_cast<uint64_t>(part) << 32) | offset;
}

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
  double selectivity = 1;        // estimated share of rows passing
  bool indexable = false;        // the filter can be evaluated from attribute indexes alone
  double checked_share = 1;      // share of rows read one by one to evaluate it
  v1::FilterStrategy forced = v1::FILTER_STRATEGY_AUTO;
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

// A filter's work in one segment, shared by the fields of a hybrid search:
// the selectivity estimate and the row set of visible passing rows are
// computed once per segment, by whichever field's search needs them first,
// so one filter plan serves every field. Thread-safe.
class SharedSegmentFilter {
 public:
  FilterEstimate Estimate(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                          const SegmentAttrIndex* attrs);
  // A copy of the set (8 KiB at most) into *out; adds to *checks the rows
  // read one by one if this call evaluated it. CANCELLED or
  // DEADLINE_EXCEEDED if `stop` ended the evaluation (nothing is cached).
  absl::Status Rows(const filter::Filter& flt, const Segment& seg, uint32_t rows, uint64_t seq,
                    const SegmentAttrIndex* attrs, const StopToken& stop, uint64_t* checks,
                    RowSet* out);

 private:
  Mutex mu_;
  bool have_estimate_ ABSL_GUARDED_BY(mu_) = false;
  FilterEstimate estimate_ ABSL_GUARDED_BY(mu_);
  bool have_set_ ABSL_GUARDED_BY(mu_) = false;
  RowSet set_ ABSL_GUARDED_BY(mu_);
};

struct SearchContext;

// Default refine factors for compressed indexes (candidates reranked =
// k x factor), and the most candidates one query reranks per segment.
inline constexpr float kDefaultRefineSq = 2;
inline constexpr float kDefaultRefinePq = 8;
inline constexpr uint32_t kMaxRefineCandidates = 65536;
// Late interaction: points reranked by exact MaxSim = k x this by default
// (bench/muvera_tune: 500 candidates give recall@10 0.967 on Fashion-MNIST
// patch sets at the default encoding).
inline constexpr float kDefaultMultiRefine = 50;
// TOKENS multi-vector fields: each query vector fetches its k x this nearest
// token vectors; their points are the candidates.
inline constexpr float kDefaultTokenRefine = 10;
// Candidates a search of `idx` (approximate()) reranks for k results:
// k x refine_factor (0: the default for the index's kind), at least k.
uint32_t RefineCandidates(uint32_t k, float refine_factor, const index::VectorIndex& idx);

// Reranks waiting for their rerank-table reads: SearchSegment submits a
// segment's reads and moves on to the next segment; Finish waits for them
// and pushes the exact results. Not thread-safe: one per search.
class RerankQueue {
 public:
  struct Pending {
    // Declared first, destroyed last: the read uses the table's file.
    std::shared_ptr<const storage::RerankTable> table;
    std::unique_ptr<storage::RerankRead> read;
    const SearchContext* ctx;
    const Segment* seg;
    size_t part;
    std::vector<std::vector<index::Neighbor>> cand;  // per query, read order
    index::TopK* topk;
    v1::SegmentPlan* plan;
  };
  void Add(Pending p) { pending_.push_back(std::move(p)); }
  // Which of query q's candidates from the next segment (best first, by
  // estimated distance) are worth reranking: those that would still be among
  // the best `keep` estimates over every segment seen so far. Later
  // segments read only what can still matter, so a search over many
  // segments reads about k x refine records, not that many per segment.
  // Returns how many of the leading candidates to read.
  size_t Admit(size_t q, const std::vector<index::Neighbor>& cand, uint32_t keep);
  // Waits for every read and reranks; the first error, if any.
  absl::Status Finish();

 private:
  std::vector<Pending> pending_;
  std::vector<index::TopK> best_;  // per query: the best estimates so far
};

// Per request, shared by all segments.
struct SearchContext {
  size_t field = 0;
  uint32_t dim = 0;
  uint32_t k = 0;
  const float* queries = nullptr;  // nq * dim (normalized for COSINE)
  const float* qnorms = nullptr;   // nq squared norms
  size_t nq = 0;
  index::Similarity similarity = index::Similarity::kL2;
  index::SearchParams params;      // ef / nprobe as requested
  bool exact = false;              // no ANN index
  const filter::Filter* filter = nullptr;  // null: no filter
  v1::FilterStrategy forced = v1::FILTER_STRATEGY_AUTO;
  // Deadline and cancellation, checked between segments, chunks of an
  // exact scan, queries, and every few hundred rows of filter evaluation.
  StopToken stop;
  PlanFeedback* feedback = nullptr;  // the collection's; may be null
  // Hybrid search: one entry per part of the view, shared by the fields'
  // searches. Null: each search evaluates the filter itself.
  SharedSegmentFilter* shared_filter = nullptr;
  // Compressed indexes: candidates reranked = k x refine_factor (0: the
  // kind's default).
  float refine_factor = 0;
  // DISK fields: where reranks wait for their reads (null: each segment
  // waits for its own).
  RerankQueue* rerank = nullptr;
};

// Searches rows [0, rows) of `seg` visible at `seq`, pushing hits (ids
// HitId(part, offset)) into topk[q] for each query. If `plan` is set, fills
// it (explain). CANCELLED or DEADLINE_EXCEEDED once ctx.stop says so.
absl::Status SearchSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, index::TopK* topk, v1::SegmentPlan* plan);

// The rows of [0, rows) visible at `seq` that pass `flt` (null: all
// visible), through the attribute indexes where they help. For delete by
// filter and count.
RowSet MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt);
// The same into *out, ending early with CANCELLED or DEADLINE_EXCEEDED
// (and *out unusable) once `stop` says so.
absl::Status MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq,
                          const filter::Filter* flt, const StopToken& stop, RowSet* out);

}  // namespace quiver

#endif  // QUIVER_QUERY_PLANNER_H_
