#include "query/sparse_index.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

namespace quiver {
namespace {

// A row number no posting holds (rows are below a uint32_t row count): the
// document of an exhausted cursor, so exhausted cursors sort last.
constexpr uint32_t kSparseEnd = std::numeric_limits<uint32_t>::max();
constexpr float kSparseNoThreshold = -std::numeric_limits<float>::infinity();

// First i in [from, end) with a[i] >= d, or end; a ascending. Galloping, as
// the target is usually close to `from` (the next pivot) but sometimes far (a
// skipped run of blocks).
inline uint32_t SparseGallopGeq(const uint32_t* a, uint32_t from, uint32_t end, uint32_t d) {
  if (from >= end || a[from] >= d) return from;
  uint32_t lo = from;  // a[lo] < d
  uint32_t step = 1;
  while (end - lo > step && a[lo + step] < d) {
    lo += step;
    step *= 2;
  }
  const uint32_t hi = end - lo > step ? lo + step : end;  // a[hi] >= d, or hi == end
  // A branch-free binary search over (lo, hi): its comparisons are coin
  // flips a branch predictor would mostly miss.
  const uint32_t* base = a + lo + 1;
  uint32_t len = hi - lo - 1;
  if (len == 0) return hi;
  while (len > 1) {
    const uint32_t half = len / 2;
    base = base[half] < d ? base + half : base;
    len -= half;
  }
  return static_cast<uint32_t>(base - a) + (*base < d ? 1 : 0);
}

// The contribution of one posting and the bounds on it. Search and
// SearchExhaustive score through the same Contribution, as separate
// statements from the additions, so no FMA contraction can make their sums
// differ.
struct SparseDotScorer {
  float Contribution(float q, float w, uint32_t /*row*/) const { return q * w; }
  // Over a block (or list) whose weights lie in [min_w, max_w]. Exact: a
  // rounded product is monotone in each factor.
  float Bound(float q, float max_w, float min_w, uint32_t /*min_dl*/, uint32_t /*max_dl*/) const {
    return q >= 0 ? q * max_w : q * min_w;
  }
  float AbsBound(float q, float max_w, float min_w, uint32_t /*min_dl*/) const {
    return std::fabs(q) * std::max(std::fabs(max_w), std::fabs(min_w));
  }
};

struct SparseBm25Scorer {
  float k1;
  float k1p1;                // k1 + 1
  float one_minus_b;         // 1 - b
  float b_per_len;           // b / avg_doc_len: one division per posting instead of two
  const uint32_t* doc_lens;  // null: every length is 0

  SparseBm25Scorer(const SparseScoring& s, const uint32_t* lens)
      : k1(s.k1),
        k1p1(s.k1 + 1),
        one_minus_b(1 - s.b),
        b_per_len(s.b / s.avg_doc_len),
        doc_lens(lens) {}

  float Score(float q, float w, uint32_t dl) const {
    return q * w * k1p1 / (w + k1 * (one_minus_b + static_cast<float>(dl) * b_per_len));
  }
  float Contribution(float q, float w, uint32_t row) const {
    return Score(q, w, doc_lens != nullptr ? doc_lens[row] : 0);
  }
  // The score grows with w (w >= 0) and falls with dl (k1 >= 0, 0 <= b <= 1),
  // so the highest is at (max_w, min_dl) for q >= 0, at (min_w, max_dl) for q < 0.
  // Rounding each operation of Score can break that order by a few ulps
  // (w grows both numerator and denominator), so the bound is raised by more
  // than Score's relative error (a handful of roundings).
  float Bound(float q, float max_w, float min_w, uint32_t min_dl, uint32_t max_dl) const {
    const float s = q >= 0 ? Score(q, max_w, min_dl) : Score(q, min_w, max_dl);
    return s + std::fabs(s) * (16 * FLT_EPSILON);
  }
  float AbsBound(float q, float max_w, float /*min_w*/, uint32_t min_dl) const {
    return Score(std::fabs(q), max_w, min_dl) * (1 + 16 * FLT_EPSILON);
  }
};

// The heap order: `a` ranks before `b`.
inline bool SparseBetter(const SparseIndex::Hit& a, const SparseIndex::Hit& b) {
  return a.score > b.score || (a.score == b.score && a.row < b.row);
}

// The top k hits, as a heap whose front is the worst of them.
class SparseTopK {
 public:
  explicit SparseTopK(uint32_t k) : k_(k) { heap_.reserve(std::min<uint32_t>(k, 1024)); }

  // The score a row must beat (strictly: rows come in ascending order, so a
  // later row with an equal score ranks after the ones held) once k are held.
  float threshold() const { return heap_.size() < k_ ? kSparseNoThreshold : heap_.front().score; }

  // Whether the row, scored `score`, would enter; `accept` is asked only then.
  bool WouldEnter(const SparseIndex::Hit& hit) const {
    return heap_.size() < k_ || SparseBetter(hit, heap_.front());
  }
  void Push(const SparseIndex::Hit& hit) {
    if (heap_.size() == k_) {
      std::pop_heap(heap_.begin(), heap_.end(), SparseBetter);
      heap_.back() = hit;
    } else {
      heap_.push_back(hit);
    }
    std::push_heap(heap_.begin(), heap_.end(), SparseBetter);
  }
  std::vector<SparseIndex::Hit> Take() && {
    std::sort_heap(heap_.begin(), heap_.end(), SparseBetter);
    return std::move(heap_);
  }

 private:
  uint32_t k_;
  std::vector<SparseIndex::Hit> heap_;
};

// Offers a scored row to the top k.
inline void SparseOffer(uint32_t row, float score, const std::function<bool(uint32_t)>& accept,
                        SparseTopK* top) {
  const SparseIndex::Hit hit{row, score};
  if (top->WouldEnter(hit) && (!accept || accept(row))) top->Push(hit);
}

}  // namespace

std::shared_ptr<const SparseIndex> SparseIndex::Build(
    uint32_t rows, const std::function<bool(uint32_t, std::vector<SparseTerm>*)>& terms_of,
    const std::function<uint32_t(uint32_t)>& doc_len_of) {
  std::shared_ptr<SparseIndex> index(new SparseIndex());
  index->rows_ = rows;  // rows < 2^32, so no row is kSparseEnd
  if (doc_len_of) {
    index->doc_lens_.resize(rows);
    for (uint32_t r = 0; r < rows; ++r) index->doc_lens_[r] = doc_len_of(r);
  }

  // Pass 1: every row's (term index, weight) pairs, in row order, and each
  // term's document frequency.
  struct Entry {
    uint32_t term;
    float weight;
  };
  std::vector<Entry> entries;
  std::vector<uint64_t> row_end(rows);
  std::vector<uint32_t> df;
  std::vector<uint32_t> last_row;    // by term: the last row that held it
  std::vector<uint64_t> last_entry;  // by term: that row's entry
  std::vector<SparseTerm> buf;
  for (uint32_t r = 0; r < rows; ++r) {
    buf.clear();
    if (terms_of(r, &buf)) {
      for (const SparseTerm& t : buf) {
        auto [it, inserted] = index->terms_.try_emplace(t.term, static_cast<uint32_t>(df.size()));
        const uint32_t ti = it->second;
        if (inserted) {
          df.push_back(0);
          last_row.push_back(kSparseEnd);
          last_entry.push_back(0);
        }
        if (last_row[ti] == r) {  // a repeated term: one posting
          entries[last_entry[ti]].weight += t.weight;
          continue;
        }
        last_row[ti] = r;
        last_entry[ti] = entries.size();
        ++df[ti];
        entries.push_back({ti, t.weight});
      }
    }
    row_end[r] = entries.size();
  }
  last_row = {};
  last_entry = {};

  // Pass 2: lay the lists out one after the other; scattering in row order
  // leaves each one ascending.
  const size_t num_terms = df.size();
  index->terms_info_.resize(num_terms);
  uint64_t posts = 0;
  uint64_t blocks = 0;
  for (size_t ti = 0; ti < num_terms; ++ti) {
    Term& t = index->terms_info_[ti];
    t.post_begin = posts;
    t.block_begin = blocks;
    t.df = df[ti];
    posts += df[ti];
    blocks += (df[ti] + kSparseBlockSize - 1) / kSparseBlockSize;
  }
  index->post_rows_.resize(posts);
  index->post_weights_.resize(posts);
  std::vector<uint64_t> fill(num_terms);
  for (size_t ti = 0; ti < num_terms; ++ti) fill[ti] = index->terms_info_[ti].post_begin;
  uint64_t e = 0;
  for (uint32_t r = 0; r < rows; ++r) {
    for (; e < row_end[r]; ++e) {
      const uint64_t at = fill[entries[e].term]++;
      index->post_rows_[at] = r;
      index->post_weights_[at] = entries[e].weight;
    }
  }
  entries = {};
  row_end = {};

  // Blocks and list extremes.
  index->block_last_.resize(blocks);
  index->block_bounds_.resize(blocks);
  for (size_t ti = 0; ti < num_terms; ++ti) {
    Term& t = index->terms_info_[ti];
    const uint32_t* prow = index->post_rows_.data() + t.post_begin;
    const float* pw = index->post_weights_.data() + t.post_begin;
    t.max_w = -std::numeric_limits<float>::infinity();
    t.min_w = std::numeric_limits<float>::infinity();
    for (uint32_t start = 0, b = 0; start < t.df; start += kSparseBlockSize, ++b) {
      const uint32_t end = std::min(t.df, start + kSparseBlockSize);
      BlockBounds bb{-std::numeric_limits<float>::infinity(),
                     std::numeric_limits<float>::infinity(), kSparseEnd, 0};
      for (uint32_t i = start; i < end; ++i) {
        bb.max_w = std::max(bb.max_w, pw[i]);
        bb.min_w = std::min(bb.min_w, pw[i]);
        const uint32_t dl = index->doc_len(prow[i]);
        bb.min_dl = std::min(bb.min_dl, dl);
        bb.max_dl = std::max(bb.max_dl, dl);
      }
      index->block_last_[t.block_begin + b] = prow[end - 1];
      index->block_bounds_[t.block_begin + b] = bb;
      t.max_w = std::max(t.max_w, bb.max_w);
      t.min_w = std::min(t.min_w, bb.min_w);
    }
  }
  return index;
}

size_t SparseIndex::MemoryBytes() const {
  return sizeof(*this) + terms_.capacity() * (sizeof(std::pair<const uint64_t, uint32_t>) + 1) +
         terms_info_.capacity() * sizeof(Term) + post_rows_.capacity() * sizeof(uint32_t) +
         post_weights_.capacity() * sizeof(float) + block_last_.capacity() * sizeof(uint32_t) +
         block_bounds_.capacity() * sizeof(BlockBounds) + doc_lens_.capacity() * sizeof(uint32_t);
}

uint32_t SparseIndex::DocFreq(uint64_t term) const {
  auto it = terms_.find(term);
  return it == terms_.end() ? 0 : terms_info_[it->second].df;
}

std::vector<SparseIndex::QueryTerm> SparseIndex::PrepareQuery(
    const std::vector<SparseTerm>& query) const {
  // Stable, so repeated terms are summed in the order given: the same query
  // always gives the same weights.
  std::vector<SparseTerm> sorted = query;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const SparseTerm& a, const SparseTerm& b) { return a.term < b.term; });
  std::vector<QueryTerm> out;
  for (size_t i = 0; i < sorted.size();) {
    const uint64_t term = sorted[i].term;
    float q = 0;
    for (; i < sorted.size() && sorted[i].term == term; ++i) q += sorted[i].weight;
    auto it = terms_.find(term);
    if (q == 0 || it == terms_.end()) continue;
    out.push_back({it->second, q});
  }
  return out;
}

namespace {

// One query term's position in its posting list during Block-Max WAND.
struct SparseCursor {
  const uint32_t* rows;
  const float* weights;
  const uint32_t* block_last;
  uint64_t block_begin;  // of the list's blocks in the index
  uint32_t size;
  uint32_t nblocks;
  uint32_t pos;
  uint32_t doc;  // rows[pos], or kSparseEnd
  // The block ShallowTo last reached; may run ahead of pos's block.
  uint32_t blk;
  uint32_t bound_blk;  // the block `block_bound` is for
  float block_bound;
  float q;
  float list_bound;     // over the whole list, clamped at 0 (for the pivot)
  uint32_t qpos;        // in ascending term order: where its contribution is summed
  uint32_t scored_blk;  // the block of the last posting scored (for Stats)

  void Next() {
    ++pos;
    doc = pos < size ? rows[pos] : kSparseEnd;
  }
  // Moves blk to the first block that may hold a row >= d, without touching
  // the postings: a bound on what rows from d on may score costs only the
  // block table.
  void ShallowTo(uint32_t d) {
    blk = SparseGallopGeq(block_last, std::max(blk, pos / kSparseBlockSize), nblocks, d);
  }
  // Moves to the first posting with row >= d (d > doc). blocks_skipped
  // counts the blocks left without a posting of theirs scored.
  void NextGeq(uint64_t d, uint64_t* blocks_skipped) {
    const uint32_t from_blk = pos / kSparseBlockSize;
    if (d >= kSparseEnd) {
      blk = nblocks;
    } else {
      ShallowTo(static_cast<uint32_t>(d));
    }
    if (blk > from_blk) *blocks_skipped += blk - from_blk - (scored_blk == from_blk ? 1 : 0);
    if (blk >= nblocks) {
      pos = size;
      doc = kSparseEnd;
      return;
    }
    const uint32_t block_end = std::min(size, (blk + 1) * kSparseBlockSize);
    pos = SparseGallopGeq(rows, std::max(pos, blk * kSparseBlockSize), block_end,
                          static_cast<uint32_t>(d));
    doc = rows[pos];
  }
};

// Insertion sort by document.
inline void SparseSortCursors(std::vector<SparseCursor*>* order) {
  auto& o = *order;
  for (size_t i = 1; i < o.size(); ++i) {
    SparseCursor* c = o[i];
    size_t j = i;
    for (; j > 0 && o[j - 1]->doc > c->doc; --j) o[j] = o[j - 1];
    o[j] = c;
  }
}

// Restores the order after a step moved some of the cursors 0..p forward:
// those past p are still in order, and so are the ones that did not move, so
// each cursor up to p, from the last, only has to sink past the ones it
// overtook.
inline void SparseResortPrefix(std::vector<SparseCursor*>* order, size_t p) {
  auto& o = *order;
  const size_t n = o.size();
  for (size_t i = p + 1; i-- > 0;) {
    SparseCursor* c = o[i];
    size_t j = i;
    for (; j + 1 < n && o[j + 1]->doc < c->doc; ++j) o[j] = o[j + 1];
    o[j] = c;
  }
}

// A list of at most n cursors without the bookkeeping of a vector.
class SparseCursorList {
 public:
  explicit SparseCursorList(size_t n) : items_(n) {}
  void clear() { size_ = 0; }
  void push_back(SparseCursor* c) { items_[size_++] = c; }
  size_t size() const { return size_; }
  SparseCursor*& operator[](size_t i) { return items_[i]; }
  SparseCursor** begin() { return items_.data(); }
  SparseCursor** end() { return items_.data() + size_; }

 private:
  std::vector<SparseCursor*> items_;
  size_t size_ = 0;
};

}  // namespace

template <typename Scorer>
std::vector<SparseIndex::Hit> SparseIndex::SearchBmw(const std::vector<QueryTerm>& qterms,
                                                     uint32_t k, const Scorer& scorer,
                                                     const std::function<bool(uint32_t)>& accept,
                                                     Stats* stats) const {
  const size_t n = qterms.size();
  std::vector<SparseCursor> cursors(n);
  float abs_total = 0;  // bounds every |partial sum| of scores and bounds
  for (size_t i = 0; i < n; ++i) {
    const Term& t = terms_info_[qterms[i].index];
    const float q = qterms[i].q;
    SparseCursor& c = cursors[i];
    c.rows = post_rows_.data() + t.post_begin;
    c.weights = post_weights_.data() + t.post_begin;
    c.block_last = block_last_.data() + t.block_begin;
    c.block_begin = t.block_begin;
    c.size = t.df;
    c.nblocks = (t.df + kSparseBlockSize - 1) / kSparseBlockSize;
    c.pos = 0;
    c.doc = c.rows[0];
    c.blk = 0;
    c.bound_blk = kSparseEnd;
    c.block_bound = 0;
    c.q = q;
    c.qpos = static_cast<uint32_t>(i);
    c.scored_blk = kSparseEnd;
    const BlockBounds* bb = block_bounds_.data() + t.block_begin;
    float list_bound;
    float abs_bound;
    if constexpr (std::is_same_v<Scorer, SparseDotScorer>) {
      list_bound = scorer.Bound(q, t.max_w, t.min_w, 0, 0);
      abs_bound = scorer.AbsBound(q, t.max_w, t.min_w, 0);
    } else {
      // BM25's tightest list bound is the best block's: the row with the
      // highest frequency is rarely the shortest.
      list_bound = -std::numeric_limits<float>::infinity();
      abs_bound = 0;
      for (uint32_t b = 0; b < c.nblocks; ++b) {
        list_bound = std::max(
            list_bound, scorer.Bound(q, bb[b].max_w, bb[b].min_w, bb[b].min_dl, bb[b].max_dl));
        abs_bound = std::max(abs_bound, scorer.AbsBound(q, bb[b].max_w, bb[b].min_w, bb[b].min_dl));
      }
    }
    // A row before the pivot may lack a term whose bound is negative.
    c.list_bound = std::max(list_bound, 0.f);
    abs_total += abs_bound;
  }
  // The pivot search sums list bounds in document order while scores are
  // summed in term order, and float addition is not associative: `slack`
  // covers the difference (n roundings each way, with room), so the pivot
  // never passes a row that could enter; likewise for the running bound of
  // the seeks to the pivot. The block checks sum in term order and need none.
  const float slack = abs_total * static_cast<float>(4 * n + 8) * FLT_EPSILON;

  auto block_bound = [&](SparseCursor* c) {
    if (c->bound_blk != c->blk) {
      const BlockBounds& bb = block_bounds_[c->block_begin + c->blk];
      c->block_bound = scorer.Bound(c->q, bb.max_w, bb.min_w, bb.min_dl, bb.max_dl);
      c->bound_blk = c->blk;
    }
    return c->block_bound;
  };

  std::vector<SparseCursor*> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = &cursors[i];
  // The order in which the lists behind a pivot seek to it: highest bound
  // first, so that the pivot is given up as soon as what the lists not yet
  // sought could add cannot lift it above theta. List bounds rather than
  // block bounds: a fixed order needs no sorting per pivot.
  std::vector<SparseCursor*> by_bound = order;
  std::stable_sort(
      by_bound.begin(), by_bound.end(),
      [](const SparseCursor* a, const SparseCursor* b) { return a->list_bound > b->list_bound; });
  SparseSortCursors(&order);
  SparseCursorList at_pivot(n), behind(n);
  // By query term: values to sum in term order, and which terms have one.
  // Summed in the same order as a score, a bound that is >= each
  // contribution (and >= 0 for a term a row may lack) is >= the score
  // exactly, float rounding included: addition is monotone in each operand.
  std::vector<float> range_bound(n), pivot_bound(n), contrib(n);
  std::vector<uint64_t> marked((n + 63) / 64);
  auto mark = [&](uint32_t qpos) { marked[qpos / 64] |= uint64_t{1} << (qpos % 64); };
  auto sum_marked = [&](const std::vector<float>& v) {
    float sum = 0;
    for (size_t w = 0; w < marked.size(); ++w) {
      for (uint64_t bits = marked[w]; bits != 0; bits &= bits - 1) {
        sum += v[w * 64 + __builtin_ctzll(bits)];
      }
    }
    return sum;
  };
  auto clear_marks = [&] { std::fill(marked.begin(), marked.end(), 0); };
  // Whether values summing to `approx` in some order sum to <= theta in
  // term order: the order matters only within slack of theta.
  auto at_most_theta = [&](float approx, const std::vector<float>& v, float theta) {
    if (approx + slack <= theta) return true;
    if (approx - slack > theta) return false;
    return sum_marked(v) <= theta;
  };

  SparseTopK top(k);
  uint64_t scored = 0;
  uint64_t skipped = 0;
  uint64_t candidates = 0;
  while (true) {
    const float theta = top.threshold();
    const bool full = theta != kSparseNoThreshold;
    // The pivot: the first cursor where the list bounds of it and all cursors
    // before it could beat theta. Rows before its document can only hold the
    // terms of the cursors before it, so none of them can enter.
    size_t p = n;
    float acc = 0;
    for (size_t i = 0; i < n && order[i]->doc != kSparseEnd; ++i) {
      acc += order[i]->list_bound;
      if (acc + slack > theta) {
        p = i;
        break;
      }
    }
    if (p == n) break;
    const uint32_t pivot = order[p]->doc;
    while (p + 1 < n && order[p + 1]->doc == pivot) ++p;

    // The cursors behind the pivot are exactly those with a lower row, all
    // among 0..p.
    at_pivot.clear();
    behind.clear();
    for (SparseCursor* c : by_bound) {
      if (c->doc < pivot) behind.push_back(c);
    }
    for (size_t i = 0; i <= p; ++i) {
      if (order[i]->doc == pivot) at_pivot.push_back(order[i]);
    }
    auto score_at_pivot = [&](SparseCursor* c) {
      const float v = scorer.Contribution(c->q, c->weights[c->pos], pivot);
      contrib[c->qpos] = v;
      c->scored_blk = c->pos / kSparseBlockSize;
      ++scored;
      return v;
    };

    // What the pivot can still score, with the lists behind it counted at
    // their block bounds (used once the top k is full).
    float bound = 0;
    if (full) {
      // The block-max check. Rows from the pivot to `next` (exclusive) lie,
      // for every cursor 0..p, in the block that holds the pivot's place, and
      // in no list past p: those blocks' bounds bound them. Any of those rows
      // may lack a term, so only a positive bound counts.
      uint64_t next = p + 1 < n ? order[p + 1]->doc : kSparseEnd;
      float range_sum = 0;
      for (size_t i = 0; i <= p; ++i) {
        SparseCursor* c = order[i];
        c->ShallowTo(pivot);
        if (c->blk >= c->nblocks) {  // nothing from the pivot on
          range_bound[c->qpos] = 0;
          continue;
        }
        range_bound[c->qpos] = std::max(block_bound(c), 0.f);
        range_sum += range_bound[c->qpos];
        mark(c->qpos);
        next = std::min<uint64_t>(next, uint64_t{c->block_last[c->blk]} + 1);
      }
      // Entering takes a score > theta (rows come in ascending order, so an
      // equal score ranks after the rows held).
      if (at_most_theta(range_sum, range_bound, theta)) {
        clear_marks();
        // Rows before the pivot were ruled out by the pivot search.
        const uint64_t to = std::max<uint64_t>(next, uint64_t{pivot} + 1);
        for (size_t i = 0; i <= p; ++i) order[i]->NextGeq(to, &skipped);
        SparseResortPrefix(&order, p);
        continue;
      }
      // The pivot alone: the lists on it score it exactly, for one posting
      // each, and often show that it cannot enter before any list behind it
      // seeks.
      for (SparseCursor* c : at_pivot) {
        pivot_bound[c->qpos] = score_at_pivot(c);
        bound += pivot_bound[c->qpos];
      }
      for (SparseCursor* c : behind) {
        pivot_bound[c->qpos] = range_bound[c->qpos];
        bound += pivot_bound[c->qpos];
      }
      const bool pivot_out = at_most_theta(bound, pivot_bound, theta);
      clear_marks();
      if (pivot_out) {
        // The cursors behind may stay there: the rows before the pivot are out.
        for (SparseCursor* c : at_pivot) c->Next();
        SparseResortPrefix(&order, p);
        continue;
      }
    } else {
      for (SparseCursor* c : at_pivot) score_at_pivot(c);
    }

    // Bring the cursors behind the pivot to it. `bound` is updated in no set
    // order, hence the slack; when the pivot is given up, the cursors not yet
    // moved stay behind, saving their seeks.
    bool enter = true;
    for (SparseCursor* c : behind) {
      if (full && bound + slack <= theta) {
        enter = false;
        break;
      }
      c->NextGeq(pivot, &skipped);
      if (c->doc == pivot) {
        at_pivot.push_back(c);
        bound += score_at_pivot(c) - range_bound[c->qpos];
      } else {
        bound -= range_bound[c->qpos];
      }
    }
    if (enter) {
      ++candidates;
      // In term order, as SearchExhaustive sums: the same bits.
      for (SparseCursor* c : at_pivot) mark(c->qpos);
      SparseOffer(pivot, sum_marked(contrib), accept, &top);
      clear_marks();
    }
    for (SparseCursor* c : at_pivot) c->Next();
    SparseResortPrefix(&order, p);
  }

  if (stats != nullptr) {
    stats->postings_scored += scored;
    stats->blocks_skipped += skipped;
    stats->candidates += candidates;
  }
  return std::move(top).Take();
}

template <typename Scorer>
std::vector<SparseIndex::Hit> SparseIndex::SearchTaat(const std::vector<QueryTerm>& qterms,
                                                      uint32_t k, const Scorer& scorer,
                                                      const std::function<bool(uint32_t)>& accept,
                                                      Stats* stats) const {
  std::vector<float> acc(rows_, 0.f);
  std::vector<uint64_t> seen((rows_ + 63) / 64, 0);
  uint64_t scored = 0;
  // Term by term in ascending term order: each row's sum is then built in the
  // order SearchBmw sums it.
  for (const QueryTerm& qt : qterms) {
    const Term& t = terms_info_[qt.index];
    const uint32_t* prow = post_rows_.data() + t.post_begin;
    const float* pw = post_weights_.data() + t.post_begin;
    for (uint32_t i = 0; i < t.df; ++i) {
      const uint32_t r = prow[i];
      const float v = scorer.Contribution(qt.q, pw[i], r);
      acc[r] += v;
      seen[r / 64] |= uint64_t{1} << (r % 64);
    }
    scored += t.df;
  }
  SparseTopK top(k);
  uint64_t candidates = 0;
  for (size_t w = 0; w < seen.size(); ++w) {
    for (uint64_t bits = seen[w]; bits != 0; bits &= bits - 1) {
      const uint32_t r = static_cast<uint32_t>(w * 64 + __builtin_ctzll(bits));
      ++candidates;
      SparseOffer(r, acc[r], accept, &top);
    }
  }
  if (stats != nullptr) {
    stats->postings_scored += scored;
    stats->candidates += candidates;
  }
  return std::move(top).Take();
}

namespace {

// Whether BM25's block bounds hold: the score must grow with the frequency
// and fall with the length.
bool SparseBm25Boundable(const SparseScoring& s) {
  return s.k1 >= 0 && std::isfinite(s.k1) && s.b >= 0 && s.b <= 1 && s.avg_doc_len > 0 &&
         std::isfinite(s.b / s.avg_doc_len);
}

}  // namespace

std::vector<SparseIndex::Hit> SparseIndex::Search(const std::vector<SparseTerm>& query, uint32_t k,
                                                  const SparseScoring& scoring,
                                                  const std::function<bool(uint32_t)>& accept,
                                                  Stats* stats) const {
  if (k == 0) return {};
  const std::vector<QueryTerm> qterms = PrepareQuery(query);
  if (qterms.empty()) return {};
  if (scoring.kind == SparseScoring::kDot) {
    return SearchBmw(qterms, k, SparseDotScorer{}, accept, stats);
  }
  const SparseBm25Scorer bm25(scoring, doc_lens_.empty() ? nullptr : doc_lens_.data());
  bool boundable = SparseBm25Boundable(scoring);
  for (const QueryTerm& qt : qterms) boundable = boundable && terms_info_[qt.index].min_w >= 0;
  if (!boundable) return SearchTaat(qterms, k, bm25, accept, stats);
  return SearchBmw(qterms, k, bm25, accept, stats);
}

std::vector<SparseIndex::Hit> SparseIndex::SearchExhaustive(
    const std::vector<SparseTerm>& query, uint32_t k, const SparseScoring& scoring,
    const std::function<bool(uint32_t)>& accept, Stats* stats) const {
  if (k == 0) return {};
  const std::vector<QueryTerm> qterms = PrepareQuery(query);
  if (qterms.empty()) return {};
  if (scoring.kind == SparseScoring::kDot) {
    return SearchTaat(qterms, k, SparseDotScorer{}, accept, stats);
  }
  const SparseBm25Scorer bm25(scoring, doc_lens_.empty() ? nullptr : doc_lens_.data());
  return SearchTaat(qterms, k, bm25, accept, stats);
}

}  // namespace quiver
