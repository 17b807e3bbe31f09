// Late-interaction (multi-vector) search: Collection::SearchMulti and its
// core over one view, SearchMultiView, which finds candidates one of three
// ways (exact MaxSim over every row, token-vector index, MUVERA encodings'
// index) and ranks them by exact MaxSim (the MaxSimRerank operator).
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "index/distance.h"
#include "index/maxsim.h"
#include "query/collection.h"
#include "query/execute/limit.h"
#include "query/execute/maxsim_rerank.h"
#include "query/execute/response.h"
#include "query/execute/segment_search.h"
#include "query/plan/segment_planner.h"

namespace quiver {

namespace {

// The rows of the nearest `per_vector` token vectors of each vector of
// `set` in `idx` (an index over a segment's token vectors, which
// token_rows maps to rows), each row once, appended to *cand.
absl::Status TokenCandidates(const index::VectorIndex& idx,
                             const std::vector<uint32_t>& token_rows, const TokenSet& set,
                             uint32_t dim, uint32_t per_vector, const index::SearchParams& sp,
                             const index::LabelFilter& accept, std::vector<uint32_t>* cand,
                             uint64_t* searches) {
  absl::flat_hash_set<uint32_t> seen;
  for (uint32_t j = 0; j < set.count; ++j) {
    index::TopK tk(per_vector);
    QUIVER_RETURN_IF_ERROR(idx.Search(set.data + static_cast<size_t>(j) * dim, sp, &accept, &tk));
    ++*searches;
    for (const index::Neighbor& nb : tk.Take()) {
      const uint32_t row = token_rows[nb.id];
      if (seen.insert(row).second) cand->push_back(row);
    }
  }
  return absl::OkStatus();
}

// Candidates per query: k times the refine factor (the request's, else
// `default_refine`), at least k, at most kMaxRefineCandidates.
uint32_t RefinedCandidates(uint32_t k, float refine_factor, float default_refine) {
  const float rf = refine_factor > 0 ? refine_factor : default_refine;
  return static_cast<uint32_t>(std::min<double>(
      kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
}

// Runs fn(p, seg, rows, keep) on each non-empty part p of `view` that
// holds field f, keep being its visible rows that pass `flt`; stops at the
// first error, or when the request is stopped.
template <typename Fn>
absl::Status ForEachPart(const View& view, size_t f, const filter::Filter* flt,
                         const StopToken& stop, Fn fn) {
  for (size_t p = 0; p < view.parts.size(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    // (A segment made after the field was dropped, by a search bound
    // before: it has no vector sets.)
    if (rows == 0 || seg.LacksField(f)) continue;
    QUIVER_RETURN_IF_ERROR(stop.Check());
    RowSet keep;
    QUIVER_RETURN_IF_ERROR(MatchingRows(seg, rows, view.seq, flt, stop, &keep));
    QUIVER_RETURN_IF_ERROR(fn(p, seg, rows, keep));
  }
  return absl::OkStatus();
}

}  // namespace

// What the three ways of SearchMultiView share.
struct Collection::MultiViewArgs {
  int f;
  const VectorFieldSpec& field;
  const std::vector<TokenSet>& sets;
  uint32_t k;
  const BoundSearchParams& params;
  const filter::Filter* flt;
  const View& view;
  const StopToken& stop;
  v1::Explain* explain;
  std::vector<index::TopK>* topk;  // one per set
  std::string* text;               // explain's text
  RecallTally* recall;             // target_recall's prediction; may be null

  index::MaxSimQuery Query(size_t q) const {
    const index::Similarity sim = field.metric == Metric::kL2 ? index::Similarity::kL2
                                                              : index::Similarity::kInnerProduct;
    return index::MaxSimQuery{sets[q].data, sets[q].count, field.dim, sim};
  }
};

absl::Status Collection::SearchMulti(const BoundSearch& q, const StopToken& stop,
                                     v1::SearchResponse* resp) const {
  SearchStart s;
  QUIVER_RETURN_IF_ERROR(BeginSearch(q, resp, &s));
  std::string ways;
  RecallTally tally;
  QUIVER_RETURN_IF_ERROR(SearchMultiView(q.field, q.sets, q.k, q.params, q.filter.get(), s.view,
                                         stop, s.explain, &s.topk, &ways, &tally));
  LimitOp limit(q.k);
  SearchLists lists;
  lists.hits = limit.Run(&s.topk);
  // MaxSim reranks the index's candidates; only an exact search sees all.
  lists.exact.assign(lists.hits.size(), q.params.exact ? 1 : 0);
  lists.cut.assign(lists.hits.size(), 0);
  std::string text;
  if (s.explain != nullptr) {
    // The search's line, the limit, then the way's operators under it.
    const size_t first_end = ways.find('\n') + 1;
    text = ways.substr(0, first_end);
    limit.ToExplain("  ", &text);
    AppendIndented(absl::string_view(ways).substr(first_end), "  ", &text);
  }
  MatchingCounter counter(s.view, q.filter.get(), stop);
  const int first = resp->results_size();
  QUIVER_RETURN_IF_ERROR(FinishSearch(s, q, std::move(text), lists, &counter, resp));
  if (q.params.target_recall > 0) {
    for (int i = first; i < resp->results_size(); ++i) {
      v1::SearchResult* r = resp->mutable_results(i);
      r->set_predicted_recall(r->exhaustive() ? 1.0f : static_cast<float>(tally.Get()));
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::SearchMultiView(int f, const std::vector<TokenSet>& sets, uint32_t k,
                                         const BoundSearchParams& params,
                                         const filter::Filter* flt, const View& view,
                                         const StopToken& stop, v1::Explain* explain,
                                         std::vector<index::TopK>* topk, std::string* text,
                                         RecallTally* recall) const {
  const MultiViewArgs a{f,    schema().vectors()[f], sets,    k,    params, flt,
                        view, stop,                  explain, topk, text, recall};
  if (params.exact || encoders_[f] == nullptr) return ExactMaxSimView(a);
  if (a.field.token_candidates) return TokenMaxSimView(a);
  return MuveraMaxSimView(a);
}

absl::Status Collection::ExactMaxSimPart(const MultiViewArgs& a, size_t p, const Segment& seg,
                                         uint32_t rows, const RowSet& keep,
                                         index::MaxSimScratch* scratch,
                                         v1::SegmentPlan* plan) const {
  const size_t nq = a.sets.size();
  const uint32_t matching = keep.Count();
  // A filter (or deletes) passing at most half the rows: only those are
  // scored (MaxSim costs the same per row wherever it reads the sets);
  // otherwise every row, in one contiguous pass.
  const bool sparse = matching <= rows / 2;
  std::vector<uint32_t> offs;
  if (sparse) {
    offs.reserve(matching);
    keep.ForEach([&](uint32_t off) { offs.push_back(off); });
  }
  std::shared_ptr<const storage::RerankTable> table = seg.table(a.f);
  const bool mapped = table != nullptr && table->mapped_vectors() != nullptr;
  index::MultiVectorDocs docs;
  GatheredSets gathered;
  std::vector<uint64_t> ids;
  if (mapped) {
    docs = {table->mapped_vectors(), table->offsets(), rows, a.field.dim};
    if (sparse) ids.assign(offs.begin(), offs.end());
  } else {
    // Gathered in memory: only the sets scored.
    auto add = [&](uint32_t off) {
      const TokenSet t = seg.tokens(a.f, off);
      gathered.Add(t.data, t.count, a.field.dim);
    };
    if (sparse) {
      for (uint32_t off : offs) add(off);
    } else {
      for (uint32_t off = 0; off < rows; ++off) add(off);
    }
    docs = gathered.Docs(a.field.dim);
  }
  std::vector<float> dist(sparse ? offs.size() : rows);
  for (size_t q = 0; q < nq; ++q) {
    QUIVER_RETURN_IF_ERROR(a.stop.Check());
    if (!sparse) {
      index::MaxSimDistances(a.Query(q), docs, 0, rows, dist.data(), scratch);
      keep.ForEach([&](uint32_t off) { (*a.topk)[q].Push(dist[off], HitId(p, off)); });
      continue;
    }
    if (mapped) {
      index::MaxSimDistancesOf(a.Query(q), docs, ids.data(), ids.size(), dist.data(), scratch);
    } else {
      index::MaxSimDistances(a.Query(q), docs, 0, offs.size(), dist.data(), scratch);
    }
    for (size_t i = 0; i < offs.size(); ++i) (*a.topk)[q].Push(dist[i], HitId(p, offs[i]));
  }
  if (plan != nullptr) {
    plan->set_segment_id(seg.id());
    plan->set_field(a.field.name);
    plan->set_state(!seg.sealed()                              ? "GROWING"
                    : seg.index(static_cast<size_t>(a.f)) != nullptr ? "INDEXED"
                                                                      : "SEALED");
    plan->set_rows(rows);
    plan->set_strategy("EXACT_SCAN");
    plan->set_plan(absl::StrCat("ExactMaxSim(rows=", matching, " of ", rows, ")"));
    plan->set_distances(static_cast<uint64_t>(sparse ? matching : rows) * nq);
  }
  return absl::OkStatus();
}

absl::Status Collection::ExactMaxSimView(const MultiViewArgs& a) const {
  const size_t nq = a.sets.size();
  index::MaxSimScratch scratch;
  uint64_t scored = 0;
  // Exact MaxSim over every visible row that passes the filter.
  auto score_part = [&](size_t p, const Segment& seg, uint32_t rows,
                        const RowSet& keep) -> absl::Status {
    scored += static_cast<uint64_t>(keep.Count()) * nq;
    return ExactMaxSimPart(a, p, seg, rows, keep, &scratch,
                           a.explain != nullptr ? a.explain->add_segments() : nullptr);
  };
  QUIVER_RETURN_IF_ERROR(ForEachPart(a.view, static_cast<size_t>(a.f), a.flt, a.stop, score_part));
  *a.text = absl::StrCat("LateInteraction(field=\"", a.field.name, "\", k=", a.k, ", queries=",
                         nq, ", exact MaxSim over ", scored / std::max<size_t>(nq, 1),
                         " points)\n");
  return absl::OkStatus();
}

absl::Status Collection::TokenMaxSimView(const MultiViewArgs& a) const {
  const size_t nq = a.sets.size();
  // The baseline: each query vector's nearest token vectors in the
  // segment's index over all of them, mapped to their rows; those rows
  // are the candidates. Segments without that index are scored exactly.
  const uint32_t per_vector =
      RefinedCandidates(a.k, a.params.refine_factor, kDefaultTokenRefine);
  MaxSimRerankOp rerank(a.f, a.field, /*read_table=*/false, /*candidates=*/0);
  const Stopwatch watch;
  uint64_t token_searches = 0;
  auto rerank_part = [&](size_t p, const Segment& seg, uint32_t,
                         const RowSet& keep) -> absl::Status {
    std::shared_ptr<const index::VectorIndex> idx = seg.index(a.f);
    std::shared_ptr<const std::vector<uint32_t>> token_rows;
    if (idx != nullptr && seg.sealed()) {
      token_rows = seg.TokenRows(a.f);
      if (token_rows->size() != idx->size()) token_rows = nullptr;
    }
    // A token passes when its row is visible and passes the filter.
    struct RowOfToken : index::LabelFilter {
      const RowSet* keep;
      const std::vector<uint32_t>* rows;
      bool Accept(uint32_t t) const override { return keep->Test((*rows)[t]); }
    } accept;
    accept.keep = &keep;
    accept.rows = token_rows.get();
    index::SearchParams sp;
    sp.ef = a.params.ef;
    sp.nprobe = a.params.nprobe;
    for (size_t q = 0; q < nq; ++q) {
      QUIVER_RETURN_IF_ERROR(a.stop.Check());
      std::vector<uint32_t> cand;
      if (token_rows == nullptr) {
        keep.ForEach([&](uint32_t off) { cand.push_back(off); });
      } else {
        QUIVER_RETURN_IF_ERROR(TokenCandidates(*idx, *token_rows, a.sets[q], a.field.dim,
                                               per_vector, sp, accept, &cand, &token_searches));
      }
      QUIVER_RETURN_IF_ERROR(rerank.Run(a.Query(q), seg, p, cand, &(*a.topk)[q]));
    }
    return absl::OkStatus();
  };
  QUIVER_RETURN_IF_ERROR(ForEachPart(a.view, static_cast<size_t>(a.f), a.flt, a.stop, rerank_part));
  *a.text = absl::StrCat("LateInteraction(field=\"", a.field.name, "\", k=", a.k,
                         ", queries=", nq, ")\n");
  rerank.ToExplain("  ", a.text);
  absl::StrAppend(a.text,
                  absl::StrFormat("    TokenCandidates(nearest %d token vectors per query "
                                  "vector, %d searches, %.1fus)\n",
                                  per_vector, token_searches,
                                  watch.Micros() - rerank.stats().micros));
  return absl::OkStatus();
}

absl::Status Collection::MuveraMaxSimView(const MultiViewArgs& a) const {
  const size_t nq = a.sets.size();
  // Candidates: the field's index over MUVERA encodings (with the
  // filter, through the planner), then exact MaxSim over their sets.
  const index::MuveraEncoder& encoder = *encoders_[a.f];
  const uint32_t fde_dim = stored_dims_[a.f];
  std::vector<float> fde(nq * fde_dim), norms(nq);
  for (size_t q = 0; q < nq; ++q) {
    encoder.EncodeQuery(a.sets[q].data, a.sets[q].count, fde.data() + q * fde_dim);
    norms[q] = index::NormSqr(fde.data() + q * fde_dim, fde_dim);
  }
  if (a.params.target_recall > 0) return MuveraTargetView(a, fde, norms);
  const uint32_t candidates =
      RefinedCandidates(a.k, a.params.refine_factor, kDefaultMultiRefine);
  BoundSearchParams fde_params = a.params;
  fde_params.refine_factor = 0;  // the encodings' own index, at its default
  const SearchContext ctx = MakeContext(static_cast<size_t>(a.f), candidates, fde, norms,
                                        fde_params, a.flt, a.stop);
  std::vector<index::TopK> cand(nq, index::TopK(candidates));
  QUIVER_RETURN_IF_ERROR(SearchView(ctx, a.view, a.explain, &cand));
  // Per segment: DISK fields read the sets from the table in one batch.
  MaxSimRerankOp rerank(a.f, a.field, /*read_table=*/a.field.disk, candidates);
  for (size_t q = 0; q < nq; ++q) {
    QUIVER_RETURN_IF_ERROR(a.stop.Check());
    std::map<size_t, std::vector<uint32_t>> by_part;
    for (const index::Neighbor& nb : cand[q].Take()) {
      by_part[nb.id >> 32].push_back(static_cast<uint32_t>(nb.id & 0xffffffffu));
    }
    for (const auto& [p, rows] : by_part) {
      QUIVER_RETURN_IF_ERROR(
          rerank.Run(a.Query(q), *a.view.parts[p].segment, p, rows, &(*a.topk)[q]));
    }
  }
  *a.text = absl::StrCat("LateInteraction(field=\"", a.field.name, "\", k=", a.k,
                         ", queries=", nq, ")\n");
  rerank.ToExplain("  ", a.text);
  absl::StrAppend(a.text, "    MuveraCandidates(encoding dims=", fde_dim, ", ",
                  encoder.params().r_reps, " repetitions x ", 1u << encoder.params().k_sim,
                  " partitions)\n");
  if (a.explain != nullptr) AppendSegmentsText(*a.explain, 0, "      ", a.text);
  return absl::OkStatus();
}

absl::Status Collection::MuveraTargetView(const MultiViewArgs& a, const std::vector<float>& fde,
                                          const std::vector<float>& norms) const {
  // Per segment, what its calibration (the whole late-interaction search,
  // measured against exact MaxSim) picks for the target: ef / nprobe and
  // the candidates from the encodings' index, reranked by MaxSim within
  // the segment; or exact MaxSim over the segment's matching rows (no
  // index, not calibrated, cheaper, or nothing reaches the target).
  const size_t nq = a.sets.size();
  BoundSearchParams fde_params = a.params;
  fde_params.refine_factor = 0;
  SearchContext ctx = MakeContext(static_cast<size_t>(a.f), a.k, fde, norms, fde_params, a.flt,
                                  a.stop);
  ctx.late_interaction = true;
  ctx.recall = a.recall;
  MaxSimRerankOp rerank(a.f, a.field, /*read_table=*/a.field.disk, /*candidates=*/0);
  index::MaxSimScratch scratch;
  uint64_t exact_rows = 0, indexed = 0, candidates = 0;
  absl::Status status;
  for (size_t p = 0; p < a.view.parts.size() && status.ok(); ++p) {
    const Segment& seg = *a.view.parts[p].segment;
    const uint32_t rows = a.view.parts[p].rows;
    if (rows == 0 || seg.LacksField(static_cast<size_t>(a.f))) continue;
    status = a.stop.Check();
    if (!status.ok()) break;
    const Stopwatch plan_watch;
    const PhysicalPlan plan = PlanSegment(ctx, seg, rows, p);
    const double plan_us = plan_watch.Micros();
    v1::SegmentPlan* sp = a.explain != nullptr ? a.explain->add_segments() : nullptr;
    if (plan.idx == nullptr) {
      RowSet keep;
      status = MatchingRows(seg, rows, a.view.seq, a.flt, a.stop, &keep);
      if (!status.ok()) break;
      if (a.recall != nullptr) a.recall->Add(1.0, keep.Count());
      exact_rows += keep.Count();
      status = ExactMaxSimPart(a, p, seg, rows, keep, &scratch, sp);
      if (sp != nullptr) {
        sp->set_reason(plan.recall_choice.empty()
                           ? "no index"
                           : "target_recall: exact MaxSim");
        sp->set_predicted_recall(1);
        sp->set_recall_choice(!plan.recall_choice.empty()
                                  ? plan.recall_choice
                                  : absl::StrCat("target_recall ", a.params.target_recall,
                                                 ": exact MaxSim (recall 1): no index"));
      }
      continue;
    }
    // The segment's candidates (k x the chosen refine factor), then
    // exact MaxSim over them.
    std::vector<index::TopK> cand(nq, index::TopK(plan.ctx.k));
    status = RunSegmentPlan(plan, plan_us, seg, rows, a.view.seq, p, cand.data(), sp);
    ++indexed;
    candidates = std::max<uint64_t>(candidates, plan.ctx.k);
    for (size_t q = 0; q < nq && status.ok(); ++q) {
      status = a.stop.Check();
      if (!status.ok()) break;
      std::vector<uint32_t> offs;
      for (const index::Neighbor& nb : cand[q].Take()) {
        offs.push_back(static_cast<uint32_t>(nb.id & 0xffffffffu));
      }
      status = rerank.Run(a.Query(q), seg, p, offs, &(*a.topk)[q]);
    }
  }
  QUIVER_RETURN_IF_ERROR(status);
  *a.text = absl::StrCat("LateInteraction(field=\"", a.field.name, "\", k=", a.k,
                         ", queries=", nq, ", target_recall=", a.params.target_recall, ")\n");
  rerank.ToExplain("  ", a.text);
  absl::StrAppend(a.text, "    MuveraCandidates(encoding dims=", stored_dims_[a.f], ", ",
                  indexed, " segments by their calibration, up to ", candidates,
                  " candidates per query; exact MaxSim over ", exact_rows / std::max<size_t>(nq, 1),
                  " rows of the others)\n");
  if (a.explain != nullptr) AppendSegmentsText(*a.explain, 0, "      ", a.text);
  return absl::OkStatus();
}

}  // namespace quiver
