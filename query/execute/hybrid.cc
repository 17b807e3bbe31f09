// Hybrid search (a bound SearchRequest.field_queries): each field searched
// over one view, in parallel on the search pool, with one filter plan
// shared by the fields; the ranked lists fused (RRF, weighted or DBSF) into
// one (the Fuse operator) and cut to k (Limit). A multi-stage search
// (stages) re-scores the fused candidates stage by stage (Rescore,
// scoring in multi_stage.cc) before the cut.
#include <algorithm>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/collection.h"
#include "query/execute/fuse.h"
#include "query/execute/limit.h"
#include "query/execute/rescore.h"
#include "query/execute/response.h"
#include "query/execute/result_info.h"
#include "query/execute/sparse_search.h"
#include "query/task_pool.h"

namespace quiver {

// A hybrid search under way: the bound request and what each field's
// search produced.
struct Collection::HybridRun {
  explicit HybridRun(const BoundHybridSearch& q) : q(q) {}
  const BoundHybridSearch& q;
  // Per field: its top k, explain, time, and late-interaction text.
  std::vector<std::vector<index::TopK>> topk;
  std::vector<v1::Explain> explains;
  std::vector<double> field_micros;
  std::vector<std::string> multi_text;
  std::vector<uint8_t> exact;  // per field: its search considered every matching point
  std::vector<RankedList> lists;
  // The operators over the fields' lists, bottom up: fusion, the cut to
  // the candidates and the stages of a multi-stage search, the limit to k.
  std::unique_ptr<FuseOp> fuse;
  std::unique_ptr<LimitOp> candidates;
  std::vector<std::unique_ptr<RescoreOp>> stages;
  std::unique_ptr<LimitOp> limit;
};

absl::Status Collection::SearchHybrid(const BoundHybridSearch& q, const StopToken& stop,
                                      v1::SearchResponse* resp) const {
  HybridRun run(q);
  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckHybridEstimate(q, view));
  QUIVER_RETURN_IF_ERROR(RunHybridFields(view, stop, &run));

  const size_t nf = q.fields.size();
  run.lists.resize(nf);
  for (size_t i = 0; i < nf; ++i) {
    run.lists[i].hits = run.topk[i][0].Take();
    run.lists[i].weight = q.fields[i].weight;
  }
  run.fuse = std::make_unique<FuseOp>(q.fusion, q.rrf_k);
  run.limit = std::make_unique<LimitOp>(q.k);
  MatchingCounter counter(view, q.filter.get(), stop);
  ResponseBudget budget(options_.max_response_bytes);
  v1::SearchResult* result = resp->add_results();
  if (q.stages.empty()) {
    const std::vector<FusedHit> fused = run.limit->Run(run.fuse->Run(run.lists));
    const bool all_exact =
        std::all_of(run.exact.begin(), run.exact.end(), [](uint8_t e) { return e != 0; });
    QUIVER_ASSIGN_OR_RETURN(
        const ListInfo info,
        DescribeList(static_cast<uint32_t>(fused.size()), q.k, all_exact, false, &counter));
    SetListInfo(info, result);
    for (const FusedHit& h : fused) {
      QUIVER_RETURN_IF_ERROR(FillHit(view, h.id, static_cast<float>(h.score), q.output.attributes,
                                     q.output.with_vectors, &budget, result->add_hits()));
    }
  } else {
    std::vector<index::Neighbor> hits;
    QUIVER_RETURN_IF_ERROR(RunStages(view, stop, &run, &hits));
    hits = run.limit->Run(std::move(hits));
    // The last stage scored its candidates exactly, but only those: the
    // list is complete only if it holds every matching point (of those
    // with the field, for a vector field, whose searches skip the rest).
    const BoundFieldQuery& last = q.stages.back().query;
    MatchingCounter stage_counter(view, q.filter.get(), stop,
                                  last.term_query() ? -1 : last.field);
    QUIVER_ASSIGN_OR_RETURN(
        const ListInfo info,
        DescribeList(static_cast<uint32_t>(hits.size()), q.k, false, false, &stage_counter));
    SetListInfo(info, result);
    QUIVER_RETURN_IF_ERROR(
        FillPartHits(view, last, hits, q.output, &budget, result->mutable_hits()));
  }
  if (q.with_field_results) {
    for (size_t i = 0; i < nf; ++i) {
      v1::FieldResult* fr = resp->add_field_results();
      fr->set_field(FieldName(q.fields[i]));
      ListInfo field_info;
      if (q.fields[i].term_query()) {
        field_info = SparseListInfo(run.lists[i].hits.size(), q.fields[i].k);
      } else {
        QUIVER_ASSIGN_OR_RETURN(
            field_info,
            DescribeList(static_cast<uint32_t>(run.lists[i].hits.size()), q.fields[i].k,
                         run.exact[i] != 0, false, &counter));
      }
      SetListInfo(field_info, fr);
      QUIVER_RETURN_IF_ERROR(FillPartHits(view, q.fields[i], run.lists[i].hits, q.output,
                                          &budget, fr->mutable_hits()));
    }
  }
  if (q.explain) {
    v1::Explain* explain = resp->mutable_explain();
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    HybridExplain(&run, explain);
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }
  return absl::OkStatus();
}

absl::Status Collection::RunStages(const View& view, const StopToken& stop, HybridRun* run,
                                   std::vector<index::Neighbor>* hits) const {
  const BoundHybridSearch& q = run->q;
  std::vector<FusedHit> fused = run->fuse->Run(run->lists);
  if (q.candidates > 0) {
    run->candidates = std::make_unique<LimitOp>(q.candidates);
    fused = run->candidates->Run(std::move(fused));
  }
  std::vector<uint64_t> ids;
  ids.reserve(fused.size());
  for (const FusedHit& h : fused) ids.push_back(h.id);
  for (const BoundStage& stage : q.stages) {
    run->stages.push_back(std::make_unique<RescoreOp>(FieldName(stage.query),
                                                      StageScoring(stage.query), stage.limit));
    QUIVER_ASSIGN_OR_RETURN(
        *hits, run->stages.back()->Run(
                   ids, [&](const std::vector<uint64_t>& in, std::vector<float>* dist,
                            std::vector<uint8_t>* present, OpStats* stats) {
                     return ScoreCandidates(view, stage.query, stop, in, dist, present, stats);
                   }));
    ids.clear();
    for (const index::Neighbor& nb : *hits) ids.push_back(nb.id);
  }
  return absl::OkStatus();
}

absl::Status Collection::FillPartHits(const View& view, const BoundFieldQuery& q,
                                      const std::vector<index::Neighbor>& hits,
                                      const BoundOutput& output, ResponseBudget* budget,
                                      google::protobuf::RepeatedPtrField<v1::Hit>* out) const {
  if (q.term_query()) {
    // Similarities, negated in the heaps.
    for (const index::Neighbor& nb : hits) {
      QUIVER_RETURN_IF_ERROR(FillHit(view, nb.id, -nb.distance, output.attributes,
                                     output.with_vectors, budget, out->Add()));
    }
    return absl::OkStatus();
  }
  return FillHits(view, schema().vectors()[q.field], hits, output.attributes,
                  output.with_vectors, budget, out);
}

const std::string& Collection::FieldName(const BoundFieldQuery& part) const {
  if (part.text_attr >= 0) return schema().attributes()[part.text_attr].name;
  return part.sparse_field >= 0 ? schema().sparse()[part.sparse_field].name
                                : schema().vectors()[part.field].name;
}

absl::Status Collection::CheckHybridEstimate(const BoundHybridSearch& q, const View& view) const {
  // The fused list, and each field's own list if asked for.
  const size_t nf = q.fields.size();
  const size_t explain_segments = q.explain ? view.parts.size() * nf : 0;
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(1, q.k, q.output.attributes, q.output.with_vectors,
                                             explain_segments, q.filter_bytes));
  if (!q.with_field_results) return absl::OkStatus();
  uint32_t field_k = 0;
  for (const BoundFieldQuery& part : q.fields) field_k = std::max(field_k, part.k);
  return CheckSearchEstimate(nf + 1, std::max(field_k, q.k), q.output.attributes,
                             q.output.with_vectors, explain_segments, q.filter_bytes);
}

absl::Status Collection::RunHybridFields(const View& view, const StopToken& stop,
                                         HybridRun* run) const {
  const BoundHybridSearch& q = run->q;
  const size_t nf = q.fields.size();
  // One filter plan for every field: the estimate and row set of each
  // segment are computed once, by the first field that needs them.
  std::vector<SharedSegmentFilter> shared(q.filter != nullptr ? view.parts.size() : 0);
  run->topk.resize(nf);
  run->explains.resize(q.explain ? nf : 0);
  run->field_micros.resize(nf);
  run->multi_text.resize(nf);
  run->exact.assign(nf, 0);
  std::vector<absl::Status> statuses(nf);
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < nf; ++i) {
    tasks.push_back([&, i] {
      const auto t0 = absl::Now();
      const BoundFieldQuery& part = q.fields[i];
      v1::Explain* explain = q.explain ? &run->explains[i] : nullptr;
      run->topk[i].assign(1, index::TopK(part.k));
      if (part.text_attr >= 0) {
        statuses[i] = TextSearchView(part.text_attr, {part.text}, part.k, part.params.exact,
                                     q.filter.get(), view, stop,
                                     shared.empty() ? nullptr : shared.data(), explain,
                                     &run->topk[i]);
        run->exact[i] = 1;
      } else if (part.sparse_field >= 0) {
        statuses[i] = SparseSearchView(part.sparse_field, {part.sparse}, part.k,
                                       part.params.exact, q.filter.get(), view, stop,
                                       shared.empty() ? nullptr : shared.data(), explain,
                                       &run->topk[i]);
        run->exact[i] = 1;  // sparse searches are exact
      } else if (!part.sets.empty()) {
        statuses[i] = SearchMultiView(part.field, part.sets, part.k, part.params, q.filter.get(),
                                      view, stop, explain, &run->topk[i], &run->multi_text[i]);
        run->exact[i] = part.params.exact;
      } else {
        SearchContext ctx = MakeContext(part.field, part.k, part.queries, part.qnorms,
                                        part.params, q.filter.get(), stop);
        if (!shared.empty()) ctx.shared_filter = shared.data();
        bool approximate = false;
        ctx.approximate = &approximate;
        statuses[i] = SearchView(ctx, view, explain, &run->topk[i]);
        run->exact[i] = !approximate;
      }
      run->field_micros[i] = absl::ToDoubleMicroseconds(absl::Now() - t0);
    });
  }
  if (options_.search_pool != nullptr) options_.search_pool->RunAll(tasks);
  else for (const auto& t : tasks) t();
  for (const absl::Status& st : statuses) QUIVER_RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

void Collection::HybridExplain(HybridRun* run, v1::Explain* explain) const {
  const BoundHybridSearch& q = run->q;
  const size_t nf = q.fields.size();
  const std::string filter =
      q.filter ? absl::StrCat("\"", q.filter->ToString(), "\"") : "none";
  std::string text =
      q.stages.empty()
          ? absl::StrCat("HybridSearch(collection=\"", name_, "\", k=", q.k, ", fields=", nf,
                         ", filter=", filter, ")\n")
          : absl::StrCat("MultiStageSearch(collection=\"", name_, "\", k=", q.k,
                         ", fields=", nf, ", stages=", q.stages.size(), ", filter=", filter,
                         ")\n");
  // Top down: each operator's input one level deeper.
  std::string indent = "  ";
  run->limit->ToExplain(indent, &text);
  for (auto it = run->stages.rbegin(); it != run->stages.rend(); ++it) {
    indent += "  ";
    (*it)->ToExplain(indent, &text);
  }
  if (run->candidates != nullptr) {
    indent += "  ";
    run->candidates->ToExplain(indent, &text);
  }
  indent += "  ";
  run->fuse->ToExplain(indent, &text);
  const std::string field_indent = indent + "  ";
  for (size_t i = 0; i < nf; ++i) {
    const BoundFieldQuery& part = q.fields[i];
    absl::StrAppend(&text, field_indent, "Field(\"", FieldName(part), "\", k=",
                    part.k, ", weight=", part.weight,
                    ", strategy=", std::string(FilterStrategyName(part.params.strategy)),
                    absl::StrFormat(", %.1fus)\n", run->field_micros[i]), field_indent,
                    "  MergeTopK(segments=", run->explains[i].segments_size(), ")\n");
    AppendIndented(run->multi_text[i], field_indent + "    ", &text);
    if (run->multi_text[i].empty()) {
      AppendSegmentsText(run->explains[i], 0, field_indent + "    ", &text);
    }
    for (v1::SegmentPlan& sp : *run->explains[i].mutable_segments()) {
      *explain->add_segments() = std::move(sp);
    }
  }
  absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
  explain->set_text(std::move(text));
}

}  // namespace quiver
