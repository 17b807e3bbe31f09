// Search of a sparse vector field: the per-segment pieces Collection's
// sparse search (query/execute/sparse_search.cc) is made of.
//
// A sealed segment is searched through its inverted index
// (query/sparse_index.h, block-max WAND), a growing one (or a sealed one
// whose index is not built yet, or any with params.exact) by scoring each
// visible row that has the field. Both are exact: the same points and
// scores, the index only skips what cannot reach the top k. A filter is
// evaluated to a row set first (through the attribute indexes, as for
// vector searches) and the index checks candidates against it.
//
// Thread-safety: the functions are reentrant; segments are read under the
// caller's view. Errors: CANCELLED or DEADLINE_EXCEEDED from the StopToken.
#ifndef QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "query/execute/result_info.h"
#include "query/segment.h"
#include "query/sparse_index.h"

namespace quiver {

// The inverted index of sparse field s over rows [0, rows) of `seg`.
std::shared_ptr<const SparseIndex> BuildSparseIndex(const Segment& seg, size_t s, uint32_t rows);
// The BM25 index of text attribute a (term frequencies and lengths).
std::shared_ptr<const SparseIndex> BuildTextIndex(const Segment& seg, size_t a, uint32_t rows);

// One query term's part of a BM25 score, computed exactly as SparseIndex
// computes it (so a row scores the same scanned or through an index):
// q * tf * (k1 + 1) / (tf + k1 * ((1 - b) + dl * (b / avg_len))) in float.
struct Bm25Term {
  explicit Bm25Term(const SparseScoring& s)
      : k1(s.k1), k1p1(s.k1 + 1), one_minus_b(1 - s.b), b_per_len(s.b / s.avg_doc_len) {}
  float operator()(float q, float tf, uint32_t dl) const {
    return q * tf * k1p1 / (tf + k1 * (one_minus_b + static_cast<float>(dl) * b_per_len));
  }
  float k1, k1p1, one_minus_b, b_per_len;
};

// BM25 of document `doc` for a query's terms weighted by IDF (both
// ascending by term, as Collection::TextQueryTerms and TermFrequencies
// give them), added to *total; false if they share no term.
bool ScoreTextRow(const std::vector<SparseTerm>& q, const text::Analyzer::TermCounts& doc,
                  const Bm25Term& score, float* total);

// A sparse query as the index takes it.
std::vector<SparseTerm> SparseQueryTerms(const SparseVector& q);

// Dot product of two sparse vectors (indices ascending), and whether they
// share an index at all (a point sharing none is not a hit).
float SparseDot(const SparseVector& a, const SparseVector& b, bool* overlap);

// What a sparse search's list of `count` hits asked for `k` says about
// itself: exhaustive (the search is exact), and when short, every point
// that shares an index with the query and passes the filter is in it.
ListInfo SparseListInfo(size_t count, uint32_t k);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_
