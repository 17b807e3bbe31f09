#include "query/execute/operator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "query/execute/result_operator.h"

namespace quiver {

void OpStats::Add(const OpStats& o) {
  runs += o.runs;
  rows_in += o.rows_in;
  rows_out += o.rows_out;
  distances += o.distances;
  checks += o.checks;
  reads += o.reads;
  fetches += o.fetches;
  fallbacks += o.fallbacks;
  micros += o.micros;
}

absl::Status Operator::Run(SegmentRun& run, index::TopK* topk) {
  const Stopwatch watch;
  ++stats_.runs;
  absl::Status status = Execute(run, topk);
  stats_.micros += watch.Micros();
  return status;
}

absl::Status Operator::RunOne(SegmentRun& run, size_t q, index::TopK* out) {
  const Stopwatch watch;
  ++stats_.runs;
  absl::Status status = ExecuteOne(run, q, out);
  stats_.micros += watch.Micros();
  return status;
}

absl::Status Operator::ExecuteOne(SegmentRun&, size_t, index::TopK*) {
  return absl::UnimplementedError(
      absl::StrCat(std::string(OpKindName(node_->kind)), " does not run one query at a time"));
}

std::string Operator::BatchText(const SegmentRun& run) const {
  return absl::StrCat("k=", node_->k, ", queries=", run.ctx.nq);
}

void Operator::ToExplain(const SegmentRun& run, int depth, std::string* out) const {
  const std::string indent(2 * depth, ' ');
  absl::StrAppend(out, indent, Describe(run), "\n");
  if (stats_.runs > 0) absl::StrAppend(out, indent, "  ", ActualText(stats_), "\n");
  for (const Operator* c : children_) c->ToExplain(run, depth + 1, out);
}

void Operator::SumWork(uint64_t* distances, uint64_t* checks) const {
  *distances += stats_.distances;
  *checks += stats_.checks;
  for (const Operator* c : children_) c->SumWork(distances, checks);
}

double Operator::FilterMicros() const {
  double us = node_->kind == OpKind::kRowSet ? stats_.micros : 0;
  for (const Operator* c : children_) us += c->FilterMicros();
  return us;
}

std::string NoteOp::Describe(const SegmentRun& run) const {
  switch (node().kind) {
    case OpKind::kFilter: {
      const FilterEstimate& est = run.plan.est;
      return absl::StrFormat("%s(%s) est=%.4f%s actual=%.4f",
                             est.indexable ? "IndexFilter" : "RowFilter",
                             run.ctx.filter->ToString(), est.selectivity,
                             est.exact ? " (counted)" : "", run.actual_selectivity);
    }
    case OpKind::kCheckRows:
      return "CheckRows(live)";
    case OpKind::kWindow: {
      const WindowRange& r = run.plan.range;
      return absl::StrCat("Window(positions ", r.first, "..", r.last,
                          r.rest ? ", rest checked per row" : "", ")");
    }
    default:
      return absl::StrCat(std::string(OpKindName(node().kind)), "()");
  }
}

}  // namespace quiver
