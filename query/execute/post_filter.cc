#include "query/execute/post_filter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/execute/label_filters.h"
#include "query/row_filter.h"

namespace quiver {

absl::Status PostFilterOp::FetchAndFilter(SegmentRun& run, size_t q, index::TopK* out,
                                          bool* fall_back) {
  const SearchContext& ctx = run.ctx;
  const PhysicalPlan& p = run.plan;
  RowFilter visible(run.seg, run.rows, run.seq, nullptr, nullptr,
                    static_cast<int>(ctx.field));
  const index::LabelFilter* accept =
      run.seg.AllSearchable(ctx.field) ? nullptr : &visible;
  const double s = std::max(p.est.selectivity, kMinSelectivity);
  const bool lists = p.idx->shape().kind == index::IndexShape::Kind::kLists;
  const uint32_t nlist = p.idx->shape().nlist;
  uint32_t nprobe = p.choice.post_params.nprobe;
  for (uint32_t fetch = std::max(p.choice.fetch, ctx.k), round = 0;; ++round) {
    ++stats_.fetches;
    index::SearchParams params = p.choice.post_params;
    params.ef = std::max(params.ef, fetch);
    params.nprobe = nprobe;
    index::TopK got(fetch);
    QUIVER_RETURN_IF_ERROR(fetcher()->Fetch(run, q, params, accept, &got));
    const size_t returned = got.size();
    stats_.rows_in += returned;
    index::TopK passed(ctx.k);
    size_t passing = 0;
    for (const index::Neighbor& nb : got.Take()) {
      ++stats_.checks;
      if (RowMatches(*ctx.filter, run.seg, static_cast<uint32_t>(nb.id))) {
        passed.Push(nb.distance, nb.id);
        ++passing;
      }
    }
    // Fewer results than fetched: an HNSW walk has reached every visible
    // row; IVF has only emptied the lists it probed, and probing more would
    // find more.
    const bool exhausted =
        fetch >= run.rows || (returned < fetch && (!lists || nprobe == 0 || nprobe >= nlist));
    if (passed.size() >= ctx.k || exhausted) {
      stats_.rows_out += passed.size();
      for (const index::Neighbor& nb : passed.Take()) {
        out->Push(nb.distance, HitId(run.part, static_cast<uint32_t>(nb.id)));
      }
      return absl::OkStatus();
    }
    if (!adaptive(run)) {
      fetch = static_cast<uint32_t>(std::min<uint64_t>(run.rows, uint64_t{fetch} * 4));
      if (lists && nprobe != 0) nprobe = std::min<uint32_t>(nlist, nprobe * 4);
      continue;
    }
    const double local = static_cast<double>(passing) / std::max<size_t>(returned, 1);
    if (round > 0 || local < s / 4 || returned < fetch) {
      *fall_back = true;
      return absl::OkStatus();
    }
    fetch = static_cast<uint32_t>(std::min<double>(
        run.rows, std::max(2.0 * fetch, std::ceil(ctx.k * 1.25 / local) + 8)));
  }
}

absl::Status PostFilterOp::Execute(SegmentRun& run, index::TopK* topk) {
  const SearchContext& ctx = run.ctx;
  uint32_t fallbacks = 0;
  for (size_t q = 0; q < ctx.nq; ++q) {
    QUIVER_RETURN_IF_ERROR(ctx.stop.Check());
    bool fall_back = false;
    QUIVER_RETURN_IF_ERROR(FetchAndFilter(run, q, topk + q, &fall_back));
    if (!fall_back || fallback() == nullptr) continue;
    ++fallbacks;
    QUIVER_RETURN_IF_ERROR(fallback()->RunOne(run, q, topk + q));
  }
  stats_.fallbacks += fallbacks;
  // A stopped request's counts would teach the planner about work it
  // never finished.
  if (adaptive(run) && ctx.feedback != nullptr && ctx.stop.Check().ok()) {
    ctx.feedback->Add(run.seg.id(), ctx.filter->ToString(), static_cast<uint32_t>(ctx.nq),
                      fallbacks);
  }
  return absl::OkStatus();
}

std::string PostFilterOp::Describe(const SegmentRun& run) const {
  const PhysicalPlan& p = run.plan;
  std::string fallback;
  if (adaptive(run)) {
    fallback = absl::StrCat(", fallback=", std::string(StrategyName(p.choice.fallback)), " for ",
                            stats_.fallbacks, " queries; before: ", p.post_seen.fallbacks, " of ",
                            p.post_seen.attempts);
  }
  return absl::StrCat("PostFilter(", BatchText(run), ", first fetch=", node().fetch,
                      ", fetches=", stats_.fetches, fallback, ")");
}

}  // namespace quiver
