#include "query/plan/planner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "query/segment.h"

namespace quiver {
namespace {

// HNSW: ef grows as the filter passes fewer points, because the nearest
// accepted points lie further out in the graph and the walk must hold more
// candidates to reach them (x1 at 50% and above, up to x4).
double EfRaise(double s) { return s >= 0.5 ? 1.0 : std::min(4.0, std::sqrt(0.5 / s)); }

// IVF: the k nearest passing points sit among the k / s nearest of all, so
// more lists are probed as selectivity falls. Measured on Fashion-MNIST:
// s^-0.7 keeps recall@10 at the unfiltered level for uncorrelated filters.
double NprobeRaise(double s) { return std::pow(std::max(s, kMinSelectivity), -0.7); }

// POST_FILTER's first fetch: enough that k pass in expectation, with margin.
uint32_t PostFetch(uint32_t k, double s, uint32_t rows) {
  const double f = std::ceil(k * 1.25 / std::max(s, kMinSelectivity)) + 8;
  return static_cast<uint32_t>(std::min<double>(rows, f));
}

std::string Us(double ns) { return absl::StrFormat("%.1f", ns / 1000.0); }

// One query's cost of searching an index of `shape` over `rows` rows when a
// share `s` of them passes (1: no filter), without the cost of checking the
// filter; sets the ef / nprobe it would search with and the rows it visits
// (each of which a filter check would read).
// `raise`: false when the requested ef / nprobe already account for the
// filter (a recall calibration chose them for this selectivity).
double IndexSearchNs(const index::IndexShape& shape, double rows, double s, double k,
                     uint32_t dim, const index::SearchParams& requested, const CostModel& m,
                     index::SearchParams* params, double* visited, bool raise = true) {
  *params = requested;
  if (shape.kind == index::IndexShape::Kind::kGraph) {
    const double ef0 = std::max(k, static_cast<double>(requested.ef != 0 ? requested.ef
                                                                          : shape.default_ef));
    const double ef = raise ? std::ceil(ef0 * EfRaise(s)) : ef0;
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
  const double np = raise ? std::min(nlist, std::ceil(np0 * NprobeRaise(s))) : np0;
  params->nprobe = static_cast<uint32_t>(np);
  *visited = rows * np / nlist;
  if (s < 1 && raise) {
    // As many passing rows as an unfiltered scan would see, however the
    // filter falls across the lists (see SearchParams::min_accepted).
    params->min_accepted = static_cast<uint32_t>(std::ceil(rows * np0 / nlist / 2));
  }
  return nlist * dim * m.scan_ns_per_float + *visited * s * dim * m.scan_ns_per_float;
}

}  // namespace

std::string_view FilterStrategyName(FilterStrategy s) {
  switch (s) {
    case FilterStrategy::kAuto: return "FILTER_STRATEGY_AUTO";
    case FilterStrategy::kPreFilter: return "PRE_FILTER";
    case FilterStrategy::kFilteredIndex: return "FILTERED_INDEX";
    case FilterStrategy::kPostFilter: return "POST_FILTER";
    case FilterStrategy::kWindow: return "WINDOW_FILTER";
  }
  return "FILTER_STRATEGY_AUTO";
}

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

// FILTERED_INDEX and POST_FILTER's costs (and their knobs) into *c, given
// what evaluating the filter into a RowSet costs.
void PriceIndexStrategies(const PlanInput& in, const CostModel& m, double s, double nq,
                          double materialize, PlanChoice* c) {
  const double rows = in.rows;
  const double k = std::max<uint32_t>(in.k, 1);
  c->fetch = PostFetch(in.k, s, in.rows);
  // FILTERED_INDEX, checking a RowSet when materializing it pays for
  // itself against reading each visited row's attributes.
  double visited = 0;
  c->filtered_ns = nq * IndexSearchNs(in.shape, rows, s, k, in.dim, in.params, m, &c->params,
                                      &visited, /*raise=*/!in.calibrated);
  const double lazy_checks = nq * visited * m.match_random_ns;
  const double set_checks = materialize + nq * visited * m.bit_ns;
  c->materialize = set_checks <= lazy_checks;
  c->filtered_ns += std::min(lazy_checks, set_checks);

  // POST_FILTER: an unfiltered search deep enough for `fetch` results (IVF
  // probes as many lists as the filtered scan, or the fetched rows would
  // not reach the k nearest that pass).
  double post_visited = 0;
  index::SearchParams deeper = in.params;
  if (in.shape.kind == index::IndexShape::Kind::kGraph) {
    deeper.ef =
        std::max<uint32_t>(in.params.ef != 0 ? in.params.ef : in.shape.default_ef, c->fetch);
  } else {
    deeper.nprobe = c->params.nprobe;
  }
  c->post_ns = nq * (IndexSearchNs(in.shape, rows, 1, k, in.dim, deeper, m, &c->post_params,
                                   &post_visited) +
                     c->fetch * m.match_random_ns);
}

// WINDOW_FILTER: each overlapping partition searched whole, or scanned
// exactly over its rows in range, whichever costs less.
void PriceWindow(const PlanInput& in, const CostModel& m, double nq, PlanChoice* c) {
  const double k = std::max<uint32_t>(in.k, 1);
  double per_query = 0;
  const double rest = std::clamp(in.window_rest_selectivity, kMinSelectivity, 1.0);
  c->window_rest_selectivity = rest;
  for (const PlanInput::WindowPart& p : in.window) {
    index::SearchParams unused;
    double v = 0;
    if (p.inside == p.rows && !in.window_rest) {
      per_query += IndexSearchNs(in.window_shape, p.rows, 1, k, in.dim, in.params, m, &unused, &v);
      c->window_exact.push_back(false);
      continue;
    }
    const double check = in.window_rest ? m.match_random_ns : m.bit_ns;
    const double exact = p.inside * (in.dim * m.gather_ns_per_float + m.gather_ns_per_row + check);
    const double share = std::max(kMinSelectivity, static_cast<double>(p.inside) / p.rows * rest);
    const double searched =
        IndexSearchNs(in.window_shape, p.rows, share, k, in.dim, in.params, m, &unused, &v) +
        v * check;
    c->window_exact.push_back(exact <= searched);
    per_query += std::min(exact, searched);
  }
  c->window_ns = nq * per_query;
}

// The cheapest of the priced strategies into *c (POST_FILTER with its
// fallback risk), with the costs as the reason.
void PickCheapest(const PlanInput& in, double s, PlanChoice* c) {
  c->strategy = Strategy::kPreFilter;
  double best = c->pre_ns;
  if (c->filtered_ns < best) {
    best = c->filtered_ns;
    c->strategy = Strategy::kFilteredIndex;
  }
  // POST_FILTER falls back per query to the best of the others when the
  // filter turns out to avoid the query's neighbourhood; that risk is priced
  // as a share of queries paying for both.
  c->fallback = c->strategy;
  const double fail_share =
      in.post_fail_share >= 0 ? in.post_fail_share : kPostFilterFailShare * (1 - s);
  const double fail = fail_share * best;
  if (c->post_ns + fail < best) {
    best = c->post_ns + fail;
    c->strategy = Strategy::kPostFilter;
  }
  if (in.has_window && c->window_ns < best) {
    best = c->window_ns;
    c->strategy = Strategy::kWindow;
  }
  c->reason = absl::StrCat("estimated us: pre_filter ", Us(c->pre_ns), ", filtered_index ",
                           Us(c->filtered_ns), ", post_filter ", Us(c->post_ns),
                           in.has_window ? absl::StrCat(", window_filter ", Us(c->window_ns)) : "");
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
  PriceIndexStrategies(in, m, s, nq, materialize, &c);
  if (in.has_window) PriceWindow(in, m, nq, &c);

  auto forced = [&](Strategy st) {
    c.strategy = st;
    c.reason = "forced";
    return c;
  };
  switch (in.forced) {
    case FilterStrategy::kPreFilter: return forced(Strategy::kPreFilter);
    case FilterStrategy::kFilteredIndex: return forced(Strategy::kFilteredIndex);
    case FilterStrategy::kPostFilter: return forced(Strategy::kPostFilter);
    case FilterStrategy::kWindow:
      if (in.has_window) return forced(Strategy::kWindow);
      break;  // no window index applies here: the planner chooses
    case FilterStrategy::kAuto:
      break;
  }
  PickCheapest(in, s, &c);
  return c;
}

}  // namespace quiver
