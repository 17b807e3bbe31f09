#include "query/execute/filtered_index_search.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/execute/index_search.h"
#include "query/execute/label_filters.h"
#include "query/execute/row_set.h"

namespace quiver {

absl::Status FilteredIndexSearchOp::SearchQueries(SegmentRun& run, size_t first, size_t last,
                                                  index::TopK* topk) {
  QUIVER_RETURN_IF_ERROR(EnsureRowSet(run, rowset()));
  RowSetFilter by_set(run.set);
  RowFilter by_row(run.seg, run.rows, run.seq, run.ctx.filter, &run.ctx.stop,
                   static_cast<int>(run.ctx.field));
  const index::LabelFilter* accept = &by_row;
  if (run.have_set) {
    by_set.Bind();
    accept = &by_set;
  }
  for (size_t q = first; q < last; ++q) {
    QUIVER_RETURN_IF_ERROR(run.ctx.stop.Check());
    QUIVER_RETURN_IF_ERROR(
        SearchIndexOne(run, q, run.ctx.k, node().params, accept, &stats_, topk + (q - first)));
  }
  // A stopped request's walks let every label through (RowFilter): what
  // they found must not count. Decided by what the walk saw, not by a
  // second look at the clock (which may have stepped back).
  if (by_row.stopped()) return absl::DeadlineExceededError("the request's deadline passed");
  return absl::OkStatus();
}

absl::Status FilteredIndexSearchOp::Execute(SegmentRun& run, index::TopK* topk) {
  QUIVER_RETURN_IF_ERROR(EnsureRowSet(run, rowset()));
  if (run.have_set && run.set.Count() == 0) {
    return absl::OkStatus();  // nothing passes: no walk can find anything
  }
  return SearchQueries(run, 0, run.ctx.nq, topk);
}

absl::Status FilteredIndexSearchOp::ExecuteOne(SegmentRun& run, size_t q, index::TopK* out) {
  return SearchQueries(run, q, q + 1, out);
}

std::string FilteredIndexSearchOp::Describe(const SegmentRun& run) const {
  return absl::StrCat("FilteredIndexSearch(", run.plan.index_name, ", ", BatchText(run),
                      KnobsText(node().params), ")");
}

}  // namespace quiver
