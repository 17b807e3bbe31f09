#include "query/plan/segment_planner.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace quiver {
namespace {

// A window index over an attribute the filter puts a range on, built for the
// index this segment searches with, into p->window / range / in_window and
// the PlanInput's window fields.
void FindWindowIndex(const SearchContext& ctx, const Segment& seg, uint32_t rows, PhysicalPlan* p,
                     PlanInput* in) {
  if (p->idx == nullptr || p->attrs == nullptr || p->attrs->rows() != rows) return;
  for (int a : ctx.filter->referenced_attributes()) {
    // (An attribute whose index was turned off has no column to search.)
    if (!p->attrs->indexed(a)) continue;
    std::shared_ptr<const WindowIndex> w = seg.window_index(a, ctx.field);
    if (w == nullptr || !SameIndexSpec(w->spec(), p->idx->spec())) continue;
    const WindowRange r = FindWindow(*ctx.filter, *p->attrs, a);
    if (!r.found) continue;
    p->window = std::move(w);
    p->range = r;
    break;
  }
  if (p->window == nullptr || p->window->partitions().empty()) return;
  const WindowRange& range = p->range;
  in->has_window = true;
  in->window_rest = range.rest;
  in->window_shape = p->window->partitions().front().index->shape();
  const double in_range = static_cast<double>(range.last - range.first) / rows;
  in->window_rest_selectivity = in_range > 0 ? p->est.selectivity / in_range : 1;
  for (const WindowIndex::Partition& part : p->window->partitions()) {
    if (part.last <= range.first || part.first >= range.last) continue;
    const uint32_t inside = std::min(part.last, range.last) - std::max(part.first, range.first);
    in->window.push_back({part.last - part.first, inside});
  }
}

// The filter's estimate for the segment into p->est.
void EstimateInto(const SearchContext& ctx, const Segment& seg, uint32_t rows, PhysicalPlan* p) {
  p->est = p->shared != nullptr ? p->shared->Estimate(*ctx.filter, seg, rows, p->attrs.get())
                                : EstimateFilter(*ctx.filter, seg, rows, p->attrs.get());
}

// The planner's input for a filtered search of the segment (p->est set).
PlanInput FilteredInput(const SearchContext& ctx, uint32_t rows, const PhysicalPlan& p) {
  PlanInput in;
  in.rows = rows;
  in.dim = ctx.dim;
  in.k = ctx.k;
  in.nq = ctx.nq;
  in.has_index = p.idx != nullptr;
  if (p.idx != nullptr) in.shape = p.idx->shape();
  in.params = ctx.params;
  in.selectivity = p.est.selectivity;
  in.indexable = p.est.indexable;
  in.checked_share = p.est.checked_share;
  in.forced = ctx.forced;
  return in;
}

// The strategy for a filtered search of the segment into p->choice
// (p->est set).
void ChooseFiltered(const SearchContext& ctx, const Segment& seg, uint32_t rows, PhysicalPlan* p) {
  if (p->predicted_recall >= 0) {
    // target_recall: the calibration chose between an exact scan of the
    // filtered rows and the filtered index at the knobs it picked for this
    // selectivity; the planner prices and runs that choice. (POST_FILTER
    // and WINDOW_FILTER are left out: their recall is not predicted.)
    PlanInput in = FilteredInput(ctx, rows, *p);
    in.calibrated = true;
    in.forced = p->idx != nullptr ? FilterStrategy::kFilteredIndex : FilterStrategy::kPreFilter;
    const std::string reason = p->idx != nullptr ? "target_recall: the calibrated setting"
                                                 : "target_recall: an exact scan";
    p->choice = ChoosePlan(in);
    p->choice.reason = reason;
    if (p->est.exact && p->est.selectivity == 0) {
      p->choice.strategy = Strategy::kEmpty;
      p->choice.reason = "the attribute index counts no matching row";
    }
    return;
  }
  PlanInput in;
  in.rows = rows;
  in.dim = ctx.dim;
  in.k = ctx.k;
  in.nq = ctx.nq;
  in.has_index = p->idx != nullptr;
  if (p->idx != nullptr) in.shape = p->idx->shape();
  in.params = ctx.params;
  in.selectivity = p->est.selectivity;
  in.indexable = p->est.indexable;
  in.checked_share = p->est.checked_share;
  in.forced = ctx.forced;
  if (ctx.feedback != nullptr) {
    const PlanFeedback::Counts seen = ctx.feedback->Get(seg.id(), ctx.filter->ToString());
    if (seen.attempts > 0) {
      // The prior counts as a few queries, so one unlucky query does not
      // decide.
      const double prior = kPostFilterFailShare * (1 - std::min(1.0, p->est.selectivity));
      in.post_fail_share = (seen.fallbacks + 4 * prior) / (seen.attempts + 4);
      p->post_seen = seen;
    }
  }
  FindWindowIndex(ctx, seg, rows, p, &in);
  p->choice = ChoosePlan(in);
  p->in_window = in.window;
  if (p->est.exact && p->est.selectivity == 0) {
    p->choice.strategy = Strategy::kEmpty;
    p->choice.reason = "the attribute index counts no matching row";
  }
}

PlanNode Node(OpKind kind, uint32_t k = 0, std::vector<PlanNode> children = {}) {
  PlanNode n;
  n.kind = kind;
  n.k = k;
  n.children = std::move(children);
  return n;
}

// The filter's row set (est_rows: the rows expected to pass).
PlanNode RowSetNode(const PhysicalPlan& p, uint32_t rows) {
  PlanNode n = Node(OpKind::kRowSet, 0, {Node(OpKind::kFilter)});
  n.est_rows = p.est.selectivity * rows;
  return n;
}

// The operator tree of the candidate search for a strategy.
PlanNode TreeFor(Strategy s, const PhysicalPlan& p, uint32_t rows) {
  const PlanChoice& c = p.choice;
  const uint32_t k = p.ctx.k;
  switch (s) {
    case Strategy::kEmpty:
      return Node(OpKind::kEmpty, k, {Node(OpKind::kFilter)});
    case Strategy::kExactScan: {
      PlanNode n = Node(OpKind::kExactScan, k);
      n.est_rows = rows;
      return n;
    }
    case Strategy::kPreFilter: {
      PlanNode n = Node(OpKind::kExactScan, k, {RowSetNode(p, rows)});
      n.est_rows = p.est.selectivity * rows;
      n.est_ns = c.pre_ns;
      return n;
    }
    case Strategy::kIndex: {
      PlanNode n = Node(OpKind::kIndexSearch, k);
      n.params = c.params;
      return n;
    }
    case Strategy::kFilteredIndex: {
      PlanNode n = Node(OpKind::kFilteredIndexSearch, k,
                        {c.materialize ? RowSetNode(p, rows)
                                       : Node(OpKind::kCheckRows, 0, {Node(OpKind::kFilter)})});
      n.params = c.params;
      n.est_ns = c.filtered_ns;
      return n;
    }
    case Strategy::kWindow: {
      PlanNode n = Node(OpKind::kWindowSearch, k,
                        {Node(OpKind::kWindow, 0, {Node(OpKind::kFilter)})});
      n.params = p.ctx.params;
      n.est_ns = c.window_ns;
      return n;
    }
    case Strategy::kPostFilter: {
      PlanNode index = Node(OpKind::kIndexSearch, c.fetch);
      index.params = c.post_params;
      PlanNode n = Node(OpKind::kPostFilter, k, {std::move(index), Node(OpKind::kFilter)});
      n.fetch = c.fetch;
      n.est_ns = c.post_ns;
      // Chosen by the planner, a query whose fetches find too few passing
      // falls back to the planner's next choice: its operator is a child.
      if (p.ctx.forced != FilterStrategy::kPostFilter) {
        n.children.push_back(TreeFor(c.fallback, p, rows));
      }
      return n;
    }
  }
  return Node(OpKind::kEmpty, k);
}

}  // namespace

uint32_t RefineCandidates(uint32_t k, float refine_factor, const index::VectorIndex& idx) {
  float rf = refine_factor;
  if (rf <= 0) {
    // Defaults measured on Fashion-MNIST 60k (bench/disk_bench): what keeps
    // recall@10 >= 0.95 at the index's default search parameters.
    const std::string& type = idx.spec().type;
    rf = type.find("PQ") != std::string::npos ? kDefaultRefinePq : kDefaultRefineSq;
  }
  const double n = std::ceil(static_cast<double>(k) * std::max(1.0f, rf));
  return static_cast<uint32_t>(std::min<double>(n, kMaxRefineCandidates));
}

namespace {

// target_recall: the calibration's choice for the segment into p (its
// knobs into p->ctx, or no index when an exact scan is chosen), with
// p->est set first when there is a filter.
void ChooseForRecall(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                     const std::shared_ptr<const RecallCalibration>& cal, PhysicalPlan* p) {
  double s = 1;
  if (ctx.filter != nullptr) {
    EstimateInto(ctx, seg, rows, p);
    s = p->est.selectivity;
  }
  // What scanning the matching rows exactly costs per query.
  double exact_ns = 0;
  if (ctx.late_interaction) {
    // Exact MaxSim, at the measured cost of one MaxSim (a contiguous scan
    // costs about what scattered reranks do: index/maxsim.h).
    exact_ns = cal != nullptr ? s * rows * cal->ns_per_rerank() : 0;
  } else if (ctx.filter != nullptr) {
    PlanInput in = FilteredInput(ctx, rows, *p);
    in.forced = FilterStrategy::kPreFilter;
    exact_ns = ChoosePlan(in).pre_ns / std::max<size_t>(ctx.nq, 1);
  } else {
    const CostModel m;
    exact_ns = static_cast<double>(rows) * ctx.dim * m.scan_ns_per_float;
  }
  RecallCalibration::Choice choice;
  std::string how;
  if (cal == nullptr) {
    choice.exact = true;
    how = ctx.late_interaction && p->idx->approximate()
              ? "exact scan (recall 1): a compressed index over encodings is not calibrated"
              : "exact scan (recall 1): the index is not calibrated yet";
  } else {
    choice = cal->Choose(ctx.k, s, ctx.target_recall, exact_ns);
    how = absl::StrCat(choice.ToString(), "; ", cal->Describe());
  }
  p->predicted_recall = choice.exact ? 1.0 : choice.predicted;
  p->recall_choice = absl::StrCat("target_recall ", ctx.target_recall, ": ", how);
  if (choice.exact) {
    p->idx = nullptr;
    return;
  }
  p->ctx.params.ef = choice.params.ef;
  p->ctx.params.nprobe = choice.params.nprobe;
  if (ctx.late_interaction) {
    // The refine factor is the late-interaction one: the segment returns
    // k x factor candidates for the caller's MaxSim rerank.
    p->ctx.k = std::min(RefineCandidates(ctx.k, choice.refine_factor, *p->idx), rows);
    p->k = p->ctx.k;
    p->ctx.refine_factor = 0;
    return;
  }
  p->ctx.refine_factor = choice.refine_factor;
}

}  // namespace

PhysicalPlan PlanSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows, size_t part) {
  PhysicalPlan p;
  p.ctx = ctx;
  p.k = ctx.k;
  Segment::CalibratedIndex ci;
  if (!ctx.exact) ci = seg.calibrated_index(ctx.field);
  p.idx = ci.index;
  // An index covers the rows present when it was built; the rows of a
  // sealed segment never change, so it covers all of them or is not used.
  if (p.idx != nullptr && p.idx->size() != rows) p.idx = nullptr;
  p.index_name = p.idx != nullptr ? p.idx->Describe() : "none";
  if (ctx.filter != nullptr) {
    p.attrs = seg.attr_index();
    if (ctx.shared_filter != nullptr) p.shared = &ctx.shared_filter[part];
  }
  if (ctx.target_recall > 0 && p.idx != nullptr) ChooseForRecall(ctx, seg, rows, ci.calibration, &p);
  const bool rerank = p.idx != nullptr && p.idx->approximate();
  if (rerank) {
    // A compressed index ranks by estimated distances: ask it for k *
    // refine_factor candidates, then rerank them exactly.
    p.ctx.k = RefineCandidates(ctx.k, p.ctx.refine_factor, *p.idx);
    // IVF at its default nprobe may probe fewer rows than the candidates
    // wanted (late interaction asks for hundreds): probe lists enough to
    // hold them on average. An nprobe the request sets is kept.
    const index::IndexShape shape = p.idx->shape();
    if (shape.kind == index::IndexShape::Kind::kLists && shape.nlist > 0 &&
        p.ctx.params.nprobe == 0) {
      const auto need = static_cast<uint32_t>(std::ceil(
          static_cast<double>(p.ctx.k) * shape.nlist / std::max<uint32_t>(rows, 1)));
      p.ctx.params.nprobe = std::min(shape.nlist, std::max(shape.default_nprobe, need));
    }
  }
  if (ctx.filter != nullptr) {
    if (p.predicted_recall < 0) EstimateInto(p.ctx, seg, rows, &p);
    ChooseFiltered(p.ctx, seg, rows, &p);
  } else if (p.predicted_recall >= 0) {
    p.choice.strategy = p.idx != nullptr ? Strategy::kIndex : Strategy::kExactScan;
    p.choice.params = p.ctx.params;
    p.choice.reason = p.idx != nullptr ? "target_recall: the calibrated setting"
                                       : "target_recall: an exact scan";
  } else {
    p.choice.strategy = p.idx != nullptr ? Strategy::kIndex : Strategy::kExactScan;
    p.choice.params = p.ctx.params;
  }
  PlanNode candidates = TreeFor(p.choice.strategy, p, rows);
  const Strategy s = p.choice.strategy;
  const bool exact =
      s == Strategy::kPreFilter || s == Strategy::kExactScan || s == Strategy::kEmpty;
  if (rerank && !exact) {
    p.root = Node(OpKind::kRerank, ctx.k, {std::move(candidates)});
    p.root.fetch = p.ctx.k;
  } else {
    // Exact strategies computed exact distances already: their best k of
    // the widened candidates are the answer.
    p.widened = rerank;
    p.root = std::move(candidates);
  }
  return p;
}

}  // namespace quiver
