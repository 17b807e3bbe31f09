// Search of one vector field: Collection::Search (a bound search; sets of
// a multi-vector field go on to late_interaction.cc; with diversity, MMR
// over the best fetch_k), the planner context it builds, and SearchView,
// which runs the planner's per-segment search over every segment of a
// view.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "query/collection.h"
#include "query/execute/limit.h"
#include "query/execute/mmr.h"
#include "query/execute/response.h"
#include "query/execute/result_info.h"

namespace quiver {

SearchContext Collection::MakeContext(size_t f, uint32_t k, const std::vector<float>& queries,
                                      const std::vector<float>& qnorms,
                                      const BoundSearchParams& params,
                                      const filter::Filter* flt, const StopToken& stop) const {
  const VectorFieldSpec& field = schema().vectors()[f];
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
  ctx.params.ef = params.ef;
  ctx.params.nprobe = params.nprobe;
  ctx.exact = params.exact;
  ctx.refine_factor = params.refine_factor;
  ctx.filter = flt;
  ctx.forced = params.strategy;
  ctx.stop = stop;
  ctx.feedback = &plan_feedback_;
  ctx.stats = options_.query_stats;
  ctx.target_recall = params.target_recall;
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
    // No row of a segment made before the field was added (or after it was
    // dropped, for a search bound before) can match.
    if (rows == 0 || seg.LacksField(ctx.field)) continue;
    status = ctx.stop.Check();
    if (!status.ok()) break;
    status = SearchSegment(c, seg, rows, view.seq, p, topk->data(),
                           explain ? explain->add_segments() : nullptr);
  }
  // Always: pending reads own buffers the kernel writes into.
  const absl::Status finished = rerank.Finish();
  return status.ok() ? finished : status;
}

absl::Status Collection::Search(const BoundSearch& q, const StopToken& stop,
                                v1::SearchResponse* resp) const {
  if (q.multi) return SearchMulti(q, stop, resp);
  if (q.group_by >= 0) return SearchGrouped(q, stop, resp);
  const VectorFieldSpec& field = schema().vectors()[q.field];
  bool approximate = false;
  // With diversity the index finds fetch_k candidates and MMR picks k.
  const bool mmr = q.mmr_fetch_k > 0;
  const uint32_t fetch = mmr ? q.mmr_fetch_k : q.k;
  SearchContext ctx =
      MakeContext(q.field, fetch, q.queries, q.qnorms, q.params, q.filter.get(), stop);
  ctx.approximate = &approximate;
  RecallTally tally;
  ctx.recall = q.params.target_recall > 0 ? &tally : nullptr;
  SearchStart s;
  QUIVER_RETURN_IF_ERROR(BeginSearch(q, resp, &s));
  if (mmr) s.topk.assign(q.num_queries(), index::TopK(fetch));
  QUIVER_RETURN_IF_ERROR(SearchView(ctx, s.view, s.explain, &s.topk));
  LimitOp limit(fetch);
  SearchLists lists;
  lists.hits = limit.Run(&s.topk);
  MmrOp diversify(q.k, q.mmr_lambda, q.mmr_fetch_k, field.dim, ctx.similarity);
  if (mmr) {
    std::vector<MmrCandidate> cands;
    for (std::vector<index::Neighbor>& hits : lists.hits) {
      QUIVER_RETURN_IF_ERROR(stop.Check());
      cands.clear();
      for (const index::Neighbor& nb : hits) {
        const Segment& seg = *s.view.parts[nb.id >> 32].segment;
        cands.push_back({nb, seg.vector(q.field, static_cast<uint32_t>(nb.id))});
      }
      hits = diversify.Run(cands);
    }
  }
  lists.exact.assign(lists.hits.size(), approximate ? 0 : 1);
  lists.cut.assign(lists.hits.size(), 0);
  if (q.has_threshold) {
    const float max_distance = ThresholdDistance(field.metric, q.score_threshold);
    for (size_t i = 0; i < lists.hits.size(); ++i) {
      lists.cut[i] = CutByThreshold(max_distance, &lists.hits[i]);
    }
  }
  std::string text;
  if (s.explain != nullptr) {
    text = absl::StrCat(
        "Search(collection=\"", name_, "\", field=\"", field.name, "\", k=", q.k,
        ", queries=", q.num_queries(),
        ", filter=", q.filter ? absl::StrCat("\"", q.filter->ToString(), "\"") : "none",
        ", strategy=", std::string(FilterStrategyName(q.params.strategy)), ")\n");
    if (q.has_threshold) absl::StrAppend(&text, "  ScoreThreshold(", q.score_threshold, ")\n");
    std::string indent = "  ";
    if (mmr) {
      diversify.ToExplain(indent, &text);
      indent += "  ";
    }
    limit.ToExplain(indent, &text);
    absl::StrAppend(&text, indent, "  MergeTopK(segments=", s.explain->segments_size(), ")\n");
    AppendSegmentsText(*s.explain, 0, indent + "    ", &text);
  }
  MatchingCounter counter(s.view, q.filter.get(), stop, static_cast<int>(q.field));
  if (q.min_results > 0) {
    QUIVER_RETURN_IF_ERROR(FallBack(q, ctx, s.view, &counter, &lists,
                                    s.explain != nullptr ? &text : nullptr));
  }
  const int first = resp->results_size();
  QUIVER_RETURN_IF_ERROR(FinishSearch(s, q, std::move(text), lists, &counter, resp));
  // The list's predicted recall@k: what the segments' calibrations predict,
  // or 1 for a list known complete. Not for diversified lists, which do not
  // aim for the nearest k.
  if (ctx.recall != nullptr && !mmr) {
    for (int i = first; i < resp->results_size(); ++i) {
      v1::SearchResult* r = resp->mutable_results(i);
      r->set_predicted_recall(r->exhaustive() ? 1.0f : static_cast<float>(tally.Get()));
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver
