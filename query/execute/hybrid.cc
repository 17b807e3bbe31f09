// Hybrid search (SearchRequest.field_queries): each field searched over one
// view, in parallel on the search pool, with one filter plan shared by the
// fields; the ranked lists fused (RRF or weighted) into one.
#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/bind/request_checks.h"
#include "query/collection.h"
#include "query/execute/response.h"
#include "query/fusion.h"
#include "query/task_pool.h"

namespace quiver {

// One field of a hybrid search, checked and prepared.
struct Collection::HybridPart {
  int field;
  uint32_t k;
  double weight;
  std::vector<float> queries, qnorms;
  std::vector<TokenSet> sets;  // a multi-vector field's query set
};

// A hybrid search under way: the request's parts and what each field's
// search produced.
struct Collection::HybridRun {
  const v1::SearchRequest& req;
  std::vector<HybridPart> parts;
  std::vector<std::unique_ptr<float[]>> owned;  // the parts' query sets
  FusionKind kind = FusionKind::kRrf;
  double rrf_k = kDefaultRrfK;
  std::shared_ptr<const filter::Filter> flt;
  std::vector<int> out_attrs;
  // Per field: its top k, explain, time, and late-interaction text.
  std::vector<std::vector<index::TopK>> topk;
  std::vector<v1::Explain> explains;
  std::vector<double> field_micros;
  std::vector<std::string> multi_text;
  std::vector<RankedList> lists;
  double fuse_micros = 0;
};

absl::Status Collection::SearchHybrid(const v1::SearchRequest& req, const StopToken& stop,
                                      v1::SearchResponse* resp) const {
  HybridRun run{req};
  QUIVER_RETURN_IF_ERROR(CheckHybridRequest(&run));
  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckHybridEstimate(run, view));
  QUIVER_RETURN_IF_ERROR(RunHybridFields(view, stop, &run));

  const size_t nf = run.parts.size();
  run.lists.resize(nf);
  for (size_t i = 0; i < nf; ++i) {
    run.lists[i].hits = run.topk[i][0].Take();
    run.lists[i].weight = run.parts[i].weight;
  }
  const auto t_fuse = absl::Now();
  const std::vector<FusedHit> fused = Fuse(run.kind, run.lists, req.k(), run.rrf_k);
  run.fuse_micros = absl::ToDoubleMicroseconds(absl::Now() - t_fuse);

  ResponseBudget budget(options_.max_response_bytes);
  v1::SearchResult* result = resp->add_results();
  for (const FusedHit& h : fused) {
    QUIVER_RETURN_IF_ERROR(FillHit(view, h.id, static_cast<float>(h.score), run.out_attrs,
                                   req.with_vectors(), &budget, result->add_hits()));
  }
  if (req.with_field_results()) {
    for (size_t i = 0; i < nf; ++i) {
      v1::FieldResult* fr = resp->add_field_results();
      const VectorFieldSpec& field = schema_->vectors()[run.parts[i].field];
      fr->set_field(field.name);
      QUIVER_RETURN_IF_ERROR(FillHits(view, field, run.lists[i].hits, run.out_attrs,
                                      req.with_vectors(), &budget, fr->mutable_hits()));
    }
  }
  if (req.explain()) {
    v1::Explain* explain = resp->mutable_explain();
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    HybridExplain(&run, explain);
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }
  return absl::OkStatus();
}

absl::Status Collection::CheckHybridRequest(HybridRun* run) const {
  const v1::SearchRequest& req = run->req;
  if (!req.field().empty() || !req.vectors().empty() || !req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(
        "hybrid search takes its queries in field_queries: leave field and vectors (and "
        "multi_vectors) empty");
  }
  if (req.rrf_k() != 0) {
    if (!std::isfinite(req.rrf_k()) || req.rrf_k() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("rrf_k must be a positive number, got ", req.rrf_k()));
    }
    run->rrf_k = req.rrf_k();
  }
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED && req.fusion() != v1::RRF &&
      req.fusion() != v1::WEIGHTED) {
    return absl::InvalidArgumentError(absl::StrCat("unknown fusion method ", req.fusion()));
  }
  run->kind = req.fusion() == v1::WEIGHTED ? FusionKind::kWeighted : FusionKind::kRrf;
  const size_t nf = req.field_queries_size();
  run->parts.resize(nf);
  std::vector<bool> used(schema_->vectors().size(), false);
  for (size_t i = 0; i < nf; ++i) {
    QUIVER_RETURN_IF_ERROR(CheckFieldQuery(req, i, &used, &run->parts[i], &run->owned));
  }
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(run->flt, filter::Filter::Compile(req.filter(), *schema_));
  }
  QUIVER_ASSIGN_OR_RETURN(run->out_attrs, OutputAttributes(req.output_attributes()));
  return absl::OkStatus();
}

absl::Status Collection::CheckFieldQuery(const v1::SearchRequest& req, size_t i,
                                         std::vector<bool>* used, HybridPart* part,
                                         std::vector<std::unique_ptr<float[]>>* owned) const {
  const v1::FieldQuery& fq = req.field_queries(static_cast<int>(i));
  const std::string what = absl::StrCat("field_queries[", i, "]");
  if (fq.field().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field is empty"));
  }
  QUIVER_ASSIGN_OR_RETURN(const int f, ResolveField(fq.field()));
  if ((*used)[f]) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field \"", fq.field(), "\" is queried twice"));
  }
  (*used)[f] = true;
  part->field = f;
  part->k = fq.k() == 0 ? req.k() : fq.k();
  if (part->k > kMaxK) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": k must be in 1..", kMaxK, ", got ", fq.k()));
  }
  if (!std::isfinite(fq.weight()) || fq.weight() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": weight must be a finite number >= 0, got ", fq.weight()));
  }
  part->weight = fq.weight() == 0 ? 1.0 : fq.weight();
  QUIVER_RETURN_IF_ERROR(bind::CheckSearchParams(fq.params(), absl::StrCat(what, ": ")));
  const VectorFieldSpec& spec = schema_->vectors()[f];
  switch (fq.query_case()) {
    case v1::FieldQuery::kVector: {
      if (spec.multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": \"", spec.name, "\" is a multi-vector field: give a multi_vector"));
      }
      const v1::Vector* v = &fq.vector();
      return PrepareQueries(spec, &v, 1, absl::StrCat(what, " vector"),
                            /*numbered=*/false, &part->queries, &part->qnorms);
    }
    case v1::FieldQuery::kMultiVector: {
      if (!spec.multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": \"", spec.name, "\" is not a multi-vector field: give a vector"));
      }
      QUIVER_ASSIGN_OR_RETURN(TokenSet set,
                              bind::PrepareTokens(spec, fq.multi_vector(),
                                                  absl::StrCat(what, " query set"), owned));
      part->sets.push_back(set);
      return absl::OkStatus();
    }
    case v1::FieldQuery::QUERY_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": no query vector"));
}

absl::Status Collection::CheckHybridEstimate(const HybridRun& run, const View& view) const {
  // The fused list, and each field's own list if asked for.
  const v1::SearchRequest& req = run.req;
  const size_t nf = run.parts.size();
  const size_t explain_segments = req.explain() ? view.parts.size() * nf : 0;
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(1, req.k(), run.out_attrs, req.with_vectors(),
                                             explain_segments, req.filter().size()));
  if (!req.with_field_results()) return absl::OkStatus();
  uint32_t field_k = 0;
  for (const HybridPart& part : run.parts) field_k = std::max(field_k, part.k);
  return CheckSearchEstimate(nf + 1, std::max(field_k, req.k()), run.out_attrs,
                             req.with_vectors(), explain_segments, req.filter().size());
}

absl::Status Collection::RunHybridFields(const View& view, const StopToken& stop,
                                         HybridRun* run) const {
  const v1::SearchRequest& req = run->req;
  const size_t nf = run->parts.size();
  // One filter plan for every field: the estimate and row set of each
  // segment are computed once, by the first field that needs them.
  std::vector<SharedSegmentFilter> shared(run->flt != nullptr ? view.parts.size() : 0);
  run->topk.resize(nf);
  run->explains.resize(req.explain() ? nf : 0);
  run->field_micros.resize(nf);
  run->multi_text.resize(nf);
  std::vector<absl::Status> statuses(nf);
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < nf; ++i) {
    tasks.push_back([&, i] {
      const auto t0 = absl::Now();
      const HybridPart& part = run->parts[i];
      const v1::SearchParams& params = req.field_queries(static_cast<int>(i)).params();
      v1::Explain* explain = req.explain() ? &run->explains[i] : nullptr;
      run->topk[i].assign(1, index::TopK(part.k));
      if (!part.sets.empty()) {
        statuses[i] = SearchMultiView(part.field, part.sets, part.k, params, run->flt.get(),
                                      view, stop, explain, &run->topk[i], &run->multi_text[i]);
      } else {
        SearchContext ctx = MakeContext(part.field, part.k, part.queries, part.qnorms, params,
                                        run->flt.get(), stop);
        if (!shared.empty()) ctx.shared_filter = shared.data();
        statuses[i] = SearchView(ctx, view, explain, &run->topk[i]);
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
  const v1::SearchRequest& req = run->req;
  const size_t nf = run->parts.size();
  std::string text = absl::StrCat(
      "HybridSearch(collection=\"", name_, "\", k=", req.k(), ", fields=", nf,
      ", filter=", run->flt ? absl::StrCat("\"", run->flt->ToString(), "\"") : "none", ")\n",
      "  Fuse(",
      run->kind == FusionKind::kRrf ? absl::StrCat("RRF, rrf_k=", run->rrf_k) : "WEIGHTED",
      absl::StrFormat(", %.1fus)\n", run->fuse_micros));
  for (size_t i = 0; i < nf; ++i) {
    const v1::FieldQuery& fq = req.field_queries(static_cast<int>(i));
    const HybridPart& part = run->parts[i];
    absl::StrAppend(&text, "    Field(\"", schema_->vectors()[part.field].name, "\", k=", part.k,
                    ", weight=", part.weight,
                    ", strategy=", v1::FilterStrategy_Name(fq.params().filter_strategy()),
                    absl::StrFormat(", %.1fus)\n", run->field_micros[i]),
                    "      MergeTopK(segments=", run->explains[i].segments_size(), ")\n");
    for (absl::string_view line : absl::StrSplit(run->multi_text[i], '\n', absl::SkipEmpty())) {
      absl::StrAppend(&text, "        ", line, "\n");
    }
    if (run->multi_text[i].empty()) AppendSegmentsText(run->explains[i], 0, "        ", &text);
    for (v1::SegmentPlan& sp : *run->explains[i].mutable_segments()) {
      *explain->add_segments() = std::move(sp);
    }
  }
  absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
  explain->set_text(std::move(text));
}

}  // namespace quiver
