#include "query/attr_index.h"

#include <algorithm>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "query/row_filter.h"
#include "query/segment.h"

namespace quiver {

using filter::BoundNode;
using filter::Op;

// ------------------------------------------------------------------ RowSet

void RowSet::SetAll() {
  std::fill(words_.begin(), words_.end(), ~uint64_t{0});
  if (n_ % 64 != 0 && !words_.empty()) words_.back() = (uint64_t{1} << (n_ % 64)) - 1;
}

void RowSet::And(const RowSet& o) {
  for (size_t w = 0; w < words_.size(); ++w) words_[w] &= o.words_[w];
}

void RowSet::Or(const RowSet& o) {
  for (size_t w = 0; w < words_.size(); ++w) words_[w] |= o.words_[w];
}

void RowSet::Invert() {
  for (uint64_t& w : words_) w = ~w;
  if (n_ % 64 != 0 && !words_.empty()) words_.back() &= (uint64_t{1} << (n_ % 64)) - 1;
}

uint32_t RowSet::Count() const {
  uint32_t c = 0;
  for (uint64_t w : words_) c += static_cast<uint32_t>(__builtin_popcountll(w));
  return c;
}

// --------------------------------------------------------- the index itself

namespace {
// [first, last) positions in a sorted column.
using Interval = std::pair<uint32_t, uint32_t>;
}  // namespace

// One attribute's index. Sorted columns hold the non-null values in order
// (ties by row) and the row of each; STRING_LIST columns hold postings.
// String values are views into the segment's rows, which never change and
// outlive the index (the segment owns it).
struct SegmentAttrIndex::Column {
  AttrType type = AttrType::kInt64;
  std::vector<int64_t> ints;        // INT64, and BOOL as 0 / 1
  std::vector<double> doubles;      // DOUBLE
  std::vector<std::string_view> strs;  // STRING
  std::vector<uint32_t> rows;       // row of each sorted value
  std::vector<std::string_view> keys;  // STRING_LIST: distinct elements, sorted
  std::vector<std::vector<uint32_t>> postings;  // rows containing keys[i], ascending

  uint32_t size() const { return static_cast<uint32_t>(rows.size()); }

  template <typename T>
  const std::vector<T>& Values() const {
    if constexpr (std::is_same_v<T, int64_t>) return ints;
    else if constexpr (std::is_same_v<T, double>) return doubles;
    else return strs;
  }
  // Positions with lo <= v <= hi.
  template <typename T, typename U>
  Interval Range(const U& lo, const U& hi) const {
    const auto& v = Values<T>();
    if (hi < lo) return {0, 0};
    auto a = std::lower_bound(v.begin(), v.end(), lo);
    auto b = std::upper_bound(a, v.end(), hi);
    return {static_cast<uint32_t>(a - v.begin()), static_cast<uint32_t>(b - v.begin())};
  }

  // The positions matching a predicate node, as ascending disjoint
  // intervals (sorted columns only).
  void Intervals(const BoundNode& n, std::vector<Interval>* out) const {
    out->clear();
    bool negate = n.negate;
    switch (n.op) {
      case Op::kIntRange:
        out->push_back(Range<int64_t>(n.ilo, n.ihi));
        break;
      case Op::kBoolEq: {
        const int64_t b = n.value ? 1 : 0;
        out->push_back(Range<int64_t>(b, b));
        break;
      }
      case Op::kDoubleRange:
        out->push_back(Range<double>(n.dlo, n.dhi));
        break;
      case Op::kStrRange:
        out->push_back(Range<std::string_view>(std::string_view(n.slo), std::string_view(n.shi)));
        break;
      case Op::kStrCmp: {
        const std::string_view x(n.slo);
        const auto lo = static_cast<uint32_t>(std::lower_bound(strs.begin(), strs.end(), x) - strs.begin());
        const auto hi = static_cast<uint32_t>(std::upper_bound(strs.begin(), strs.end(), x) - strs.begin());
        switch (n.cmp) {
          case filter::CompareOp::kEq: out->push_back({lo, hi}); break;
          case filter::CompareOp::kNe: out->push_back({lo, hi}); negate = true; break;
          case filter::CompareOp::kLt: out->push_back({0, lo}); break;
          case filter::CompareOp::kLe: out->push_back({0, hi}); break;
          case filter::CompareOp::kGt: out->push_back({hi, size()}); break;
          case filter::CompareOp::kGe: out->push_back({lo, size()}); break;
        }
        break;
      }
      case Op::kIntIn:
        for (int64_t x : n.ints) out->push_back(Range<int64_t>(x, x));
        break;
      case Op::kDoubleIn:
        for (double x : n.doubles) out->push_back(Range<double>(x, x));
        break;
      case Op::kStrIn:
        for (const std::string& x : n.strs) {
          out->push_back(Range<std::string_view>(std::string_view(x), std::string_view(x)));
        }
        break;
      default:
        return;
    }
    // Drop empty intervals; IN lists are sorted and unique, so what is left
    // is ascending and disjoint.
    out->erase(std::remove_if(out->begin(), out->end(),
                              [](const Interval& i) { return i.first >= i.second; }),
               out->end());
    if (!negate) return;
    // Non-null values outside the intervals (a predicate is false on null,
    // negated or not).
    std::vector<Interval> complement;
    uint32_t at = 0;
    for (const Interval& i : *out) {
      if (i.first > at) complement.push_back({at, i.first});
      at = i.second;
    }
    if (at < size()) complement.push_back({at, size()});
    out->swap(complement);
  }

  const std::vector<uint32_t>* Posting(const std::string& key) const {
    auto it = std::lower_bound(keys.begin(), keys.end(), std::string_view(key));
    if (it == keys.end() || *it != key) return nullptr;
    return &postings[it - keys.begin()];
  }

  size_t MemoryBytes() const {
    size_t b = ints.capacity() * sizeof(int64_t) + doubles.capacity() * sizeof(double) +
               strs.capacity() * sizeof(std::string_view) + rows.capacity() * sizeof(uint32_t) +
               keys.capacity() * sizeof(std::string_view);
    for (const auto& p : postings) b += sizeof(p) + p.capacity() * sizeof(uint32_t);
    return b;
  }
};

SegmentAttrIndex::~SegmentAttrIndex() = default;

bool SegmentAttrIndex::Matches(const SegmentAttrIndex* idx,
                               const std::vector<AttributeSpec>& attrs) {
  bool any = false;
  for (size_t a = 0; a < attrs.size(); ++a) {
    any = any || attrs[a].indexed;
    if (idx != nullptr && idx->indexed(static_cast<int>(a)) != attrs[a].indexed) return false;
  }
  return any == (idx != nullptr);
}

std::shared_ptr<const SegmentAttrIndex> SegmentAttrIndex::Build(
    const Segment& seg, uint32_t rows, const std::vector<AttributeSpec>& attrs) {
  bool any = false;
  for (const AttributeSpec& a : attrs) any = any || a.indexed;
  if (!any) return nullptr;
  std::shared_ptr<SegmentAttrIndex> idx(new SegmentAttrIndex());
  idx->rows_ = rows;
  idx->columns_.resize(attrs.size());
  for (size_t a = 0; a < attrs.size(); ++a) {
    if (!attrs[a].indexed) continue;
    auto col = std::make_unique<Column>();
    col->type = attrs[a].type;
    // (value, row) pairs sorted by value, then split into the two arrays.
    auto build_sorted = [&](auto* values, auto get) {
      using T = typename std::remove_reference_t<decltype(*values)>::value_type;
      std::vector<std::pair<T, uint32_t>> pairs;
      for (uint32_t off = 0; off < rows; ++off) {
        const AttrRow& row = seg.attrs(off);
        if (a >= row.size()) continue;
        if (auto v = get(row[a])) pairs.emplace_back(*v, off);
      }
      std::sort(pairs.begin(), pairs.end());
      values->reserve(pairs.size());
      col->rows.reserve(pairs.size());
      for (const auto& [v, off] : pairs) {
        values->push_back(v);
        col->rows.push_back(off);
      }
    };
    switch (attrs[a].type) {
      case AttrType::kInt64:
        build_sorted(&col->ints, [](const AttrValue& v) -> std::optional<int64_t> {
          if (const auto* x = std::get_if<int64_t>(&v)) return *x;
          return std::nullopt;
        });
        break;
      case AttrType::kBool:
        build_sorted(&col->ints, [](const AttrValue& v) -> std::optional<int64_t> {
          if (const auto* x = std::get_if<bool>(&v)) return *x ? 1 : 0;
          return std::nullopt;
        });
        break;
      case AttrType::kDouble:
        build_sorted(&col->doubles, [](const AttrValue& v) -> std::optional<double> {
          if (const auto* x = std::get_if<double>(&v)) return *x;
          return std::nullopt;
        });
        break;
      case AttrType::kString:
        build_sorted(&col->strs, [](const AttrValue& v) -> std::optional<std::string_view> {
          if (const auto* x = std::get_if<std::string>(&v)) return std::string_view(*x);
          return std::nullopt;
        });
        break;
      case AttrType::kStringList: {
        std::vector<std::pair<std::string_view, uint32_t>> pairs;
        for (uint32_t off = 0; off < rows; ++off) {
          const AttrRow& row = seg.attrs(off);
          if (a >= row.size()) continue;
          if (const auto* x = std::get_if<std::vector<std::string>>(&row[a])) {
            for (const std::string& e : *x) pairs.emplace_back(e, off);
          }
        }
        std::sort(pairs.begin(), pairs.end());
        pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
        for (const auto& [key, off] : pairs) {
          if (col->keys.empty() || col->keys.back() != key) {
            col->keys.push_back(key);
            col->postings.emplace_back();
          }
          col->postings.back().push_back(off);
        }
        break;
      }
    }
    idx->columns_[a] = std::move(col);
  }
  return idx;
}

size_t SegmentAttrIndex::MemoryBytes() const {
  size_t b = 0;
  for (const auto& c : columns_) b += c ? c->MemoryBytes() : 0;
  return b;
}

void SegmentAttrIndex::MaterializePredicate(const BoundNode& n, RowSet* out) const {
  const Column& col = *columns_[n.attr];
  auto set_posting = [&](const std::vector<uint32_t>* p) {
    if (p != nullptr) {
      for (uint32_t r : *p) out->Set(r);
    }
  };
  switch (n.op) {
    case Op::kContainsOne:
      set_posting(col.Posting(n.slo));
      return;
    case Op::kContainsAny:
      for (const std::string& s : n.strs) set_posting(col.Posting(s));
      return;
    case Op::kContainsAll: {
      // Rows in every posting: start from the shortest, then intersect.
      std::vector<const std::vector<uint32_t>*> ps;
      for (const std::string& s : n.strs) {
        const auto* p = col.Posting(s);
        if (p == nullptr) return;
        ps.push_back(p);
      }
      if (ps.empty()) return;
      std::sort(ps.begin(), ps.end(), [](auto* x, auto* y) { return x->size() < y->size(); });
      set_posting(ps[0]);
      for (size_t i = 1; i < ps.size(); ++i) {
        RowSet other(out->size());
        for (uint32_t r : *ps[i]) other.Set(r);
        out->And(other);
      }
      return;
    }
    default:
      break;
  }
  std::vector<Interval> iv;
  col.Intervals(n, &iv);
  for (const Interval& i : iv) {
    for (uint32_t p = i.first; p < i.second; ++p) out->Set(col.rows[p]);
  }
}

const std::vector<uint32_t>& SegmentAttrIndex::SortedRows(int attr) const {
  return columns_[attr]->rows;
}

void SegmentAttrIndex::RangePositions(const BoundNode& n, uint32_t* first, uint32_t* last) const {
  const Column& col = *columns_[n.attr];
  const Interval i = n.op == Op::kIntRange ? col.Range<int64_t>(n.ilo, n.ihi)
                                           : col.Range<double>(n.dlo, n.dhi);
  *first = i.first;
  *last = std::max(i.first, i.second);
}

uint32_t SegmentAttrIndex::CountPredicate(const BoundNode& n) const {
  const Column& col = *columns_[n.attr];
  switch (n.op) {
    case Op::kContainsOne: {
      const auto* p = col.Posting(n.slo);
      return p == nullptr ? 0 : static_cast<uint32_t>(p->size());
    }
    case Op::kContainsAny:
    case Op::kContainsAll: {
      RowSet s(rows_);
      MaterializePredicate(n, &s);
      return s.Count();
    }
    default:
      break;
  }
  std::vector<Interval> iv;
  col.Intervals(n, &iv);
  uint32_t c = 0;
  for (const Interval& i : iv) c += i.second - i.first;
  return c;
}

// ------------------------------------------------- estimation and evaluation

namespace {

constexpr uint32_t kSampleRows = 256;

// Shared by estimation and evaluation: which nodes can be answered from the
// index alone (every predicate below them is on an indexed attribute).
std::vector<bool> IndexableNodes(const filter::Filter& flt, const SegmentAttrIndex* index) {
  const auto& nodes = flt.nodes();
  std::vector<bool> ok(nodes.size(), false);
  for (size_t i = 0; i < nodes.size(); ++i) {  // children come first
    const BoundNode& n = nodes[i];
    if (n.op == Op::kConst) {
      ok[i] = true;
    } else if (filter::IsPredicate(n.op)) {
      // Columns and postings hold values only: no nulls (IS NULL), no empty
      // lists (negated CONTAINS). Ids (kIdAttr) are not indexed.
      const bool contains = n.op >= Op::kContainsOne && n.op <= Op::kContainsAll;
      ok[i] = index != nullptr && index->indexed(n.attr) && n.op != Op::kIsNull &&
              !(contains && n.negate);
    } else {
      ok[i] = true;
      for (uint32_t k : n.kids) ok[i] = ok[i] && ok[k];
    }
  }
  return ok;
}

class Estimator {
 public:
  Estimator(const filter::Filter& flt, const Segment& seg, uint32_t rows,
            const SegmentAttrIndex* index)
      : flt_(flt), seg_(seg), rows_(rows), index_(index), indexable_(IndexableNodes(flt, index)) {}

  bool indexable(uint32_t i) const { return indexable_[i]; }

  double Estimate(uint32_t i) {
    const BoundNode& n = flt_.nodes()[i];
    switch (n.op) {
      case Op::kConst:
        return n.value ? 1.0 : 0.0;
      case Op::kOr: {
        double none = 1.0;
        for (uint32_t k : n.kids) none *= 1.0 - Estimate(k);
        return 1.0 - none;
      }
      case Op::kAnd:
        return EstimateAnd(n);
      default:
        break;
    }
    if (indexable_[i]) return static_cast<double>(index_->CountPredicate(n)) / rows_;
    return Sample(i);
  }

 private:
  // Ranges on one numeric attribute are intersected before they are
  // counted (`ts >= a AND ts < b` is a window, not two independent halves);
  // everything else multiplies.
  double EstimateAnd(const BoundNode& n) {
    double s = 1.0;
    std::vector<BoundNode> merged;  // one per attribute with ranges
    for (uint32_t k : n.kids) {
      const BoundNode& c = flt_.nodes()[k];
      const bool range = !c.negate && indexable_[k] &&
                         (c.op == Op::kIntRange || c.op == Op::kDoubleRange);
      if (!range) {
        s *= Estimate(k);
        continue;
      }
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const BoundNode& m) { return m.attr == c.attr && m.op == c.op; });
      if (it == merged.end()) {
        merged.push_back(c);
      } else {
        it->ilo = std::max(it->ilo, c.ilo);
        it->ihi = std::min(it->ihi, c.ihi);
        it->dlo = std::max(it->dlo, c.dlo);
        it->dhi = std::min(it->dhi, c.dhi);
      }
    }
    for (const BoundNode& m : merged) s *= static_cast<double>(index_->CountPredicate(m)) / rows_;
    return s;
  }

  // Evenly spaced rows; a predicate no sampled row passes is put at half a
  // row of the sample, since the sample cannot see below that.
  double Sample(uint32_t i) {
    const uint32_t n = std::min(rows_, kSampleRows);
    uint32_t hits = 0;
    for (uint32_t s = 0; s < n; ++s) {
      const uint32_t off = static_cast<uint32_t>(static_cast<uint64_t>(s) * rows_ / n);
      hits += RowMatchesNode(flt_, i, seg_, off);
    }
    if (hits == 0) return 0.5 / n;
    return static_cast<double>(hits) / n;
  }

  const filter::Filter& flt_;
  const Segment& seg_;
  const uint32_t rows_;
  const SegmentAttrIndex* index_;
  const std::vector<bool> indexable_;
};

class Evaluator {
 public:
  Evaluator(const filter::Filter& flt, const Segment& seg, uint32_t rows,
            const SegmentAttrIndex* index, uint64_t* checks, const StopToken& stop)
      : flt_(flt), seg_(seg), rows_(rows), index_(index), checks_(checks), stop_(stop),
        indexable_(IndexableNodes(flt, index)) {}

  // Why evaluation ended early, or OK.
  const absl::Status& status() const { return status_; }

  // Sets in *out (empty, sized rows) the rows matching node i.
  void Eval(uint32_t i, RowSet* out) {
    if (!status_.ok()) return;
    const BoundNode& n = flt_.nodes()[i];
    if (!indexable_[i] && n.op != Op::kAnd && n.op != Op::kOr) {
      Scan(i, out);
      return;
    }
    switch (n.op) {
      case Op::kConst:
        if (n.value) out->SetAll();
        return;
      case Op::kAnd:
        EvalAnd(i, n, out);
        return;
      case Op::kOr:
        EvalOr(i, n, out);
        return;
      default:
        index_->MaterializePredicate(n, out);
        return;
    }
  }

 private:
  // Indexed parts first, most selective first; the rest checked only on
  // the rows those leave.
  void EvalAnd(uint32_t i, const BoundNode& n, RowSet* out) {
    std::vector<std::pair<uint32_t, uint32_t>> indexed;  // (count estimate, kid)
    std::vector<uint32_t> rest;
    for (uint32_t k : n.kids) {
      if (!indexable_[k]) {
        rest.push_back(k);
        continue;
      }
      const BoundNode& c = flt_.nodes()[k];
      const uint32_t est = filter::IsPredicate(c.op) ? index_->CountPredicate(c) : rows_;
      indexed.emplace_back(est, k);
    }
    if (indexed.empty()) {
      Scan(i, out);
      return;
    }
    std::sort(indexed.begin(), indexed.end());
    Eval(indexed[0].second, out);
    for (size_t j = 1; j < indexed.size(); ++j) {
      RowSet other(rows_);
      Eval(indexed[j].second, &other);
      out->And(other);
    }
    for (uint32_t k : rest) {
      out->ForEach([&](uint32_t off) {
        if (!Continue()) return;
        if (!RowMatchesNode(flt_, k, seg_, off)) out->Clear(off);
      });
    }
  }

  // Indexed parts through the index; the rest checked only on rows not
  // already in (through the OR's dispatch table when it has one: a row
  // then checks only the branches its value can satisfy).
  void EvalOr(uint32_t i, const BoundNode& n, RowSet* out) {
    std::vector<uint32_t> rest;
    for (uint32_t k : n.kids) {
      if (!indexable_[k]) {
        rest.push_back(k);
        continue;
      }
      RowSet other(rows_);
      Eval(k, &other);
      out->Or(other);
    }
    if (rest.empty()) return;
    for (uint32_t off = 0; off < rows_; ++off) {
      if (out->Test(off)) continue;
      if (!Continue()) return;
      const AttrRow& row = seg_.attrs(off);
      const std::string_view id = FilterRowId(flt_, seg_, off);
      if (n.dispatch != nullptr) {
        if (flt_.EvalNode(i, row, id)) out->Set(off);
        continue;
      }
      for (uint32_t k : rest) {
        if (flt_.EvalNode(k, row, id)) {
          out->Set(off);
          break;
        }
      }
    }
  }

  void Scan(uint32_t i, RowSet* out) {
    for (uint32_t off = 0; off < rows_; ++off) {
      if (!Continue()) return;
      if (RowMatchesNode(flt_, i, seg_, off)) out->Set(off);
    }
  }

  // Counts one row read one by one; false once the request was stopped
  // (looked at every kStopCheckRows rows).
  bool Continue() {
    if (!status_.ok()) return false;
    if (++*checks_ % kStopCheckRows == 0) status_ = stop_.Check();
    return status_.ok();
  }

  const filter::Filter& flt_;
  const Segment& seg_;
  const uint32_t rows_;
  const SegmentAttrIndex* index_;
  uint64_t* checks_;
  const StopToken& stop_;
  const std::vector<bool> indexable_;
  absl::Status status_;
};

// The index, if it covers exactly these rows.
const SegmentAttrIndex* Usable(const SegmentAttrIndex* index, uint32_t rows) {
  return index != nullptr && index->rows() == rows ? index : nullptr;
}

}  // namespace

FilterEstimate EstimateFilter(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                              const SegmentAttrIndex* index) {
  FilterEstimate e;
  if (rows == 0) return e;
  index = Usable(index, rows);
  Estimator est(flt, seg, rows, index);
  e.selectivity = std::clamp(est.Estimate(flt.root()), 0.0, 1.0);
  const BoundNode& root = flt.nodes()[flt.root()];
  e.exact = root.op == Op::kConst || (filter::IsPredicate(root.op) && est.indexable(flt.root()));
  e.indexable = est.indexable(flt.root());
  if (e.indexable) {
    e.checked_share = 0;
  } else if (root.op == Op::kAnd) {
    double share = 1;
    for (uint32_t k : root.kids) {
      if (est.indexable(k)) share *= est.Estimate(k);
    }
    e.checked_share = share;
  }
  return e;
}

absl::Status EvaluateFilter(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                            const SegmentAttrIndex* index, RowSet* out, uint64_t* checks,
                            const StopToken& stop) {
  *out = RowSet(rows);
  if (rows == 0) return absl::OkStatus();
  Evaluator ev(flt, seg, rows, Usable(index, rows), checks, stop);
  ev.Eval(flt.root(), out);
  return ev.status();
}

}  // namespace quiver
