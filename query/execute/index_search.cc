#include "query/execute/index_search.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/execute/label_filters.h"

namespace quiver {

std::string KnobsText(const index::SearchParams& p) {
  return absl::StrCat(p.ef ? absl::StrCat(", ef=", p.ef) : "",
                      p.nprobe ? absl::StrCat(", nprobe=", p.nprobe) : "");
}

absl::Status SearchIndexOne(const SegmentRun& run, size_t q, uint32_t k,
                            const index::SearchParams& params, const index::LabelFilter* accept,
                            OpStats* stats, index::TopK* out) {
  index::SearchStats counts;
  index::SearchParams p = params;
  p.stats = &counts;
  index::TopK local(k);
  const absl::Status status =
      run.plan.idx->Search(run.ctx.queries + q * run.ctx.dim, p, accept, &local);
  stats->distances += counts.distances;
  stats->checks += counts.checks;
  QUIVER_RETURN_IF_ERROR(status);
  stats->rows_out += local.size();
  for (const index::Neighbor& nb : local.Take()) {
    out->Push(nb.distance, HitId(run.part, static_cast<uint32_t>(nb.id)));
  }
  return absl::OkStatus();
}

absl::Status IndexSearchOp::Fetch(SegmentRun& run, size_t q, const index::SearchParams& params,
                                  const index::LabelFilter* accept, index::TopK* got) {
  const Stopwatch watch;
  ++stats_.runs;
  index::SearchStats counts;
  index::SearchParams p = params;
  p.stats = &counts;
  const absl::Status status =
      run.plan.idx->Search(run.ctx.queries + q * run.ctx.dim, p, accept, got);
  stats_.distances += counts.distances;
  stats_.checks += counts.checks;
  stats_.rows_out += got->size();
  stats_.micros += watch.Micros();
  return status;
}

absl::Status IndexSearchOp::Execute(SegmentRun& run, index::TopK* topk) {
  // No filter, no deleted row and no row without this field's vector: every
  // label is visible, so the index runs without a per-row check. dead() is
  // published before a view that could see a delete, so 0 here means none
  // at `seq`.
  const int f = static_cast<int>(run.ctx.field);
  RowFilter visible(run.seg, run.rows, run.seq, nullptr, nullptr, f);
  const index::LabelFilter* accept =
      run.seg.AllSearchable(run.ctx.field) ? nullptr : &visible;
  for (size_t q = 0; q < run.ctx.nq; ++q) {
    QUIVER_RETURN_IF_ERROR(run.ctx.stop.Check());
    QUIVER_RETURN_IF_ERROR(
        SearchIndexOne(run, q, run.ctx.k, node().params, accept, &stats_, topk + q));
  }
  return absl::OkStatus();
}

std::string IndexSearchOp::Describe(const SegmentRun& run) const {
  if (under_post_filter_) {
    return absl::StrCat("IndexSearch(", run.plan.index_name, KnobsText(node().params), ")");
  }
  return absl::StrCat("IndexSearch(", run.plan.index_name, ", ", BatchText(run),
                      KnobsText(node().params), ")");
}

}  // namespace quiver
