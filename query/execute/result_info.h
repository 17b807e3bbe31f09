// Honest result lists: what each list of hits says about itself
// (SearchResult / FieldResult count, exhaustive, shortfall,
// matching_points), the score-threshold cut of range search, and the count
// of matching points those need.
//
// The bookkeeping costs nothing when a list is full: the matching points
// are counted (a filter evaluation over the view) only once a list of a
// request comes back short, and then once per request (MatchingCounter).
//
// Ownership: MatchingCounter borrows the view, filter and stop token of its
// request, which outlive it. Thread-safety: MatchingCounter is not
// thread-safe (one per request, used by the thread that fills the
// response); the free functions are reentrant. Errors: counting stops with
// CANCELLED or DEADLINE_EXCEEDED when the request is stopped.
#ifndef QUIVER_QUERY_EXECUTE_RESULT_INFO_H_
#define QUIVER_QUERY_EXECUTE_RESULT_INFO_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "index/topk.h"
#include "query/filter/filter.h"
#include "query/plan/search_context.h"
#include "query/stop.h"
#include "quiver/v1/search.pb.h"
#include "storage/schema.h"

namespace quiver {

struct View;  // query/collection.h

// The largest internal distance (squared L2, or a negated similarity, as
// the searches' top-k heaps hold them) that score_threshold admits.
inline float ThresholdDistance(Metric metric, float score_threshold) {
  return metric == Metric::kL2 ? score_threshold : -score_threshold;
}

// Drops the hits (best first) past `max_distance`; true if any was dropped.
inline bool CutByThreshold(float max_distance, std::vector<index::Neighbor>* hits) {
  size_t keep = hits->size();
  while (keep > 0 && (*hits)[keep - 1].distance > max_distance) --keep;
  const bool cut = keep < hits->size();
  hits->resize(keep);
  return cut;
}

// The points of a view that are visible and pass a filter (null: all),
// counted on first use and remembered.
class MatchingCounter {
 public:
  // `field` >= 0: only points that have that field's vector count (an
  // optional field's searches skip the others); -1: every matching point.
  MatchingCounter(const View& view, const filter::Filter* flt, const StopToken& stop,
                  int field = -1)
      : view_(view), flt_(flt), stop_(stop), field_(field) {}
  absl::StatusOr<uint64_t> Get();

 private:
  const View& view_;
  const filter::Filter* flt_;
  const StopToken& stop_;
  const int field_;
  std::optional<uint64_t> count_;
};

// A single-field search's lists as they are completed: per query its hits
// (best first), whether the search that found them considered every
// matching point, and whether score_threshold dropped hits.
struct SearchLists {
  std::vector<std::vector<index::Neighbor>> hits;
  std::vector<uint8_t> exact;
  std::vector<uint8_t> cut;
};

// `ctx` restricted to its queries `which`, whose vectors and norms are
// copied into *queries and *qnorms (which must outlive the result).
SearchContext SelectQueries(const SearchContext& ctx, const std::vector<size_t>& which,
                            std::vector<float>* queries, std::vector<float>* qnorms);

// What a list says about itself.
struct ListInfo {
  uint32_t count = 0;
  bool exhaustive = false;
  v1::Shortfall shortfall = v1::SHORTFALL_NONE;
  uint64_t matching = 0;  // 0: not counted
};

// Describes a list of `count` hits asked for `k`: `exact` if the search
// considered every matching point, `cut` if score_threshold dropped hits.
// Counts the matching points (through *counter) only when count < k.
absl::StatusOr<ListInfo> DescribeList(uint32_t count, uint32_t k, bool exact, bool cut,
                                      MatchingCounter* counter);

// DescribeList for each list.
absl::StatusOr<std::vector<ListInfo>> DescribeLists(const SearchLists& lists, uint32_t k,
                                                    MatchingCounter* counter);

template <typename Result>  // v1::SearchResult or v1::FieldResult
void SetListInfo(const ListInfo& info, Result* r) {
  r->set_count(info.count);
  r->set_exhaustive(info.exhaustive);
  r->set_shortfall(info.shortfall);
  r->set_matching_points(info.matching);
}

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_RESULT_INFO_H_
