// Search of a sparse vector field: Collection::SearchSparse (a bound
// SearchRequest.sparse_vectors) and SparseSearchView, which hybrid search
// also runs for a sparse field's part.
#include "query/execute/sparse_search.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/collection.h"
#include "query/execute/limit.h"
#include "query/execute/response.h"
#include "query/execute/result_info.h"

namespace quiver {

std::shared_ptr<const SparseIndex> BuildSparseIndex(const Segment& seg, size_t s, uint32_t rows) {
  return SparseIndex::Build(rows, [&](uint32_t off, std::vector<SparseTerm>* out) {
    const SparseVector* v = SparseAt(seg.sparse(off), s);
    if (v == nullptr) return false;
    for (size_t i = 0; i < v->size(); ++i) out->push_back({v->indices[i], v->values[i]});
    return true;
  });
}

std::shared_ptr<const SparseIndex> BuildTextIndex(const Segment& seg, size_t a, uint32_t rows) {
  return SparseIndex::Build(
      rows,
      [&](uint32_t off, std::vector<SparseTerm>* out) {
        const text::Analyzer::TermCounts* t = TextAt(seg.text(off), a);
        if (t == nullptr) return false;
        for (const auto& [term, tf] : t->terms) out->push_back({term, static_cast<float>(tf)});
        return true;
      },
      [&](uint32_t off) {
        const text::Analyzer::TermCounts* t = TextAt(seg.text(off), a);
        return t == nullptr ? 0u : t->length;
      });
}

std::vector<SparseTerm> SparseQueryTerms(const SparseVector& q) {
  std::vector<SparseTerm> terms;
  terms.reserve(q.size());
  for (size_t i = 0; i < q.size(); ++i) terms.push_back({q.indices[i], q.values[i]});
  return terms;
}

float SparseDot(const SparseVector& a, const SparseVector& b, bool* overlap) {
  // Both sorted: a merge, in the index's order of terms (ascending), so a
  // row scores the same here as through the index.
  float dot = 0;
  bool any = false;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a.indices[i] < b.indices[j]) {
      ++i;
    } else if (a.indices[i] > b.indices[j]) {
      ++j;
    } else {
      dot += a.values[i] * b.values[j];
      any = true;
      ++i;
      ++j;
    }
  }
  *overlap = any;
  return dot;
}

namespace {

// The rows of one segment of a view a hit may come from: visible at the
// view's sequence and passing the filter (evaluated once per segment, or
// taken from the hybrid search's shared plan). Without a filter the rows
// are checked for visibility one by one instead, as candidates come.
absl::Status FilterRows(const Segment& seg, uint32_t rows, uint64_t seq, SharedSegmentFilter* shared,
                        const filter::Filter& flt, const StopToken& stop, RowSet* allowed,
                        uint64_t* checks) {
  std::shared_ptr<const SegmentAttrIndex> attrs = seg.attr_index();
  if (shared != nullptr) {
    return shared->Rows(flt, seg, rows, seq, attrs.get(), stop, checks, allowed);
  }
  *allowed = RowSet(rows);
  QUIVER_RETURN_IF_ERROR(EvaluateFilter(flt, seg, rows, attrs.get(), allowed, checks, stop));
  DropInvisible(seg, seq, allowed);
  return absl::OkStatus();
}

// The names a sparse or text search gives its segments' plans.
struct TermPlanNames {
  const char* index_name;  // the index kind, when one was searched
  const char* strategy;    // its strategy, when one was searched
  const char* index_op;    // e.g. "SparseIndexSearch"
  const char* scan_op;     // e.g. "SparseScan"
};

void FillTermPlan(const Segment& seg, uint32_t rows, const std::string& field, bool indexed,
                  bool exact, const TermPlanNames& names, uint32_t k, uint64_t scored,
                  uint64_t exhaustive, uint64_t checks, absl::Time t0, absl::Time t1,
                  const filter::Filter* flt, const RowSet& allowed, v1::SegmentPlan* sp) {
  sp->set_segment_id(seg.id());
  sp->set_field(field);
  sp->set_state(!seg.sealed() ? "GROWING" : indexed ? "INDEXED" : "SEALED");
  sp->set_index(indexed ? names.index_name : "none");
  sp->set_rows(rows);
  sp->set_live_rows(rows - std::min(rows, seg.dead()));
  sp->set_strategy(indexed ? names.strategy : "EXACT_SCAN");
  sp->set_distances(scored);
  sp->set_filter_checks(checks);
  sp->set_filter_micros(absl::ToDoubleMicroseconds(t1 - t0));
  sp->set_search_micros(absl::ToDoubleMicroseconds(absl::Now() - t1));
  sp->set_plan(indexed ? absl::StrCat(names.index_op, "(k=", k, ", postings scored=", scored,
                                      " of ", exhaustive, ")")
                       : absl::StrCat(names.scan_op, "(k=", k, ", rows scored=", scored, ")"));
  sp->set_reason(exact     ? "forced (params.exact)"
                 : indexed ? "sealed segment with its inverted index"
                 : seg.sealed() ? "inverted index not built yet"
                                : "growing segment");
  if (flt != nullptr) {
    sp->set_actual_selectivity(static_cast<double>(allowed.Count()) / rows);
    sp->set_plan(absl::StrCat(sp->plan(), "\n  RowSet(filter=\"", flt->ToString(), "\")"));
  }
}

// The per-segment loop both sparse and text searches run: for each segment
// of the view, the rows a hit may come from (filter and visibility), then
// each query through the segment's inverted index (index_of(seg); null:
// none) or, without one, a scan that scores each row with a value
// (scan_row(seg, off, qi, &score): false if the row shares no term). Each
// query's k best go into (*topk)[qi] as similarities negated, ids HitId.
template <typename IndexOf, typename ScanRow>
absl::Status TermSearchSegments(const View& view, const std::vector<std::vector<SparseTerm>>& terms,
                                uint32_t k, bool exact, const SparseScoring& scoring,
                                const filter::Filter* flt, const StopToken& stop,
                                SharedSegmentFilter* shared, IndexOf index_of, ScanRow scan_row,
                                const std::string& field, const TermPlanNames& names,
                                v1::Explain* explain, std::vector<index::TopK>* topk) {
  for (size_t p = 0; p < view.parts.size(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    if (rows == 0) continue;
    QUIVER_RETURN_IF_ERROR(stop.Check());
    const absl::Time t0 = absl::Now();
    uint64_t checks = 0;
    RowSet allowed;
    const bool filtered = flt != nullptr;
    if (filtered) {
      QUIVER_RETURN_IF_ERROR(FilterRows(seg, rows, view.seq, shared ? &shared[p] : nullptr, *flt,
                                        stop, &allowed, &checks));
    }
    const absl::Time t1 = absl::Now();
    const uint64_t seq = view.seq;
    auto accept = [&](uint32_t off) {
      return off < rows && (filtered ? allowed.Test(off) : seg.Visible(off, seq));
    };
    // A sealed segment's index covers every row it will ever have; a
    // growing one has none.
    std::shared_ptr<const SparseIndex> idx = exact ? nullptr : index_of(seg);
    if (idx != nullptr && idx->rows() < rows) idx = nullptr;
    uint64_t scored = 0, exhaustive = 0;
    const uint64_t part_bits = static_cast<uint64_t>(p) << 32;
    for (size_t qi = 0; qi < terms.size(); ++qi) {
      if (terms[qi].empty()) continue;  // no term any point has
      index::TopK& heap = (*topk)[qi];
      if (idx != nullptr) {
        SparseIndex::Stats st;
        for (const SparseIndex::Hit& h : idx->Search(terms[qi], k, scoring, accept, &st)) {
          heap.Push(-h.score, part_bits | h.row);
        }
        scored += st.postings_scored;
        for (const SparseTerm& t : terms[qi]) exhaustive += idx->DocFreq(t.term);
        continue;
      }
      for (uint32_t off = 0; off < rows; ++off) {
        if ((off & 4095) == 0 && off > 0) QUIVER_RETURN_IF_ERROR(stop.Check());
        if (!accept(off)) continue;
        float score = 0;
        bool had_value = false;
        if (scan_row(seg, off, qi, &score, &had_value)) heap.Push(-score, part_bits | off);
        scored += had_value;
      }
    }
    if (explain == nullptr) continue;
    FillTermPlan(seg, rows, field, idx != nullptr, exact, names, k, scored, exhaustive, checks,
                 t0, t1, flt, allowed, explain->add_segments());
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<SparseValue> Collection::SparseQueriesFor(
    int s, const std::vector<SparseValue>& queries) const {
  const Bm25Stats* stats = sparse_stats_[s].get();
  if (stats == nullptr) return queries;
  std::vector<uint64_t> ids;
  for (const SparseValue& q : queries) ids.insert(ids.end(), q->indices.begin(), q->indices.end());
  const Bm25Snapshot snap = stats->Snapshot(ids);
  std::vector<SparseValue> out;
  out.reserve(queries.size());
  size_t next = 0;
  for (const SparseValue& q : queries) {
    auto w = std::make_shared<SparseVector>();
    for (size_t i = 0; i < q->size(); ++i) {
      const uint32_t df = snap.df[next++];
      if (df == 0) continue;  // in no live point: it can match nothing
      w->indices.push_back(q->indices[i]);
      w->values.push_back(static_cast<float>(q->values[i] * Bm25Idf(snap.docs, df)));
    }
    out.push_back(std::move(w));
  }
  return out;
}

absl::Status Collection::SparseSearchView(int s, const std::vector<SparseValue>& given,
                                          uint32_t k, bool exact, const filter::Filter* flt,
                                          const View& view, const StopToken& stop,
                                          SharedSegmentFilter* shared, v1::Explain* explain,
                                          std::vector<index::TopK>* topk) const {
  // With the IDF modifier, the weighted queries from here on, so the index
  // and the scan score alike.
  const std::vector<SparseValue> queries = SparseQueriesFor(s, given);
  std::vector<std::vector<SparseTerm>> terms;
  terms.reserve(queries.size());
  for (const SparseValue& q : queries) terms.push_back(SparseQueryTerms(*q));
  const size_t field = static_cast<size_t>(s);
  return TermSearchSegments(
      view, terms, k, exact, SparseScoring{}, flt, stop, shared,
      [&](const Segment& seg) {
        return seg.LacksSparse(field) ? nullptr : seg.sparse_index(field);
      },
      [&](const Segment& seg, uint32_t off, size_t qi, float* score, bool* had_value) {
        const SparseVector* v = SparseAt(seg.sparse(off), field);
        if (v == nullptr) return false;
        *had_value = true;
        bool overlap = false;
        *score = SparseDot(*queries[qi], *v, &overlap);
        return overlap;
      },
      schema().sparse()[s].name,
      TermPlanNames{"SPARSE_INVERTED(block-max WAND)", "SPARSE_INDEX", "SparseIndexSearch",
                    "SparseScan"},
      explain, topk);
}

absl::Status Collection::RunTermSearch(size_t queries, uint32_t k, const BoundOutput& output,
                                       size_t filter_bytes, bool with_explain,
                                       const TermViewSearch& search,
                                       const std::function<std::string()>& header,
                                       v1::SearchResponse* resp) const {
  const absl::Time t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(queries, k, output.attributes, output.with_vectors,
                                             with_explain ? view.parts.size() : 0,
                                             filter_bytes));
  std::vector<index::TopK> topk(queries, index::TopK(k));
  v1::Explain* explain = with_explain ? resp->mutable_explain() : nullptr;
  QUIVER_RETURN_IF_ERROR(search(view, explain, &topk));
  LimitOp limit(k);
  const std::vector<std::vector<index::Neighbor>> lists = limit.Run(&topk);
  ResponseBudget budget(options_.max_response_bytes);
  if (explain != nullptr) {
    std::string text = header();
    limit.ToExplain("  ", &text);
    absl::StrAppend(&text, "    MergeTopK(segments=", explain->segments_size(), ")\n");
    AppendSegmentsText(*explain, 0, "      ", &text);
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
    explain->set_text(std::move(text));
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }
  for (const std::vector<index::Neighbor>& hits : lists) {
    v1::SearchResult* result = resp->add_results();
    SetListInfo(SparseListInfo(hits.size(), k), result);
    for (const index::Neighbor& nb : hits) {
      // Scores are similarities, negated in the heaps.
      QUIVER_RETURN_IF_ERROR(FillHit(view, nb.id, -nb.distance, output.attributes,
                                     output.with_vectors, &budget, result->add_hits()));
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::SearchSparse(const BoundSparseSearch& q, const StopToken& stop,
                                      v1::SearchResponse* resp) const {
  return RunTermSearch(
      q.queries.size(), q.k, q.output, q.filter_bytes, q.explain,
      [&](const View& view, v1::Explain* explain, std::vector<index::TopK>* topk) {
        return SparseSearchView(q.field, q.queries, q.k, q.exact, q.filter.get(), view, stop,
                                nullptr, explain, topk);
      },
      [&] {
        return absl::StrCat("SparseSearch(collection=\"", name_, "\", field=\"",
                            schema().sparse()[q.field].name, "\", k=", q.k,
                            schema().sparse()[q.field].idf ? ", modifier=IDF" : "",
                            ", queries=", q.queries.size(), ", filter=",
                            q.filter ? absl::StrCat("\"", q.filter->ToString(), "\"") : "none",
                            ")\n");
      },
      resp);
}

std::vector<std::vector<SparseTerm>> Collection::TextQueryTerms(
    int a, const std::vector<TextTerms>& queries, SparseScoring* scoring) const {
  const AttributeSpec& spec = schema().attributes()[a];
  // Each query's terms weighted by IDF (times their count in the query),
  // from the statistics as they are now: collection-wide, so every segment
  // scores a point alike.
  scoring->kind = SparseScoring::kBm25;
  scoring->k1 = spec.text_spec.k1;
  scoring->b = spec.text_spec.b;
  // One snapshot for every query, so the batch is scored against one state.
  std::vector<uint64_t> ids;
  for (const TextTerms& q : queries) {
    for (const auto& [term, count] : q->terms) ids.push_back(term);
  }
  const Bm25Snapshot snap = text_stats_[a]->Snapshot(ids);
  scoring->avg_doc_len = static_cast<float>(snap.avg_len);
  // Terms stay in ascending id (TermFrequencies' order), the order the
  // index sums a row's terms in and ScoreTextRow merges by.
  std::vector<std::vector<SparseTerm>> terms(queries.size());
  size_t next = 0;
  for (size_t qi = 0; qi < queries.size(); ++qi) {
    for (const auto& [term, count] : queries[qi]->terms) {
      const uint32_t df = snap.df[next++];
      if (df == 0) continue;  // in no live point
      terms[qi].push_back({term, static_cast<float>(Bm25Idf(snap.docs, df) * count)});
    }
  }
  return terms;
}

bool ScoreTextRow(const std::vector<SparseTerm>& q, const text::Analyzer::TermCounts& doc,
                  const Bm25Term& score, float* total) {
  bool overlap = false;
  size_t i = 0, j = 0;
  while (i < q.size() && j < doc.terms.size()) {
    if (q[i].term < doc.terms[j].first) {
      ++i;
    } else if (q[i].term > doc.terms[j].first) {
      ++j;
    } else {
      *total += score(q[i].weight, static_cast<float>(doc.terms[j].second), doc.length);
      overlap = true;
      ++i;
      ++j;
    }
  }
  return overlap;
}

absl::Status Collection::TextSearchView(int a, const std::vector<TextTerms>& queries, uint32_t k,
                                        bool exact, const filter::Filter* flt, const View& view,
                                        const StopToken& stop, SharedSegmentFilter* shared,
                                        v1::Explain* explain,
                                        std::vector<index::TopK>* topk) const {
  SparseScoring scoring;
  const std::vector<std::vector<SparseTerm>> terms = TextQueryTerms(a, queries, &scoring);
  const Bm25Term score(scoring);
  return TermSearchSegments(
      view, terms, k, exact, scoring, flt, stop, shared,
      [&](const Segment& seg) { return seg.text_index(static_cast<size_t>(a)); },
      [&](const Segment& seg, uint32_t off, size_t qi, float* total, bool* had_value) {
        const text::Analyzer::TermCounts* doc = TextAt(seg.text(off), static_cast<size_t>(a));
        if (doc == nullptr) return false;
        *had_value = true;
        return ScoreTextRow(terms[qi], *doc, score, total);
      },
      schema().attributes()[a].name,
      TermPlanNames{"TEXT_INVERTED(BM25, block-max WAND)", "TEXT_INDEX", "TextIndexSearch",
                    "TextScan"},
      explain, topk);
}

absl::Status Collection::SearchText(const BoundTextSearch& q, const StopToken& stop,
                                    v1::SearchResponse* resp) const {
  return RunTermSearch(
      q.queries.size(), q.k, q.output, q.filter_bytes, q.explain,
      [&](const View& view, v1::Explain* explain, std::vector<index::TopK>* topk) {
        return TextSearchView(q.attr, q.queries, q.k, q.exact, q.filter.get(), view, stop,
                              nullptr, explain, topk);
      },
      [&] {
        const AttributeSpec& spec = schema().attributes()[q.attr];
        return absl::StrCat(
            "TextSearch(collection=\"", name_, "\", field=\"", spec.name, "\", k=", q.k,
            ", queries=", q.queries.size(), ", BM25(k1=", spec.text_spec.k1,
            ", b=", spec.text_spec.b, "), filter=",
            q.filter ? absl::StrCat("\"", q.filter->ToString(), "\"") : "none", ")\n");
      },
      resp);
}

ListInfo SparseListInfo(size_t count, uint32_t k) {
  // The search is exact over every point sharing an index with the query:
  // a short list holds all of those that pass the filter.
  ListInfo info;
  info.count = static_cast<uint32_t>(count);
  info.exhaustive = true;
  if (count < k) {
    info.shortfall = v1::SHORTFALL_FEWER_MATCHES;
    info.matching = count;
  }
  return info;
}

}  // namespace quiver
