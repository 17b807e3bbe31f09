// filter_bench: does the filter planner (filter_strategy AUTO) do as well as
// the best forced strategy on every filter: recall@10 >= 0.95 and at least
// 0.9x the QPS of the fastest fixed strategy that reaches that recall?
//
// On Fashion-MNIST (the 60,000 train images as the base, the first
// `--queries` t10k images as queries, k = 10, L2), two collections loaded
// through gRPC into a real quiverd: HNSW (M=16, ef_construction=200) and
// IVF_FLAT (server defaults). Every point carries
//   label INT64   its class label, indexed            -> correlated filters
//   u     INT64   uniform in [0, 1000000), indexed    -> uncorrelated filters
//   ts    INT64   uniform over a year of seconds,     -> window filters
//                 declared window (so indexed, and
//                 every sealed segment keeps a window
//                 index on it)
//   cat   STRING  "c0".."c9" uniform, independent     -> an unindexed attribute
//                 of the label, NOT indexed
// (u, ts and cat are synthetic, drawn from a fixed seed, so that selectivity
// and window width can be set exactly; label is the real class.)
// Filters from 100% to 0.01% of the base (see MakeFilters). For each
// collection x filter, single-query Search RPCs from `--threads` client
// threads with filter_strategy AUTO, PRE_FILTER, FILTERED_INDEX,
// POST_FILTER and, on the window filters (a range on ts), WINDOW_FILTER: the
// `--queries` are split into `--rounds` slices, and each slice runs through
// the strategies in rotating order (interleaved, so a noisy moment hits
// every strategy alike, while the slowest cells, a few dozen QPS, run each
// query only once and bound the run time). A slice that runs in under
// `--min-run-ms` is repeated to that length for its QPS. recall@10 against
// the exact filtered top-10 (brute force over the passing rows, cached),
// from each query's first run. One explain call per cell, outside the clock,
// tells which strategy each segment used; a server that answers it with an
// error (explain not implemented yet) only leaves those columns empty.
//
// Window mode (`--window-scale N`, off by default): at which window widths
// does the window index (WINDOW_FILTER) beat every other strategy, and by
// how much, on a large base? N synthetic vectors (a Gaussian mixture,
// `--window-dim` dimensions, fixed seed) with a window attribute ts, in one
// HNSW collection (M=16, ef_construction 100 by default: 16 segments' graphs
// plus their window indexes must build in minutes on 2 cores); windows of
// 50% down to 0.01% of the ts range, the same five strategies measured the
// same way (`--queries` default 100 there). See WindowMain.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "bench/common/driver.h"
#include "bench/common/ground_truth.h"
#include "bench/common/quiverd_io.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

constexpr char kField[] = "image";
constexpr char kWindowField[] = "vec";  // window mode's synthetic vectors

// Synthetic attribute ranges.
constexpr int64_t kURange = 1000000;
constexpr int64_t kTs0 = 1704067200;    // 2024-01-01T00:00:00Z
constexpr int64_t kTsRange = 31536000;  // one year of seconds
constexpr int kCats = 10;

// recall@10 the planner must reach, and the share of the best fixed
// strategy's QPS it must keep.
constexpr double kRecallTarget = 0.95;
constexpr double kQpsTarget = 0.9;

// Window mode: the widths swept (shares of the ts range), and the mixture
// the vectors come from: kClusters centres drawn from N(0, 1) per dimension,
// each point a uniformly chosen centre plus N(0, kSigma^2) noise. Centres
// are sqrt(2 dim) apart on average and points sqrt(dim) sigma from their
// centre (8 and 2.8 at 32 dimensions), so a query's nearest neighbours are
// in its own cluster while the window leaves enough of it (at 1M, 10,000
// points a cluster: a 0.1% window keeps ~10) and in others below that.
constexpr double kWindowWidths[] = {0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.001, 0.0001};
constexpr size_t kClusters = 100;
constexpr double kSigma = 0.5;

struct Args {
  size_t rows = 60000;
  size_t queries = 300;     // per cell (collection x filter x strategy)
  size_t k = 10;
  int rounds = 3;           // slices of the queries, interleaved
  double min_run_ms = 200;  // a shorter run is repeated to this length
  int threads = 2;          // client threads, one query per RPC
  int build_threads = 2;    // quiverd --index-build-threads
  int search_threads = 1;   // quiverd --search-threads
  int hnsw_m = 16;
  int ef_construction = 200;  // 100 in window mode unless given
  uint32_t ef = 0;      // 0: the index's default
  uint32_t nprobe = 0;  // 0: the index's default
  size_t ingest_batch = 1000;
  uint64_t seed = 42;
  std::vector<std::string> indexes = {"HNSW", "IVF_FLAT"};
  std::vector<std::string> families = {"uncorrelated", "correlated", "unindexed", "window"};
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
  std::vector<std::string> quiverd_env;
  size_t window_scale = 0;  // > 0: window mode with this many synthetic vectors
  size_t window_dim = 32;
};

// ------------------------------------------------------------ data

struct Attributes {
  std::vector<int64_t> u, ts;
  std::vector<int> cat;
};

Attributes MakeAttributes(size_t n, uint64_t seed) {
  // mt19937_64's output sequence is fixed by the standard (the
  // distributions' are not), so a seed gives the same attributes with any
  // standard library; the modulo bias is below 1e-12 at these ranges.
  std::mt19937_64 rng(seed);
  Attributes a;
  a.u.resize(n);
  a.ts.resize(n);
  a.cat.resize(n);
  for (size_t i = 0; i < n; ++i) {
    a.u[i] = static_cast<int64_t>(rng() % kURange);
    a.ts[i] = kTs0 + static_cast<int64_t>(rng() % kTsRange);
    a.cat[i] = static_cast<int>(rng() % kCats);
  }
  return a;
}

struct FilterCase {
  std::string family;
  double target = 0;  // intended selectivity
  std::string expr;
  std::function<bool(size_t)> pass;  // the same predicate, in this process
  // Filled from the data:
  std::vector<int64_t> subset;  // passing base rows, ascending
  std::vector<bool> allowed;
  GroundTruth gt;  // exact filtered top-min(k, |subset|)
  double Selectivity(size_t n) const { return static_cast<double>(subset.size()) / n; }
};

// A cache key part from a filter expression: [A-Za-z0-9] kept, runs of
// anything else as one '_'. The cache also checks a hash of the passing
// ids, so a collision only costs a recomputation.
std::string Slug(const std::string& expr) {
  std::string s;
  for (char c : expr) {
    if (std::isalnum(static_cast<unsigned char>(c))) s.push_back(c);
    else if (s.empty() || s.back() != '_') s.push_back('_');
  }
  return s;
}

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g%%", 100 * fraction);
  return buf;
}

// `ts BETWEEN lo AND hi` over a share w of the ts range, starting a quarter
// into it.
FilterCase WindowFilter(double w, const std::vector<int64_t>& ts) {
  FilterCase c;
  c.family = "window";
  c.target = w;
  const int64_t lo = kTs0 + kTsRange / 4;
  const int64_t hi = lo + std::llround(w * kTsRange) - 1;
  c.expr = absl::StrCat("ts BETWEEN ", lo, " AND ", hi);
  c.pass = [&ts, lo, hi](size_t i) { return ts[i] >= lo && ts[i] <= hi; };
  return c;
}

// The filters, per family, from 100% down to 0.01% of the base.
std::vector<FilterCase> MakeFilters(const std::vector<uint8_t>& labels, const Attributes& a) {
  std::vector<FilterCase> f;
  auto add = [&f](std::string family, double target, std::string expr,
                  std::function<bool(size_t)> pass) {
    FilterCase c;
    c.family = std::move(family);
    c.target = target;
    c.expr = std::move(expr);
    c.pass = std::move(pass);
    f.push_back(std::move(c));
  };
  auto u_below = [](double sel) { return static_cast<int64_t>(std::llround(sel * kURange)); };
  // Uncorrelated: u is independent of the vectors, so a query's nearest
  // passing points are spread like any random sample.
  for (double sel : {1.0, 0.5, 0.1, 0.01, 0.001, 0.0001}) {
    const int64_t x = u_below(sel);
    add("uncorrelated", sel, absl::StrCat("u < ", x),
        [&a, x](size_t i) { return a.u[i] < x; });
  }
  // Correlated: each class is 10% of the base and a query's neighbours are
  // mostly of its own class, so a label filter keeps or removes whole
  // neighbourhoods (the HNSW graph must walk far for queries of another
  // class). Below 10%, u thins class 3 at random.
  add("correlated", 0.5, "label IN (0, 1, 2, 3, 4)",
      [&labels](size_t i) { return labels[i] <= 4; });
  add("correlated", 0.1, "label = 3", [&labels](size_t i) { return labels[i] == 3; });
  for (double sel : {0.01, 0.001, 0.0001}) {
    const int64_t x = u_below(sel * 10);
    add("correlated", sel, absl::StrCat("label = 3 AND u < ", x),
        [&labels, &a, x](size_t i) { return labels[i] == 3 && a.u[i] < x; });
  }
  // Unindexed: cat has no attribute index, so its selectivity cannot be
  // read from one and it is checked row by row.
  add("unindexed", 0.1, "cat = \"c1\"", [&a](size_t i) { return a.cat[i] == 1; });
  for (double sel : {0.01, 0.001, 0.0001}) {
    const int64_t x = u_below(sel * 10);
    add("unindexed", sel, absl::StrCat("cat = \"c1\" AND u < ", x),
        [&a, x](size_t i) { return a.cat[i] == 1 && a.u[i] < x; });
  }
  // Windows: a two-sided range on ts.
  for (double w : {0.5, 0.1, 0.01, 0.001}) f.push_back(WindowFilter(w, a.ts));
  return f;
}

// Fills f's passing rows and its exact filtered top-k (cached under
// `key_prefix` and the expression). False, with a note, when no row passes:
// there is nothing to find and no exact answer to compare with (only
// possible with a reduced base).
bool Prepare(FilterCase& f, const std::string& key_prefix, const Matrix& base,
             const Matrix& queries, size_t nq, size_t k, const std::string& cache_dir,
             std::vector<std::string>* notes) {
  f.allowed.assign(base.n, false);
  for (size_t i = 0; i < base.n; ++i) {
    if (f.pass(i)) {
      f.subset.push_back(static_cast<int64_t>(i));
      f.allowed[i] = true;
    }
  }
  if (f.subset.empty()) {
    notes->push_back(absl::StrCat("`", f.expr, "` matches no row of ", base.n, ": skipped"));
    return false;
  }
  // Fewer passing rows than k: the exact answer is all of them, and recall
  // is the share of them found.
  auto gt = LoadOrComputeGroundTruth(absl::StrCat(key_prefix, "-", Slug(f.expr)), base, queries,
                                     nq, std::min(k, f.subset.size()), f.subset, cache_dir);
  if (!gt.ok()) Die("ground truth for " + f.expr, gt.status());
  f.gt = *std::move(gt);
  return true;
}

// Standard normal deviates by Box-Muller over mt19937_64's output (fixed by
// the standard, unlike std::normal_distribution's), so a seed gives the same
// vectors with any standard library.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  float operator()() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double u1 = static_cast<double>((rng_() >> 11) + 1) * 0x1p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1p-53;
    const double r = std::sqrt(-2 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(2 * M_PI * u2));
    have_spare_ = true;
    return static_cast<float>(r * std::cos(2 * M_PI * u2));
  }
  uint64_t Uniform(uint64_t range) { return rng_() % range; }

 private:
  std::mt19937_64 rng_;
  bool have_spare_ = false;
  float spare_ = 0;
};

struct Synthetic {
  Matrix base, queries;
  std::vector<int64_t> ts;  // per base row
};

// Window mode's data: n base points and nq queries from the mixture (see
// kClusters), and ts uniform over the year, independent of the vectors (so a
// window thins every neighbourhood alike). Queries come from their own
// stream, so none is a base point.
Synthetic MakeSynthetic(size_t n, size_t nq, size_t dim, uint64_t seed) {
  Gaussian centres_rng(seed), base_rng(seed + 1), query_rng(seed + 2);
  std::vector<float> centres(kClusters * dim);
  for (float& x : centres) x = centres_rng();
  auto draw = [&](Gaussian& g, Matrix& m, size_t rows) {
    m.n = rows;
    m.dim = dim;
    m.data.resize(rows * dim);
    for (size_t i = 0; i < rows; ++i) {
      const float* c = centres.data() + g.Uniform(kClusters) * dim;
      for (size_t d = 0; d < dim; ++d) m.data[i * dim + d] = c[d] + kSigma * g();
    }
  };
  Synthetic s;
  draw(base_rng, s.base, n);
  draw(query_rng, s.queries, nq);
  std::mt19937_64 ts_rng(seed + 3);
  s.ts.resize(n);
  for (int64_t& t : s.ts) t = kTs0 + static_cast<int64_t>(ts_rng() % kTsRange);
  return s;
}

// ------------------------------------------------------------ quiverd

struct Collection {
  std::string name;   // "fmnist_hnsw"
  std::string index;  // "HNSW"
  std::map<std::string, std::string> params;
  std::string segments;  // description once indexed
  double ingest_s = 0;
};

v1::CollectionSchema MakeSchema(size_t dim, const Collection& c) {
  v1::CollectionSchema schema;
  v1::VectorField* v = schema.add_vectors();
  v->set_name(kField);
  v->set_dim(static_cast<uint32_t>(dim));
  v->set_metric(v1::L2);
  v->mutable_index()->set_type(c.index);
  for (const auto& [key, val] : c.params) (*v->mutable_index()->mutable_params())[key] = val;
  auto attr = [&](const char* name, v1::AttributeType type, bool indexed) {
    v1::AttributeField* a = schema.add_attributes();
    a->set_name(name);
    a->set_type(type);
    a->set_indexed(indexed);
    return a;
  };
  attr("label", v1::INT64, true);
  attr("u", v1::INT64, true);
  attr("ts", v1::INT64, true)->set_window(true);
  attr("cat", v1::STRING, false);
  return schema;
}

std::vector<v1::UpsertPointsRequest> MakeUpserts(const Matrix& base,
                                                 const std::vector<uint8_t>& labels,
                                                 const Attributes& a, size_t batch) {
  std::vector<v1::UpsertPointsRequest> out;
  for (size_t b = 0; b < base.n; b += batch) {
    v1::UpsertPointsRequest req;
    for (size_t i = b; i < std::min(base.n, b + batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())[kField].mutable_values()->Add(base.row(i), base.row(i) + base.dim);
      auto& attrs = *p->mutable_attributes();
      attrs["label"].set_int_value(labels[i]);
      attrs["u"].set_int_value(a.u[i]);
      attrs["ts"].set_int_value(a.ts[i]);
      attrs["cat"].set_string_value(absl::StrCat("c", a.cat[i]));
    }
    out.push_back(std::move(req));
  }
  return out;
}

// Waits until every segment of the collections is INDEXED (the filtered
// searches are measured on that steady state) and records their segments.
void WaitIndexedAndDescribe(client::Client& c, std::vector<Collection>& colls, double timeout_s) {
  std::vector<std::string> names;
  for (const Collection& coll : colls) names.push_back(coll.name);
  WaitIndexedOrDie(c, names, timeout_s, 50);
  for (Collection& coll : colls) {
    auto s = Segments(c, coll.name);
    if (!s.ok()) Die("GetCollection " + coll.name, s.status());
    coll.segments = s->desc;
  }
}

// The in-process predicates must be the server's: else the ground truth
// answers another question.
void CheckCounts(client::Client& c, const std::string& coll,
                 const std::vector<FilterCase>& filters) {
  for (const FilterCase& f : filters) {
    auto n = c.Count(coll, f.expr);
    if (!n.ok()) Die(absl::StrCat("Count ", coll, " `", f.expr, "`"), n.status());
    if (*n != f.subset.size()) {
      Die(absl::StrCat("Count ", coll, " `", f.expr, "`"),
          absl::DataLossError(absl::StrCat("server counts ", *n, ", bench ", f.subset.size())));
    }
  }
}

// The index builds quiverd logged (at info level), the segments' own
// indexes apart from their window indexes:
//   collection "c" segment 3 field "vec": built HNSW(...) over 65536 rows in 4.10s
//   collection "c" segment 3 field "vec": built WINDOW(16 x HNSW(...)) on "ts" in 3.90s
struct BuildLog {
  int indexes = 0, windows = 0;
  double index_s = 0, window_s = 0;  // summed
};

BuildLog ReadBuildLog(const std::string& path) {
  BuildLog b;
  for (const LoggedBuild& lb : LoggedBuilds(path)) {
    if (lb.index.rfind("WINDOW(", 0) == 0) {
      ++b.windows;
      b.window_s += lb.build_s;
    } else {
      ++b.indexes;
      b.index_s += lb.build_s;
    }
  }
  return b;
}

// ------------------------------------------------------------ strategies

enum Strategy { kAuto, kPre, kFilteredIndex, kPost, kWindow, kNumStrategies };
constexpr v1::FilterStrategy kStrategyProto[] = {v1::FILTER_STRATEGY_AUTO, v1::PRE_FILTER,
                                                 v1::FILTERED_INDEX, v1::POST_FILTER,
                                                 v1::WINDOW_FILTER};
const char* kStrategyName[] = {"AUTO", "PRE_FILTER", "FILTERED_INDEX", "POST_FILTER",
                               "WINDOW_FILTER"};
const char* kStrategyShort[] = {"AUTO", "PRE", "FI", "POST", "WIN"};
constexpr Strategy kFixed[] = {kPre, kFilteredIndex, kPost, kWindow};
constexpr Strategy kNonWindow[] = {kPre, kFilteredIndex, kPost};

// WINDOW_FILTER needs a range on a window attribute (ts); on another filter
// the server would let the planner choose, so it is measured on the window
// filters only.
std::vector<Strategy> StrategiesFor(const FilterCase& f) {
  std::vector<Strategy> s = {kAuto, kPre, kFilteredIndex, kPost};
  if (f.family == "window") s.push_back(kWindow);
  return s;
}

// What one explain call said, summed over segments.
struct Explained {
  bool ok = false;
  std::string status;  // the error when !ok
  std::string chose;   // "FILTERED_INDEX", or "PRE_FILTER x1, EXACT_SCAN x1" when mixed
  std::set<std::string> strategies;
  double est_selectivity = NAN;  // row-weighted over segments
  nlohmann::json json;
};

Explained Explain(client::Client& c, v1::SearchRequest req) {
  req.set_explain(true);
  Explained e;
  auto resp = c.Search(req);
  if (!resp.ok()) {
    e.status = resp.status().ToString();
    e.json = {{"status", e.status}};
    return e;
  }
  e.ok = true;
  std::map<std::string, int> count;
  double rows = 0, est = 0;
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : resp->explain().segments()) {
    ++count[s.strategy()];
    e.strategies.insert(s.strategy());
    rows += static_cast<double>(s.rows());
    est += s.estimated_selectivity() * static_cast<double>(s.rows());
    segs.push_back({{"segment_id", s.segment_id()},
                    {"state", s.state()},
                    {"index", s.index()},
                    {"rows", s.rows()},
                    {"live_rows", s.live_rows()},
                    {"strategy", s.strategy()},
                    {"reason", s.reason()},
                    {"plan", s.plan()},
                    {"estimated_selectivity", s.estimated_selectivity()},
                    {"actual_selectivity", s.actual_selectivity()},
                    {"distances", s.distances()},
                    {"filter_checks", s.filter_checks()},
                    {"plan_micros", s.plan_micros()},
                    {"filter_micros", s.filter_micros()},
                    {"search_micros", s.search_micros()}});
  }
  if (rows > 0) e.est_selectivity = est / rows;
  if (count.size() == 1 && count.begin()->second == 1) {
    e.chose = count.begin()->first;
  } else {
    for (const auto& [name, n] : count) {
      e.chose += absl::StrCat(e.chose.empty() ? "" : ", ", name, " x", n);
    }
  }
  if (e.chose.empty()) e.chose = "(no segments)";
  e.json = {{"status", "OK"},
            {"chose", e.chose},
            {"total_micros", resp->explain().total_micros()},
            {"segments", segs},
            {"text", resp->explain().text()}};
  return e;
}

// One collection x filter x strategy, over rounds (slices of the queries).
struct Cell {
  std::vector<double> qps, recall, others;  // per round
  std::vector<double> latency_ms;           // per timed call, pooled over rounds
  size_t calls = 0;                         // timed calls (repeats included)
  double seconds = 0;
  size_t queries = 0;  // distinct queries, for recall
  double recall_sum = 0;
  std::string error;  // first failed call; no more rounds then
  Explained explain;
  double Qps() const { return seconds > 0 ? static_cast<double>(calls) / seconds : NAN; }
  double Recall() const { return queries ? recall_sum / static_cast<double>(queries) : NAN; }
};

// `calls` single-query RPCs over the client threads, request c % n for call
// c (OpenMP pinned to 1 in each thread: a per-thread setting), with the
// cores other processes kept busy meanwhile (the noise on a shared
// machine). run.ids holds request i's hits at i * k, from its first call.
Run Pass(std::vector<std::unique_ptr<client::Client>>& clients, const v1::SearchRequest* reqs,
         size_t n, size_t calls, size_t k, pid_t server_pid, std::string* error) {
  const int threads = static_cast<int>(clients.size());
  std::vector<absl::Status> errors(threads);
  const double busy0 = MachineBusySeconds(/*include_irq=*/false);
  const double self0 = ProcessCpuSeconds();
  const double srv0 = ProcessCpuSeconds(server_pid);
  Run run = Drive(
      calls, threads, n, k,
      [&](size_t c, int t, Run* out) {
        auto resp = clients[t]->Search(reqs[c % n]);
        if (!resp.ok()) {
          errors[t] = resp.status();
          return;
        }
        if (c >= n || resp->results_size() != 1) return;
        const auto& hits = resp->results(0).hits();
        for (int h = 0; h < hits.size() && static_cast<size_t>(h) < k; ++h) {
          out->ids[c * k + h] = ParseId(hits[h].id());
        }
      },
      [](int) { omp_set_num_threads(1); });
  const double used = (ProcessCpuSeconds() - self0) + (ProcessCpuSeconds(server_pid) - srv0);
  run.other_cores =
      std::max(0.0, (MachineBusySeconds(/*include_irq=*/false) - busy0 - used) / run.seconds);
  for (const auto& e : errors) {
    if (!e.ok()) {
      *error = e.ToString();
      break;
    }
  }
  return run;
}

struct Measured {
  Run first;   // one call per request: the hits for recall
  Run timed;   // what QPS, latency and noise come from
  size_t timed_calls = 0;
};

// The n requests once and, when that took less than `min_seconds`, again
// as many times over as fill it: a run of a few milliseconds on a busy
// 2-core machine measures the scheduler more than the search.
Measured RunCell(std::vector<std::unique_ptr<client::Client>>& clients,
                 const v1::SearchRequest* reqs, size_t n, size_t k, pid_t server_pid,
                 double min_seconds, std::string* error) {
  Measured m;
  m.first = Pass(clients, reqs, n, n, k, server_pid, error);
  if (!error->empty() || m.first.seconds >= min_seconds) {
    m.timed = m.first;
    m.timed_calls = n;
    return m;
  }
  const auto repeats = static_cast<size_t>(std::ceil(min_seconds / m.first.seconds));
  m.timed_calls = n * repeats;
  m.timed = Pass(clients, reqs, n, m.timed_calls, k, server_pid, error);
  return m;
}

void SetFilter(std::vector<v1::SearchRequest>& reqs, const std::string& expr, Strategy s) {
  for (auto& r : reqs) {
    r.set_filter(expr);
    r.mutable_params()->set_filter_strategy(kStrategyProto[s]);
  }
}

std::vector<std::string> ParseCsv(const std::string& csv) {
  std::vector<std::string> v;
  for (absl::string_view t : absl::StrSplit(csv, ',', absl::SkipEmpty())) v.emplace_back(t);
  return v;
}

// Polls explain with WINDOW_FILTER forced (`req` carries a window filter
// and that strategy) until every segment reports it: quiverd builds a
// segment's window indexes after its vector index, and already reports the
// segment INDEXED in between (where the forced strategy falls back to the
// planner's choice). Dies after `timeout_s`.
void WaitWindows(client::Client& c, const v1::SearchRequest& req, double timeout_s) {
  const double t0 = NowSeconds();
  for (;;) {
    const Explained e = Explain(c, req);
    if (!e.ok) Die("explain " + req.filter(), absl::UnknownError(e.status));
    if (e.strategies == std::set<std::string>{"WINDOW_FILTER"}) return;
    if (NowSeconds() - t0 > timeout_s) {
      Die("wait for window indexes",
          absl::DeadlineExceededError(absl::StrCat("forced WINDOW_FILTER on `", req.filter(),
                                                   "`: explain says ", e.chose)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

using Row = std::array<Cell, kNumStrategies>;  // one collection x filter

// One collection x filter: an explain call per strategy with the first
// query (outside the clock), then the queries in `rounds` slices, each run
// through `strategies` in an order rotated by round and `offset` (the
// filter's position), so no strategy always runs first.
void MeasureRow(std::vector<std::unique_ptr<client::Client>>& clients,
                std::vector<v1::SearchRequest>& reqs, const FilterCase& f,
                const std::vector<Strategy>& strategies, size_t rounds, size_t offset,
                const Matrix& base, const Matrix& queries, size_t k, pid_t server_pid,
                double min_seconds, Row& row) {
  const size_t nq = reqs.size();
  for (Strategy s : strategies) {
    SetFilter(reqs, f.expr, s);
    row[s].explain = Explain(*clients[0], reqs[0]);
  }
  for (size_t r = 0; r < rounds; ++r) {
    const size_t lo = r * nq / rounds, hi = (r + 1) * nq / rounds;
    for (size_t j = 0; j < strategies.size(); ++j) {
      const Strategy s = strategies[(j + r + offset) % strategies.size()];
      Cell& cell = row[s];
      if (!cell.error.empty()) continue;
      SetFilter(reqs, f.expr, s);
      const Measured m =
          RunCell(clients, reqs.data() + lo, hi - lo, k, server_pid, min_seconds, &cell.error);
      if (!cell.error.empty()) continue;
      double recall = 0;
      for (size_t q = lo; q < hi; ++q) {
        recall += Recall(f.gt, q, m.first.ids.data() + (q - lo) * k, k, base, queries.row(q),
                         f.allowed);
      }
      cell.queries += hi - lo;
      cell.recall_sum += recall;
      cell.recall.push_back(recall / static_cast<double>(hi - lo));
      cell.calls += m.timed_calls;
      cell.seconds += m.timed.seconds;
      cell.qps.push_back(static_cast<double>(m.timed_calls) / m.timed.seconds);
      cell.others.push_back(m.timed.other_cores);
      cell.latency_ms.insert(cell.latency_ms.end(), m.timed.latency_ms.begin(),
                             m.timed.latency_ms.end());
    }
  }
}

// The best of `among`: the fastest of those reaching the recall target (a
// strategy that is fast because it finds little is no baseline); if none
// reaches it, the one with the best recall. -1 if none was measured.
int Best(const Row& row, absl::Span<const Strategy> among) {
  int best = -1;
  for (Strategy s : among) {
    if (!row[s].error.empty() || row[s].qps.empty()) continue;
    const bool ok = row[s].Recall() >= kRecallTarget;
    if (best < 0) {
      best = s;
      continue;
    }
    const bool best_ok = row[best].Recall() >= kRecallTarget;
    if (ok && (!best_ok || row[s].Qps() > row[best].Qps())) best = s;
    else if (!ok && !best_ok && row[s].Recall() > row[best].Recall()) best = s;
  }
  return best;
}

// QPS of a over b per round: same queries at the same moment, so the same
// noise; their median is the comparison reported.
std::vector<double> RoundRatios(const Cell& a, const Cell& b) {
  std::vector<double> r;
  for (size_t i = 0; i < std::min(a.qps.size(), b.qps.size()); ++i) {
    r.push_back(a.qps[i] / b.qps[i]);
  }
  return r;
}

double MedianOrNan(const std::vector<double>& v) { return v.empty() ? NAN : Median(v); }

// A forced strategy applies where the segment has an ANN index; a segment
// without one is scanned exactly, and one the filter excludes entirely is
// EMPTY. Anything else is named in `not_forced`.
void CheckForced(const Row& row, const std::string& what, std::vector<std::string>* not_forced) {
  for (Strategy s : kFixed) {
    const Explained& fe = row[s].explain;
    if (!fe.ok) continue;
    for (const std::string& used : fe.strategies) {
      if (used != kStrategyName[s] && used != "EXACT_SCAN" && used != "EMPTY") {
        not_forced->push_back(
            absl::StrCat(what, " ", kStrategyName[s], ": explain says ", fe.chose));
        break;
      }
    }
  }
}

// Table text of a cell: "error", or "-" where the strategy was not measured.
std::string RecallText(const Cell& c) { return c.error.empty() ? Fixed(c.Recall(), 3) : "error"; }
std::string QpsText(const Cell& c) { return c.error.empty() ? Thousands(c.Qps()) : "error"; }

// "what AUTO chose (estimated selectivity)" from its explain, "?" without.
std::string ChoseText(const Explained& ex) {
  if (!ex.ok) return "?";
  return std::isnan(ex.est_selectivity)
             ? ex.chose
             : absl::StrCat(ex.chose, " (", Percent(ex.est_selectivity), ")");
}

// The progress line of a row: each measured strategy's QPS and recall.
std::string ProgressLine(const Row& row) {
  std::string line;
  for (int s = 0; s < kNumStrategies; ++s) {
    if (row[s].error.empty() && row[s].qps.empty()) continue;
    line += absl::StrCat("  ", kStrategyShort[s], " ",
                         row[s].error.empty()
                             ? Thousands(row[s].Qps()) + " QPS r " + Fixed(row[s].Recall(), 3)
                             : "error");
  }
  return line;
}

// The measured strategies of a row, by name, for the JSON.
nlohmann::json RowJson(const Row& row) {
  nlohmann::json strategies = nlohmann::json::object();
  for (int s = 0; s < kNumStrategies; ++s) {
    const Cell& c = row[s];
    if (c.error.empty() && c.qps.empty()) continue;
    strategies[kStrategyName[s]] = {{"qps_rounds", c.qps},
                                    {"qps", c.Qps()},
                                    {"timed_calls", c.calls},
                                    {"seconds", c.seconds},
                                    {"recall_rounds", c.recall},
                                    {"recall_at_10", c.Recall()},
                                    {"p50_ms", Percentile(c.latency_ms, 50)},
                                    {"p99_ms", Percentile(c.latency_ms, 99)},
                                    {"others_cores", c.others},
                                    {"error", c.error},
                                    {"explain", c.explain.json}};
  }
  return strategies;
}

// Plot colour per strategy, in Strategy order.
const char* kColors[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"};

// quiverd as both modes run it: loading is not what they measure (async
// durability). Window mode reads index build times from its log ("info").
std::unique_ptr<QuiverdProcess> StartQuiverd(const Args& args, const std::string& log_level) {
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = "async";
  qo.search_threads = args.search_threads;
  qo.log_level = log_level;
  qo.tmp_root = args.tmp_dir;
  qo.env = args.quiverd_env;
  qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                   "--index-build-workers", "1"};
  auto started = QuiverdProcess::Launch(qo);
  if (!started.ok()) Die("start quiverd", started.status());
  return *std::move(started);
}

// ============================================================ window mode

// Window mode: at which window widths does WINDOW_FILTER beat every other
// strategy, and by how much? `--window-scale` synthetic vectors (see
// MakeSynthetic) with ts declared window, loaded through gRPC into one HNSW
// collection of a fresh quiverd: segments of quiverd's default 65,536 rows
// (16 at 1M), each with its HNSW graph and a window index of ~16 HNSW
// partitions of ~4096 rows. Measured once every segment is INDEXED and
// explain with WINDOW_FILTER forced reports it on every segment. Then per
// width (kWindowWidths) the five strategies exactly as in the main mode
// (MeasureRow: interleaved rounds, recall from each query's first run,
// explain per strategy).
// What the phases of window mode share, filled in phase order.
struct WindowRun {
  Args args;
  size_t k = 0, n = 0, dim = 0, nq = 0, rounds = 0;
  double run_t0 = 0;
  std::string hnsw;  // "HNSW(M=.., ef_construction=..)"
  // LoadWindowData
  Synthetic data;
  std::vector<FilterCase> filters;
  std::vector<std::string> notes;
  double gen_s = 0, data_s = 0;
  // CreateWindowCollection .. IngestWindows
  std::unique_ptr<QuiverdProcess> srv;
  std::vector<Collection> colls;  // one
  double indexed_s = 0, windows_s = 0, load_s = 0;
  BuildLog builds;
  MemoryInfo mem_loaded;
  int segments = 0;
  // SweepWindows
  std::vector<Row> rows;
  double sweep_s = 0;
  MemoryInfo mem_end;
};

void PrintWindowSetup(const WindowRun& w) {
  const Args& args = w.args;
  const size_t k = w.k, n = w.n, dim = w.dim, nq = w.nq, rounds = w.rounds;
  const std::string& hnsw = w.hnsw;
  std::printf("filter_bench window mode: %zu synthetic vectors x %zu dims (Gaussian mixture: %zu "
              "clusters, centres N(0,1), sigma %.2f; seed %llu), ts uniform over a year, declared "
              "window; %zu queries from the same mixture per cell in %zu interleaved round%s, "
              "k=%zu; %zu widths x 5 strategies\n",
              n, dim, kClusters, kSigma, static_cast<unsigned long long>(args.seed), nq, rounds,
              rounds == 1 ? "" : "s", k, std::size(kWindowWidths));
  std::printf("  index: %s per segment, search ef %s; window index per segment: partitions of "
              "~4096 rows by ts, each its own %s\n",
              hnsw.c_str(), args.ef ? std::to_string(args.ef).c_str() : "default",
              hnsw.c_str());
  std::printf("  threads: %d client threads (one gRPC channel each), one query per RPC; OpenMP 1 "
              "thread in every client thread; quiverd --search-threads %d --index-build-threads "
              "%d --index-build-workers 1%s; %u cores; load average %s\n\n",
              args.threads, args.search_threads, args.build_threads,
              args.quiverd_env.empty() ? ""
                                       : (", env " + absl::StrJoin(args.quiverd_env, " ")).c_str(),
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::fflush(stdout);

}

// The synthetic vectors and the window filters with their ground truth.
void LoadWindowData(WindowRun& w) {
  const Args& args = w.args;
  const size_t k = w.k, n = w.n, dim = w.dim, nq = w.nq;
  const double run_t0 = w.run_t0;
  w.data = MakeSynthetic(n, nq, dim, args.seed);
  const Synthetic& data = w.data;
  const double gen_s = NowSeconds() - run_t0;
  std::vector<FilterCase>& filters = w.filters;
  std::vector<std::string>& notes = w.notes;
  const std::string key = absl::StrCat("synth-", n, "x", dim, "-c", kClusters, "-seed", args.seed);
  for (double w : kWindowWidths) {
    FilterCase f = WindowFilter(w, data.ts);
    if (Prepare(f, key, data.base, data.queries, nq, k, args.cache_dir, &notes)) {
      filters.push_back(std::move(f));
    }
  }
  if (filters.empty()) Die("filters", absl::InvalidArgumentError("no window matches a row"));
  PinOmpThreads(1);  // the ground truth used every core
  const double data_s = NowSeconds() - run_t0;
  w.gen_s = gen_s;
  w.data_s = data_s;
  std::printf("[0] data %.1f s, ground truth %.1f s\n", gen_s, data_s - gen_s);

}

// The one HNSW collection, ts declared window.
void CreateWindowCollection(WindowRun& w, client::Client& admin) {
  const Args& args = w.args;
  const size_t dim = w.dim;
  w.colls.assign(1, Collection{});
  Collection& coll = w.colls[0];
  coll.name = "window_hnsw";
  coll.index = "HNSW";
  coll.params = {{"M", std::to_string(args.hnsw_m)},
                 {"ef_construction", std::to_string(args.ef_construction)}};
  {
    v1::CollectionSchema schema;
    v1::VectorField* v = schema.add_vectors();
    v->set_name(kWindowField);
    v->set_dim(static_cast<uint32_t>(dim));
    v->set_metric(v1::L2);
    v->mutable_index()->set_type(coll.index);
    for (const auto& [name, val] : coll.params) (*v->mutable_index()->mutable_params())[name] = val;
    v1::AttributeField* a = schema.add_attributes();
    a->set_name("ts");
    a->set_type(v1::INT64);
    a->set_window(true);
    if (auto r = admin.CreateCollection(coll.name, schema); !r.ok()) {
      Die("CreateCollection " + coll.name, r.status());
    }
  }
}

// Ingests the vectors, then waits until every segment is indexed, has its
// window index, and quiverd is quiet.
void IngestWindows(WindowRun& w, client::Client& admin) {
  const Args& args = w.args;
  const size_t k = w.k, n = w.n, dim = w.dim;
  const Synthetic& data = w.data;
  const std::vector<FilterCase>& filters = w.filters;
  std::vector<Collection>& colls = w.colls;
  Collection& coll = colls[0];
  const std::unique_ptr<QuiverdProcess>& srv = w.srv;
  std::printf("[1] ingest %zu points into %s (batches of %zu, one writer; segments are sealed "
              "and indexed in the background meanwhile)...\n",
              n, coll.name.c_str(), args.ingest_batch);
  std::fflush(stdout);
  const double load_t0 = NowSeconds();
  // Requests built as they go: all of 1M points' at once would take hundreds of MB.
  for (size_t b = 0; b < n; b += args.ingest_batch) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll.name);
    for (size_t i = b; i < std::min(n, b + args.ingest_batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())[kWindowField].mutable_values()->Add(data.base.row(i),
                                                                  data.base.row(i) + dim);
      (*p->mutable_attributes())["ts"].set_int_value(data.ts[i]);
    }
    if (auto r = admin.Upsert(req); !r.ok()) Die("Upsert " + coll.name, r.status());
  }
  coll.ingest_s = NowSeconds() - load_t0;
  std::printf("    ingest %.1f s (%s points/s)\n", coll.ingest_s,
              Thousands(static_cast<double>(n) / coll.ingest_s).c_str());
  std::fflush(stdout);
  WaitIndexedAndDescribe(admin, colls, 3600);
  const double indexed_s = NowSeconds() - load_t0;
  std::printf("    every segment INDEXED %.1f s after the first write\n", indexed_s);
  std::fflush(stdout);
  v1::SearchRequest probe;
  probe.set_collection(coll.name);
  probe.set_field(kWindowField);
  probe.set_k(static_cast<uint32_t>(k));
  probe.add_vectors()->mutable_values()->Add(data.queries.row(0), data.queries.row(0) + dim);
  probe.set_filter(filters[0].expr);
  probe.mutable_params()->set_filter_strategy(v1::WINDOW_FILTER);
  WaitWindows(admin, probe, 3600);
  const double windows_s = NowSeconds() - load_t0;
  WaitQuiet(srv->pid());
  const double load_s = NowSeconds() - load_t0;
  const BuildLog builds = ReadBuildLog(srv->log_path());
  const MemoryInfo mem_loaded = ReadMemory(srv->pid());
  auto info = admin.GetCollection(coll.name);
  if (!info.ok()) Die("GetCollection " + coll.name, info.status());
  const int segments = info->stats().segments_size();
  std::printf("    every window index built %.1f s after the first write (explain: forced "
              "WINDOW_FILTER on all %d segments); quiet %.1f s\n",
              windows_s, segments, load_s);
  std::printf("    quiverd logged %d HNSW builds, %.1f s in all, and %d window index builds, %.1f "
              "s in all (one build at a time, %d threads each); RSS %.0f MB\n",
              builds.indexes, builds.index_s, builds.windows, builds.window_s, args.build_threads,
              mem_loaded.rss_kb / 1024.0);
  CheckCounts(admin, coll.name, filters);
  std::fflush(stdout);

  w.indexed_s = indexed_s;
  w.windows_s = windows_s;
  w.load_s = load_s;
  w.builds = builds;
  w.mem_loaded = mem_loaded;
  w.segments = segments;
}

// Every width x strategy, interleaved; then stops quiverd.
void SweepWindows(WindowRun& w) {
  const Args& args = w.args;
  const size_t k = w.k, dim = w.dim, nq = w.nq, rounds = w.rounds;
  const Synthetic& data = w.data;
  const std::vector<FilterCase>& filters = w.filters;
  const Collection& coll = w.colls[0];
  const std::unique_ptr<QuiverdProcess>& srv = w.srv;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < args.threads; ++t) {
    clients.push_back(std::make_unique<client::Client>(srv->address()));
    if (absl::Status h = clients.back()->Health(); !h.ok()) Die("health", h);
  }
  std::vector<v1::SearchRequest> reqs(nq);
  for (size_t q = 0; q < nq; ++q) {
    v1::SearchRequest& r = reqs[q];
    r.set_collection(coll.name);
    r.set_field(kWindowField);
    r.set_k(static_cast<uint32_t>(k));
    r.add_vectors()->mutable_values()->Add(data.queries.row(q), data.queries.row(q) + dim);
    if (args.ef) r.mutable_params()->set_ef(args.ef);
  }
  std::printf("[2] sweep: per width, the 5 strategies in rotating order on each of %zu slices of "
              "the %zu queries\n",
              rounds, nq);
  std::fflush(stdout);
  const double sweep_t0 = NowSeconds();
  // Warm-up: a few calls of every strategy on the first window.
  for (Strategy s : StrategiesFor(filters[0])) {
    SetFilter(reqs, filters[0].expr, s);
    std::string ignored;
    Pass(clients, reqs.data(), nq, std::min<size_t>(nq, 20), k, srv->pid(), &ignored);
  }
  std::vector<Row>& rows = w.rows;
  rows.assign(filters.size(), Row{});
  for (size_t wi = 0; wi < filters.size(); ++wi) {
    const FilterCase& f = filters[wi];
    MeasureRow(clients, reqs, f, StrategiesFor(f), rounds, wi, data.base, data.queries, k,
               srv->pid(), args.min_run_ms / 1e3, rows[wi]);
    std::printf("  %-6s %-40s %s\n", Percent(f.target).c_str(), f.expr.c_str(),
                ProgressLine(rows[wi]).c_str());
    std::fflush(stdout);
  }
  w.sweep_s = NowSeconds() - sweep_t0;
  w.mem_end = ReadMemory(srv->pid());
  if (absl::Status st = srv->Stop(); !st.ok()) {
    std::fprintf(stderr, "filter_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }

}

// The table's text and what the report keeps of it.
struct WindowTables {
  std::ostringstream out;
  nlohmann::json rows_json = nlohmann::json::array();
  std::vector<std::string> wins, losses, mixed, auto_window, not_forced;
  size_t auto_met = 0;
  std::string explain_error;
};

// WINDOW_FILTER against the best of the others (PRE, FI, POST, by the same
// rule as the best fixed strategy). It beats them all when it reaches the
// recall target and is faster than the fastest other that does in every
// round (or none of them reaches it); it loses when it misses the recall or
// is slower in every round. Rounds that disagree mean a difference this
// noisy machine cannot resolve: "mixed".
struct WindowVerdict {
  int other = -1;         // the best other strategy, -1 if none ran
  bool other_ok = false;  // it reaches the recall target
  std::vector<double> ratios;  // WIN / other QPS per round
  double ratio = NAN;          // their median
  std::string verdict;
};

WindowVerdict JudgeWindow(const Row& row) {
  WindowVerdict v;
  v.other = Best(row, kNonWindow);
  v.other_ok = v.other >= 0 && row[v.other].Recall() >= kRecallTarget;
  if (v.other >= 0) v.ratios = RoundRatios(row[kWindow], row[v.other]);
  v.ratio = MedianOrNan(v.ratios);
  const bool win_ok = row[kWindow].error.empty() && row[kWindow].Recall() >= kRecallTarget;
  const bool all_faster = !v.ratios.empty() &&
                          std::all_of(v.ratios.begin(), v.ratios.end(),
                                      [](double r) { return r > 1; });
  const bool all_slower = !v.ratios.empty() &&
                          std::all_of(v.ratios.begin(), v.ratios.end(),
                                      [](double r) { return r < 1; });
  v.verdict = "mixed";
  if (!win_ok) v.verdict = "no (recall)";
  else if (!v.other_ok) v.verdict = "yes (recall)";
  else if (all_faster) v.verdict = "yes";
  else if (all_slower) v.verdict = "no";
  return v;
}

// A row per width: each strategy's recall and QPS, whether WINDOW_FILTER
// beats the others, what AUTO chose and whether it met the targets.
void WindowTable(const WindowRun& w, WindowTables& wt) {
  const size_t n = w.n, dim = w.dim, nq = w.nq, rounds = w.rounds;
  const std::vector<FilterCase>& filters = w.filters;
  const std::vector<Row>& rows = w.rows;
  std::ostringstream& out = wt.out;
  out << "\n## Window filters `ts BETWEEN a AND b`: " << Thousands(static_cast<double>(n))
      << " x " << dim << " synthetic (" << kClusters << "-cluster Gaussian mixture), " << w.hnsw
      << ", " << w.segments << " segments with window indexes; " << nq << " queries, "
      << w.args.threads << " client threads, one query per RPC, in " << rounds
      << " interleaved round" << (rounds == 1 ? "" : "s") << "\n\n";
  Table t({"width", "rows", "PRE rec", "PRE QPS", "FI rec", "FI QPS", "POST rec", "POST QPS",
           "WIN rec", "WIN QPS", "AUTO rec", "AUTO QPS", "best other", "WIN/other",
           "WIN beats all", "best fixed", "AUTO/best", "AUTO chose (est. sel)", "others' cores"});
  nlohmann::json& rows_json = wt.rows_json;
  std::vector<std::string>&wins = wt.wins, &losses = wt.losses, &mixed = wt.mixed,
                          &auto_window = wt.auto_window, &not_forced = wt.not_forced;
  size_t& auto_met = wt.auto_met;
  std::string& explain_error = wt.explain_error;
  for (size_t wi = 0; wi < filters.size(); ++wi) {
    const FilterCase& f = filters[wi];
    const Row& row = rows[wi];
    const WindowVerdict v = JudgeWindow(row);
    const int other = v.other;
    const bool other_ok = v.other_ok;
    const std::vector<double>& win_ratios = v.ratios;
    const double win_ratio = v.ratio;
    const std::string& verdict = v.verdict;
    const std::string versus = absl::StrCat(
        Percent(f.target), " (", std::isnan(win_ratio) ? "-" : Fixed(win_ratio, 2) + "x",
        other >= 0 ? absl::StrCat(" ", kStrategyShort[other]) : "", ")");
    (verdict.starts_with("yes") ? wins : verdict.starts_with("no") ? losses : mixed)
        .push_back(versus);

    const int best = Best(row, kFixed);
    const std::vector<double> auto_ratios =
        best >= 0 ? RoundRatios(row[kAuto], row[best]) : std::vector<double>{};
    const double auto_ratio = MedianOrNan(auto_ratios);
    const bool auto_ok = row[kAuto].Recall() >= kRecallTarget && !std::isnan(auto_ratio) &&
                         auto_ratio >= kQpsTarget;
    auto_met += auto_ok;
    const Explained& ex = row[kAuto].explain;
    if (!ex.ok && explain_error.empty()) explain_error = ex.status;
    if (ex.ok && ex.strategies == std::set<std::string>{"WINDOW_FILTER"}) {
      auto_window.push_back(Percent(f.target));
    }
    CheckForced(row, absl::StrCat("width ", Percent(f.target), " `", f.expr, "`"), &not_forced);
    std::vector<double> others;
    for (const Cell& c : row) others.insert(others.end(), c.others.begin(), c.others.end());
    t.AddRow({Percent(f.target), Thousands(static_cast<double>(f.subset.size())),
              RecallText(row[kPre]), QpsText(row[kPre]), RecallText(row[kFilteredIndex]),
              QpsText(row[kFilteredIndex]), RecallText(row[kPost]), QpsText(row[kPost]),
              RecallText(row[kWindow]), QpsText(row[kWindow]), RecallText(row[kAuto]),
              QpsText(row[kAuto]),
              other < 0 ? "-" : absl::StrCat(kStrategyShort[other], other_ok ? "" : "*"),
              std::isnan(win_ratio) ? "-" : Fixed(win_ratio, 2) + "x", verdict,
              best >= 0 ? kStrategyShort[best] : "-",
              std::isnan(auto_ratio) ? "-" : Fixed(auto_ratio, 2) + "x", ChoseText(ex),
              others.empty() ? "-" : Fixed(Median(others), 2)});
    rows_json.push_back({{"width", f.target},
                         {"filter", f.expr},
                         {"selectivity", f.Selectivity(n)},
                         {"matches", f.subset.size()},
                         {"ground_truth_k", f.gt.k},
                         {"strategies", RowJson(row)},
                         {"best_other", other >= 0 ? kStrategyName[other] : ""},
                         {"best_other_reaches_recall", other_ok},
                         {"window_over_other_rounds", win_ratios},
                         {"window_over_other", win_ratio},
                         {"window_beats_all", verdict},
                         {"best_fixed", best >= 0 ? kStrategyName[best] : ""},
                         {"auto_over_best_rounds", auto_ratios},
                         {"auto_over_best", auto_ratio},
                         {"auto_chose", ex.ok ? ex.chose : ""},
                         {"auto_estimated_selectivity", ex.est_selectivity},
                         {"auto_targets_met", auto_ok}});
  }
  t.Print(out);
}

// The legend, what WINDOW_FILTER and AUTO achieved, and the notes.
void WindowLegend(const WindowRun& w, WindowTables& wt) {
  const Args& args = w.args;
  const std::vector<FilterCase>& filters = w.filters;
  const std::vector<std::string>& notes = w.notes;
  std::ostringstream& out = wt.out;
  const std::vector<std::string>&wins = wt.wins, &losses = wt.losses, &mixed = wt.mixed,
                                &auto_window = wt.auto_window, &not_forced = wt.not_forced;
  const size_t auto_met = wt.auto_met;
  const std::string& explain_error = wt.explain_error;
  out << "\n(width: share of the ts range, i.e. of the base, in the window; rows: points in it, "
         "counted; rec: recall@10 against the exact filtered top-10, ties count, mean over the "
         "queries; QPS: calls / time, summed over rounds, a round's queries repeated until its "
         "run took "
      << Fixed(args.min_run_ms, 0)
      << " ms; PRE = PRE_FILTER, FI = FILTERED_INDEX, POST = POST_FILTER, WIN = WINDOW_FILTER, "
         "AUTO = the planner; best other: the fastest of PRE, FI, POST with recall >= "
      << Fixed(kRecallTarget, 2)
      << " (* none reaches it: the most accurate); WIN/other: median of the per-round QPS "
         "ratios; WIN beats all: yes = WIN reaches recall "
      << Fixed(kRecallTarget, 2)
      << " and is faster than the best other in every round (yes (recall): the best other "
         "misses the recall), no = slower in every round (no (recall): WIN misses it), mixed = "
         "the rounds disagree; best "
         "fixed: the same rule over all four forced strategies; AUTO/best: median of the "
         "per-round QPS ratios; AUTO chose: strategies over segments from one explain call with "
         "the first query, and the planner's estimated selectivity; others' cores: CPU other "
         "processes used meanwhile, median over the row's runs; above ~0.2 the row is "
         "disturbed.)\n";
  auto list = [](const std::vector<std::string>& v) {
    return v.empty() ? std::string("none") : absl::StrJoin(v, ", ");
  };
  out << "\nWINDOW_FILTER beats every other strategy at widths: " << list(wins)
      << "\n  does not at: " << list(losses) << "\n  too close to call (rounds disagree) at: "
      << list(mixed) << "\n  (in brackets: WIN/other, the median per-round QPS ratio to the best "
      << "other strategy)\n";
  out << "AUTO reaches recall >= " << Fixed(kRecallTarget, 2) << " and >= "
      << Fixed(kQpsTarget, 1) << "x the best fixed strategy's QPS (WINDOW_FILTER included) at "
      << auto_met << " of " << filters.size() << " widths; it chose WINDOW_FILTER on every "
      << "segment at: " << (auto_window.empty() ? "none" : absl::StrJoin(auto_window, ", "))
      << "\n";
  if (!explain_error.empty()) out << "explain unavailable (" << explain_error << ")\n";
  for (const std::string& s : not_forced) {
    out << "WARNING: forced strategy not applied: " << s << "\n";
  }
  for (const std::string& s : notes) out << "note: " << s << "\n";

}

// Curves: QPS and recall vs window width per strategy. Returns the PNG's
// path ("" without gnuplot, with a note in `out`).
std::string DrawWindowCurves(const WindowRun& w, std::ostream& out) {
  const Args& args = w.args;
  const size_t k = w.k, n = w.n, dim = w.dim, nq = w.nq;
  const std::vector<FilterCase>& filters = w.filters;
  const std::vector<Row>& rows = w.rows;
  const std::string& hnsw = w.hnsw;
  const int segments = w.segments;
  const std::string stem = ResultsStem(args.json_out, "filter_bench_window");
  {
    std::ofstream dat(stem + ".dat");
    std::ofstream gp(stem + ".gp");
    std::string qps_plot, recall_plot;
    int block = 0;
    for (Strategy s : {kPre, kFilteredIndex, kPost, kWindow, kAuto}) {
      dat << "# " << kStrategyName[s] << ": width (%), QPS, recall@10\n";
      for (size_t wi = 0; wi < filters.size(); ++wi) {
        const Cell& c = rows[wi][s];
        if (c.qps.empty()) continue;
        dat << 100 * filters[wi].target << " " << Fixed(c.Qps(), 1) << " "
            << Fixed(c.Recall(), 4) << "\n";
      }
      dat << "\n\n";
      for (auto [plot, col] : {std::pair{&qps_plot, 2}, std::pair{&recall_plot, 3}}) {
        *plot += absl::StrCat(plot->empty() ? "plot " : ", \\\n     ", "'", stem, ".dat' index ",
                              block, " using 1:", col, " with linespoints lc rgb '", kColors[s],
                              "' pt 7 lw 2", s == kAuto ? " dt 2" : "", " title '",
                              kStrategyName[s], "'");
      }
      ++block;
    }
    // In a double-quoted gnuplot string, \n is a line break.
    gp << "set terminal pngcairo noenhanced size 1100,1000 font 'DejaVu Sans,11'\n"
       << "set output '" << stem << ".png'\n"
       << "set multiplot layout 2,1 title \"window filter ts BETWEEN a AND b by strategy: "
       << Thousands(static_cast<double>(n)) << " x " << dim << " synthetic, " << hnsw << ", "
       << segments << " segments\\nk=" << k << ", " << nq << " queries, " << args.threads
       << " client threads, one query per RPC\"\n"
       << "set logscale x\nset format x '%g'\nset grid xtics ytics mytics\nset lmargin 12\n"
       << "set key outside right top box\n"
       << "set xlabel 'window width (% of the ts range = of the base, log scale)'\n"
       << "set title 'QPS'\nset logscale y\nset ylabel 'queries per second (log scale)'\n"
       << qps_plot << "\n"
       << "set title 'recall@10'\nunset logscale y\nset yrange [0:1.05]\n"
       << "set ylabel 'recall@10'\n"
       << recall_plot << "\n"
       << "unset multiplot\n";
  }
  return RunGnuplot(stem, out);
}

void WriteWindowReport(const WindowRun& w, const WindowTables& wt, const std::string& png,
                       nlohmann::json& report) {
  const Args& args = w.args;
  const Collection& coll = w.colls[0];
  report["config"] = {{"rows", w.n},
                      {"dim", w.dim},
                      {"clusters", kClusters},
                      {"sigma", kSigma},
                      {"queries", w.nq},
                      {"k", w.k},
                      {"rounds", w.rounds},
                      {"min_run_ms", args.min_run_ms},
                      {"client_threads", args.threads},
                      {"omp_threads_per_client_thread", 1},
                      {"quiverd_search_threads", args.search_threads},
                      {"quiverd_index_build_threads", args.build_threads},
                      {"index", coll.index},
                      {"index_params", coll.params},
                      {"ef", args.ef},
                      {"ingest_batch", args.ingest_batch},
                      {"seed", args.seed},
                      {"quiverd_argv", w.srv->argv()},
                      {"quiverd_env", args.quiverd_env}};
  report["segments"] = {{"count", w.segments}, {"description", coll.segments}};
  report["builds"] = {{"hnsw_builds", w.builds.indexes},
                      {"hnsw_build_s_sum", w.builds.index_s},
                      {"window_builds", w.builds.windows},
                      {"window_build_s_sum", w.builds.window_s}};
  report["rows"] = wt.rows_json;
  report["window_beats_all_at"] = wt.wins;
  report["window_does_not_beat_all_at"] = wt.losses;
  report["window_mixed_at"] = wt.mixed;
  report["auto_targets_met"] = {{"met", wt.auto_met}, {"total", w.filters.size()}};
  report["auto_chose_window_at"] = wt.auto_window;
  report["explain_error"] = wt.explain_error;
  report["forced_not_applied"] = wt.not_forced;
  report["notes"] = w.notes;
  report["quiverd_memory_mb"] = {{"rss_loaded", w.mem_loaded.rss_kb / 1024.0},
                                 {"rss_after_sweep", w.mem_end.rss_kb / 1024.0},
                                 {"peak", w.mem_end.hwm_kb / 1024.0}};
  report["tables"] = wt.out.str();
  report["png"] = png;
  report["seconds"] = {{"total", NowSeconds() - w.run_t0},
                       {"data", w.gen_s},
                       {"ground_truth", w.data_s - w.gen_s},
                       {"ingest", coll.ingest_s},
                       {"until_all_indexed", w.indexed_s},
                       {"until_windows_built", w.windows_s},
                       {"until_quiet", w.load_s},
                       {"sweep", w.sweep_s}};
  FinishReport(&report, args.json_out);
}

int WindowMain(const Args& args, int argc, char** argv) {
  WindowRun w;
  w.args = args;
  w.k = args.k;
  w.n = args.window_scale;
  w.dim = args.window_dim;
  w.nq = args.queries;
  w.rounds = std::clamp<size_t>(static_cast<size_t>(std::max(args.rounds, 1)), 1, w.nq);
  w.run_t0 = NowSeconds();
  PinOmpThreads(1);
  nlohmann::json report = NewReport("filter_bench_window", argc, argv);
  w.hnsw = absl::StrCat("HNSW(M=", args.hnsw_m, ", ef_construction=", args.ef_construction, ")");

  PrintWindowSetup(w);
  LoadWindowData(w);
  w.srv = StartQuiverd(args, "info");
  client::Client admin(w.srv->address());
  CreateWindowCollection(w, admin);
  IngestWindows(w, admin);
  SweepWindows(w);

  WindowTables wt;
  WindowTable(w, wt);
  WindowLegend(w, wt);
  const std::string png = DrawWindowCurves(w, wt.out);
  std::printf("%s", wt.out.str().c_str());
  if (!png.empty()) std::printf("\nQPS / recall vs window width: %s\n", png.c_str());
  std::printf("total %.0f s (data %.0f s, ground truth %.0f s, ingest %.0f s, ingest + index and "
              "window builds %.0f s, sweep %.0f s); load average %s\n",
              NowSeconds() - w.run_t0, w.gen_s, w.data_s - w.gen_s, w.colls[0].ingest_s,
              w.windows_s, w.sweep_s, LoadAverage().c_str());
  WriteWindowReport(w, wt, png, report);
  return 0;
}

// Parses the command line into `args`; returns an exit code when the
// program should end here (--help, a bad option), else nothing.
std::optional<int> ParseArgs(int argc, char** argv, Args* args) {
  args->tmp_dir = ExeDir() + "/bench_tmp";
  std::string indexes_csv = absl::StrJoin(args->indexes, ",");
  std::string families_csv = absl::StrJoin(args->families, ",");
  CLI::App app{"filter_bench: filtered search, planner (AUTO) vs each forced filter strategy"};
  app.add_option("--rows", args->rows, "base rows (max 60000)");
  CLI::Option* queries_opt =
      app.add_option("--queries", args->queries, "queries per cell (from t10k; window mode: 100)");
  app.add_option("--rounds", args->rounds,
                 "interleaved rounds per collection x filter, each a slice of the queries");
  app.add_option("--min-run-ms", args->min_run_ms,
                 "repeat a round's queries until its run takes at least this long (QPS only)");
  app.add_option("--threads", args->threads, "client threads, one query per RPC");
  app.add_option("--build-threads", args->build_threads, "quiverd --index-build-threads");
  app.add_option("--search-threads", args->search_threads, "quiverd --search-threads");
  CLI::Option* efc_opt = app.add_option("--ef-construction", args->ef_construction,
                                        "HNSW ef_construction (window mode: 100)");
  app.add_option("--ef", args->ef, "HNSW ef sent with every search (0: index default)");
  app.add_option("--nprobe", args->nprobe, "IVF nprobe sent with every search (0: index default)");
  app.add_option("--seed", args->seed, "seed of the synthetic attributes u, ts, cat");
  app.add_option("--indexes", indexes_csv, "collections to measure: HNSW,IVF_FLAT");
  app.add_option("--families", families_csv,
                 "filter families: uncorrelated,correlated,unindexed,window");
  app.add_option("--ingest-batch", args->ingest_batch, "points per UpsertPoints request");
  app.add_option("--quiverd", args->quiverd, "quiverd binary");
  app.add_option("--quiverd-env", args->quiverd_env, "extra NAME=value for quiverd (repeatable)");
  app.add_option("--tmp-dir", args->tmp_dir, "where quiverd's data dir goes");
  app.add_option("--cache-dir", args->cache_dir, "ground-truth cache folder");
  app.add_option("--dataset-dir", args->dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args->json_out, "JSON output (default <exe dir>/bench_results/)");
  app.add_option("--window-scale", args->window_scale,
                 "window mode: this many synthetic vectors (e.g. 1000000) in one HNSW "
                 "collection, window filters only, instead of the Fashion-MNIST run");
  app.add_option("--window-dim", args->window_dim, "window mode: dimensions of the vectors");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  args->indexes = ParseCsv(indexes_csv);
  args->families = ParseCsv(families_csv);
  if (args->window_scale > 0) {
    if (queries_opt->count() == 0) args->queries = 100;
    if (efc_opt->count() == 0) args->ef_construction = 100;
  }
  return std::nullopt;
}

// What the phases of the Fashion-MNIST run share, filled in phase order.
struct FmnistRun {
  Args args;
  double run_t0 = 0;
  // LoadData
  FashionMnist ds;
  size_t nq = 0, rounds = 0;
  Attributes attrs;
  std::vector<FilterCase> filters;
  std::vector<std::string> notes;
  double data_s = 0;
  // ChooseCollections .. Sweep
  std::vector<Collection> colls;
  std::unique_ptr<QuiverdProcess> srv;
  double load_s = 0;
  std::vector<std::vector<Row>> cells;  // [collection][filter][strategy]
  double sweep_s = 0;
  MemoryInfo quiverd_mem;
};

// Fashion-MNIST, the attributes, and the filters of the chosen families
// with their ground truth.
void LoadData(FmnistRun& r) {
  const Args& args = r.args;
  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, args.queries);
  if (!ds.ok()) Die("load dataset", ds.status());
  r.ds = *std::move(ds);
  const Matrix& base = r.ds.train;
  const Matrix& queries = r.ds.test;
  r.nq = std::min(args.queries, queries.n);
  r.rounds = std::clamp<size_t>(static_cast<size_t>(std::max(args.rounds, 1)), 1, r.nq);
  r.attrs = MakeAttributes(base.n, args.seed);
  for (FilterCase& f : MakeFilters(r.ds.train_labels, r.attrs)) {
    if (std::find(args.families.begin(), args.families.end(), f.family) == args.families.end()) {
      continue;
    }
    if (Prepare(f, absl::StrCat("fmnist-", base.n, "-seed", args.seed), base, queries, r.nq,
                args.k, args.cache_dir, &r.notes)) {
      r.filters.push_back(std::move(f));
    }
  }
  if (r.filters.empty()) Die("filters", absl::InvalidArgumentError("no filter selected"));
  PinOmpThreads(1);  // the ground truth used every core
  r.data_s = NowSeconds() - r.run_t0;
}

std::vector<Collection> ChooseCollections(const Args& args) {
  std::vector<Collection> colls;
  for (const std::string& idx : args.indexes) {
    if (idx == "HNSW") {
      Collection& c = colls.emplace_back();
      c.name = "fmnist_hnsw";
      c.index = idx;
      c.params = {{"M", std::to_string(args.hnsw_m)},
                  {"ef_construction", std::to_string(args.ef_construction)}};
    } else if (idx == "IVF_FLAT") {
      Collection& c = colls.emplace_back();
      c.name = "fmnist_ivf";
      c.index = idx;  // server defaults (nlist ~ sqrt(n))
    } else {
      Die("--indexes", absl::InvalidArgumentError("unknown index " + idx));
    }
  }
  return colls;
}

void PrintSetup(const FmnistRun& r) {
  const Args& args = r.args;
  const Matrix& base = r.ds.train;
  std::printf("filter_bench: base %zu x %zu (Fashion-MNIST train), %zu queries from t10k per "
              "cell in %zu interleaved round%s, k=%zu; %zu filters x %zu collections x 4 "
              "strategies (5 on window filters: WINDOW_FILTER)\n",
              base.n, base.dim, r.nq, r.rounds, r.rounds == 1 ? "" : "s", args.k,
              r.filters.size(), r.colls.size());
  std::printf("  threads: %d client threads (one gRPC channel each), one query per RPC; OpenMP 1 "
              "thread in every client thread; quiverd --search-threads %d --index-build-threads "
              "%d --index-build-workers 1%s; %u cores\n",
              args.threads, args.search_threads, args.build_threads,
              args.quiverd_env.empty() ? ""
                                       : (", env " + absl::StrJoin(args.quiverd_env, " ")).c_str(),
              std::thread::hardware_concurrency());
  std::printf("  search params: ef %s, nprobe %s; BLAS: %s; load average %s\n\n",
              args.ef ? std::to_string(args.ef).c_str() : "default",
              args.nprobe ? std::to_string(args.nprobe).c_str() : "default",
              BlasConfig().c_str(), LoadAverage().c_str());
  std::fflush(stdout);
}

// Creates the collections, ingests the base into each, and waits until every
// segment is indexed (and, for window filters, has its window index).
void IngestAndIndex(FmnistRun& r, client::Client& admin) {
  const Matrix& base = r.ds.train;
  const Matrix& queries = r.ds.test;
  const double load_t0 = NowSeconds();
  {
    std::vector<v1::UpsertPointsRequest> upserts =
        MakeUpserts(base, r.ds.train_labels, r.attrs, r.args.ingest_batch);
    for (Collection& c : r.colls) {
      if (auto res = admin.CreateCollection(c.name, MakeSchema(base.dim, c)); !res.ok()) {
        Die("CreateCollection " + c.name, res.status());
      }
      std::printf("[1] ingest %zu points into %s (%s)...\n", base.n, c.name.c_str(),
                  c.index.c_str());
      std::fflush(stdout);
      const double t0 = NowSeconds();
      for (auto& req : upserts) {
        req.set_collection(c.name);
        if (auto res = admin.Upsert(req); !res.ok()) Die("Upsert " + c.name, res.status());
      }
      c.ingest_s = NowSeconds() - t0;
    }
  }
  WaitIndexedAndDescribe(admin, r.colls, 1800);
  WaitQuiet(r.srv->pid());
  // The window filters are measured once every segment has its window index.
  for (const FilterCase& f : r.filters) {
    if (f.family != "window") continue;
    for (const Collection& c : r.colls) {
      v1::SearchRequest req;
      req.set_collection(c.name);
      req.set_field(kField);
      req.set_k(static_cast<uint32_t>(r.args.k));
      req.add_vectors()->mutable_values()->Add(queries.row(0), queries.row(0) + queries.dim);
      req.set_filter(f.expr);
      req.mutable_params()->set_filter_strategy(v1::WINDOW_FILTER);
      WaitWindows(admin, req, 1800);
    }
    WaitQuiet(r.srv->pid());
    break;
  }
  r.load_s = NowSeconds() - load_t0;
  for (const Collection& c : r.colls) {
    std::printf("    %s: ingest %.1f s; %s\n", c.name.c_str(), c.ingest_s, c.segments.c_str());
  }
  std::printf("    ingest + index builds %.1f s; quiverd RSS %.0f MB\n", r.load_s,
              ReadMemory(r.srv->pid()).rss_kb / 1024.0);
  for (const Collection& c : r.colls) CheckCounts(admin, c.name, r.filters);
  std::fflush(stdout);
}

// Every collection x filter x strategy, interleaved; then stops quiverd.
void Sweep(FmnistRun& r) {
  const Args& args = r.args;
  const Matrix& base = r.ds.train;
  const Matrix& queries = r.ds.test;
  const size_t k = args.k, nq = r.nq;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < args.threads; ++t) {
    clients.push_back(std::make_unique<client::Client>(r.srv->address()));
    if (absl::Status h = clients.back()->Health(); !h.ok()) Die("health", h);
  }
  r.cells.assign(r.colls.size(), std::vector<Row>(r.filters.size()));
  std::printf("[2] sweep: per collection x filter, the strategies in rotating order on each of "
              "%zu slices of the %zu queries\n",
              r.rounds, nq);
  std::fflush(stdout);
  const double sweep_t0 = NowSeconds();
  for (size_t ci = 0; ci < r.colls.size(); ++ci) {
    // The same request per query throughout; only filter and strategy change
    // between runs (never while threads search).
    std::vector<v1::SearchRequest> reqs(nq);
    for (size_t q = 0; q < nq; ++q) {
      v1::SearchRequest& req = reqs[q];
      req.set_collection(r.colls[ci].name);
      req.set_field(kField);
      req.set_k(static_cast<uint32_t>(k));
      req.add_vectors()->mutable_values()->Add(queries.row(q), queries.row(q) + queries.dim);
      if (args.ef) req.mutable_params()->set_ef(args.ef);
      if (args.nprobe) req.mutable_params()->set_nprobe(args.nprobe);
    }
    // Warm-up: a few calls of every strategy on the first filter.
    for (Strategy s : StrategiesFor(r.filters[0])) {
      SetFilter(reqs, r.filters[0].expr, s);
      std::string ignored;
      Pass(clients, reqs.data(), nq, std::min<size_t>(nq, 50), k, r.srv->pid(), &ignored);
    }
    for (size_t fi = 0; fi < r.filters.size(); ++fi) {
      const FilterCase& f = r.filters[fi];
      Row& row = r.cells[ci][fi];
      MeasureRow(clients, reqs, f, StrategiesFor(f), r.rounds, fi, base, queries, k,
                 r.srv->pid(), args.min_run_ms / 1e3, row);
      std::printf("  %-8s %-42s %8s %s\n", r.colls[ci].index.c_str(), f.expr.c_str(),
                  Percent(f.Selectivity(base.n)).c_str(), ProgressLine(row).c_str());
      std::fflush(stdout);
    }
  }
  r.sweep_s = NowSeconds() - sweep_t0;
  r.quiverd_mem = ReadMemory(r.srv->pid());
  if (absl::Status st = r.srv->Stop(); !st.ok()) {
    std::fprintf(stderr, "filter_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }
}

// The tables' text and what the report keeps of them.
struct Tables {
  std::ostringstream out;
  nlohmann::json rows_json = nlohmann::json::array();
  size_t rows_total = 0, rows_met = 0;
  std::string explain_error;
  std::vector<std::string> not_forced;
};

// One collection's table: a row per filter, each strategy's recall and QPS,
// what AUTO chose and whether it met the targets.
void CollectionTable(const FmnistRun& r, size_t ci, Tables& tables) {
  const Matrix& base = r.ds.train;
  const Collection& coll = r.colls[ci];
  tables.out << "\n## " << coll.index << " (" << coll.segments << "): recall@10 and QPS per "
             << "strategy (" << r.nq << " queries, " << r.args.threads
             << " client threads, one query per RPC, in " << r.rounds << " interleaved round"
             << (r.rounds == 1 ? "" : "s") << ")\n\n";
  Table t({"family", "filter", "sel", "PRE rec", "PRE QPS", "FI rec", "FI QPS", "POST rec",
           "POST QPS", "WIN rec", "WIN QPS", "AUTO rec", "AUTO QPS", "AUTO chose (est. sel)",
           "best fixed", "AUTO/best", ">= 0.9x", "rec >= 0.95", "others' cores"});
  for (size_t fi = 0; fi < r.filters.size(); ++fi) {
    const FilterCase& f = r.filters[fi];
    const Row& row = r.cells[ci][fi];
    const int best = Best(row, kFixed);
    const std::vector<double> ratios =
        best >= 0 ? RoundRatios(row[kAuto], row[best]) : std::vector<double>{};
    const double ratio = MedianOrNan(ratios);
    const bool fast_ok = !std::isnan(ratio) && ratio >= kQpsTarget;
    const bool recall_ok = row[kAuto].Recall() >= kRecallTarget;
    ++tables.rows_total;
    tables.rows_met += fast_ok && recall_ok;

    const Explained& ex = row[kAuto].explain;
    if (!ex.ok && tables.explain_error.empty()) tables.explain_error = ex.status;
    CheckForced(row, absl::StrCat(coll.index, " `", f.expr, "`"), &tables.not_forced);
    std::vector<double> others;
    for (const Cell& c : row) others.insert(others.end(), c.others.begin(), c.others.end());
    t.AddRow({f.family, f.expr, Percent(f.Selectivity(base.n)), RecallText(row[kPre]),
              QpsText(row[kPre]), RecallText(row[kFilteredIndex]), QpsText(row[kFilteredIndex]),
              RecallText(row[kPost]), QpsText(row[kPost]), RecallText(row[kWindow]),
              QpsText(row[kWindow]), RecallText(row[kAuto]), QpsText(row[kAuto]),
              ChoseText(ex), best >= 0 ? kStrategyShort[best] : "-",
              std::isnan(ratio) ? "-" : Fixed(ratio, 2) + "x", fast_ok ? "yes" : "NO",
              recall_ok ? "yes" : "NO", others.empty() ? "-" : Fixed(Median(others), 2)});
    tables.rows_json.push_back({{"collection", coll.name},
                                {"index", coll.index},
                                {"family", f.family},
                                {"filter", f.expr},
                                {"target_selectivity", f.target},
                                {"selectivity", f.Selectivity(base.n)},
                                {"matches", f.subset.size()},
                                {"ground_truth_k", f.gt.k},
                                {"strategies", RowJson(row)},
                                {"best_fixed", best >= 0 ? kStrategyName[best] : ""},
                                {"auto_over_best_rounds", ratios},
                                {"auto_over_best", ratio},
                                {"auto_chose", ex.ok ? ex.chose : ""},
                                {"auto_estimated_selectivity", ex.est_selectivity},
                                {"qps_target_met", fast_ok},
                                {"recall_target_met", recall_ok}});
  }
  t.Print(tables.out);
}

// Every collection's table, the legend, the targets met and the notes.
void PrintTables(const FmnistRun& r, Tables& tables) {
  for (size_t ci = 0; ci < r.colls.size(); ++ci) CollectionTable(r, ci, tables);
  std::ostringstream& out = tables.out;
  out << "\n(sel: share of the base the filter matches, counted; rec: recall@10 against the exact "
         "filtered top-10, ties count, mean over the queries; QPS: calls / time, summed over "
         "rounds, a round's queries repeated until its run took "
      << Fixed(r.args.min_run_ms, 0) << " ms; PRE = PRE_FILTER, FI = FILTERED_INDEX, "
         "POST = POST_FILTER, WIN = WINDOW_FILTER (window filters only, '-' elsewhere), AUTO = "
         "the planner; AUTO chose: strategies over segments from one "
         "explain call with the first query, and the planner's estimated selectivity; best "
         "fixed: the fastest fixed strategy with recall >= "
      << Fixed(kRecallTarget, 2)
      << " (else the most accurate); AUTO/best: median of the per-round QPS ratios (same "
         "queries, run side by side); others' cores: CPU other processes on the machine used "
         "meanwhile, median over the row's runs; above ~0.2 the row is disturbed.)\n";
  out << "\nPlanner targets met (recall >= " << Fixed(kRecallTarget, 2) << " and >= "
      << Fixed(kQpsTarget, 1) << "x the best fixed strategy's QPS): " << tables.rows_met
      << " of " << tables.rows_total << " rows\n";
  if (!tables.explain_error.empty()) {
    out << "explain unavailable (" << tables.explain_error
        << "): what AUTO chose, and whether the forced strategies were applied, is unknown\n";
  }
  for (const std::string& n : tables.not_forced) {
    out << "WARNING: forced strategy not applied: " << n << "\n";
  }
  for (const std::string& n : r.notes) out << "note: " << n << "\n";
}

// Curves: QPS and recall vs selectivity per strategy, one column per
// collection; the uncorrelated family solid, the correlated one dashed.
// Returns the PNG's path ("" without gnuplot, with a note in `out`).
std::string DrawCurves(const FmnistRun& r, std::ostream& out) {
  const Matrix& base = r.ds.train;
  const auto& colls = r.colls;
  const std::string stem = ResultsStem(r.args.json_out, "filter_bench");
  struct Block {
    size_t ci;
    int s;
    bool correlated;
  };
  std::vector<Block> blocks;
  std::ofstream dat(stem + ".dat");
  for (size_t ci = 0; ci < colls.size(); ++ci) {
    for (const char* family : {"uncorrelated", "correlated"}) {
      for (int s = 0; s < kNumStrategies; ++s) {
        std::ostringstream pts;
        for (size_t fi = 0; fi < r.filters.size(); ++fi) {
          const Cell& c = r.cells[ci][fi][s];
          if (r.filters[fi].family != family || c.qps.empty()) continue;
          pts << r.filters[fi].Selectivity(base.n) << " " << Fixed(c.Qps(), 1) << " "
              << Fixed(c.Recall(), 4) << "\n";
        }
        if (pts.str().empty()) continue;
        dat << "# " << colls[ci].index << " " << family << " " << kStrategyName[s] << "\n"
            << pts.str() << "\n\n";
        blocks.push_back({ci, s, std::string(family) == "correlated"});
      }
    }
  }
  dat.close();
  std::ofstream gp(stem + ".gp");
  gp << "set terminal pngcairo noenhanced size " << 750 * colls.size()
     << ",1000 font 'DejaVu Sans,11'\n"
     << "set output '" << stem << ".png'\n"
     << "set multiplot layout 2," << colls.size() << " title 'Fashion-MNIST " << base.n << " x "
     << base.dim << ", k=" << r.args.k << ", " << r.nq << " queries, " << r.args.threads
     << " client threads, one query per RPC: filtered search by strategy (solid: u < X, "
        "uncorrelated; dashed: label = 3 [AND u < X], correlated)'\n"
     << "set logscale x\nset format x '%g'\nset xrange [*:2]\nset grid xtics ytics mytics\n"
     << "set key box opaque\n"
     << "set xlabel 'selectivity (share of the base passing, log scale)'\n";
  for (int panel = 0; panel < 2; ++panel) {
    for (size_t ci = 0; ci < colls.size(); ++ci) {
      gp << "set title '" << colls[ci].index << (panel ? ": recall@10" : ": QPS") << "'\n"
         << (panel ? "unset logscale y\nset yrange [0:1.05]\nset ylabel 'recall@10'\n"
                     "set key bottom right\n"
                   : "set logscale y\nset yrange [*:*]\nset ylabel 'queries per second (log "
                     "scale)'\nset key top left\n");
      std::string plot;
      for (size_t b = 0; b < blocks.size(); ++b) {
        if (blocks[b].ci != ci) continue;
        const std::string title =
            blocks[b].correlated ? " dt 2 notitle"
                                 : absl::StrCat(" title '", kStrategyName[blocks[b].s], "'");
        plot += absl::StrCat(plot.empty() ? "plot " : ", \\\n     ", "'", stem, ".dat' index ",
                             b, " using 1:", panel ? 3 : 2, " with linespoints lc rgb '",
                             kColors[blocks[b].s], "' pt 7 lw 2", title);
      }
      gp << (plot.empty() ? "plot NaN notitle" : plot) << "\n";
    }
  }
  gp << "unset multiplot\n";
  gp.close();
  return RunGnuplot(stem, out);
}

void WriteFmnistReport(const FmnistRun& r, const Tables& tables, const std::string& png,
                       nlohmann::json& report) {
  const Args& args = r.args;
  const Matrix& base = r.ds.train;
  nlohmann::json colls_json = nlohmann::json::array();
  for (const Collection& c : r.colls) {
    colls_json.push_back({{"name", c.name},
                          {"index", c.index},
                          {"params", c.params},
                          {"ingest_s", c.ingest_s},
                          {"segments", c.segments}});
  }
  report["config"] = {{"rows", base.n},
                      {"dim", base.dim},
                      {"queries", r.nq},
                      {"k", args.k},
                      {"rounds", r.rounds},
                      {"min_run_ms", args.min_run_ms},
                      {"client_threads", args.threads},
                      {"omp_threads_per_client_thread", 1},
                      {"quiverd_search_threads", args.search_threads},
                      {"quiverd_index_build_threads", args.build_threads},
                      {"ef", args.ef},
                      {"nprobe", args.nprobe},
                      {"seed", args.seed},
                      {"families", args.families},
                      {"quiverd_argv", r.srv->argv()},
                      {"quiverd_env", args.quiverd_env}};
  report["collections"] = colls_json;
  report["rows"] = tables.rows_json;
  report["rows_meeting_targets"] = {{"met", tables.rows_met}, {"total", tables.rows_total}};
  report["explain_error"] = tables.explain_error;
  report["forced_not_applied"] = tables.not_forced;
  report["notes"] = r.notes;
  report["quiverd_memory_mb"] = {{"rss_after_sweep", r.quiverd_mem.rss_kb / 1024.0},
                                 {"peak", r.quiverd_mem.hwm_kb / 1024.0}};
  report["tables"] = tables.out.str();
  report["png"] = png;
  report["seconds"] = {{"total", NowSeconds() - r.run_t0},
                       {"data_and_ground_truth", r.data_s},
                       {"ingest_and_index_builds", r.load_s},
                       {"sweep", r.sweep_s}};
  FinishReport(&report, args.json_out);
}

// The Fashion-MNIST run: load, ingest, sweep, print, report.
int FmnistMain(const Args& args, int argc, char** argv) {
  FmnistRun r;
  r.args = args;
  r.run_t0 = NowSeconds();
  PinOmpThreads(1);
  nlohmann::json report = NewReport("filter_bench", argc, argv);

  LoadData(r);
  r.colls = ChooseCollections(args);
  PrintSetup(r);

  r.srv = StartQuiverd(args, "warn");
  client::Client admin(r.srv->address());
  IngestAndIndex(r, admin);
  Sweep(r);

  Tables tables;
  PrintTables(r, tables);
  const std::string png = DrawCurves(r, tables.out);
  std::printf("%s", tables.out.str().c_str());
  if (!png.empty()) std::printf("\nQPS / recall vs selectivity: %s\n", png.c_str());
  std::printf("total %.0f s (data + ground truth %.0f s, ingest + index builds %.0f s, sweep %.0f "
              "s); load average %s\n",
              NowSeconds() - r.run_t0, r.data_s, r.load_s, r.sweep_s, LoadAverage().c_str());
  WriteFmnistReport(r, tables, png, report);
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  if (std::optional<int> exit_code = ParseArgs(argc, argv, &args)) return *exit_code;
  std::filesystem::create_directories(args.tmp_dir);
  if (args.window_scale > 0) return WindowMain(args, argc, argv);
  return FmnistMain(args, argc, argv);
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
