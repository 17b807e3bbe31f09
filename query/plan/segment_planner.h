// PlanSegment: the physical plan of one segment for one query batch.
//
// Gathers what the planner needs to know about the segment (its index and
// shape, the filter's estimate through the attribute indexes, a window index
// the filter's range can use, POST_FILTER's record in PlanFeedback), asks
// ChoosePlan (query/plan/planner.h) for a strategy, and builds the operator
// tree (query/plan/plan_node.h) that runs it: for a compressed index, a
// Rerank over the candidate search, with k and nprobe widened to the
// candidates wanted.
//
// Ownership: the PhysicalPlan holds shared references to the segment's index,
// attribute index and window index, so they outlive the search even if the
// segment swaps them. Thread-safety: reentrant; reads the segment, and the
// context's PlanFeedback and SharedSegmentFilter (both thread-safe).
// Errors: none (every segment has a plan).
#ifndef QUIVER_QUERY_PLAN_SEGMENT_PLANNER_H_
#define QUIVER_QUERY_PLAN_SEGMENT_PLANNER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/vector_index.h"
#include "query/attr_index.h"
#include "query/plan/plan_node.h"
#include "query/plan/planner.h"
#include "query/plan/search_context.h"
#include "query/plan/segment_filter.h"
#include "query/recall_calibration.h"
#include "query/segment.h"
#include "query/window_index.h"

namespace quiver {

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

struct PhysicalPlan {
  // The context the candidate search runs with: the request's, with k (and
  // IVF's nprobe) widened when a compressed index's candidates are reranked.
  SearchContext ctx;
  uint32_t k = 0;        // results per query the segment delivers (the request's k)
  bool widened = false;  // ctx.k > k: the candidates are cut to k afterwards
  std::shared_ptr<const index::VectorIndex> idx;  // null: exact distances
  std::string index_name;                         // idx->Describe(), or "none"
  std::shared_ptr<const SegmentAttrIndex> attrs;  // with a filter
  SharedSegmentFilter* shared = nullptr;          // hybrid search's, for this part
  FilterEstimate est;
  PlanChoice choice;
  PlanFeedback::Counts post_seen;  // POST_FILTER's record before this search
  std::shared_ptr<const WindowIndex> window;
  WindowRange range;
  std::vector<PlanInput::WindowPart> in_window;
  PlanNode root;
  // target_recall: the segment's predicted recall@k (1 for an exact scan)
  // and what was chosen, for explain; -1 and empty without it.
  double predicted_recall = -1;
  std::string recall_choice;
};

// The plan for rows [0, rows) of `seg`, part `part` of the view.
PhysicalPlan PlanSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows, size_t part);

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_SEGMENT_PLANNER_H_
