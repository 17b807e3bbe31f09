// The min_results / exhaustive fallback of a single-vector search
// (Collection::FallBack): the queries whose lists came back short of
// min(min_results, k) while more points match the filter are searched
// again, first through the index with ef and nprobe widened, then by an
// exact scan of the matching points, until each has its hits or has seen
// every matching point. Queries whose lists are full are not searched
// again, so a request pays only for its short lists.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/collection.h"
#include "query/execute/limit.h"
#include "query/execute/result_info.h"

namespace quiver {
namespace {

// How far the first step widens the index's search: enough that a graph
// walk or a list scan reaches well past k, without the cost of the exact
// scan that follows if it is not enough.
constexpr uint32_t kWidenFactor = 4;
constexpr uint32_t kMinWidenedEf = 256;
constexpr uint32_t kMinWidenedNprobe = 64;

}  // namespace

absl::Status Collection::SearchAgain(const BoundSearch& q, SearchContext c, const View& view,
                                     const std::vector<size_t>& which,
                                     SearchLists* lists) const {
  std::vector<float> queries, qnorms;
  c = SelectQueries(c, which, &queries, &qnorms);
  bool approximate = false;
  c.approximate = &approximate;
  std::vector<index::TopK> topk(which.size(), index::TopK(q.k));
  QUIVER_RETURN_IF_ERROR(SearchView(c, view, nullptr, &topk));
  LimitOp limit(q.k);
  std::vector<std::vector<index::Neighbor>> again = limit.Run(&topk);
  const float max_distance =
      ThresholdDistance(schema().vectors()[q.field].metric, q.score_threshold);
  for (size_t j = 0; j < which.size(); ++j) {
    const size_t i = which[j];
    const bool cut = q.has_threshold && CutByThreshold(max_distance, &again[j]);
    // An exact list is the answer even when it is no longer (a threshold
    // may leave it short); an approximate one only when it found more.
    if (!approximate || again[j].size() > lists->hits[i].size()) {
      lists->hits[i] = std::move(again[j]);
      lists->cut[i] = cut;
      lists->exact[i] = approximate ? 0 : 1;
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::FallBack(const BoundSearch& q, const SearchContext& ctx,
                                  const View& view, MatchingCounter* counter, SearchLists* lists,
                                  std::string* text) const {
  for (const bool exact : {false, true}) {
    std::vector<size_t> which;
    for (size_t i = 0; i < lists->hits.size(); ++i) {
      if (!lists->exact[i] && lists->hits[i].size() < q.min_results) which.push_back(i);
    }
    if (which.empty()) return absl::OkStatus();
    // Lists that already hold every matching point need nothing more.
    QUIVER_ASSIGN_OR_RETURN(const uint64_t matching, counter->Get());
    const uint64_t want = std::min<uint64_t>(q.min_results, matching);
    which.erase(std::remove_if(which.begin(), which.end(),
                               [&](size_t i) { return lists->hits[i].size() >= want; }),
                which.end());
    if (which.empty()) return absl::OkStatus();
    SearchContext c = ctx;
    if (exact) {
      c.exact = true;
    } else {
      c.params.ef = std::max({ctx.params.ef * kWidenFactor, q.k * kWidenFactor, kMinWidenedEf});
      c.params.nprobe = std::max(ctx.params.nprobe * kWidenFactor, kMinWidenedNprobe);
    }
    size_t before = 0, after = 0;
    for (size_t i : which) before += lists->hits[i].size();
    QUIVER_RETURN_IF_ERROR(SearchAgain(q, c, view, which, lists));
    for (size_t i : which) after += lists->hits[i].size();
    if (text != nullptr) {
      const std::string widened =
          exact ? "" : absl::StrCat(", ef=", c.params.ef, ", nprobe=", c.params.nprobe);
      absl::StrAppend(text, "  Fallback(", exact ? "exact scan" : "widened index", widened,
                      ", queries=", which.size(), ", min_results=", q.min_results,
                      ", matching=", matching, ") hits ", before, " -> ", after, "\n");
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver
