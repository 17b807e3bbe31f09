// SearchContext: one field's search request as the planner and the executor
// see it, shared by every segment of the search.
//
// Built per request by the caller (Collection::MakeContext, in
// query/execute/search.cc) from the bound
// request; holds no proto. Ownership: the context points at the caller's
// queries, filter, feedback, shared filters and rerank queue, which outlive
// the search. Thread-safety: read-only while segments are searched (the
// objects it points at are thread-safe where shared: PlanFeedback,
// SharedSegmentFilter). Errors: none here.
#ifndef QUIVER_QUERY_PLAN_SEARCH_CONTEXT_H_
#define QUIVER_QUERY_PLAN_SEARCH_CONTEXT_H_

#include <cstddef>
#include <cstdint>

#include "index/vector_index.h"
#include "query/filter/filter.h"
#include "query/plan/planner.h"
#include "query/stop.h"

namespace quiver {

class SharedSegmentFilter;  // query/plan/segment_filter.h
class RerankQueue;          // query/execute/rerank.h
struct QueryStats;          // query/query_stats.h

// The predicted recall of a search over several segments: each segment's
// prediction weighted by its share of the rows expected to match (where
// the true neighbours are, in expectation). Segments of one search are
// searched one after another, so plain fields serve.
struct RecallTally {
  double weighted = 0;
  double weight = 0;
  void Add(double predicted, double rows) {
    weighted += predicted * rows;
    weight += rows;
  }
  // 1 when no segment held matching rows.
  double Get() const { return weight > 0 ? weighted / weight : 1.0; }
};

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
  FilterStrategy forced = FilterStrategy::kAuto;
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
  // Where each segment search counts what it did (metrics); may be null.
  QueryStats* stats = nullptr;
  // Set to true by a segment searched through an ANN index that may miss
  // matching rows (not an exact scan, pre-filter or FLAT index), so the
  // results can say whether they are exhaustive. May be null. Segments of
  // one search are searched one after another, so a plain bool serves.
  bool* approximate = nullptr;
  // Ask each segment for this recall@k instead of ef / nprobe /
  // refine_factor (0: off; query/recall_calibration.h).
  float target_recall = 0;
  // With target_recall: where segments add their predicted recall, weighted
  // by the rows expected to match. May be null.
  RecallTally* recall = nullptr;
  // The field searched is a multi-vector field's MUVERA encodings (late
  // interaction; k is the request's). With target_recall the calibration
  // measured the whole search (candidates reranked by exact MaxSim): its
  // refine factor sets the candidates a segment returns (k x factor), and
  // where it picks an exact scan PlanSegment leaves the plan without an
  // index; the caller then scores the segment by exact MaxSim, since an
  // exact scan of encodings is not an exact late-interaction search.
  bool late_interaction = false;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_SEARCH_CONTEXT_H_
