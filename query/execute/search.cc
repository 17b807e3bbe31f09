// Single-vector search: Collection::Search (the entry point every search
// request takes), the planner context it builds, and SearchView, which runs
// the planner's per-segment search over every segment of a view.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/bind/request_checks.h"
#include "query/collection.h"
#include "query/execute/response.h"

namespace quiver {

SearchContext Collection::MakeContext(size_t f, uint32_t k, const std::vector<float>& queries,
                                      const std::vector<float>& qnorms,
                                      const v1::SearchParams& params,
                                      const filter::Filter* flt, const StopToken& stop) const {
  const VectorFieldSpec& field = schema_->vectors()[f];
  SearchContext ctx;
  ctx.field = f;
  ctx.dim = stored_dims_[f];
  ctx.k = k;
  ctx.queries = queries.data();
  ctx.qnorms = qnorms.data();
  ctx.nq = qnorms.size();
  // Multi-vector fields search their encodings, by inner product.
  ctx.similarity = field.metric == Metric::kL2 && !field.multi ? index::Similarity::kL2
                                                               : index::Similarity::kInnerProduct;
  ctx.params.ef = params.ef();
  ctx.params.nprobe = params.nprobe();
  ctx.exact = params.exact();
  ctx.refine_factor = params.refine_factor();
  ctx.filter = flt;
  ctx.forced = params.filter_strategy();
  ctx.stop = stop;
  ctx.feedback = &plan_feedback_;
  return ctx;
}

absl::Status Collection::SearchView(const SearchContext& ctx, const View& view,
                                    v1::Explain* explain, std::vector<index::TopK>* topk) const {
  // DISK segments submit their rerank reads and the loop goes on to the
  // next segment's candidates while the device works; Finish collects.
  RerankQueue rerank;
  SearchContext c = ctx;
  c.rerank = &rerank;
  absl::Status status;
  for (size_t p = 0; p < view.parts.size() && status.ok(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    if (rows == 0) continue;
    status = ctx.stop.Check();
    if (!status.ok()) break;
    status = SearchSegment(c, seg, rows, view.seq, p, topk->data(),
                           explain ? explain->add_segments() : nullptr);
  }
  // Always: pending reads own buffers the kernel writes into.
  const absl::Status finished = rerank.Finish();
  return status.ok() ? finished : status;
}

absl::Status Collection::Search(const v1::SearchRequest& req, const StopToken& stop,
                                v1::SearchResponse* resp) const {
  if (req.k() == 0 || req.k() > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in 1..", kMaxK, ", got ", req.k()));
  }
  if (!req.field_queries().empty()) return SearchHybrid(req, stop, resp);
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED || req.rrf_k() != 0 ||
      req.with_field_results()) {
    return absl::InvalidArgumentError(
        "fusion, rrf_k and with_field_results apply only to hybrid search (field_queries)");
  }
  QUIVER_ASSIGN_OR_RETURN(const int f, ResolveField(req.field()));
  const VectorFieldSpec& field = schema_->vectors()[f];
  if (field.multi) {
    if (!req.vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", field.name,
          "\" is a multi-vector field: give the query sets in multi_vectors"));
    }
    return SearchMulti(req, f, stop, resp);
  }
  if (!req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "multi_vectors: field \"", field.name, "\" is not a multi-vector field"));
  }
  const size_t nq = req.vectors_size();
  QUIVER_RETURN_IF_ERROR(bind::CheckBatch(nq, req.k(), "query vector", ""));
  QUIVER_RETURN_IF_ERROR(bind::CheckSearchParams(req.params(), ""));
  std::vector<float> queries, qnorms;
  QUIVER_RETURN_IF_ERROR(PrepareQueries(field, req.vectors().data(), nq, "query vector",
                                        /*numbered=*/true, &queries, &qnorms));
  std::shared_ptr<const filter::Filter> flt;
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(req.filter(), *schema_));
  }
  QUIVER_ASSIGN_OR_RETURN(const std::vector<int> out_attrs,
                          OutputAttributes(req.output_attributes()));
  const SearchContext ctx =
      MakeContext(f, req.k(), queries, qnorms, req.params(), flt.get(), stop);

  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(nq, req.k(), out_attrs, req.with_vectors(),
                                             req.explain() ? view.parts.size() : 0,
                                             req.filter().size()));
  std::vector<index::TopK> topk(nq, index::TopK(req.k()));
  v1::Explain* explain = req.explain() ? resp->mutable_explain() : nullptr;
  QUIVER_RETURN_IF_ERROR(SearchView(ctx, view, explain, &topk));
  ResponseBudget budget(options_.max_response_bytes);
  if (explain != nullptr) {
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    std::string text = absl::StrCat(
        "Search(collection=\"", name_, "\", field=\"", field.name, "\", k=", req.k(),
        ", queries=", nq, ", filter=", flt ? absl::StrCat("\"", flt->ToString(), "\"") : "none",
        ", strategy=", v1::FilterStrategy_Name(ctx.forced), ")\n",
        "  MergeTopK(segments=", explain->segments_size(), ")\n");
    AppendSegmentsText(*explain, 0, "    ", &text);
    absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
    explain->set_text(std::move(text));
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }

  for (index::TopK& t : topk) {
    QUIVER_RETURN_IF_ERROR(FillHits(view, field, t.Take(), out_attrs, req.with_vectors(),
                                    &budget, resp->add_results()->mutable_hits()));
  }
  return absl::OkStatus();
}

}  // namespace quiver
