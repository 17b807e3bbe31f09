// Late-interaction (multi-vector) search: Collection::SearchMulti and its
// core over one view, SearchMultiView, which finds candidates one of three
// ways (exact MaxSim over every row, token-vector index, MUVERA encodings'
// index) and ranks them by exact MaxSim.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "index/distance.h"
#include "index/maxsim.h"
#include "query/collection.h"
#include "query/execute/response.h"

namespace quiver {

namespace {

// Candidates' vector sets gathered contiguously for blocked MaxSim.
struct Gathered {
  std::vector<float> vectors;
  std::vector<uint64_t> offsets{0};
  void Add(const float* data, size_t count, size_t dim) {
    vectors.insert(vectors.end(), data, data + count * dim);
    offsets.push_back(offsets.back() + count);
  }
  index::MultiVectorDocs Docs(size_t dim) const {
    return {vectors.data(), offsets.data(), offsets.size() - 1, dim};
  }
};

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

  index::MaxSimQuery Query(size_t q) const {
    const index::Similarity sim = field.metric == Metric::kL2 ? index::Similarity::kL2
                                                              : index::Similarity::kInnerProduct;
    return index::MaxSimQuery{sets[q].data, sets[q].count, field.dim, sim};
  }
};

absl::Status Collection::SearchMulti(const BoundSearch& q, const StopToken& stop,
                                     v1::SearchResponse* resp) const {
  const VectorFieldSpec& field = schema_->vectors()[q.field];
  const size_t nq = q.num_queries();
  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(nq, q.k, q.output.attributes,
                                             q.output.with_vectors,
                                             q.explain ? view.parts.size() : 0, q.filter_bytes));
  std::vector<index::TopK> topk(nq, index::TopK(q.k));
  v1::Explain* explain = q.explain ? resp->mutable_explain() : nullptr;
  std::string text;
  QUIVER_RETURN_IF_ERROR(SearchMultiView(q.field, q.sets, q.k, q.params, q.filter.get(), view,
                                         stop, explain, &topk, &text));
  if (explain != nullptr) {
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
  }
  return FinishSearch(view, q, std::move(text), explain, &topk, resp);
}

absl::Status Collection::SearchMultiView(int f, const std::vector<TokenSet>& sets, uint32_t k,
                                         const BoundSearchParams& params,
                                         const filter::Filter* flt, const View& view,
                                         const StopToken& stop, v1::Explain* explain,
                                         std::vector<index::TopK>* topk,
                                         std::string* text) const {
  const MultiViewArgs a{f,    schema_->vectors()[f], sets,    k,    params, flt,
                        view, stop,                  explain, topk, text};
  if (params.exact || encoders_[f] == nullptr) return ExactMaxSimView(a);
  if (a.field.token_candidates) return TokenMaxSimView(a);
  return MuveraMaxSimView(a);
}

absl::Status Collection::ExactMaxSimView(const MultiViewArgs& a) const {
  const int f = a.f;
  const VectorFieldSpec& field = a.field;
  const std::vector<TokenSet>& sets = a.sets;
  const uint32_t k = a.k;
  const filter::Filter* flt = a.flt;
  const View& view = a.view;
  const StopToken& stop = a.stop;
  v1::Explain* explain = a.explain;
  const size_t nq = sets.size();
  std::vector<index::TopK>& topk = *a.topk;
  std::string& text = *a.text;
  auto query_of = [&](size_t q) { return a.Query(q); };
  index::MaxSimScratch scratch;
  uint64_t scored = 0;
  // Exact MaxSim over every visible row that passes the filter.
  for (size_t p = 0; p < view.parts.size(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    if (rows == 0) continue;
    QUIVER_RETURN_IF_ERROR(stop.Check());
    RowSet keep;
    QUIVER_RETURN_IF_ERROR(MatchingRows(seg, rows, view.seq, flt, stop, &keep));
    std::shared_ptr<const storage::RerankTable> table = seg.table(f);
    index::MultiVectorDocs docs;
    Gathered gathered;
    if (table != nullptr && table->mapped_vectors() != nullptr) {
      docs = {table->mapped_vectors(), table->offsets(), rows, field.dim};
    } else {
      for (uint32_t off = 0; off < rows; ++off) {
        const TokenSet t = seg.tokens(f, off);
        gathered.Add(t.data, t.count, field.dim);
      }
      docs = gathered.Docs(field.dim);
    }
    std::vector<float> dist(rows);
    for (size_t q = 0; q < nq; ++q) {
      QUIVER_RETURN_IF_ERROR(stop.Check());
      index::MaxSimDistances(query_of(q), docs, 0, rows, dist.data(), &scratch);
      keep.ForEach([&](uint32_t off) { topk[q].Push(dist[off], HitId(p, off)); });
    }
    scored += static_cast<uint64_t>(keep.Count()) * nq;
    if (explain != nullptr) {
      v1::SegmentPlan* sp = explain->add_segments();
      sp->set_segment_id(seg.id());
      sp->set_field(field.name);
      sp->set_rows(rows);
      sp->set_strategy("EXACT_SCAN");
      sp->set_plan(absl::StrCat("ExactMaxSim(rows=", keep.Count(), " of ", rows, ")"));
      sp->set_distances(static_cast<uint64_t>(keep.Count()) * nq);
    }
  }
  text = absl::StrCat("LateInteraction(field=\"", field.name, "\", k=", k, ", queries=",
                      nq, ", exact MaxSim over ", scored / std::max<size_t>(nq, 1), " points)\n");
  return absl::OkStatus();
}

absl::Status Collection::TokenMaxSimView(const MultiViewArgs& a) const {
  const int f = a.f;
  const VectorFieldSpec& field = a.field;
  const std::vector<TokenSet>& sets = a.sets;
  const uint32_t k = a.k;
  const BoundSearchParams& params = a.params;
  const filter::Filter* flt = a.flt;
  const View& view = a.view;
  const StopToken& stop = a.stop;
  const size_t nq = sets.size();
  std::vector<index::TopK>& topk = *a.topk;
  std::string& text = *a.text;
  auto query_of = [&](size_t q) { return a.Query(q); };
  index::MaxSimScratch scratch;
  uint64_t scored = 0;
  // The baseline: each query vector's nearest token vectors in the
  // segment's index over all of them, mapped to their rows; those rows
  // are the candidates. Segments without that index are scored exactly.
  const float rf = params.refine_factor > 0 ? params.refine_factor
                                                    : kDefaultTokenRefine;
  const auto per_vector = static_cast<uint32_t>(std::min<double>(
      kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
  const auto t_cand = absl::Now();
  double rerank_us = 0;
  uint64_t token_searches = 0;
  for (size_t p = 0; p < view.parts.size(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    if (rows == 0) continue;
    QUIVER_RETURN_IF_ERROR(stop.Check());
    RowSet keep;
    QUIVER_RETURN_IF_ERROR(MatchingRows(seg, rows, view.seq, flt, stop, &keep));
    std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
    std::shared_ptr<const std::vector<uint32_t>> token_rows;
    if (idx != nullptr && seg.sealed()) {
      token_rows = seg.TokenRows(f);
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
    sp.ef = params.ef;
    sp.nprobe = params.nprobe;
    for (size_t q = 0; q < nq; ++q) {
      QUIVER_RETURN_IF_ERROR(stop.Check());
      std::vector<uint32_t> cand;
      if (token_rows == nullptr) {
        keep.ForEach([&](uint32_t off) { cand.push_back(off); });
      } else {
        QUIVER_RETURN_IF_ERROR(TokenCandidates(*idx, *token_rows, sets[q], field.dim, per_vector,
                                               sp, accept, &cand, &token_searches));
      }
      const auto t0 = absl::Now();
      Gathered g;
      for (uint32_t off : cand) {
        const TokenSet t = seg.tokens(f, off);
        g.Add(t.data, t.count, field.dim);
      }
      std::vector<float> dist(cand.size());
      index::MaxSimDistances(query_of(q), g.Docs(field.dim), 0, cand.size(), dist.data(),
                             &scratch);
      for (size_t i = 0; i < cand.size(); ++i) topk[q].Push(dist[i], HitId(p, cand[i]));
      scored += cand.size();
      rerank_us += absl::ToDoubleMicroseconds(absl::Now() - t0);
    }
  }
  text = absl::StrCat(
      "LateInteraction(field=\"", field.name, "\", k=", k, ", queries=", nq, ")\n",
      absl::StrFormat("  MaxSimRerank(reranked=%d, %.1fus)\n", scored, rerank_us),
      absl::StrFormat("    TokenCandidates(nearest %d token vectors per query vector, %d "
                      "searches, %.1fus)\n",
                      per_vector, token_searches,
                      absl::ToDoubleMicroseconds(absl::Now() - t_cand) - rerank_us));
  return absl::OkStatus();
}

absl::Status Collection::MuveraMaxSimView(const MultiViewArgs& a) const {
  const int f = a.f;
  const VectorFieldSpec& field = a.field;
  const std::vector<TokenSet>& sets = a.sets;
  const uint32_t k = a.k;
  const BoundSearchParams& params = a.params;
  const filter::Filter* flt = a.flt;
  const View& view = a.view;
  const StopToken& stop = a.stop;
  v1::Explain* explain = a.explain;
  const size_t nq = sets.size();
  std::vector<index::TopK>& topk = *a.topk;
  std::string& text = *a.text;
  auto query_of = [&](size_t q) { return a.Query(q); };
  index::MaxSimScratch scratch;
  uint64_t scored = 0, reads = 0;
  // Candidates: the field's index over MUVERA encodings (with the
  // filter, through the planner), then exact MaxSim over their sets.
  const uint32_t fde_dim = stored_dims_[f];
  std::vector<float> fde(nq * fde_dim), norms(nq);
  for (size_t q = 0; q < nq; ++q) {
    encoders_[f]->EncodeQuery(sets[q].data, sets[q].count, fde.data() + q * fde_dim);
    norms[q] = index::NormSqr(fde.data() + q * fde_dim, fde_dim);
  }
  const float rf = params.refine_factor > 0 ? params.refine_factor
                                                    : kDefaultMultiRefine;
  const auto candidates = static_cast<uint32_t>(std::min<double>(
      kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
  BoundSearchParams fde_params = params;
  fde_params.refine_factor = 0;  // the encodings' own index, at its default
  const SearchContext ctx =
      MakeContext(static_cast<size_t>(f), candidates, fde, norms, fde_params, flt, stop);
  std::vector<index::TopK> cand(nq, index::TopK(candidates));
  QUIVER_RETURN_IF_ERROR(SearchView(ctx, view, explain, &cand));
  const auto t_rerank = absl::Now();
  for (size_t q = 0; q < nq; ++q) {
    QUIVER_RETURN_IF_ERROR(stop.Check());
    const std::vector<index::Neighbor> found = cand[q].Take();
    // Per segment: DISK fields read the sets from the table in one batch.
    std::map<size_t, std::vector<uint64_t>> by_part;
    for (const index::Neighbor& nb : found) by_part[nb.id >> 32].push_back(nb.id);
    for (auto& [p, ids] : by_part) {
      const Segment& seg = *view.parts[p].segment;
      std::shared_ptr<const storage::RerankTable> table = seg.table(f);
      Gathered g;
      if (field.disk && table != nullptr) {
        std::vector<uint64_t> rows;
        for (uint64_t id : ids) rows.push_back(id & 0xffffffffu);
        std::vector<std::vector<float>> got;
        QUIVER_RETURN_IF_ERROR(table->Read(rows, &got, &reads));
        for (const auto& v : got) g.Add(v.data(), v.size() / field.dim, field.dim);
      } else {
        for (uint64_t id : ids) {
          const TokenSet t = seg.tokens(f, static_cast<uint32_t>(id & 0xffffffffu));
          g.Add(t.data, t.count, field.dim);
        }
      }
      std::vector<float> dist(ids.size());
      index::MaxSimDistances(query_of(q), g.Docs(field.dim), 0, ids.size(), dist.data(),
                             &scratch);
      for (size_t i = 0; i < ids.size(); ++i) topk[q].Push(dist[i], ids[i]);
      scored += ids.size();
    }
  }
  text = absl::StrCat(
      "LateInteraction(field=\"", field.name, "\", k=", k, ", queries=", nq, ")\n",
      absl::StrFormat("  MaxSimRerank(candidates=%d per query, reranked=%d, reads=%d, %.1fus)\n",
                      candidates, scored, reads,
                      absl::ToDoubleMicroseconds(absl::Now() - t_rerank)),
      "    MuveraCandidates(encoding dims=", fde_dim, ", ", encoders_[f]->params().r_reps,
      " repetitions x ", 1u << encoders_[f]->params().k_sim, " partitions)\n");
  if (explain != nullptr) AppendSegmentsText(*explain, 0, "      ", &text);
  return absl::OkStatus();
}

}  // namespace quiver
