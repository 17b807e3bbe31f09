#include "query/execute/window_search.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "index/kernels.h"
#include "query/plan/planner.h"
#include "query/row_filter.h"

namespace quiver {
namespace {

// Lets through partition labels whose row is inside the window, visible,
// and (when the filter has more than the range) passing the filter.
class PartitionFilter final : public index::LabelFilter {
 public:
  PartitionFilter(const Segment& seg, uint64_t seq, size_t field, const WindowIndex& w,
                  const WindowIndex::Partition& p, const WindowRange& range,
                  const filter::Filter* rest)
      : seg_(seg), seq_(seq), field_(field), w_(w), p_(p), range_(range), rest_(rest) {}
  bool Accept(uint32_t label) const override {
    const uint32_t pos = p_.first + label;
    if (pos < range_.first || pos >= range_.last) return false;
    const uint32_t off = w_.row(p_, label);
    return seg_.VisibleWith(field_, off, seq_) &&
           (rest_ == nullptr || RowMatches(*rest_, seg_, off));
  }

 private:
  const Segment& seg_;
  const uint64_t seq_;
  const size_t field_;
  const WindowIndex& w_;
  const WindowIndex::Partition& p_;
  const WindowRange& range_;
  const filter::Filter* rest_;
};

}  // namespace

void WindowSearchOp::ScanExact(SegmentRun& run, const WindowIndex::Partition& p, uint32_t lo,
                               uint32_t hi, index::TopK* topk) {
  const SearchContext& ctx = run.ctx;
  const WindowIndex& w = *run.plan.window;
  const filter::Filter* rest = run.plan.range.rest ? ctx.filter : nullptr;
  const bool l2 = ctx.similarity == index::Similarity::kL2;
  // The kernel variant is looked up once per scan, not per distance.
  const index::KernelTable& kernels = index::ActiveKernels();
  const auto distance = l2 ? kernels.l2sqr : kernels.dot;
  for (uint32_t pos = lo; pos < hi; ++pos) {
    const uint32_t off = w.row(p, pos - p.first);
    if (!run.seg.VisibleWith(ctx.field, off, run.seq)) continue;
    if (rest != nullptr) {
      ++stats_.checks;
      if (!RowMatches(*rest, run.seg, off)) continue;
    }
    const float* v = run.seg.vector(ctx.field, off);
    for (size_t q = 0; q < ctx.nq; ++q) {
      const float* qv = ctx.queries + q * ctx.dim;
      const float raw = distance(qv, v, ctx.dim);
      const float d = l2 ? raw : -raw;  // lower is nearer: -<q, x> for IP
      topk[q].Push(d, HitId(run.part, off));
    }
    stats_.distances += ctx.nq;
    ++stats_.rows_in;
  }
}

absl::Status WindowSearchOp::SearchPartition(SegmentRun& run, const WindowIndex::Partition& p,
                                             uint32_t lo, uint32_t hi, index::TopK* topk) {
  const SearchContext& ctx = run.ctx;
  const WindowIndex& w = *run.plan.window;
  const WindowRange& range = run.plan.range;
  const filter::Filter* rest = range.rest ? ctx.filter : nullptr;
  const bool whole = lo == p.first && hi == p.last && rest == nullptr &&
                     run.seg.AllSearchable(ctx.field);
  PartitionFilter accept(run.seg, run.seq, ctx.field, w, p, range, rest);
  index::SearchParams params = ctx.params;
  if (!whole) {
    // ef / nprobe raised for the share of the partition that passes.
    PlanInput sub;
    sub.rows = p.last - p.first;
    sub.dim = ctx.dim;
    sub.k = ctx.k;
    sub.has_index = true;
    sub.shape = p.index->shape();
    sub.params = ctx.params;
    // The share of the partition that passes: inside the range, and of
    // those, passing the rest of the filter (as ChoosePlan priced it).
    sub.selectivity = static_cast<double>(hi - lo) / (p.last - p.first) *
                      (range.rest ? run.plan.choice.window_rest_selectivity : 1.0);
    params = ChoosePlan(sub).params;
  }
  index::SearchStats counts;
  params.stats = &counts;
  absl::Status status;
  for (size_t q = 0; q < ctx.nq && status.ok(); ++q) {
    index::TopK local(ctx.k);
    status = p.index->Search(ctx.queries + q * ctx.dim, params, whole ? nullptr : &accept, &local);
    stats_.rows_out += local.size();
    for (const index::Neighbor& nb : local.Take()) {
      topk[q].Push(nb.distance, HitId(run.part, w.row(p, static_cast<uint32_t>(nb.id))));
    }
  }
  stats_.distances += counts.distances;
  stats_.checks += counts.checks;
  return status;
}

absl::Status WindowSearchOp::Execute(SegmentRun& run, index::TopK* topk) {
  const WindowRange& range = run.plan.range;
  const std::vector<bool>& exact = run.plan.choice.window_exact;
  size_t j = 0;  // index into window_exact: overlapping partitions in order
  for (const WindowIndex::Partition& p : run.plan.window->partitions()) {
    if (p.last <= range.first || p.first >= range.last) continue;
    const bool scan = j < exact.size() && exact[j];
    ++j;
    QUIVER_RETURN_IF_ERROR(run.ctx.stop.Check());
    const uint32_t lo = std::max(p.first, range.first), hi = std::min(p.last, range.last);
    if (scan) {
      ScanExact(run, p, lo, hi, topk);
    } else {
      QUIVER_RETURN_IF_ERROR(SearchPartition(run, p, lo, hi, topk));
    }
  }
  return absl::OkStatus();
}

std::string WindowSearchOp::Describe(const SegmentRun& run) const {
  const PhysicalPlan& p = run.plan;
  uint32_t whole = 0, exact = 0, filtered = 0;
  for (size_t j = 0; j < p.in_window.size(); ++j) {
    if (p.choice.window_exact[j]) {
      ++exact;
    } else if (p.in_window[j].inside == p.in_window[j].rows && !p.range.rest) {
      ++whole;
    } else {
      ++filtered;
    }
  }
  return absl::StrCat("WindowSearch(", p.window->Describe(), ", ", BatchText(run),
                      ", partitions=", p.in_window.size(), ": ", whole, " whole, ", filtered,
                      " filtered, ", exact, " exact)");
}

}  // namespace quiver
