#include "query/execute/row_set.h"

#include "base/status_macros.h"
#include "query/plan/segment_filter.h"

namespace quiver {

absl::Status RowSetOp::Execute(SegmentRun& run, index::TopK*) {
  if (run.have_set) return absl::OkStatus();
  const PhysicalPlan& p = run.plan;
  if (p.shared != nullptr) {
    QUIVER_RETURN_IF_ERROR(p.shared->Rows(*run.ctx.filter, run.seg, run.rows, run.seq,
                                          p.attrs.get(), run.ctx.stop, &stats_.checks,
                                          &run.set));
  } else {
    QUIVER_RETURN_IF_ERROR(EvaluateFilter(*run.ctx.filter, run.seg, run.rows, p.attrs.get(),
                                          &run.set, &stats_.checks, run.ctx.stop));
    DropInvisible(run.seg, run.seq, &run.set);
  }
  // The set may be shared by the fields of a hybrid search; this run's copy
  // drops the rows without a vector of its own field.
  DropAbsent(run.seg, run.ctx.field, &run.set);
  run.have_set = true;
  stats_.rows_in = run.rows;
  stats_.rows_out = run.set.Count();
  return absl::OkStatus();
}

std::string RowSetOp::Describe(const SegmentRun&) const { return "RowSet(live, passing)"; }

absl::Status EnsureRowSet(SegmentRun& run, Operator* rowset) {
  if (run.have_set || rowset == nullptr) return absl::OkStatus();
  return rowset->Run(run, nullptr);
}

}  // namespace quiver
