// recall_target_bench: does a search that asks for a recall
// (SearchParams.target_recall) get it, and does it cost no more than the
// best ef / nprobe / refine_factor picked by hand that reaches the same
// recall, measured in the same run? For single-vector fields (HNSW,
// IVF_FLAT, IVF_PQ) and for a multi-vector field searched through MUVERA
// encodings (late interaction; below).
//
// Fashion-MNIST: the 60,000 training images are the base set (784-d, L2),
// the first --queries (1,000) test images the queries -- never seen by the
// calibration, which samples the segment's own rows -- k = 10. Every point
// carries `bucket`, an indexed INT64 uniform in 0..99 (fixed seed,
// independent of the vectors), for the filters `bucket < 10` (10%) and
// `bucket < 1` (1%). One collection per index kind, each with the server's
// default parameters: HNSW, IVF_FLAT and IVF_PQ (whose searches rerank
// k x refine_factor candidates exactly). Measured once every segment is
// INDEXED and its calibration is in (an explained target_recall search's
// recall_choice says "calibrated on").
//
// Cells: kind x filter x target (--targets 0.9, 0.95, 0.99). Per cell:
// achieved recall@10 over the queries against the exact filtered top 10
// (ties as tests/common/recall.h), the predicted recall the responses
// carry, the setting the planner chose (explain's recall_choice, first
// query), and QPS of single-query RPCs from one client thread (batched: a
// --slice of queries per RPC, for the cells and their matched baselines).
//
// Baseline, same run, interleaved: the knob swept by hand (HNSW ef, IVF_FLAT
// nprobe, IVF_PQ nprobe x refine_factor) per filter, the planner choosing
// the filter strategy as usual (AUTO), plus the same sweep with
// filter_strategy FILTERED_INDEX forced on the filtered cells, plus an
// exact search (params.exact). For each cell the hand-picked points whose
// achieved recall is >= the cell's achieved recall - 0.002 qualify; the
// best QPS among them is the reference, and the cell's QPS ratio is the
// median over rounds of the per-round ratios.
//
// Every configuration runs every query once per round, a --slice of
// queries at a time, the configurations in an order that rotates per slice
// and reverses every other one; recall from the first round.
//
// Multi-vector (kind MULTI, collection rt_multi, field `strips`): the first
// --mv-rows (20,000) training images, each cut into 8 strips of 98
// consecutive pixels (floats [98j, 98j + 98) of the image are strip j), a
// multi-vector field with inner product, the default MUVERA encoding and
// HNSW over the encodings at the server's defaults, max_vectors_per_point
// 8, and the same `bucket` attribute (the same seeded sequence). Queries:
// the same t10k images as strip sets, k the same. Its calibration measures
// the whole late-interaction search (the encodings' HNSW, k x refine_factor
// candidates reranked by exact MaxSim) against exact MaxSim; the planner
// picks ef and refine_factor per segment, or exact MaxSim. Truth: the
// server's exact MaxSim top k (params.exact, with the filter), once per
// filter; recall with ties re-scores the returned ids by MaxSim in double
// here (distance = -MaxSim). Baseline: refine_factor swept by hand
// (--mv-refine; candidates k x refine_factor, ef left to the server, which
// raises it to at least the candidates), AUTO and FILTERED_INDEX forced
// (--forced-mv-refine), plus an exact search, the same way as above.
// `--kinds MULTI` measures the multi-vector collection alone.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/common/driver.h"
#include "bench/common/ground_truth.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

constexpr char kField[] = "image";
constexpr char kBucket[] = "bucket";
constexpr char kMvField[] = "strips";
// A multi-vector point: the image's 784 floats as 8 strips of 98.
constexpr size_t kStrips = 8;
constexpr size_t kStripDim = 98;
constexpr int64_t kBuckets = 100;

// A cell meets its target when |achieved - target| <= kBand. A hand-picked
// point reaches a cell's achieved recall r when its own is >= r - kTolerance.
// The cost goal: QPS >= kQpsGoal x the best such point's.
constexpr double kBand = 0.01;
constexpr double kTolerance = 0.002;
constexpr double kQpsGoal = 0.9;

struct KindSpec {
  const char* name;   // --kinds
  const char* coll;
  const char* label;  // the tables' kind column
};
constexpr KindSpec kKinds[] = {{"HNSW", "rt_hnsw", "HNSW"},
                               {"IVF_FLAT", "rt_ivf_flat", "IVF_FLAT"},
                               {"IVF_PQ", "rt_ivf_pq", "IVF_PQ"},
                               {"MULTI", "rt_multi", "multi-vector (MUVERA+HNSW, 8x98 strips)"}};
constexpr size_t kNumKinds = 4;
constexpr size_t kHnsw = 0, kIvfFlat = 1, kIvfPq = 2, kMulti = 3;

struct Args {
  size_t rows = 60000;
  size_t queries = 1000;
  uint32_t k = 10;
  std::vector<double> targets = {0.9, 0.95, 0.99};
  std::vector<std::string> kinds = {"HNSW", "IVF_FLAT", "IVF_PQ", "MULTI"};
  std::vector<uint32_t> hnsw_ef = {10, 12, 14, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256};
  std::vector<uint32_t> ivf_nprobe = {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32};
  std::vector<uint32_t> pq_nprobe = {2, 3, 4, 5, 6, 8, 10, 12, 16};
  std::vector<float> pq_refine = {1.5, 2, 3, 4, 8};
  // FILTERED_INDEX forced: coarser (a forced HNSW walk at 1% runs at
  // 25-200 QPS, and never beats the planner's own choice there).
  std::vector<uint32_t> forced_hnsw_ef = {10, 16};
  std::vector<uint32_t> forced_pq_nprobe = {2, 4, 8};
  std::vector<float> forced_pq_refine = {2, 4, 8};
  // Multi-vector: refine_factor (candidates k x refine_factor for the
  // MaxSim rerank; ef left to the server), AUTO and FILTERED_INDEX forced.
  std::vector<float> mv_refine = {1, 2, 3, 5, 8, 12, 16, 24, 32, 50, 64, 100, 150, 200};
  std::vector<float> forced_mv_refine = {1, 2, 3, 5, 8, 12, 16, 24, 32, 50, 64, 100, 150, 200};
  // The target whose choice is the cheapest setting the calibration
  // offers (target_recall's lowest): the floor probe.
  double floor_target = 0.5;
  bool forced = true;
  int rounds = 3;
  size_t slice = 100;
  bool batched = true;
  int build_threads = 2;
  size_t mv_rows = 20000;
  uint64_t seed = 42;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
};

struct Filter {
  std::string name;  // "none", "10%", "1%"
  std::string expr;  // "" or "bucket < 10"
  int64_t below = kBuckets;
  std::vector<int64_t> subset;  // passing rows, ascending
  std::vector<bool> allowed;    // empty without a filter
  GroundTruth gt;
  // The multi-vector collection: its rows passing (mv_allowed empty
  // without a filter), and per query the server's exact MaxSim top k and
  // the k-th true distance (-MaxSim in double, the largest of the top k).
  size_t mv_count = 0;
  std::vector<bool> mv_allowed;
  std::vector<std::vector<int64_t>> mv_truth;
  std::vector<double> mv_kth;
};

enum class Mode { kTarget, kHand, kForced, kExact };

struct Config {
  size_t kind = 0, filter = 0;
  Mode mode = Mode::kHand;
  double target = 0;
  bool probe = false;  // the floor probe (target args.floor_target), not a cell
  uint32_t ef = 0, nprobe = 0;
  float refine = 0;
  // Measured.
  std::vector<double> seconds;        // single-query RPCs, per round
  std::vector<double> batch_seconds;  // batched, per round
  std::vector<double> latency_ms;     // single, pooled over rounds
  double server_cpu_s = 0;            // quiverd, over the single rounds
  size_t server_queries = 0;
  std::vector<std::vector<int64_t>> ids;  // per query, first round
  size_t changed = 0;                     // answers that differed in later rounds
  double recall = 0;
  double predicted = 0;  // mean SearchResult.predicted_recall
  // Explain of the first query: every segment's distinct recall_choice,
  // and the first indexed (calibrated) segment's.
  std::string strategy, reason, recall_choice, first_choice;
  double explain_predicted = 0;

  bool hand() const { return mode != Mode::kTarget; }
  // The choice the tables show: the multi-vector collection's first
  // indexed segment's (it may hold several segments), else all of them.
  const std::string& choice() const {
    return kind == kMulti && !first_choice.empty() ? first_choice : recall_choice;
  }
  std::string Setting() const {
    switch (mode) {
      case Mode::kTarget:
        return absl::StrCat("target ", target);
      case Mode::kExact:
        return "exact";
      default:
        break;
    }
    std::string s = ef ? absl::StrCat("ef=", ef) : nprobe ? absl::StrCat("nprobe=", nprobe) : "";
    if (refine > 0) absl::StrAppend(&s, s.empty() ? "" : " ", "rf=", refine);
    if (mode == Mode::kForced) absl::StrAppend(&s, " (FI)");
    return s;
  }
};

// An image (784 floats) as a multi-vector point: 8 strips of 98.
void AddStrips(const float* image, v1::MultiVector* mv) {
  for (size_t j = 0; j < kStrips; ++j) {
    const float* v = image + j * kStripDim;
    mv->add_vectors()->mutable_values()->Add(v, v + kStripDim);
  }
}

// MaxSim by inner product of two images' strip sets, in double: the sum
// over the query's strips of the best inner product with a document strip.
double MaxSimIp(const float* query, const float* doc) {
  double sum = 0;
  for (size_t i = 0; i < kStrips; ++i) {
    double best = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < kStrips; ++j) {
      double dot = 0;
      for (size_t d = 0; d < kStripDim; ++d) {
        dot += static_cast<double>(query[i * kStripDim + d]) * doc[j * kStripDim + d];
      }
      best = std::max(best, dot);
    }
    sum += best;
  }
  return sum;
}

// recall@k of a multi-vector answer against the server's exact MaxSim top
// k (tests/common/recall.h; distance = -MaxSim, smaller is better): an id
// counts if it is a true top-k member or ties with the k-th (pixels are
// integers, so MaxSim in double is exact and ties are exact; the k-th is
// the largest distance of the server's top k re-scored here, so the
// server's float rounding does not matter). Ids failing the filter never
// count.
double MvRecall(const Filter& f, size_t q, const std::vector<int64_t>& returned,
                const Matrix& docs, const float* query) {
  std::vector<int64_t> got;
  for (int64_t id : returned) {
    if (id < 0 || static_cast<size_t>(id) >= docs.n) continue;
    if (!f.mv_allowed.empty() && !f.mv_allowed[id]) continue;
    got.push_back(id);
  }
  testing::TieRule<int64_t> ties;
  ties.kth = f.mv_kth[q];
  ties.distance = [&](int64_t id) { return -MaxSimIp(query, docs.row(id)); };
  return testing::RecallAtK(got, f.mv_truth[q], ties);
}

v1::SearchRequest MakeRequest(const Config& c, const Filter& f, const Matrix& queries, size_t q0,
                              size_t n, uint32_t k) {
  v1::SearchRequest req;
  req.set_collection(kKinds[c.kind].coll);
  req.set_field(c.kind == kMulti ? kMvField : kField);
  req.set_k(k);
  for (size_t q = q0; q < q0 + n; ++q) {
    if (c.kind == kMulti) {
      AddStrips(queries.row(q), req.add_multi_vectors());
    } else {
      req.add_vectors()->mutable_values()->Add(queries.row(q), queries.row(q) + queries.dim);
    }
  }
  if (!f.expr.empty()) req.set_filter(f.expr);
  v1::SearchParams* p = req.mutable_params();
  switch (c.mode) {
    case Mode::kTarget:
      p->set_target_recall(static_cast<float>(c.target));
      break;
    case Mode::kExact:
      p->set_exact(true);
      break;
    case Mode::kForced:
      p->set_filter_strategy(v1::FILTERED_INDEX);
      [[fallthrough]];
    case Mode::kHand:
      if (c.ef) p->set_ef(c.ef);
      if (c.nprobe) p->set_nprobe(c.nprobe);
      if (c.refine > 0) p->set_refine_factor(c.refine);
      break;
  }
  return req;
}

std::vector<int64_t> Ids(const v1::SearchResult& r) {
  std::vector<int64_t> ids;
  for (const v1::Hit& h : r.hits()) ids.push_back(ParseId(h.id()));
  return ids;
}

// "ef=14, predicted recall 0.956" out of a recall_choice
// "target_recall 0.95: ef=14, predicted recall 0.956; calibrated on ...".
std::string ShortChoice(const std::string& choice) {
  size_t from = choice.find(": ");
  from = from == std::string::npos ? 0 : from + 2;
  const size_t to = choice.find("; calibrated");
  return choice.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

// "calibrated on 500 rows ...: ef 1..1024" out of a recall_choice.
std::string CalibrationOf(const std::string& choice) {
  const size_t at = choice.find("calibrated on");
  return at == std::string::npos ? "" : choice.substr(at);
}

std::string Signed(double v, int digits) { return (v >= 0 ? "+" : "") + Fixed(v, digits); }

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  bool no_batched = false, no_forced = false;
  CLI::App app{"recall_target_bench: target_recall searches vs hand-picked ef / nprobe / "
               "refine_factor on Fashion-MNIST"};
  app.add_option("--rows", args.rows, "base rows (max 60000)");
  app.add_option("--queries", args.queries, "queries (the first t10k images)");
  app.add_option("--targets", args.targets, "target recalls")->delimiter(',');
  app.add_option("--kinds", args.kinds,
                 "index kinds (HNSW, IVF_FLAT, IVF_PQ) and MULTI (the multi-vector collection)")
      ->delimiter(',');
  app.add_option("--hnsw-ef", args.hnsw_ef, "HNSW ef swept by hand")->delimiter(',');
  app.add_option("--ivf-nprobe", args.ivf_nprobe, "IVF_FLAT nprobe swept by hand")->delimiter(',');
  app.add_option("--pq-nprobe", args.pq_nprobe, "IVF_PQ nprobe swept by hand")->delimiter(',');
  app.add_option("--pq-refine", args.pq_refine, "IVF_PQ refine_factor swept by hand")
      ->delimiter(',');
  app.add_option("--forced-hnsw-ef", args.forced_hnsw_ef,
                 "HNSW ef swept with FILTERED_INDEX forced")
      ->delimiter(',');
  app.add_option("--forced-pq-nprobe", args.forced_pq_nprobe,
                 "IVF_PQ nprobe swept with FILTERED_INDEX forced")
      ->delimiter(',');
  app.add_option("--forced-pq-refine", args.forced_pq_refine,
                 "IVF_PQ refine_factor swept with FILTERED_INDEX forced")
      ->delimiter(',');
  app.add_option("--mv-refine", args.mv_refine,
                 "multi-vector refine_factor swept by hand (candidates k x refine_factor)")
      ->delimiter(',');
  app.add_option("--forced-mv-refine", args.forced_mv_refine,
                 "multi-vector refine_factor swept with FILTERED_INDEX forced")
      ->delimiter(',');
  app.add_flag("--no-forced", no_forced, "skip the FILTERED_INDEX-forced sweeps");
  app.add_option("--rounds", args.rounds, "interleaved rounds");
  app.add_option("--slice", args.slice,
                 "queries per interleaving slice; the batched mode sends a slice per RPC");
  app.add_flag("--no-batched", no_batched, "skip the batched mode");
  app.add_option("--build-threads", args.build_threads, "quiverd --index-build-threads");
  app.add_option("--mv-rows", args.mv_rows,
                 "points of the multi-vector collection (the first training images)");
  app.add_option("--seed", args.seed, "seed of the bucket attribute");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--cache-dir", args.cache_dir, "ground-truth cache");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  args.batched = !no_batched;
  args.forced = !no_forced;
  for (double t : args.targets) {
    if (!(t >= 0.5 && t <= 0.999)) {
      Die("--targets", absl::InvalidArgumentError("targets in [0.5, 0.999]"));
    }
  }
  std::vector<size_t> kinds;
  for (const std::string& name : args.kinds) {
    size_t i = 0;
    while (i < kNumKinds && name != kKinds[i].name) ++i;
    if (i == kNumKinds) Die("--kinds", absl::InvalidArgumentError(name));
    kinds.push_back(i);
  }
  std::filesystem::create_directories(args.tmp_dir);
  const double t_start = NowSeconds();
  nlohmann::json report = NewReport("recall_target_bench", argc, argv);
  const uint32_t k = args.k;

  // ---- data, filters, exact truth
  const bool has_single =
      std::any_of(kinds.begin(), kinds.end(), [](size_t kd) { return kd != kMulti; });
  const bool multi = std::find(kinds.begin(), kinds.end(), kMulti) != kinds.end();
  auto ds = LoadFashionMnist(args.dataset_dir,
                             std::max(has_single ? args.rows : 0, multi ? args.mv_rows : 0),
                             args.queries);
  if (!ds.ok()) Die("load dataset", ds.status());
  // The single-vector collections' rows (the first --rows training
  // images) and the multi-vector collection's (the first --mv-rows).
  auto first_rows = [&](size_t n) {
    Matrix m;
    m.n = std::min(n, ds->train.n);
    m.dim = ds->train.dim;
    m.data.assign(ds->train.data.begin(), ds->train.data.begin() + m.n * m.dim);
    return m;
  };
  const Matrix base = has_single ? first_rows(args.rows) : Matrix{};
  const Matrix mv_base = multi ? first_rows(args.mv_rows) : Matrix{};
  ds->train = Matrix{};
  const Matrix& queries = ds->test;
  if (multi && (mv_base.dim != kStrips * kStripDim || mv_base.n < k)) {
    Die("multi-vector rows", absl::InvalidArgumentError("784-d images, at least k of them"));
  }
  const size_t nq = std::min(args.queries, queries.n);
  const size_t slice = std::max<size_t>(1, std::min(args.slice, nq));
  const size_t nslices = (nq + slice - 1) / slice;
  // mt19937_64's sequence is fixed by the standard; modulo bias ~1e-17.
  // Row i's bucket is the i-th draw in every collection.
  std::vector<int64_t> bucket(std::max(base.n, mv_base.n));
  {
    std::mt19937_64 rng(args.seed);
    for (auto& b : bucket) b = static_cast<int64_t>(rng() % kBuckets);
  }
  std::vector<Filter> filters(3);
  filters[0].name = "none";
  filters[1].name = "10%";
  filters[1].expr = "bucket < 10";
  filters[1].below = 10;
  filters[2].name = "1%";
  filters[2].expr = "bucket < 1";
  filters[2].below = 1;
  for (Filter& f : filters) {
    f.mv_count = mv_base.n;
    if (!f.expr.empty()) {
      f.mv_allowed.assign(mv_base.n, false);
      f.mv_count = 0;
      for (size_t i = 0; i < mv_base.n; ++i) {
        if (bucket[i] < f.below) {
          f.mv_allowed[i] = true;
          ++f.mv_count;
        }
      }
    }
    if (!has_single) continue;
    if (!f.expr.empty()) {
      f.allowed.assign(base.n, false);
      for (size_t i = 0; i < base.n; ++i) {
        if (bucket[i] < f.below) {
          f.subset.push_back(static_cast<int64_t>(i));
          f.allowed[i] = true;
        }
      }
    }
    const std::string key = absl::StrCat("fmnist-", base.n, f.expr.empty() ? "" : "-bucket-lt",
                                         f.expr.empty() ? "" : std::to_string(f.below),
                                         f.expr.empty() ? "" : absl::StrCat("-s", args.seed));
    auto gt = LoadOrComputeGroundTruth(key, base, queries, nq, k, f.subset, args.cache_dir);
    if (!gt.ok()) Die("ground truth " + f.name, gt.status());
    f.gt = *std::move(gt);
  }

  // ---- quiverd, loaded, indexed and calibrated
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = "async";  // loading is not what this measures
  qo.tmp_root = args.tmp_dir;
  qo.log_level = "info";  // build and calibration times are logged at info
  qo.env = {"OMP_NUM_THREADS=1"};
  // The recall audit re-runs a sample of searches exactly in the
  // background: quiverd CPU that no configuration asked for.
  qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                   "--index-build-workers", "1", "--recall-audit-rate", "0"};
  auto started = QuiverdProcess::Launch(qo);
  if (!started.ok()) Die("start quiverd", started.status());
  std::unique_ptr<QuiverdProcess> srv = *std::move(started);
  client::Client c(srv->address());
  std::vector<std::string> colls;
  for (size_t kd : kinds) {
    v1::CollectionSchema schema;
    v1::VectorField* f = schema.add_vectors();
    if (kd == kMulti) {
      // Strips of 98, inner product, the default MUVERA encoding, HNSW
      // over the encodings at the server's defaults.
      f->set_name(kMvField);
      f->set_dim(static_cast<uint32_t>(kStripDim));
      f->set_metric(v1::IP);
      f->mutable_index()->set_type("HNSW");
      f->mutable_multi_vector()->set_max_vectors_per_point(static_cast<uint32_t>(kStrips));
    } else {
      f->set_name(kField);
      f->set_dim(static_cast<uint32_t>(base.dim));
      f->set_metric(v1::L2);
      f->mutable_index()->set_type(kKinds[kd].name);
    }
    v1::AttributeField* a = schema.add_attributes();
    a->set_name(kBucket);
    a->set_type(v1::INT64);
    a->set_indexed(true);
    if (auto r = c.CreateCollection(kKinds[kd].coll, schema); !r.ok()) {
      Die(absl::StrCat("create ", kKinds[kd].coll), r.status());
    }
    colls.push_back(kKinds[kd].coll);
  }
  const double load_t0 = NowSeconds();
  for (size_t kd : kinds) {
    const bool mv = kd == kMulti;
    const Matrix& rows = mv ? mv_base : base;
    const size_t batch = mv ? 500 : 1000;
    for (size_t b = 0; b < rows.n; b += batch) {
      v1::UpsertPointsRequest up;
      up.set_collection(kKinds[kd].coll);
      for (size_t i = b; i < std::min(rows.n, b + batch); ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        if (mv) {
          AddStrips(rows.row(i), &(*p->mutable_multi_vectors())[kMvField]);
        } else {
          (*p->mutable_vectors())[kField].mutable_values()->Add(rows.row(i),
                                                                rows.row(i) + rows.dim);
        }
        (*p->mutable_attributes())[kBucket].set_int_value(bucket[i]);
      }
      if (auto r = c.Upsert(up); !r.ok()) Die(absl::StrCat("upsert ", kKinds[kd].coll), r.status());
    }
  }
  const double upsert_s = NowSeconds() - load_t0;
  WaitIndexedOrDie(c, colls, 3600, 200);
  const double indexed_s = NowSeconds() - load_t0;
  // IVF kinds are served before their calibration is attached (target
  // searches scan exactly meanwhile), and so is the multi-vector field
  // (its calibration runs after the build): wait until an explained
  // target search says every segment is calibrated. (A segment where
  // exact MaxSim is chosen still says "calibrated on" when it has a
  // calibration.)
  std::map<size_t, double> calibrated_at;  // kind -> seconds after the first write
  for (size_t kd : kinds) {
    Config probe;
    probe.kind = kd;
    probe.mode = Mode::kTarget;
    probe.target = 0.9;
    v1::SearchRequest req = MakeRequest(probe, filters[0], queries, 0, 1, k);
    req.set_explain(true);
    const double w0 = NowSeconds();
    for (;;) {
      auto r = c.Search(req);
      if (!r.ok()) Die(absl::StrCat("calibration probe ", kKinds[kd].coll), r.status());
      bool all = r->explain().segments_size() > 0;
      for (const v1::SegmentPlan& sp : r->explain().segments()) {
        all &= absl::StrContains(sp.recall_choice(), "calibrated on");
      }
      if (all) break;
      if (NowSeconds() - w0 > 3600) {
        Die("calibration", absl::DeadlineExceededError(kKinds[kd].coll));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    calibrated_at[kd] = NowSeconds() - load_t0;
  }
  const double calibrated_s = NowSeconds() - load_t0;
  // The multi-vector truth: the server's exact MaxSim top k per query and
  // filter (params.exact, with the filter), a slice of queries per RPC;
  // the k-th true distance re-scored here in double. The server's scores
  // (inner product: MaxSim, higher is better) are checked against it.
  double mv_truth_s = 0, mv_score_diff = 0;
  if (multi) {
    const double t0 = NowSeconds();
    Config ex;
    ex.kind = kMulti;
    ex.mode = Mode::kExact;
    for (Filter& f : filters) {
      f.mv_truth.assign(nq, {});
      f.mv_kth.assign(nq, std::nan(""));
      for (size_t q0 = 0; q0 < nq; q0 += slice) {
        const size_t n = std::min(slice, nq - q0);
        auto r = c.Search(MakeRequest(ex, f, queries, q0, n, k));
        if (!r.ok()) Die("exact MaxSim truth, filter " + f.name, r.status());
        if (static_cast<size_t>(r->results_size()) != n) {
          Die("exact MaxSim truth", absl::DataLossError("results per query set"));
        }
        for (size_t i = 0; i < n; ++i) {
          const size_t q = q0 + i;
          double kth = -std::numeric_limits<double>::infinity();
          for (const v1::Hit& h : r->results(static_cast<int>(i)).hits()) {
            const int64_t id = ParseId(h.id());
            if (id < 0 || static_cast<size_t>(id) >= mv_base.n) {
              Die("exact MaxSim truth", absl::DataLossError("id " + h.id()));
            }
            const double sim = MaxSimIp(queries.row(q), mv_base.row(id));
            mv_score_diff = std::max(mv_score_diff, std::abs(sim - double{h.score()}) /
                                                        std::max(1.0, std::abs(sim)));
            f.mv_truth[q].push_back(id);
            kth = std::max(kth, -sim);
          }
          if (!f.mv_truth[q].empty()) f.mv_kth[q] = kth;
        }
      }
    }
    mv_truth_s = NowSeconds() - t0;
  }
  WaitQuiet(srv->pid());
  std::vector<std::string> segment_desc;
  for (const std::string& coll : colls) {
    auto s = Segments(c, coll);
    if (!s.ok()) Die("describe " + coll, s.status());
    segment_desc.push_back(absl::StrCat(coll, ": ", s->desc));
  }
  for (size_t kd : kinds) {
    const size_t want = kd == kMulti ? mv_base.n : base.n;
    if (auto n = c.Count(kKinds[kd].coll); !n.ok() || *n != want) {
      Die(absl::StrCat("Count ", kKinds[kd].coll),
          n.ok() ? absl::DataLossError("count differs") : n.status());
    }
  }
  // Build and calibration lines of the log.
  std::vector<std::string> log_lines;
  {
    std::ifstream in(srv->log_path());
    for (std::string line; std::getline(in, line);) {
      if (absl::StrContains(line, ": built ") || absl::StrContains(line, "recall calibrated on")) {
        log_lines.push_back(line);
      }
    }
  }

  std::printf("recall_target_bench: %zu queries (the first t10k images, never used for "
              "calibration), k=%u; targets %s; bucket uniform 0..%lld (seed %llu); %d rounds "
              "interleaved per slice of %zu queries; 1 client thread; %u cores\n",
              nq, k, absl::StrJoin(args.targets, ",").c_str(),
              static_cast<long long>(kBuckets - 1), static_cast<unsigned long long>(args.seed),
              args.rounds, slice, std::thread::hardware_concurrency());
  if (has_single) {
    std::printf("  single-vector: Fashion-MNIST %zu x %zu (L2); filters none, bucket < 10 (%zu "
                "rows), bucket < 1 (%zu rows)\n",
                base.n, base.dim, filters[1].subset.size(), filters[2].subset.size());
  }
  if (multi) {
    std::printf("  multi-vector: %s.%s, Fashion-MNIST %zu images x %zu strips of %zu (IP, "
                "default MUVERA, HNSW defaults); filters none, bucket < 10 (%zu rows), bucket "
                "< 1 (%zu rows); exact MaxSim truth from the server in %.1f s (its scores vs "
                "MaxSim in double here: max relative difference %.2g)\n",
                kKinds[kMulti].coll, kMvField, mv_base.n, kStrips, kStripDim,
                filters[1].mv_count, filters[2].mv_count, mv_truth_s, mv_score_diff);
    if (mv_score_diff > 1e-3) {
      std::printf("  WARNING: the server's exact MaxSim scores differ from MaxSim computed "
                  "here by up to %.3g (relative)\n",
                  mv_score_diff);
    }
  }
  std::printf("quiverd: %s; upserts %.1f s, indexed %.1f s and calibrated %.1f s after the "
              "first write (%s); load average %s\n",
              absl::StrJoin(srv->argv(), " ").c_str(), upsert_s, indexed_s, calibrated_s,
              absl::StrJoin(calibrated_at, ", ",
                            [](std::string* s, const std::pair<const size_t, double>& kv) {
                              absl::StrAppend(s, kKinds[kv.first].coll, " ",
                                              Fixed(kv.second, 1), " s");
                            })
                  .c_str(),
              LoadAverage().c_str());
  for (const std::string& s : segment_desc) std::printf("  %s\n", s.c_str());
  for (const std::string& l : log_lines) std::printf("  log: %s\n", l.c_str());
  std::fflush(stdout);

  // ---- configurations
  std::vector<Config> cfg;
  for (size_t kd : kinds) {
    for (size_t fi = 0; fi < filters.size(); ++fi) {
      for (double t : args.targets) {
        Config x;
        x.kind = kd;
        x.filter = fi;
        x.mode = Mode::kTarget;
        x.target = t;
        cfg.push_back(x);
      }
      {
        Config x;
        x.kind = kd;
        x.filter = fi;
        x.mode = Mode::kTarget;
        x.target = args.floor_target;
        x.probe = true;
        cfg.push_back(x);
      }
      std::vector<Mode> modes = {Mode::kHand};
      if (fi > 0 && args.forced) modes.push_back(Mode::kForced);
      for (Mode m : modes) {
        auto add = [&](uint32_t ef, uint32_t nprobe, float refine) {
          Config x;
          x.kind = kd;
          x.filter = fi;
          x.mode = m;
          x.ef = ef;
          x.nprobe = nprobe;
          x.refine = refine;
          cfg.push_back(x);
        };
        if (kd == kMulti) {
          for (float rf : m == Mode::kForced ? args.forced_mv_refine : args.mv_refine) {
            add(0, 0, rf);
          }
        } else if (kd == kHnsw) {
          for (uint32_t ef : m == Mode::kForced ? args.forced_hnsw_ef : args.hnsw_ef) {
            add(ef, 0, 0);
          }
        } else if (kd == kIvfFlat) {
          for (uint32_t np : args.ivf_nprobe) add(0, np, 0);
        } else {
          const bool f = m == Mode::kForced;
          for (uint32_t np : f ? args.forced_pq_nprobe : args.pq_nprobe) {
            for (float rf : f ? args.forced_pq_refine : args.pq_refine) add(0, np, rf);
          }
        }
      }
      Config x;
      x.kind = kd;
      x.filter = fi;
      x.mode = Mode::kExact;
      cfg.push_back(x);
    }
  }
  // Explain of the first query, outside the clock: strategy and choice.
  for (Config& x : cfg) {
    v1::SearchRequest req = MakeRequest(x, filters[x.filter], queries, 0, 1, k);
    req.set_explain(true);
    auto r = c.Search(req);
    if (!r.ok()) Die(absl::StrCat("explain ", x.Setting()), r.status());
    std::set<std::string> strategies, choices, reasons;
    for (const v1::SegmentPlan& sp : r->explain().segments()) {
      strategies.insert(sp.strategy());
      reasons.insert(sp.reason());
      if (!sp.recall_choice().empty()) choices.insert(sp.recall_choice());
      // The first indexed segment: the first with a calibration (a
      // segment searched by exact MaxSim under target_recall leaves its
      // explain state empty).
      if (x.first_choice.empty() && absl::StrContains(sp.recall_choice(), "calibrated on")) {
        x.first_choice = sp.recall_choice();
      }
      x.explain_predicted = sp.predicted_recall();
    }
    x.strategy = absl::StrJoin(strategies, "+");
    x.reason = absl::StrJoin(reasons, " | ");
    x.recall_choice = absl::StrJoin(choices, " | ");
  }

  // An unfiltered exact search (15 ms a query) is a baseline only where a
  // target search of that kind chose an exact scan unfiltered.
  std::vector<std::string> notes;
  {
    std::vector<Config> kept;
    for (const Config& x : cfg) {
      if (x.mode == Mode::kExact && x.filter == 0) {
        bool wanted = false;
        for (const Config& y : cfg) {
          wanted |= y.mode == Mode::kTarget && y.kind == x.kind && y.filter == 0 &&
                    absl::StrContains(y.choice(), "exact scan");
        }
        if (!wanted) {
          notes.push_back(absl::StrCat(kKinds[x.kind].label, ": no unfiltered target search chose "
                                       "an exact scan, so the unfiltered exact baseline is not "
                                       "measured"));
          continue;
        }
      }
      kept.push_back(x);
    }
    cfg = std::move(kept);
  }
  const size_t nc = cfg.size();
  std::printf("%zu configurations measured (%zu target cells, %zu floor probes)\n", nc,
              static_cast<size_t>(std::count_if(cfg.begin(), cfg.end(), [](const Config& x) {
                return x.mode == Mode::kTarget && !x.probe;
              })),
              static_cast<size_t>(std::count_if(cfg.begin(), cfg.end(),
                                                [](const Config& x) { return x.probe; })));
  std::fflush(stdout);

  // ---- measured rounds, single-query RPCs
  std::vector<std::vector<v1::SearchRequest>> single(nc);
  for (size_t ci = 0; ci < nc; ++ci) {
    for (size_t q = 0; q < nq; ++q) {
      single[ci].push_back(MakeRequest(cfg[ci], filters[cfg[ci].filter], queries, q, 1, k));
    }
    cfg[ci].ids.resize(nq);
  }
  // Warm-up: the first queries of every configuration.
  for (size_t ci = 0; ci < nc; ++ci) {
    for (size_t q = 0; q < std::min<size_t>(nq, 20); ++q) {
      if (auto r = c.Search(single[ci][q]); !r.ok()) Die(cfg[ci].Setting(), r.status());
    }
  }
  std::vector<double> others_single, others_batched;
  std::vector<double> predicted_sum(nc, 0);
  for (int round = 0; round < args.rounds; ++round) {
    std::vector<double> secs(nc, 0);
    const double busy0 = MachineBusySeconds(false), self0 = ProcessCpuSeconds(),
                 srv0 = ProcessCpuSeconds(srv->pid()), wall0 = NowSeconds();
    for (size_t s = 0; s < nslices; ++s) {
      const size_t turn = round * nslices + s;
      const size_t q0 = s * slice, q1 = std::min(nq, q0 + slice);
      for (size_t j = 0; j < nc; ++j) {
        size_t ci = (j + turn) % nc;
        if (turn % 2) ci = nc - 1 - ci;
        Config& x = cfg[ci];
        const double cpu0 = ProcessCpuSeconds(srv->pid());
        for (size_t q = q0; q < q1; ++q) {
          const double t0 = NowSeconds();
          auto r = c.Search(single[ci][q]);
          const double dt = NowSeconds() - t0;
          if (!r.ok()) Die(x.Setting(), r.status());
          secs[ci] += dt;
          x.latency_ms.push_back(dt * 1e3);
          std::vector<int64_t> ids = Ids(r->results(0));
          if (round == 0) {
            x.ids[q] = std::move(ids);
            predicted_sum[ci] += r->results(0).predicted_recall();
          } else if (ids != x.ids[q]) {
            ++x.changed;
          }
        }
        x.server_cpu_s += ProcessCpuSeconds(srv->pid()) - cpu0;
        x.server_queries += q1 - q0;
      }
    }
    const double wall = NowSeconds() - wall0;
    others_single.push_back((MachineBusySeconds(false) - busy0 - (ProcessCpuSeconds() - self0) -
                             (ProcessCpuSeconds(srv->pid()) - srv0)) /
                            wall);
    for (size_t ci = 0; ci < nc; ++ci) cfg[ci].seconds.push_back(secs[ci]);
    std::printf("  round %d single  %.1f s, others' cores %.2f, load average %s\n", round + 1,
                wall, others_single.back(), LoadAverage().c_str());
    std::fflush(stdout);
  }

  // ---- recall
  for (size_t ci = 0; ci < nc; ++ci) {
    Config& x = cfg[ci];
    const Filter& f = filters[x.filter];
    double sum = 0;
    for (size_t q = 0; q < nq; ++q) {
      sum += x.kind == kMulti
                 ? MvRecall(f, q, x.ids[q], mv_base, queries.row(q))
                 : Recall(f.gt, q, x.ids[q].data(), x.ids[q].size(), base, queries.row(q),
                          f.allowed);
    }
    x.recall = sum / static_cast<double>(nq);
    x.predicted = predicted_sum[ci] / static_cast<double>(nq);
  }
  auto median_qps = [&](const Config& x, bool batched) {
    std::vector<double> v;
    for (double s : batched ? x.batch_seconds : x.seconds) v.push_back(nq / s);
    return Median(v);
  };
  auto median_ratio = [&](const Config& a, const Config& b, bool batched) {
    const auto& sa = batched ? a.batch_seconds : a.seconds;
    const auto& sb = batched ? b.batch_seconds : b.seconds;
    std::vector<double> v;
    for (size_t r = 0; r < sa.size() && r < sb.size(); ++r) v.push_back(sb[r] / sa[r]);
    return Median(v);
  };
  auto cpu_us = [&](const Config& x) {
    return 1e6 * x.server_cpu_s / static_cast<double>(std::max<size_t>(1, x.server_queries));
  };

  // ---- per cell: the best hand-picked point reaching its recall, the
  // floor, the hand-picked points landing in its band
  struct Cell {
    size_t ci = 0;
    size_t best = SIZE_MAX;  // the matched hand-picked point
    size_t qualifying = 0;
    double ratio = std::nan("");
    double batch_ratio = std::nan("");
    std::string verdict;  // "yes", "floor", "above", "below"
    size_t in_band = 0;   // hand-picked points within kBand of the target
    size_t fastest_in_band = SIZE_MAX;
    // The lowest recall any setting reached (hand-picked, or the floor
    // probe's choice) and which one.
    double lowest = 2;
    std::string lowest_setting;
    bool exact_chosen = false, exact_cheapest = false;
    bool ann_at_or_below = false;  // a hand-picked ANN setting reached <= target + kBand
    double best_ann = -1;          // the highest recall of a hand-picked ANN setting
    // An exact scan was chosen and no hand-picked ANN setting reaching
    // target - kBand is faster than the hand-picked exact search: the
    // cheapest plan that meets the target is exact (recall 1).
    bool exact_cheapest_reaching = false;
  };
  // Recall comparisons allow for the sum's rounding (1.0 - 0.99 > 0.01).
  constexpr double kEps = 1e-9;
  std::vector<Cell> cells;
  for (size_t ci = 0; ci < nc; ++ci) {
    if (cfg[ci].mode != Mode::kTarget || cfg[ci].probe) continue;
    const Config& x = cfg[ci];
    Cell cell;
    cell.ci = ci;
    cell.exact_chosen = absl::StrContains(x.choice(), "exact scan");
    double best_qps = -1, fastest_band = -1, exact_qps = -1, fastest_ann_at_or_below = -1;
    double fastest_ann_reaching = -1;
    for (size_t hi = 0; hi < nc; ++hi) {
      const Config& h = cfg[hi];
      if (h.kind != x.kind || h.filter != x.filter) continue;
      if (h.probe && h.recall < cell.lowest) {
        cell.lowest = h.recall;
        cell.lowest_setting = absl::StrCat("target ", h.target, ": ", ShortChoice(h.choice()));
      }
      if (!h.hand()) continue;
      const double qps = median_qps(h, false);
      if (h.recall < cell.lowest) {
        cell.lowest = h.recall;
        cell.lowest_setting = h.Setting();
      }
      if (h.mode == Mode::kExact) {
        exact_qps = qps;
      } else {
        cell.best_ann = std::max(cell.best_ann, h.recall);
        if (h.recall >= x.target - kBand - kEps) {
          fastest_ann_reaching = std::max(fastest_ann_reaching, qps);
        }
        if (h.recall <= x.target + kBand + kEps) {
          fastest_ann_at_or_below = std::max(fastest_ann_at_or_below, qps);
        }
      }
      if (h.recall >= x.recall - kTolerance) {
        ++cell.qualifying;
        if (qps > best_qps) {
          best_qps = qps;
          cell.best = hi;
        }
      }
      if (std::abs(h.recall - x.target) <= kBand + kEps) {
        ++cell.in_band;
        if (qps > fastest_band) {
          fastest_band = qps;
          cell.fastest_in_band = hi;
        }
      }
    }
    if (cell.best != SIZE_MAX) cell.ratio = median_ratio(x, cfg[cell.best], false);
    cell.exact_cheapest = exact_qps > 0 && fastest_ann_at_or_below < exact_qps;
    cell.ann_at_or_below = fastest_ann_at_or_below >= 0;
    cell.exact_cheapest_reaching = cell.exact_chosen && exact_qps > 0 &&
                                   fastest_ann_reaching < exact_qps;
    const double d = x.recall - x.target;
    if (std::abs(d) <= kBand + kEps) {
      cell.verdict = "yes";
    } else if (d < 0) {
      cell.verdict = "below";
    } else {
      // Above the band: at the floor when the cheapest possible setting
      // already overshoots -- every setting measured (hand-picked, or what
      // the lowest target chose) reached more than target + kBand (HNSW's
      // ef cannot go below k) -- or when an exact scan was chosen and no
      // hand-picked ANN setting at or below target + kBand is faster than
      // the exact search, or none that reaches target - kBand is (the
      // multi-vector field: unfiltered no setting gets there, at 10% those
      // that do are slower than an exact scan of the matching rows).
      const bool floor = cell.lowest > x.target + kBand + kEps ||
                         (cell.exact_chosen && (cell.exact_cheapest || cell.exact_cheapest_reaching));
      cell.verdict = floor ? "floor" : "above";
    }
    cells.push_back(cell);
  }

  // ---- batched: the cells and their matched points
  std::vector<size_t> batch_set;
  if (args.batched) {
    std::set<size_t> s;
    for (const Cell& cell : cells) {
      s.insert(cell.ci);
      if (cell.best != SIZE_MAX) s.insert(cell.best);
    }
    batch_set.assign(s.begin(), s.end());
    std::vector<std::vector<v1::SearchRequest>> batched(nc);
    for (size_t ci : batch_set) {
      for (size_t sl = 0; sl < nslices; ++sl) {
        batched[ci].push_back(MakeRequest(cfg[ci], filters[cfg[ci].filter], queries, sl * slice,
                                          std::min(slice, nq - sl * slice), k));
      }
      if (auto r = c.Search(batched[ci][0]); !r.ok()) Die(cfg[ci].Setting(), r.status());
    }
    const size_t nb = batch_set.size();
    for (int round = 0; round < args.rounds; ++round) {
      std::vector<double> secs(nc, 0);
      const double busy0 = MachineBusySeconds(false), self0 = ProcessCpuSeconds(),
                   srv0 = ProcessCpuSeconds(srv->pid()), wall0 = NowSeconds();
      for (size_t sl = 0; sl < nslices; ++sl) {
        const size_t turn = round * nslices + sl;
        for (size_t j = 0; j < nb; ++j) {
          size_t bi = (j + turn) % nb;
          if (turn % 2) bi = nb - 1 - bi;
          const size_t ci = batch_set[bi];
          const double t0 = NowSeconds();
          auto r = c.Search(batched[ci][sl]);
          secs[ci] += NowSeconds() - t0;
          if (!r.ok()) Die(cfg[ci].Setting(), r.status());
        }
      }
      const double wall = NowSeconds() - wall0;
      others_batched.push_back((MachineBusySeconds(false) - busy0 -
                                (ProcessCpuSeconds() - self0) -
                                (ProcessCpuSeconds(srv->pid()) - srv0)) /
                               wall);
      for (size_t ci : batch_set) cfg[ci].batch_seconds.push_back(secs[ci]);
      std::printf("  round %d batched %.1f s, others' cores %.2f, load average %s\n", round + 1,
                  wall, others_batched.back(), LoadAverage().c_str());
      std::fflush(stdout);
    }
    for (Cell& cell : cells) {
      if (cell.best != SIZE_MAX) cell.batch_ratio = median_ratio(cfg[cell.ci], cfg[cell.best], true);
    }
  }

  // ---- tables
  std::ostringstream out;
  out << "Target cells: recall@" << k << " over " << nq
      << " queries (first round) against the exact (filtered) top " << k
      << " (multi-vector: exact MaxSim); predicted: mean SearchResult.predicted_recall; chosen: "
         "explain's recall_choice (first query; multi-vector: its first indexed segment's); "
         "multi-vector hand-picked \"rf=N\": refine_factor N, k x N candidates reranked by "
         "MaxSim, ef left to the server; QPS: single-query RPCs, 1 client thread, median over "
      << args.rounds
      << " rounds. Hand-picked: the fastest point of the sweep (AUTO strategy, FILTERED_INDEX "
         "forced \"(FI)\", or exact) whose recall >= the cell's - "
      << kTolerance
      << "; ratio: median of per-round QPS ratios cell / that point. In band: |achieved - "
         "target| <= "
      << kBand
      << "; floor: above the band where the cheapest possible setting already overshoots "
         "(every setting measured -- hand-picked, or what target "
      << args.floor_target << " chose -- reached more than target + " << kBand
      << "), or an exact scan was chosen and no hand-picked ANN setting at or below target + "
      << kBand << " is faster than the hand-picked exact search, or none reaching target - "
      << kBand << " is.\n\n";
  std::vector<std::string> header = {
      "kind", "filter", "target", "achieved", "predicted", "abs(ach-pred)", "ach-target",
      "in band", "chosen", "strategy", "QPS", "p50 ms", "quiverd CPU us", "hand-picked",
      "its recall", "its QPS", "QPS ratio"};
  if (args.batched) {
    header.push_back("batched QPS");
    header.push_back("batched ratio");
  }
  Table t(header);
  nlohmann::json jcells = nlohmann::json::array();
  for (const Cell& cell : cells) {
    const Config& x = cfg[cell.ci];
    const bool has_best = cell.best != SIZE_MAX;
    const Config* b = has_best ? &cfg[cell.best] : nullptr;
    std::vector<std::string> row = {
        kKinds[x.kind].label,
        filters[x.filter].name,
        Fixed(x.target, 2),
        Fixed(x.recall, 4),
        Fixed(x.predicted, 4),
        Fixed(std::abs(x.recall - x.predicted), 4),
        Signed(x.recall - x.target, 4),
        cell.verdict,
        ShortChoice(x.choice()),
        x.strategy,
        Thousands(median_qps(x, false)),
        Fixed(Percentile(x.latency_ms, 50), 3),
        Fixed(cpu_us(x), 0),
        has_best ? b->Setting() + (b->mode == Mode::kHand && x.filter > 0
                                       ? absl::StrCat(" [", b->strategy, "]")
                                       : "")
                 : "none",
        has_best ? Fixed(b->recall, 4) : "-",
        has_best ? Thousands(median_qps(*b, false)) : "-",
        Fixed(cell.ratio, 3)};
    if (args.batched) {
      row.push_back(Thousands(median_qps(x, true)));
      row.push_back(Fixed(cell.batch_ratio, 3));
    }
    t.AddRow(std::move(row));
    nlohmann::json j = {
        {"kind", kKinds[x.kind].name},
        {"kind_label", kKinds[x.kind].label},
        {"filter", filters[x.filter].expr},
        {"target", x.target},
        {"achieved", x.recall},
        {"predicted_mean", x.predicted},
        {"explain_predicted", x.explain_predicted},
        {"recall_choice", x.recall_choice},
        {"first_indexed_segment_choice", x.first_choice},
        {"strategy", x.strategy},
        {"reason", x.reason},
        {"verdict", cell.verdict},
        {"qps_per_round", std::vector<double>()},
        {"qps", median_qps(x, false)},
        {"p50_ms", Percentile(x.latency_ms, 50)},
        {"p99_ms", Percentile(x.latency_ms, 99)},
        {"quiverd_cpu_us_per_query", cpu_us(x)},
        {"answers_changed_after_first_round", x.changed},
        {"qualifying_hand_points", cell.qualifying},
        {"hand_points_in_band", cell.in_band},
        {"lowest_recall_any_setting", cell.lowest},
        {"lowest_recall_setting", cell.lowest_setting},
        {"exact_chosen", cell.exact_chosen},
        {"exact_cheapest", cell.exact_cheapest},
        {"exact_cheapest_reaching", cell.exact_cheapest_reaching},
        {"best_hand_ann_recall", cell.best_ann},
        {"fastest_in_band",
         cell.fastest_in_band != SIZE_MAX ? cfg[cell.fastest_in_band].Setting() : ""},
        {"best_hand", has_best ? b->Setting() : ""},
        {"best_hand_strategy", has_best ? b->strategy : ""},
        {"best_hand_recall", has_best ? b->recall : 0.0},
        {"best_hand_qps", has_best ? median_qps(*b, false) : 0.0},
        {"best_hand_cpu_us_per_query", has_best ? cpu_us(*b) : 0.0},
        {"qps_ratio", cell.ratio}};
    for (double s : x.seconds) j["qps_per_round"].push_back(nq / s);
    if (args.batched) {
      j["batched_qps"] = median_qps(x, true);
      j["batched_best_hand_qps"] = has_best ? median_qps(*b, true) : 0.0;
      j["batched_qps_ratio"] = cell.batch_ratio;
    }
    jcells.push_back(j);
  }
  t.Print(out);

  // Summary.
  size_t in_band = 0, floor = 0, above = 0, below = 0, qps_ok = 0, qps_n = 0, batch_ok = 0;
  std::vector<std::string> misses;
  for (const Cell& cell : cells) {
    const Config& x = cfg[cell.ci];
    if (cell.verdict == "yes") ++in_band;
    if (cell.verdict == "floor") ++floor;
    if (cell.verdict == "above") ++above;
    if (cell.verdict == "below") ++below;
    if (cell.verdict != "yes") {
      misses.push_back(absl::StrCat(
          kKinds[x.kind].label, " ", filters[x.filter].name, " ", x.target, ": ", cell.verdict,
          " (achieved ", Fixed(x.recall, 4), ", predicted ", Fixed(x.predicted, 4), ", ",
          ShortChoice(x.choice()), "; lowest recall of any setting ", Fixed(cell.lowest, 4),
          " (", cell.lowest_setting, ")",
          cell.exact_chosen && cell.best_ann >= 0 && cell.best_ann < x.target - kBand - kEps
              ? absl::StrCat("; exact scan chosen; no hand-picked ANN setting reached target - ",
                             kBand, " (the best: ", Fixed(cell.best_ann, 4), ")")
          : cell.exact_cheapest_reaching
              ? absl::StrCat("; exact scan chosen; every hand-picked ANN setting reaching "
                             "target - ",
                             kBand, " is slower than the hand-picked exact search")
          : cell.exact_chosen
              ? (cell.ann_at_or_below
                     ? absl::StrCat("; exact scan chosen, hand-picked exact ",
                                    cell.exact_cheapest ? "faster than" : "slower than",
                                    " the fastest hand-picked ANN setting at or below target + ",
                                    kBand)
                     : absl::StrCat("; exact scan chosen; no hand-picked ANN setting reached "
                                    "target + ",
                                    kBand, " or less"))
              : "",
          "; hand-picked points within +-", kBand,
          " of the target: ", cell.in_band,
          cell.fastest_in_band != SIZE_MAX
              ? absl::StrCat(", fastest ", cfg[cell.fastest_in_band].Setting(), " at ",
                             Thousands(median_qps(cfg[cell.fastest_in_band], false)), " QPS")
              : "",
          ")"));
    }
    if (!std::isnan(cell.ratio)) {
      ++qps_n;
      if (cell.ratio >= kQpsGoal) ++qps_ok;
      if (cell.batch_ratio >= kQpsGoal) ++batch_ok;
    }
  }
  const size_t ncells = cells.size();
  out << "\nrecall: " << in_band << " of " << ncells << " cells within +-" << kBand
      << " of the target (" << Fixed(100.0 * in_band / std::max<size_t>(1, ncells), 0)
      << "%); " << floor << " above it at the floor (not counted as passes), " << above
      << " above it otherwise, " << below << " below it; excluding the floor cells: " << in_band
      << " of " << ncells - floor << "\n";
  out << "cost: " << qps_ok << " of " << qps_n << " cells at QPS ratio >= " << kQpsGoal
      << " single";
  if (args.batched) out << ", " << batch_ok << " of " << qps_n << " batched";
  out << "\n";
  for (const std::string& m : misses) out << "  not in band: " << m << "\n";
  // Prediction bias per kind: achieved - predicted.
  for (size_t kd : kinds) {
    std::vector<double> all, ann;
    for (const Cell& cell : cells) {
      const Config& x = cfg[cell.ci];
      if (x.kind != kd) continue;
      all.push_back(x.recall - x.predicted);
      if (!absl::StrContains(x.choice(), "exact scan")) ann.push_back(x.recall - x.predicted);
    }
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double d : v) s += d;
      return v.empty() ? std::nan("") : s / static_cast<double>(v.size());
    };
    auto minmax = [](const std::vector<double>& v) {
      if (v.empty()) return std::string("-");
      return absl::StrCat(Signed(*std::min_element(v.begin(), v.end()), 4), "..",
                          Signed(*std::max_element(v.begin(), v.end()), 4));
    };
    out << "achieved - predicted, " << kKinds[kd].label << ": mean " << Signed(mean(all), 4)
        << " over " << all.size() << " cells; over the " << ann.size()
        << " cells searched by the index: mean " << Signed(mean(ann), 4) << ", range "
        << minmax(ann) << "\n";
  }
  for (size_t kd : kinds) {
    for (const Config& x : cfg) {
      if (x.kind == kd && x.mode == Mode::kTarget && x.filter == 0) {
        out << "calibration " << kKinds[kd].label << ": " << CalibrationOf(x.choice())
            << "\n";
        break;
      }
    }
  }
  for (const Config& x : cfg) {
    if (!x.probe) continue;
    out << "floor probe " << kKinds[x.kind].label << " filter " << filters[x.filter].name
        << ": target " << x.target << " chose " << ShortChoice(x.choice()) << " ["
        << x.strategy << "], achieved " << Fixed(x.recall, 4) << ", predicted "
        << Fixed(x.predicted, 4) << ", " << Thousands(median_qps(x, false)) << " QPS\n";
  }
  for (const std::string& n : notes) out << "note: " << n << "\n";
  size_t changed = 0;
  for (const Config& x : cfg) changed += x.changed;
  out << "answers that changed between rounds: " << changed << "\n";
  out << "others' cores during single rounds: "
      << absl::StrJoin(others_single, ", ",
                       [](std::string* s, double v) { absl::StrAppend(s, Fixed(v, 2)); })
      << "\n";
  if (args.batched) {
    out << "others' cores during batched rounds: "
        << absl::StrJoin(others_batched, ", ",
                         [](std::string* s, double v) { absl::StrAppend(s, Fixed(v, 2)); })
        << "\n";
  }

  // The hand-picked sweep's Pareto frontier per kind and filter: points no
  // other point beats on both recall and QPS (every point is in the JSON).
  out << "\nHand-picked sweep, Pareto frontier (no other point of the same kind and filter has "
         "both higher recall and higher QPS); strategy: what the planner ran (explain, first "
         "query).\n\n";
  Table pt({"kind", "filter", "setting", "strategy", "recall", "QPS", "p50 ms",
            "quiverd CPU us"});
  nlohmann::json jhand = nlohmann::json::array();
  for (size_t kd : kinds) {
    for (size_t fi = 0; fi < filters.size(); ++fi) {
      std::vector<size_t> pts;
      for (size_t ci = 0; ci < nc; ++ci) {
        if (cfg[ci].hand() && cfg[ci].kind == kd && cfg[ci].filter == fi) pts.push_back(ci);
      }
      std::sort(pts.begin(), pts.end(), [&](size_t a, size_t b) {
        return cfg[a].recall != cfg[b].recall ? cfg[a].recall < cfg[b].recall
                                              : median_qps(cfg[a], false) >
                                                    median_qps(cfg[b], false);
      });
      for (size_t i = 0; i < pts.size(); ++i) {
        const Config& h = cfg[pts[i]];
        bool dominated = false;
        for (size_t o : pts) {
          const double qo = median_qps(cfg[o], false), qh = median_qps(h, false);
          if (o != pts[i] && cfg[o].recall >= h.recall && qo >= qh &&
              (cfg[o].recall > h.recall || qo > qh)) {
            dominated = true;
            break;
          }
        }
        jhand.push_back({{"kind", kKinds[kd].name},
                         {"filter", filters[fi].expr},
                         {"setting", h.Setting()},
                         {"strategy", h.strategy},
                         {"recall", h.recall},
                         {"qps", median_qps(h, false)},
                         {"p50_ms", Percentile(h.latency_ms, 50)},
                         {"quiverd_cpu_us_per_query", cpu_us(h)},
                         {"pareto", !dominated},
                         {"answers_changed_after_first_round", h.changed}});
        if (dominated) continue;
        pt.AddRow({kKinds[kd].label, filters[fi].name, h.Setting(), h.strategy,
                   Fixed(h.recall, 4), Thousands(median_qps(h, false)),
                   Fixed(Percentile(h.latency_ms, 50), 3), Fixed(cpu_us(h), 0)});
      }
    }
  }
  pt.Print(out);
  std::printf("\n%s", out.str().c_str());
  std::printf("total %.0f s; load average %s\n", NowSeconds() - t_start, LoadAverage().c_str());

  report["config"] = {{"rows", base.n},
                      {"dim", base.dim},
                      {"queries", nq},
                      {"k", k},
                      {"targets", args.targets},
                      {"kinds", args.kinds},
                      {"hnsw_ef", args.hnsw_ef},
                      {"ivf_nprobe", args.ivf_nprobe},
                      {"pq_nprobe", args.pq_nprobe},
                      {"pq_refine", args.pq_refine},
                      {"forced", args.forced},
                      {"forced_hnsw_ef", args.forced_hnsw_ef},
                      {"forced_pq_nprobe", args.forced_pq_nprobe},
                      {"floor_target", args.floor_target},
                      {"forced_pq_refine", args.forced_pq_refine},
                      {"mv_rows", mv_base.n},
                      {"mv_refine", args.mv_refine},
                      {"forced_mv_refine", args.forced_mv_refine},
                      {"rounds", args.rounds},
                      {"slice", slice},
                      {"seed", args.seed},
                      {"filter_rows", {base.n, filters[1].subset.size(), filters[2].subset.size()}},
                      {"quiverd_argv", srv->argv()},
                      {"quiverd_env", qo.env},
                      {"segments", segment_desc},
                      {"log", log_lines},
                      {"upsert_seconds", upsert_s},
                      {"indexed_seconds", indexed_s},
                      {"calibrated_seconds", calibrated_s},
                      {"calibrated_seconds_per_collection", [&] {
                         nlohmann::json j = nlohmann::json::object();
                         for (const auto& [kd, t] : calibrated_at) j[kKinds[kd].coll] = t;
                         return j;
                       }()}};
  report["cells"] = jcells;
  report["notes"] = notes;
  nlohmann::json jprobes = nlohmann::json::array();
  for (const Config& x : cfg) {
    if (!x.probe) continue;
    jprobes.push_back({{"kind", kKinds[x.kind].name}, {"filter", filters[x.filter].expr},
                       {"target", x.target}, {"recall_choice", x.recall_choice},
                       {"strategy", x.strategy}, {"achieved", x.recall},
                       {"predicted_mean", x.predicted}, {"qps", median_qps(x, false)}});
  }
  report["floor_probes"] = jprobes;
  report["hand_picked"] = jhand;
  if (multi) {
    report["multi_vector"] = {
        {"collection", kKinds[kMulti].coll},
        {"field", kMvField},
        {"rows", mv_base.n},
        {"strips", kStrips},
        {"strip_dim", kStripDim},
        {"metric", "IP"},
        {"filter_rows", {mv_base.n, filters[1].mv_count, filters[2].mv_count}},
        {"truth", "server exact MaxSim (params.exact), ties re-scored here in double"},
        {"truth_seconds", mv_truth_s},
        {"server_score_max_relative_diff", mv_score_diff},
        {"refine", args.mv_refine},
        {"forced_refine", args.forced_mv_refine}};
  }
  report["summary"] = {{"cells", ncells}, {"in_band", in_band}, {"floor", floor},
                       {"above", above}, {"below", below}, {"qps_ratio_ok", qps_ok},
                       {"qps_ratio_cells", qps_n}, {"batched_qps_ratio_ok", batch_ok}};
  report["others_cores_single"] = others_single;
  report["others_cores_batched"] = others_batched;
  report["answers_changed"] = changed;
  report["table"] = out.str();
  if (absl::Status st = srv->Stop(); !st.ok()) {
    std::fprintf(stderr, "recall_target_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }
  FinishReport(&report, args.json_out);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
