#include "query/execute/segment_search.h"

#include <utility>

#include "base/status_macros.h"
#include "query/execute/exact_scan.h"
#include "query/execute/filtered_index_search.h"
#include "query/execute/index_search.h"
#include "query/execute/post_filter.h"
#include "query/execute/row_set.h"
#include "query/execute/window_search.h"
#include "query/query_stats.h"
#include "quiver/v1/search.pb.h"

namespace quiver {

OperatorTree::OperatorTree(const PhysicalPlan& plan) { root_ = Build(plan.root, false); }

Operator* OperatorTree::Build(const PlanNode& node, bool under_post_filter) {
  std::unique_ptr<Operator> op;
  switch (node.kind) {
    case OpKind::kExactScan: op = std::make_unique<ExactScanOp>(node); break;
    case OpKind::kIndexSearch:
      op = std::make_unique<IndexSearchOp>(node, under_post_filter);
      break;
    case OpKind::kFilteredIndexSearch: op = std::make_unique<FilteredIndexSearchOp>(node); break;
    case OpKind::kPostFilter: op = std::make_unique<PostFilterOp>(node); break;
    case OpKind::kWindowSearch: op = std::make_unique<WindowSearchOp>(node); break;
    case OpKind::kRerank: op = std::make_unique<RerankOp>(node); break;
    case OpKind::kRowSet: op = std::make_unique<RowSetOp>(node); break;
    case OpKind::kEmpty:
    case OpKind::kCheckRows:
    case OpKind::kFilter:
    case OpKind::kWindow: op = std::make_unique<NoteOp>(node); break;
  }
  Operator* raw = op.get();
  ops_.push_back(std::move(op));
  for (const PlanNode& c : node.children) {
    raw->AddChild(Build(c, node.kind == OpKind::kPostFilter));
  }
  return raw;
}

namespace {

// Fills the explain message from the plan and what its operators did.
absl::Status FillExplain(SegmentRun& run, const Operator& root, double plan_us,
                         v1::SegmentPlan* plan) {
  const PhysicalPlan& p = run.plan;
  const Segment& seg = run.seg;
  plan->set_segment_id(seg.id());
  plan->set_field(seg.schema().vectors()[p.ctx.field].name);
  plan->set_state(!seg.sealed()                          ? "GROWING"
                  : seg.index(p.ctx.field) != nullptr ? "INDEXED"
                                                      : "SEALED");
  plan->set_index(p.index_name);
  plan->set_rows(run.rows);
  uint32_t live = 0;
  for (uint32_t off = 0; off < run.rows; ++off) live += seg.Visible(off, run.seq);
  plan->set_live_rows(live);
  plan->set_strategy(std::string(StrategyName(p.choice.strategy)));
  plan->set_reason(p.choice.reason);
  if (p.predicted_recall >= 0) {
    plan->set_predicted_recall(p.predicted_recall);
    plan->set_recall_choice(p.recall_choice);
  }
  if (p.ctx.filter != nullptr) {
    plan->set_estimated_selectivity(p.est.selectivity);
    // Over all rows, deleted or not, like the estimate: the row set the
    // search used serves when no row is deleted.
    uint32_t matching = 0;
    if (run.have_set && seg.AllSearchable(p.ctx.field)) {
      matching = run.set.Count();
    } else {
      RowSet all;
      uint64_t unused = 0;
      QUIVER_RETURN_IF_ERROR(EvaluateFilter(*p.ctx.filter, seg, run.rows, p.attrs.get(), &all,
                                            &unused, p.ctx.stop));
      matching = all.Count();
    }
    run.actual_selectivity = run.rows == 0 ? 0 : static_cast<double>(matching) / run.rows;
    plan->set_actual_selectivity(run.actual_selectivity);
  }
  std::string text;
  root.ToExplain(run, 0, &text);
  plan->set_plan(std::move(text));
  uint64_t distances = 0, checks = 0;
  root.SumWork(&distances, &checks);
  plan->set_distances(distances);
  plan->set_filter_checks(checks);
  const double filter_us = root.FilterMicros();
  plan->set_plan_micros(plan_us);
  plan->set_filter_micros(filter_us);
  plan->set_search_micros(std::max(0.0, root.stats().micros - filter_us));
  if (root.node().kind == OpKind::kRerank) {
    plan->set_rerank_candidates(root.stats().rows_in);
    plan->set_rerank_reads(root.stats().reads);
  }
  return absl::OkStatus();
}

// Whether the plan considers every visible, matching row of the segment.
bool ExactPlan(const PhysicalPlan& p) {
  switch (p.choice.strategy) {
    case Strategy::kExactScan:
    case Strategy::kPreFilter:
    case Strategy::kEmpty:
      return true;
    default:
      return p.idx != nullptr && p.idx->spec().type == "FLAT";
  }
}

}  // namespace

absl::Status SearchSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, index::TopK* topk, v1::SegmentPlan* plan) {
  const Stopwatch plan_watch;
  const PhysicalPlan p = PlanSegment(ctx, seg, rows, part);
  return RunSegmentPlan(p, plan_watch.Micros(), seg, rows, seq, part, topk, plan);
}

absl::Status RunSegmentPlan(const PhysicalPlan& p, double plan_us, const Segment& seg,
                            uint32_t rows, uint64_t seq, size_t part, index::TopK* topk,
                            v1::SegmentPlan* plan) {
  const SearchContext& ctx = p.ctx;
  if (ctx.approximate != nullptr && !ExactPlan(p)) *ctx.approximate = true;
  if (ctx.recall != nullptr) {
    // Where the true neighbours are, in expectation: the rows expected to
    // match. A segment without an index is scanned exactly.
    const double matching = ctx.filter != nullptr ? p.est.selectivity * rows : rows;
    ctx.recall->Add(p.predicted_recall >= 0 ? p.predicted_recall : 1.0, matching);
  }
  OperatorTree tree(p);
  SegmentRun run(p, seg, rows, seq, part);
  run.explain = plan;
  absl::Status status;
  if (p.widened) {
    // An exact strategy over a compressed index's segment: its best k of
    // the widened candidates are exact already.
    std::vector<index::TopK> found(ctx.nq, index::TopK(p.ctx.k));
    status = tree.root()->Run(run, found.data());
    for (size_t q = 0; q < ctx.nq && status.ok(); ++q) {
      const std::vector<index::Neighbor> cand = found[q].Take();
      for (size_t i = 0; i < cand.size() && i < p.k; ++i) {
        topk[q].Push(cand[i].distance, cand[i].id);
      }
    }
  } else {
    status = tree.root()->Run(run, topk);
  }
  // A stopped request's results never count, whichever operator noticed.
  if (status.ok()) status = ctx.stop.Check();
  if (status.ok() && ctx.stats != nullptr) ctx.stats->RecordSegment(p, *tree.root());
  if (!status.ok() || plan == nullptr) return status;
  return FillExplain(run, *tree.root(), plan_us, plan);
}

}  // namespace quiver
