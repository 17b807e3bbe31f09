// An inverted index over the sparse vectors (or BM25 term frequencies) of
// one sealed segment, with exact top-k search by Block-Max WAND (Ding and
// Suel, "Faster top-k document retrieval using block-max indexes", SIGIR
// 2011).
//
// A sealed segment's rows never change (deletes are tombstones the caller
// checks through `accept`), so the index is built once and never updated.
// For every term it keeps the rows holding it, ascending, with their weights,
// as contiguous arrays, cut into blocks of kSparseBlockSize postings; each
// block records its last row and the extremes of its weights (and of its
// rows' document lengths) so that a query can bound what any row of the
// block could score and jump over blocks that cannot reach the current top-k.
//
// Ownership: Build copies what the callbacks return; the index owns all its
// memory and keeps no reference to the caller's data.
// Collection-wide statistics (IDF, average document length) belong to the
// caller: a segment's own would rank rows differently from one segment to
// another, so the caller folds IDF into the query weights and passes the
// average length in SparseScoring.
//
// Thread-safety: immutable after Build; any number of readers may search one
// index at the same time (each search keeps its state on its own stack/heap).
// Errors: none can happen; nothing here throws.
#ifndef QUIVER_QUERY_SPARSE_INDEX_H_
#define QUIVER_QUERY_SPARSE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace quiver {

// Postings per block: block bounds are tight enough to skip often, and the
// per-block metadata stays a small fraction of the postings (20 bytes per
// 128 postings of 8 bytes).
inline constexpr uint32_t kSparseBlockSize = 128;

// One term of a row or a query. Weights are expected to be finite.
struct SparseTerm {
  uint64_t term = 0;
  float weight = 0;
};

struct SparseScoring {
  enum Kind { kDot, kBm25 };
  Kind kind = kDot;
  // kBm25 only. The block bounds assume k1 >= 0, 0 <= b <= 1, avg_doc_len > 0
  // and term frequencies >= 0; a search outside these falls back to the
  // exhaustive path (still exact, only slower).
  float k1 = 1.2f;
  float b = 0.75f;
  float avg_doc_len = 1.f;
};

class SparseIndex {
 public:
  // terms_of(row, out) appends the row's terms to *out (any order) and returns
  // false when the row has no value: such a row is in no posting list. Terms
  // should be unique within a row; a repeated one is summed into one posting.
  // doc_len_of(row), if given, is the row's document length for BM25.
  static std::shared_ptr<const SparseIndex> Build(
      uint32_t rows, const std::function<bool(uint32_t, std::vector<SparseTerm>*)>& terms_of,
      const std::function<uint32_t(uint32_t)>& doc_len_of = {});

  SparseIndex(const SparseIndex&) = delete;
  SparseIndex& operator=(const SparseIndex&) = delete;

  uint32_t rows() const { return rows_; }
  // Resident bytes of postings, blocks, the term table and document lengths.
  size_t MemoryBytes() const;
  // Rows holding `term` (deleted or not); 0 for an unknown term.
  uint32_t DocFreq(uint64_t term) const;
  // The row's document length; 0 when built without lengths.
  uint32_t doc_len(uint32_t row) const { return doc_lens_.empty() ? 0 : doc_lens_[row]; }
  uint64_t total_postings() const { return post_rows_.size(); }
  size_t num_terms() const { return terms_.size(); }

  struct Hit {
    uint32_t row = 0;
    float score = 0;
  };
  struct Stats {
    uint64_t postings_scored = 0;  // (row, term) contributions computed
    uint64_t blocks_skipped = 0;   // blocks a cursor jumped over without scoring any posting
    uint64_t candidates = 0;       // rows whose full score was computed
  };

  // The exact top-k rows by score (higher first; equal scores: lower row
  // first) among the rows that share at least one term with the query and
  // that `accept` (the caller's filter and deletion check; empty = all)
  // accepts. Repeated query terms are summed, terms the index does not know
  // and zero weights are ignored. A row's score is the sum, in ascending
  // term order, of one contribution per query term it holds, for query
  // weight q, document weight w (BM25: the term frequency) and length dl:
  //   kDot:  q * w
  //   kBm25: q * w * (k1 + 1) / (w + k1 * (1 - b + dl * (b / avg_doc_len)))
  // (in float, b / avg_doc_len once per search; IDF folded into q by the
  // caller; a negative q, as a Robertson IDF gives a term in most rows, is
  // bounded too). A matching row may score <= 0 and
  // still be a hit. `accept` is called only on rows whose score would enter
  // the current top-k, so it may be costly. `stats` may be null.
  std::vector<Hit> Search(const std::vector<SparseTerm>& query, uint32_t k,
                          const SparseScoring& scoring, const std::function<bool(uint32_t)>& accept,
                          Stats* stats = nullptr) const;

  // The same result, bit for bit, by scoring every posting of every query
  // term (term at a time): the baseline Search is tested and measured against.
  std::vector<Hit> SearchExhaustive(const std::vector<SparseTerm>& query, uint32_t k,
                                    const SparseScoring& scoring,
                                    const std::function<bool(uint32_t)>& accept,
                                    Stats* stats = nullptr) const;

 private:
  struct Term {
    uint64_t post_begin = 0;   // into post_rows_ / post_weights_
    uint64_t block_begin = 0;  // into block_last_ / block_bounds_
    uint32_t df = 0;
    float max_w = 0;
    float min_w = 0;
  };
  struct BlockBounds {
    float max_w;
    float min_w;
    uint32_t min_dl;
    uint32_t max_dl;
  };
  // A query term the index knows, in ascending term order.
  struct QueryTerm {
    uint32_t index;  // into terms_info_
    float q;
  };

  SparseIndex() = default;
  std::vector<QueryTerm> PrepareQuery(const std::vector<SparseTerm>& query) const;
  template <typename Scorer>
  std::vector<Hit> SearchBmw(const std::vector<QueryTerm>& qterms, uint32_t k, const Scorer& scorer,
                             const std::function<bool(uint32_t)>& accept, Stats* stats) const;
  template <typename Scorer>
  std::vector<Hit> SearchTaat(const std::vector<QueryTerm>& qterms, uint32_t k,
                              const Scorer& scorer, const std::function<bool(uint32_t)>& accept,
                              Stats* stats) const;

  uint32_t rows_ = 0;
  absl::flat_hash_map<uint64_t, uint32_t> terms_;  // term -> index into terms_info_
  std::vector<Term> terms_info_;
  std::vector<uint32_t> post_rows_;  // per term, ascending
  std::vector<float> post_weights_;
  std::vector<uint32_t> block_last_;  // last row of each block
  std::vector<BlockBounds> block_bounds_;
  std::vector<uint32_t> doc_lens_;  // by row; empty when built without lengths
};

}  // namespace quiver

#endif  // QUIVER_QUERY_SPARSE_INDEX_H_
