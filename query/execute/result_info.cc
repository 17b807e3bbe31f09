#include "query/execute/result_info.h"

#include <cstring>

#include "base/status_macros.h"
#include "query/collection.h"
#include "query/plan/segment_filter.h"

namespace quiver {

absl::StatusOr<uint64_t> MatchingCounter::Get() {
  if (count_.has_value()) return *count_;
  uint64_t n = 0;
  for (const View::Part& part : view_.parts) {
    RowSet rows;
    QUIVER_RETURN_IF_ERROR(MatchingRows(*part.segment, part.rows, view_.seq, flt_, stop_, &rows));
    if (field_ >= 0) DropAbsent(*part.segment, static_cast<size_t>(field_), &rows);
    n += rows.Count();
  }
  count_ = n;
  return n;
}

SearchContext SelectQueries(const SearchContext& ctx, const std::vector<size_t>& which,
                            std::vector<float>* queries, std::vector<float>* qnorms) {
  queries->resize(which.size() * ctx.dim);
  qnorms->resize(which.size());
  for (size_t j = 0; j < which.size(); ++j) {
    std::memcpy(queries->data() + j * ctx.dim, ctx.queries + which[j] * ctx.dim,
                ctx.dim * sizeof(float));
    (*qnorms)[j] = ctx.qnorms[which[j]];
  }
  SearchContext c = ctx;
  c.queries = queries->data();
  c.qnorms = qnorms->data();
  c.nq = which.size();
  return c;
}

absl::StatusOr<ListInfo> DescribeList(uint32_t count, uint32_t k, bool exact, bool cut,
                                      MatchingCounter* counter) {
  ListInfo info;
  info.count = count;
  info.exhaustive = exact;
  if (count >= k) return info;
  QUIVER_ASSIGN_OR_RETURN(info.matching, counter->Get());
  if (count >= info.matching) {
    // Every matching point is in the list (a cut list cannot be: the cut
    // dropped a matching point).
    info.exhaustive = true;
    info.shortfall = v1::SHORTFALL_FEWER_MATCHES;
  } else if (cut) {
    info.shortfall = v1::SHORTFALL_SCORE_THRESHOLD;
  } else {
    info.shortfall = v1::SHORTFALL_INDEX_STOPPED_EARLY;
  }
  return info;
}

absl::StatusOr<std::vector<ListInfo>> DescribeLists(const SearchLists& lists, uint32_t k,
                                                    MatchingCounter* counter) {
  std::vector<ListInfo> infos(lists.hits.size());
  for (size_t q = 0; q < infos.size(); ++q) {
    QUIVER_ASSIGN_OR_RETURN(infos[q],
                            DescribeList(static_cast<uint32_t>(lists.hits[q].size()), k,
                                         lists.exact[q] != 0, lists.cut[q] != 0, counter));
  }
  return infos;
}

}  // namespace quiver
