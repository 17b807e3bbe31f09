#include "query/planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "index/distance.h"
#include "index/flat_search.h"
#include "query/window_index.h"
#include "base/status_macros.h"

namespace quiver {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Selectivity below which costs stop growing: the walk cannot cost more than
// visiting every row, and estimates this small are sample noise anyway.
constexpr double kMinSelectivity = 1e-6;

// HNSW: ef grows as the filter passes fewer points, because the nearest
// accepted points lie further out in the graph and the walk must hold more
// candidates to reach them (x1 at 50% and above, up to x4).
double EfRaise(double s) { return s >= 0.5 ? 1.0 : std::min(4.0, std::sqrt(0.5 / s)); }

// IVF: the k nearest passing points sit among the k / s nearest of all, so
// more lists are probed as selectivity falls. Measured on Fashion-MNIST:
// s^-0.7 keeps recall@10 at the unfiltered level for uncorrelated filters.
double NprobeRaise(double s) { return std::pow(std::max(s, kMinSelectivity), -0.7); }

// The costs assume the filter is independent of where a query's neighbours
// are. A filter correlated with the vectors (a class label) can leave none
// of the fetched neighbours passing; POST_FILTER then falls back to another
// strategy for that query. The planner prices that as this share of queries
// (times the share the filter rejects: a filter that passes all cannot fail)
// paying for both.
constexpr double kPostFilterFailShare = 0.15;

// POST_FILTER's first fetch: enough that k pass in expectation, with margin.
uint32_t PostFetch(uint32_t k, double s, uint32_t rows) {
  const double f = std::ceil(k * 1.25 / std::max(s, kMinSelectivity)) + 8;
  return static_cast<uint32_t>(std::min<double>(rows, f));
}

// Lets through labels set in a RowSet (which already excludes deleted rows).
class RowSetFilter final : public index::LabelFilter {
 public:
  // `set` may still be empty and filled later: the bitmap is read at search.
  explicit RowSetFilter(const RowSet& set) : set_(set) {}
  void Bind() {
    bitmap = set_.words();
    bitmap_size = set_.size();
  }
  bool Accept(uint32_t label) const override { return label < set_.size() && set_.Test(label); }

 private:
  const RowSet& set_;
};

// Lets through labels below the reader's row count, not deleted at its
// sequence number and (when given) passing the filter. With `stop`, every
// few hundred filter checks look whether the request was stopped; from then
// on every label passes without a check, which ends an index walk soonest
// (its results are discarded).
class RowFilter final : public index::LabelFilter {
 public:
  RowFilter(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt,
            const StopToken* stop = nullptr)
      : seg_(seg), rows_(rows), seq_(seq), flt_(flt), stop_(stop) {}
  // The walk saw its request stopped and let labels through unchecked.
  bool stopped() const { return stopped_; }
  bool Accept(uint32_t label) const override {
    if (flt_ != nullptr && stop_ != nullptr) {
      if (stopped_) return true;
      if (++checks_ % kStopCheckRows == 0 && stop_->stopped()) {
        stopped_ = true;
        return true;
      }
    }
    return label < rows_ && seg_.Visible(label, seq_) &&
           (flt_ == nullptr || flt_->Matches(seg_.attrs(label)));
  }

 private:
  const Segment& seg_;
  const uint32_t rows_;
  const uint64_t seq_;
  const filter::Filter* flt_;
  const StopToken* stop_;
  // One search consults a filter from one thread at a time.
  mutable uint32_t checks_ = 0;
  mutable bool stopped_ = false;
};

// Clears the rows of `set` not visible at `seq`.
void DropInvisible(const Segment& seg, uint64_t seq, RowSet* set) {
  if (seg.dead() == 0) return;
  set->ForEach([&](uint32_t off) {
    if (!seg.Visible(off, seq)) set->Clear(off);
  });
}

// An operator of the printed plan: "Name(details)", children indented.
struct PlanOp {
  std::string text;
  std::vector<PlanOp> children;

  void Print(int depth, std::string* out) const {
    absl::StrAppend(out, std::string(2 * depth, ' '), text, "\n");
    for (const PlanOp& c : children) c.Print(depth + 1, out);
  }
};

std::string Us(double ns) { return absl::StrFormat("%.1f", ns / 1000.0); }

// ", ef=96, nprobe=13": the knobs a plan searches with, for explain.
std::string KnobsText(const index::SearchParams& p) {
  return absl::StrCat(p.ef ? absl::StrCat(", ef=", p.ef) : "",
                      p.nprobe ? absl::StrCat(", nprobe=", p.nprobe) : "");
}

}  // namespace

PlanFeedback::Counts PlanFeedback::Get(uint64_t segment, const std::string& filter) const {
  ReaderMutexLock lock(&mu_);
  auto it = counts_.find(Key(segment, filter));
  return it == counts_.end() ? Counts() : it->second;
}

void PlanFeedback::Add(uint64_t segment, const std::string& filter, uint32_t attempts,
                       uint32_t fallbacks) {
  if (attempts == 0) return;
  MutexLock lock(&mu_);
  // Bounded: a workload of ever-new filters starts over rather than grows.
  if (counts_.size() >= kMaxEntries) counts_.clear();
  Counts& c = counts_[Key(segment, filter)];
  c.attempts += attempts;
  c.fallbacks += fallbacks;
  // Old observations fade, so a filter whose data changed is re-learned.
  if (c.attempts > kHorizon) {
    c.attempts /= 2;
    c.fallbacks /= 2;
  }
}

std::string PlanFeedback::Key(uint64_t segment, const std::string& filter) {
  return absl::StrCat(segment, ":", filter);
}

std::string_view StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kIndex: return "INDEX";
    case Strategy::kExactScan: return "EXACT_SCAN";
    case Strategy::kPreFilter: return "PRE_FILTER";
    case Strategy::kFilteredIndex: return "FILTERED_INDEX";
    case Strategy::kPostFilter: return "POST_FILTER";
    case Strategy::kWindow: return "WINDOW_FILTER";
    case Strategy::kEmpty: return "EMPTY";
  }
  return "?";
}

namespace {

// One query's cost of searching an index of `shape` over `rows` rows when a
// share `s` of them passes (1: no filter), without the cost of checking the
// filter; sets the ef / nprobe it would search with and the rows it visits
// (each of which a filter check would read).
double IndexSearchNs(const index::IndexShape& shape, double rows, double s, double k,
                     uint32_t dim, const index::SearchParams& requested, const CostModel& m,
                     index::SearchParams* params, double* visited) {
  *params = requested;
  if (shape.kind == index::IndexShape::Kind::kGraph) {
    const double ef0 = std::max(k, static_cast<double>(requested.ef != 0 ? requested.ef
                                                                          : shape.default_ef));
    const double ef = std::ceil(ef0 * EfRaise(s));
    params->ef = static_cast<uint32_t>(ef);
    // The raised ef is part of what the filtered-walk exponent was fitted
    // on, so visits follow the requested ef.
    // Visits grow with the log of the graph's size (the model was fitted on
    // 60,000 nodes): a window partition's small graph is cheaper to search.
    const double size_factor = std::clamp(std::log(std::max(rows, 2.0)) / std::log(60000.0), 0.3, 1.5);
    const double unfiltered =
        size_factor * m.graph_visits_scale * std::pow(ef0, m.graph_visits_exponent);
    *visited = std::min(rows * 0.6, unfiltered / std::pow(s, m.filtered_visits_exponent));
    return *visited * (dim * m.graph_ns_per_float + m.graph_ns_per_visit);
  }
  const double nlist = std::max<uint32_t>(shape.nlist, 1);
  const double np0 = requested.nprobe != 0 ? std::min<double>(requested.nprobe, nlist)
                                           : shape.default_nprobe;
  const double np = std::min(nlist, std::ceil(np0 * NprobeRaise(s)));
  params->nprobe = static_cast<uint32_t>(np);
  *visited = rows * np / nlist;
  if (s < 1) {
    // As many passing rows as an unfiltered scan would see, however the
    // filter falls across the lists (see SearchParams::min_accepted).
    params->min_accepted = static_cast<uint32_t>(std::ceil(rows * np0 / nlist / 2));
  }
  return nlist * dim * m.scan_ns_per_float + *visited * s * dim * m.scan_ns_per_float;
}

}  // namespace

PlanChoice ChoosePlan(const PlanInput& in, const CostModel& m) {
  PlanChoice c;
  c.params = in.params;
  const double rows = in.rows;
  const double s = std::clamp(in.selectivity, kMinSelectivity, 1.0);
  const double nq = static_cast<double>(std::max<size_t>(in.nq, 1));
  const double words = std::ceil(rows / 64);
  // Evaluating the filter into a RowSet, once per request.
  const double materialize = in.indexable
                                 ? rows * s * m.set_ns + words * m.word_ns * 4
                                 : rows * in.checked_share * m.match_scan_ns + rows * s * m.set_ns;
  const double chunks = std::ceil(rows / Segment::kMaxChunkRows);
  const double busy_chunks = chunks * std::min(1.0, s * Segment::kMaxChunkRows);
  c.pre_ns = materialize + rows * s * m.bit_ns +
             nq * (rows * s * (in.dim * m.gather_ns_per_float + m.gather_ns_per_row) +
                   busy_chunks * m.chunk_ns);
  const bool searchable = in.has_index && (in.shape.kind == index::IndexShape::Kind::kGraph ||
                                           (in.shape.kind == index::IndexShape::Kind::kLists &&
                                            in.shape.nlist > 0));
  if (!searchable) {
    c.strategy = Strategy::kPreFilter;
    c.reason = in.has_index ? "FLAT field: exact distances over the filtered rows"
                            : "no ANN index in this segment: exact distances over the filtered rows";
    return c;
  }
  const double k = std::max<uint32_t>(in.k, 1);
  c.fetch = PostFetch(in.k, s, in.rows);

  // FILTERED_INDEX, checking a RowSet when materializing it pays for
  // itself against reading each visited row's attributes.
  double visited = 0;
  c.filtered_ns = nq * IndexSearchNs(in.shape, rows, s, k, in.dim, in.params, m, &c.params, &visited);
  const double lazy_checks = nq * visited * m.match_random_ns;
  const double set_checks = materialize + nq * visited * m.bit_ns;
  c.materialize = set_checks <= lazy_checks;
  c.filtered_ns += std::min(lazy_checks, set_checks);

  // POST_FILTER: an unfiltered search deep enough for `fetch` results (IVF
  // probes as many lists as the filtered scan, or the fetched rows would
  // not reach the k nearest that pass).
  double post_visited = 0;
  index::SearchParams deeper = in.params;
  if (in.shape.kind == index::IndexShape::Kind::kGraph) {
    deeper.ef = std::max<uint32_t>(in.params.ef != 0 ? in.params.ef : in.shape.default_ef, c.fetch);
  } else {
    deeper.nprobe = c.params.nprobe;
  }
  c.post_ns = nq * (IndexSearchNs(in.shape, rows, 1, k, in.dim, deeper, m, &c.post_params,
                                  &post_visited) +
                    c.fetch * m.match_random_ns);

  // WINDOW_FILTER: each overlapping partition searched whole, or scanned
  // exactly over its rows in range, whichever costs less.
  if (in.has_window) {
    double per_query = 0;
    const double rest = std::clamp(in.window_rest_selectivity, kMinSelectivity, 1.0);
    c.window_rest_selectivity = rest;
    for (const PlanInput::WindowPart& p : in.window) {
      index::SearchParams unused;
      double v = 0;
      if (p.inside == p.rows && !in.window_rest) {
        per_query += IndexSearchNs(in.window_shape, p.rows, 1, k, in.dim, in.params, m, &unused, &v);
        c.window_exact.push_back(false);
        continue;
      }
      const double check = in.window_rest ? m.match_random_ns : m.bit_ns;
      const double exact =
          p.inside * (in.dim * m.gather_ns_per_float + m.gather_ns_per_row + check);
      const double share = std::max(kMinSelectivity, static_cast<double>(p.inside) / p.rows * rest);
      const double searched =
          IndexSearchNs(in.window_shape, p.rows, share, k, in.dim, in.params, m, &unused, &v) +
          v * check;
      c.window_exact.push_back(exact <= searched);
      per_query += std::min(exact, searched);
    }
    c.window_ns = nq * per_query;
  }

  auto forced = [&](Strategy st) {
    c.strategy = st;
    c.reason = "forced";
    return c;
  };
  switch (in.forced) {
    case v1::PRE_FILTER: return forced(Strategy::kPreFilter);
    case v1::FILTERED_INDEX: return forced(Strategy::kFilteredIndex);
    case v1::POST_FILTER: return forced(Strategy::kPostFilter);
    case v1::WINDOW_FILTER:
      if (in.has_window) return forced(Strategy::kWindow);
      break;  // no window index applies here: the planner chooses
    default:
      break;
  }
  c.strategy = Strategy::kPreFilter;
  double best = c.pre_ns;
  if (c.filtered_ns < best) {
    best = c.filtered_ns;
    c.strategy = Strategy::kFilteredIndex;
  }
  // POST_FILTER falls back per query to the best of the others when the
  // filter turns out to avoid the query's neighbourhood; that risk is priced
  // as a share of queries paying for both.
  c.fallback = c.strategy;
  const double fail_share =
      in.post_fail_share >= 0 ? in.post_fail_share : kPostFilterFailShare * (1 - s);
  const double fail = fail_share * best;
  if (c.post_ns + fail < best) {
    best = c.post_ns + fail;
    c.strategy = Strategy::kPostFilter;
  }
  if (in.has_window && c.window_ns < best) {
    best = c.window_ns;
    c.strategy = Strategy::kWindow;
  }
  c.reason = absl::StrCat("estimated us: pre_filter ", Us(c.pre_ns), ", filtered_index ",
                          Us(c.filtered_ns), ", post_filter ", Us(c.post_ns),
                          in.has_window ? absl::StrCat(", window_filter ", Us(c.window_ns)) : "");
  return c;
}

namespace {

// Exact distances from every query to the rows of `set` (or to every
// visible row when set is null), pushed into topk. Chunks with no member
// are skipped; sparse chunks go row by row inside ScanBlock.
absl::Status ExactOverRows(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, const RowSet* set, index::TopK* topk,
                           uint64_t* distances) {
  index::QueryBatch qb;
  qb.vectors = ctx.queries;
  qb.norms_sqr = ctx.qnorms;
  qb.nq = ctx.nq;
  qb.dim = ctx.dim;
  qb.similarity = ctx.similarity;
  thread_local std::vector<float> scratch;
  uint8_t mask[Segment::kMaxChunkRows];
  const uint32_t chunk_rows = seg.chunk_rows();
  const bool any_dead = seg.dead() > 0;
  for (uint32_t first = 0; first < rows; first += chunk_rows) {
    QUIVER_RETURN_IF_ERROR(ctx.stop.Check());
    const uint32_t n = std::min(chunk_rows, rows - first);
    size_t passing = 0;
    if (set != nullptr) {
      // Chunks are whole 64-row words (chunk_rows is a power of two >= 16;
      // below 64 a word spans chunks, so test bit by bit).
      bool any = chunk_rows < 64;
      for (uint32_t w = first / 64; !any && w < (first + n + 63) / 64; ++w) any = set->words()[w] != 0;
      if (!any) continue;
      for (uint32_t i = 0; i < n; ++i) {
        const bool keep = set->Test(first + i);
        mask[i] = keep;
        passing += keep;
      }
    } else {
      for (uint32_t i = 0; i < n; ++i) {
        const bool keep = !any_dead || seg.Visible(first + i, seq);
        mask[i] = keep;
        passing += keep;
      }
    }
    if (passing == 0) continue;
    index::Block block;
    block.rows = seg.chunk_vectors(ctx.field, first);
    block.norms_sqr = seg.chunk_norms(ctx.field, first);
    block.n = n;
    block.first_id = HitId(part, first);
    block.mask = passing == n ? nullptr : mask;
    block.passing = passing;
    *distances += passing * ctx.nq;
    index::ScanBlock(qb, block, topk, &scratch);
  }
  return absl::OkStatus();
}

// Lets through partition labels whose row is inside the window, visible,
// and (when the filter has more than the range) passing the filter.
class PartitionFilter final : public index::LabelFilter {
 public:
  PartitionFilter(const Segment& seg, uint64_t seq, const WindowIndex& w,
                  const WindowIndex::Partition& p, const WindowRange& range,
                  const filter::Filter* rest)
      : seg_(seg), seq_(seq), w_(w), p_(p), range_(range), rest_(rest) {}
  bool Accept(uint32_t label) const override {
    const uint32_t pos = p_.first + label;
    if (pos < range_.first || pos >= range_.last) return false;
    const uint32_t off = w_.row(p_, label);
    return seg_.Visible(off, seq_) && (rest_ == nullptr || rest_->Matches(seg_.attrs(off)));
  }

 private:
  const Segment& seg_;
  const uint64_t seq_;
  const WindowIndex& w_;
  const WindowIndex::Partition& p_;
  const WindowRange& range_;
  const filter::Filter* rest_;
};

// WINDOW_FILTER: the partitions overlapping the range, each searched whole
// (no filter), searched with the filter, or scanned exactly over its rows in
// range, as the plan says.
absl::Status SearchWindow(const SearchContext& ctx, const Segment& seg, uint64_t seq, size_t part,
                          const WindowIndex& w, const WindowRange& range, const PlanChoice& choice,
                          index::TopK* topk, index::SearchStats* stats) {
  const filter::Filter* rest = range.rest ? ctx.filter : nullptr;
  const bool l2 = ctx.similarity == index::Similarity::kL2;
  size_t j = 0;  // index into choice.window_exact: overlapping partitions in order
  for (const WindowIndex::Partition& p : w.partitions()) {
    if (p.last <= range.first || p.first >= range.last) continue;
    const bool exact = j < choice.window_exact.size() && choice.window_exact[j];
    ++j;
    QUIVER_RETURN_IF_ERROR(ctx.stop.Check());
    const uint32_t lo = std::max(p.first, range.first), hi = std::min(p.last, range.last);
    if (exact) {
      for (uint32_t pos = lo; pos < hi; ++pos) {
        const uint32_t off = w.row(p, pos - p.first);
        if (!seg.Visible(off, seq)) continue;
        if (rest != nullptr) {
          ++stats->checks;
          if (!rest->Matches(seg.attrs(off))) continue;
        }
        const float* v = seg.vector(ctx.field, off);
        for (size_t q = 0; q < ctx.nq; ++q) {
          const float* qv = ctx.queries + q * ctx.dim;
          const float d = l2 ? index::L2Metric::Distance(qv, v, ctx.dim)
                             : index::IpMetric::Distance(qv, v, ctx.dim);
          topk[q].Push(d, HitId(part, off));
        }
        stats->distances += ctx.nq;
      }
      continue;
    }
    const bool whole = lo == p.first && hi == p.last && rest == nullptr && seg.dead() == 0;
    PartitionFilter accept(seg, seq, w, p, range, rest);
    index::SearchParams params = ctx.params;
    params.stats = stats;
    if (!whole) {
      // ef / nprobe raised for the share of the partition that passes.
      PlanInput sub;
      sub.rows = p.last - p.first;
      sub.dim = ctx.dim;
      sub.k = ctx.k;
      sub.has_index = true;
      sub.shape = p.index->shape();
      sub.params = ctx.params;
      // The share of the partition that passes: inside the range, and of
      // those, passing the rest of the filter (as ChoosePlan priced it).
      sub.selectivity = static_cast<double>(hi - lo) / (p.last - p.first) *
                        (range.rest ? choice.window_rest_selectivity : 1.0);
      params = ChoosePlan(sub).params;
      params.stats = stats;
    }
    for (size_t q = 0; q < ctx.nq; ++q) {
      index::TopK local(ctx.k);
      QUIVER_RETURN_IF_ERROR(p.index->Search(ctx.queries + q * ctx.dim, params,
                                             whole ? nullptr : &accept, &local));
      for (const index::Neighbor& nb : local.Take()) {
        topk[q].Push(nb.distance, HitId(part, w.row(p, static_cast<uint32_t>(nb.id))));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

FilterEstimate SharedSegmentFilter::Estimate(const filter::Filter& flt, const Segment& seg,
                                             uint32_t rows, const SegmentAttrIndex* attrs) {
  MutexLock lock(&mu_);
  if (!have_estimate_) {
    estimate_ = EstimateFilter(flt, seg, rows, attrs);
    have_estimate_ = true;
  }
  return estimate_;
}

absl::Status SharedSegmentFilter::Rows(const filter::Filter& flt, const Segment& seg,
                                       uint32_t rows, uint64_t seq,
                                       const SegmentAttrIndex* attrs, const StopToken& stop,
                                       uint64_t* checks, RowSet* out) {
  MutexLock lock(&mu_);
  if (!have_set_) {
    QUIVER_RETURN_IF_ERROR(EvaluateFilter(flt, seg, rows, attrs, &set_, checks, stop));
    DropInvisible(seg, seq, &set_);
    have_set_ = true;
  }
  *out = set_;
  return absl::OkStatus();
}

namespace {

absl::Status SearchCandidates(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                              uint64_t seq, size_t part, index::TopK* topk,
                              v1::SegmentPlan* plan, Strategy* used) {
  const auto t_start = Clock::now();
  std::shared_ptr<const index::VectorIndex> idx = ctx.exact ? nullptr : seg.index(ctx.field);
  // An index covers the rows present when it was built; the rows of a
  // sealed segment never change, so it covers all of them or is not used.
  if (idx != nullptr && idx->size() != rows) idx = nullptr;
  std::shared_ptr<const SegmentAttrIndex> attrs =
      ctx.filter != nullptr ? seg.attr_index() : nullptr;
  SharedSegmentFilter* shared =
      ctx.filter != nullptr && ctx.shared_filter != nullptr ? &ctx.shared_filter[part] : nullptr;
  index::SearchStats stats;
  double plan_us = 0, filter_us = 0;
  FilterEstimate est;
  PlanChoice choice;
  PlanFeedback::Counts post_seen;
  std::shared_ptr<const WindowIndex> window;
  WindowRange range;
  std::vector<PlanInput::WindowPart> in_window;
  RowSet set;
  bool have_set = false;
  PlanOp root;
  std::string index_name = idx != nullptr ? idx->Describe() : "none";

  if (ctx.filter == nullptr) {
    choice.strategy = idx != nullptr ? Strategy::kIndex : Strategy::kExactScan;
    choice.params = ctx.params;
  } else {
    est = shared != nullptr ? shared->Estimate(*ctx.filter, seg, rows, attrs.get())
                            : EstimateFilter(*ctx.filter, seg, rows, attrs.get());
    PlanInput in;
    in.rows = rows;
    in.dim = ctx.dim;
    in.k = ctx.k;
    in.nq = ctx.nq;
    in.has_index = idx != nullptr;
    if (idx != nullptr) in.shape = idx->shape();
    in.params = ctx.params;
    in.selectivity = est.selectivity;
    in.indexable = est.indexable;
    in.checked_share = est.checked_share;
    in.forced = ctx.forced;
    if (ctx.feedback != nullptr) {
      const PlanFeedback::Counts seen = ctx.feedback->Get(seg.id(), ctx.filter->ToString());
      if (seen.attempts > 0) {
        // The prior counts as a few queries, so one unlucky query does not
        // decide.
        const double prior = kPostFilterFailShare * (1 - std::min(1.0, est.selectivity));
        in.post_fail_share = (seen.fallbacks + 4 * prior) / (seen.attempts + 4);
        post_seen = seen;
      }
    }
    // A window index over an attribute the filter puts a range on, built
    // for the index this segment searches with.
    if (idx != nullptr && attrs != nullptr && attrs->rows() == rows) {
      for (int a : ctx.filter->referenced_attributes()) {
        std::shared_ptr<const WindowIndex> w = seg.window_index(a, ctx.field);
        if (w == nullptr || !SameIndexSpec(w->spec(), idx->spec())) continue;
        const WindowRange r = FindWindow(*ctx.filter, *attrs, a);
        if (!r.found) continue;
        window = std::move(w);
        range = r;
        break;
      }
    }
    if (window != nullptr && !window->partitions().empty()) {
      in.has_window = true;
      in.window_rest = range.rest;
      in.window_shape = window->partitions().front().index->shape();
      const double in_range = static_cast<double>(range.last - range.first) / rows;
      in.window_rest_selectivity = in_range > 0 ? est.selectivity / in_range : 1;
      for (const WindowIndex::Partition& p : window->partitions()) {
        if (p.last <= range.first || p.first >= range.last) continue;
        const uint32_t inside = std::min(p.last, range.last) - std::max(p.first, range.first);
        in.window.push_back({p.last - p.first, inside});
      }
    }
    choice = ChoosePlan(in);
    in_window = in.window;
    if (est.exact && est.selectivity == 0) {
      choice.strategy = Strategy::kEmpty;
      choice.reason = "the attribute index counts no matching row";
    }
  }
  plan_us = MicrosSince(t_start);

  const auto t_filter = Clock::now();
  const bool needs_set = choice.strategy == Strategy::kPreFilter ||
                         (choice.strategy == Strategy::kFilteredIndex && choice.materialize);
  // Evaluates the filter into `set` (or takes the hybrid search's shared one).
  auto evaluate = [&]() -> absl::Status {
    if (shared != nullptr) {
      QUIVER_RETURN_IF_ERROR(
          shared->Rows(*ctx.filter, seg, rows, seq, attrs.get(), ctx.stop, &stats.checks, &set));
    } else {
      QUIVER_RETURN_IF_ERROR(
          EvaluateFilter(*ctx.filter, seg, rows, attrs.get(), &set, &stats.checks, ctx.stop));
      DropInvisible(seg, seq, &set);
    }
    have_set = true;
    return absl::OkStatus();
  };
  if (needs_set) QUIVER_RETURN_IF_ERROR(evaluate());
  filter_us = MicrosSince(t_filter);

  const auto t_search = Clock::now();
  absl::Status status;
  uint32_t fetches = 0, fallbacks = 0;
  // The RowSet, evaluated on first need (POST_FILTER's fallbacks need it
  // only for the queries that fall back).
  auto ensure_set = [&]() -> absl::Status {
    if (have_set) return absl::OkStatus();
    const auto t0 = Clock::now();
    QUIVER_RETURN_IF_ERROR(evaluate());
    filter_us += MicrosSince(t0);
    return absl::OkStatus();
  };
  RowSetFilter by_set(set);
  RowFilter by_row(seg, rows, seq, ctx.filter, &ctx.stop);
  // One query through the index with the filter inline (or none).
  auto index_one = [&](size_t q, const index::SearchParams& p) -> absl::Status {
    index::SearchParams params = p;
    params.stats = &stats;
    if (have_set) by_set.Bind();
    const index::LabelFilter* accept = have_set ? static_cast<const index::LabelFilter*>(&by_set)
                                                : &by_row;
    // No filter and no deleted row: every label is visible, so the index
    // runs without a per-row check. dead() is published before a view that
    // could see a delete, so 0 here means none at `seq`.
    if (ctx.filter == nullptr && seg.dead() == 0) accept = nullptr;
    index::TopK local(ctx.k);
    QUIVER_RETURN_IF_ERROR(idx->Search(ctx.queries + q * ctx.dim, params, accept, &local));
    for (const index::Neighbor& nb : local.Take()) {
      topk[q].Push(nb.distance, HitId(part, static_cast<uint32_t>(nb.id)));
    }
    return absl::OkStatus();
  };
  // One query, exactly over the RowSet.
  auto exact_one = [&](size_t q) -> absl::Status {
    QUIVER_RETURN_IF_ERROR(ensure_set());
    SearchContext one = ctx;
    one.queries = ctx.queries + q * ctx.dim;
    one.qnorms = ctx.qnorms + q;
    one.nq = 1;
    return ExactOverRows(one, seg, rows, seq, part, &set, topk + q, &stats.distances);
  };
  switch (choice.strategy) {
    case Strategy::kEmpty:
      break;
    case Strategy::kExactScan:
      status = ExactOverRows(ctx, seg, rows, seq, part, nullptr, topk, &stats.distances);
      break;
    case Strategy::kPreFilter:
      status = ExactOverRows(ctx, seg, rows, seq, part, &set, topk, &stats.distances);
      break;
    case Strategy::kIndex:
    case Strategy::kFilteredIndex:
      if (have_set && set.Count() == 0) break;
      for (size_t q = 0; q < ctx.nq && status.ok(); ++q) {
        status = ctx.stop.Check();
        if (!status.ok()) break;
        status = index_one(q, choice.params);
      }
      break;
    case Strategy::kWindow:
      status = SearchWindow(ctx, seg, seq, part, *window, range, choice, topk, &stats);
      break;
    case Strategy::kPostFilter: {
      RowFilter visible(seg, rows, seq, nullptr);
      const index::LabelFilter* accept = seg.dead() == 0 ? nullptr : &visible;
      const bool adaptive = ctx.forced != v1::POST_FILTER;
      const double s = std::max(est.selectivity, kMinSelectivity);
      for (size_t q = 0; q < ctx.nq && status.ok(); ++q) {
        status = ctx.stop.Check();
        if (!status.ok()) break;
        // Fetch and keep what passes. Forced, fetch 4x more while fewer
        // than k passed and the index had more to give. Chosen by the
        // planner, fetch again only if the share that passed is in line
        // with the estimate: far less means the filter avoids this query's
        // neighbourhood, where more fetching goes on failing, so the query
        // falls back to the planner's next choice.
        bool fall_back = false;
        const bool lists = idx->shape().kind == index::IndexShape::Kind::kLists;
        const uint32_t nlist = idx->shape().nlist;
        uint32_t nprobe = choice.post_params.nprobe;
        for (uint32_t fetch = std::max(choice.fetch, ctx.k), round = 0;; ++round) {
          ++fetches;
          index::SearchParams params = choice.post_params;
          params.stats = &stats;
          params.ef = std::max(params.ef, fetch);
          params.nprobe = nprobe;
          index::TopK got(fetch);
          status = idx->Search(ctx.queries + q * ctx.dim, params, accept, &got);
          if (!status.ok()) break;
          const size_t returned = got.size();
          index::TopK passed(ctx.k);
          size_t passing = 0;
          for (const index::Neighbor& nb : got.Take()) {
            ++stats.checks;
            if (ctx.filter->Matches(seg.attrs(static_cast<uint32_t>(nb.id)))) {
              passed.Push(nb.distance, nb.id);
              ++passing;
            }
          }
          // Fewer results than fetched: an HNSW walk has reached every
          // visible row; IVF has only emptied the lists it probed, and
          // probing more would find more.
          const bool exhausted =
              fetch >= rows || (returned < fetch && (!lists || nprobe == 0 || nprobe >= nlist));
          if (passed.size() >= ctx.k || exhausted) {
            for (const index::Neighbor& nb : passed.Take()) {
              topk[q].Push(nb.distance, HitId(part, static_cast<uint32_t>(nb.id)));
            }
            break;
          }
          if (!adaptive) {
            fetch = static_cast<uint32_t>(std::min<uint64_t>(rows, uint64_t{fetch} * 4));
            if (lists && nprobe != 0) nprobe = std::min<uint32_t>(nlist, nprobe * 4);
            continue;
          }
          const double local = static_cast<double>(passing) / std::max<size_t>(returned, 1);
          if (round > 0 || local < s / 4 || returned < fetch) {
            fall_back = true;
            break;
          }
          fetch = static_cast<uint32_t>(std::min<double>(
              rows, std::max(2.0 * fetch, std::ceil(ctx.k * 1.25 / local) + 8)));
        }
        if (!status.ok() || !fall_back) continue;
        ++fallbacks;
        if (choice.fallback == Strategy::kPreFilter) {
          status = exact_one(q);
        } else {
          if (choice.materialize) status = ensure_set();
          if (status.ok()) status = index_one(q, choice.params);
        }
      }
      break;
    }
  }
  // A stopped request's walks let every label through (RowFilter): what
  // they found must not count as results.
  if (status.ok()) status = ctx.stop.Check();
  // Decided by what the walk saw, not by a second look at the clock (which
  // may have stepped back): results with unchecked labels never count.
  if (status.ok() && by_row.stopped()) {
    status = absl::DeadlineExceededError("the request's deadline passed");
  }
  const double search_us = MicrosSince(t_search);
  *used = choice.strategy;
  if (choice.strategy == Strategy::kPostFilter && ctx.forced != v1::POST_FILTER &&
      ctx.feedback != nullptr && status.ok()) {
    ctx.feedback->Add(seg.id(), ctx.filter->ToString(), static_cast<uint32_t>(ctx.nq), fallbacks);
  }
  if (!status.ok() || plan == nullptr) return status;

  // Explain: the operator tree, bottom-up.
  plan->set_segment_id(seg.id());
  plan->set_field(seg.schema().vectors()[ctx.field].name);
  plan->set_state(!seg.sealed() ? "GROWING" : seg.index(ctx.field) != nullptr ? "INDEXED" : "SEALED");
  plan->set_index(index_name);
  plan->set_rows(rows);
  uint32_t live = 0;
  for (uint32_t off = 0; off < rows; ++off) live += seg.Visible(off, seq);
  plan->set_live_rows(live);
  plan->set_strategy(std::string(StrategyName(choice.strategy)));
  plan->set_reason(choice.reason);
  PlanOp filter_op;
  if (ctx.filter != nullptr) {
    plan->set_estimated_selectivity(est.selectivity);
    // Over all rows, deleted or not, like the estimate: the row set the
    // search used serves when no row is deleted.
    uint32_t matching = 0;
    if (have_set && seg.dead() == 0) {
      matching = set.Count();
    } else {
      RowSet all;
      uint64_t unused = 0;
      QUIVER_RETURN_IF_ERROR(
          EvaluateFilter(*ctx.filter, seg, rows, attrs.get(), &all, &unused, ctx.stop));
      matching = all.Count();
    }
    plan->set_actual_selectivity(rows == 0 ? 0 : static_cast<double>(matching) / rows);
    filter_op.text = absl::StrFormat(
        "%s(%s) est=%.4f%s actual=%.4f", est.indexable ? "IndexFilter" : "RowFilter",
        ctx.filter->ToString(), est.selectivity, est.exact ? " (counted)" : "",
        plan->actual_selectivity());
  }
  const std::string ks = absl::StrCat("k=", ctx.k, ", queries=", ctx.nq);
  switch (choice.strategy) {
    case Strategy::kEmpty:
      root.text = "Empty()";
      root.children.push_back(filter_op);
      break;
    case Strategy::kExactScan:
      root.text = absl::StrCat("ExactScan(", ks, ", rows=", rows, ")");
      break;
    case Strategy::kPreFilter:
      root.text = absl::StrCat("ExactScan(", ks, ", rows=", set.Count(), " of ", rows, ")");
      root.children.push_back({absl::StrCat("RowSet(live, passing)"), {filter_op}});
      break;
    case Strategy::kIndex:
      root.text = absl::StrCat("IndexSearch(", index_name, ", ", ks,
                               KnobsText(choice.params), ")");
      break;
    case Strategy::kFilteredIndex:
      root.text = absl::StrCat("FilteredIndexSearch(", index_name, ", ", ks,
                               KnobsText(choice.params), ")");
      root.children.push_back(have_set ? PlanOp{"RowSet(live, passing)", {filter_op}}
                                       : PlanOp{"CheckRows(live)", {filter_op}});
      break;
    case Strategy::kWindow: {
      uint32_t whole = 0, exact = 0, filtered = 0;
      for (size_t j = 0; j < in_window.size(); ++j) {
        if (choice.window_exact[j]) ++exact;
        else if (in_window[j].inside == in_window[j].rows && !range.rest) ++whole;
        else ++filtered;
      }
      root.text = absl::StrCat("WindowSearch(", window->Describe(), ", ", ks, ", partitions=",
                               in_window.size(), ": ", whole, " whole, ", filtered, " filtered, ",
                               exact, " exact)");
      root.children.push_back({absl::StrCat("Window(positions ", range.first, "..", range.last,
                                            range.rest ? ", rest checked per row" : "", ")"),
                               {filter_op}});
      break;
    }
    case Strategy::kPostFilter:
      root.text = absl::StrCat("PostFilter(", ks, ", first fetch=", choice.fetch,
                               ", fetches=", fetches,
                               ctx.forced == v1::POST_FILTER
                                   ? ""
                                   : absl::StrCat(", fallback=", std::string(StrategyName(choice.fallback)),
                                                  " for ", fallbacks, " queries; before: ",
                                                  post_seen.fallbacks, " of ", post_seen.attempts),
                               ")");
      root.children.push_back({absl::StrCat("IndexSearch(", index_name,
                                            KnobsText(choice.post_params), ")"),
                               {}});
      root.children.push_back(filter_op);
      break;
  }
  std::string text;
  root.Print(0, &text);
  plan->set_plan(text);
  plan->set_distances(stats.distances);
  plan->set_filter_checks(stats.checks);
  plan->set_plan_micros(plan_us);
  plan->set_filter_micros(filter_us);
  plan->set_search_micros(search_us);
  return status;
}

// Exact distance (lower is better) between a query and a stored vector.
inline float ExactDistance(index::Similarity sim, const float* q, const float* v, size_t dim) {
  return sim == index::Similarity::kL2 ? index::L2Sqr(q, v, dim) : -index::Dot(q, v, dim);
}

// Pushes the best ctx.k of each query's candidates, by exact distance, into
// topk. `vectors[i]` is the vector of the i-th candidate over all queries in
// order, or null to read it from the segment.
void PushExact(const SearchContext& ctx, const Segment& seg, size_t part,
               const std::vector<std::vector<index::Neighbor>>& cand,
               const std::vector<std::vector<float>>* vectors, index::TopK* topk) {
  size_t i = 0;
  for (size_t q = 0; q < cand.size(); ++q) {
    const float* query = ctx.queries + q * ctx.dim;
    for (const index::Neighbor& nb : cand[q]) {
      const uint32_t off = static_cast<uint32_t>(nb.id & 0xffffffffu);
      const float* v = vectors != nullptr ? (*vectors)[i].data() : seg.vector(ctx.field, off);
      topk[q].Push(ExactDistance(ctx.similarity, query, v, ctx.dim), HitId(part, off));
      ++i;
    }
  }
}

}  // namespace

uint32_t RefineCandidates(uint32_t k, float refine_factor, const index::VectorIndex& idx) {
  float rf = refine_factor;
  if (rf <= 0) {
    // Defaults measured on Fashion-MNIST 60k (bench/disk_bench): what keeps
    // recall@10 >= 0.95 at the index's default search parameters.
    const std::string& type = idx.spec().type;
    rf = type.find("PQ") != std::string::npos ? kDefaultRefinePq : kDefaultRefineSq;
  }
  const double n = std::ceil(static_cast<double>(k) * std::max(1.0f, rf));
  return static_cast<uint32_t>(std::min<double>(n, kMaxRefineCandidates));
}

size_t RerankQueue::Admit(size_t q, const std::vector<index::Neighbor>& cand, uint32_t keep) {
  if (best_.size() <= q) best_.resize(q + 1, index::TopK(keep));
  index::TopK& best = best_[q];
  size_t n = 0;
  for (const index::Neighbor& nb : cand) {
    if (best.size() >= best.k() && !(nb.distance < best.threshold())) break;
    best.Push(nb.distance, nb.id);
    ++n;
  }
  return n;
}

absl::Status RerankQueue::Finish() {
  absl::Status status;
  for (Pending& p : pending_) {
    const auto t0 = Clock::now();
    std::vector<std::vector<float>> vectors;
    absl::Status s = p.read->Wait(&vectors);
    if (s.ok()) PushExact(*p.ctx, *p.seg, p.part, p.cand, &vectors, p.topk);
    if (p.plan != nullptr) {
      p.plan->set_search_micros(p.plan->search_micros() + MicrosSince(t0));
    }
    if (status.ok()) status = s;
  }
  pending_.clear();
  return status;
}

absl::Status SearchSegment(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, index::TopK* topk, v1::SegmentPlan* plan) {
  std::shared_ptr<const index::VectorIndex> idx = ctx.exact ? nullptr : seg.index(ctx.field);
  Strategy used = Strategy::kExactScan;
  if (idx == nullptr || idx->size() != rows || !idx->approximate()) {
    return SearchCandidates(ctx, seg, rows, seq, part, topk, plan, &used);
  }
  // A compressed index ranks by estimated distances: ask it for k *
  // refine_factor candidates, then rerank them exactly.
  SearchContext wide = ctx;
  wide.k = RefineCandidates(ctx.k, ctx.refine_factor, *idx);
  // IVF at its default nprobe may probe fewer rows than the candidates
  // wanted (late interaction asks for hundreds): probe lists enough to hold
  // them on average. An nprobe the request sets is kept.
  const index::IndexShape shape = idx->shape();
  if (shape.kind == index::IndexShape::Kind::kLists && shape.nlist > 0 && ctx.params.nprobe == 0) {
    const auto need = static_cast<uint32_t>(
        std::ceil(static_cast<double>(wide.k) * shape.nlist / std::max<uint32_t>(rows, 1)));
    wide.params.nprobe = std::min(shape.nlist, std::max(shape.default_nprobe, need));
  }
  std::vector<index::TopK> found(ctx.nq, index::TopK(wide.k));
  QUIVER_RETURN_IF_ERROR(SearchCandidates(wide, seg, rows, seq, part, found.data(), plan, &used));
  std::vector<std::vector<index::Neighbor>> cand(ctx.nq);
  size_t total = 0;
  for (size_t q = 0; q < ctx.nq; ++q) {
    cand[q] = found[q].Take();
    total += cand[q].size();
  }
  if (used == Strategy::kPreFilter || used == Strategy::kExactScan || used == Strategy::kEmpty) {
    // Those computed exact distances already.
    for (size_t q = 0; q < ctx.nq; ++q) {
      for (size_t i = 0; i < cand[q].size() && i < ctx.k; ++i) {
        topk[q].Push(cand[q][i].distance, cand[q][i].id);
      }
    }
    return absl::OkStatus();
  }
  const auto t0 = Clock::now();
  std::shared_ptr<const storage::RerankTable> table = seg.table(ctx.field);
  // A multi-vector field's table holds its vector sets, not the encodings
  // this index ranks: those stay in memory.
  if (table != nullptr && table->multi()) table = nullptr;
  std::string source = "memory";
  uint64_t reads = 0;
  // Only candidates still among the best k x refine estimates over the
  // segments seen so far are reranked (in memory and on disk alike, so both
  // give the same answers).
  if (ctx.rerank != nullptr) {
    total = 0;
    for (size_t q = 0; q < ctx.nq; ++q) {
      cand[q].resize(ctx.rerank->Admit(q, cand[q], wide.k));
      total += cand[q].size();
    }
  }
  if (table != nullptr) {
    // DISK: read the candidates' full vectors from the rerank table, all of
    // this segment's at once. With a queue, the reads complete while the
    // next segments generate their candidates (ESPN-style prefetching).
    source = "rerank table";
    std::vector<uint64_t> rows_to_read;
    rows_to_read.reserve(total);
    for (const auto& c : cand) {
      for (const index::Neighbor& nb : c) rows_to_read.push_back(nb.id & 0xffffffffu);
    }
    QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<storage::RerankRead> read,
                            table->Submit(rows_to_read, &reads));
    if (ctx.rerank != nullptr) {
      ctx.rerank->Add({table, std::move(read), &ctx, &seg, part, std::move(cand), topk, plan});
    } else {
      std::vector<std::vector<float>> vectors;
      QUIVER_RETURN_IF_ERROR(read->Wait(&vectors));
      PushExact(ctx, seg, part, cand, &vectors, topk);
    }
  } else {
    PushExact(ctx, seg, part, cand, nullptr, topk);
  }
  if (plan != nullptr) {
    plan->set_rerank_candidates(total);
    plan->set_rerank_reads(reads);
    plan->set_search_micros(plan->search_micros() + MicrosSince(t0));
    std::string text = absl::StrCat("Rerank(exact distances, k=", ctx.k, ", candidates=", total,
                                    " (k x ", wide.k / std::max(1u, ctx.k), "), from ", source,
                                    reads ? absl::StrCat(", reads=", reads) : "", ")\n");
    for (absl::string_view line : absl::StrSplit(plan->plan(), '\n', absl::SkipEmpty())) {
      absl::StrAppend(&text, "  ", line, "\n");
    }
    plan->set_plan(std::move(text));
  }
  return absl::OkStatus();
}

RowSet MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt) {
  RowSet set;
  (void)MatchingRows(seg, rows, seq, flt, StopToken(), &set);  // never stops
  return set;
}

absl::Status MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq,
                          const filter::Filter* flt, const StopToken& stop, RowSet* out) {
  *out = RowSet(rows);
  if (flt == nullptr) {
    out->SetAll();
  } else {
    uint64_t checks = 0;
    std::shared_ptr<const SegmentAttrIndex> attrs = seg.attr_index();
    QUIVER_RETURN_IF_ERROR(EvaluateFilter(*flt, seg, rows, attrs.get(), out, &checks, stop));
  }
  DropInvisible(seg, seq, out);
  return absl::OkStatus();
}

}  // namespace quiver
