// compressed_bench: how fast do Quiver's compressed kinds (IVF_SQ8, IVF_PQ,
// HNSW_SQ8) search, against FAISS's own search of the same saved index, and
// what recall@10 do they reach raw and after an exact refine of k * refine
// candidates?
//
// Fashion-MNIST (the first --n training images as the base, the first
// --queries test images as queries; --sim cosine normalizes both). Each kind
// is built by Quiver (--build-threads), saved, and read back with
// faiss::read_index, so FAISS searches exactly the lists / graph and codes
// Quiver searches (with its precomputed table for IVF-PQ L2: its fastest
// path). Kinds FAISS cannot read (HNSW: hnswlib's format) run without the
// FAISS columns, as a reference. For each nprobe (IVF) or ef (graphs),
// interleaved over --rounds (order alternating per round), on one thread
// (OpenMP pinned to 1):
//   quiver      VectorIndex::Search, one query per call, k candidates;
//   faiss-1     FAISS search, one query a call (IVF: SearchParametersIVF;
//               HNSW: hnsw.efSearch, as 1.7.3 ignores per-query params);
//   faiss-batch the same over all queries in one call (its best case).
// Reported: median QPS per column, quiver/faiss-1, raw recall@10 of both
// (they should agree for IVF: the same codes), recall@10 after an exact
// rerank of the quiver candidates (k = 10 * refine, from the float vectors
// in memory), build seconds and MemoryBytes / (n * dim * 4). JSON goes to
// bench_results/compressed_bench.json next to the binary.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/index_io.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "index/vector_index.h"
#include "nlohmann/json.hpp"

namespace {

using quiver::index::Neighbor;
using quiver::index::SearchParams;
using quiver::index::Similarity;
using quiver::index::TopK;
using quiver::index::VectorIndex;
using Clock = std::chrono::steady_clock;
using quiver::bench::Fixed;
using quiver::bench::Median;
using quiver::bench::Table;

constexpr size_t kK = 10;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Normalize(std::vector<float>* v, size_t dim) {
  for (size_t i = 0; i < v->size() / dim; ++i) {
    float* x = v->data() + i * dim;
    double s = 0;
    for (size_t j = 0; j < dim; ++j) s += double{x[j]} * x[j];
    const float inv = s > 0 ? static_cast<float>(1 / std::sqrt(s)) : 0.0f;
    for (size_t j = 0; j < dim; ++j) x[j] *= inv;
  }
}

double Exact(const float* a, const float* b, size_t dim, Similarity sim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) {
    s += sim == Similarity::kL2 ? (double{a[i]} - b[i]) * (double{a[i]} - b[i])
                                : -double{a[i]} * b[i];
  }
  return s;
}

struct Data {
  size_t dim = 0, n = 0, nq = 0;
  std::vector<float> base, queries;
  std::vector<double> kth;  // per query: the 10th exact distance
};

// Exact 10th distances by FAISS flat search (BLAS), checked in double below.
void GroundTruth(Data* d, Similarity sim) {
  std::unique_ptr<faiss::IndexFlat> flat;
  if (sim == Similarity::kL2) {
    flat = std::make_unique<faiss::IndexFlatL2>(d->dim);
  } else {
    flat = std::make_unique<faiss::IndexFlatIP>(d->dim);
  }
  flat->add(d->n, d->base.data());
  const size_t wide = 50;  // re-sorted in double: float ties at the 10th
  std::vector<float> dist(d->nq * wide);
  std::vector<faiss::Index::idx_t> ids(d->nq * wide);
  flat->search(d->nq, d->queries.data(), wide, dist.data(), ids.data());
  d->kth.resize(d->nq);
  for (size_t q = 0; q < d->nq; ++q) {
    std::vector<double> exact;
    for (size_t i = 0; i < wide; ++i) {
      exact.push_back(Exact(d->queries.data() + q * d->dim,
                            d->base.data() + ids[q * wide + i] * d->dim, d->dim, sim));
    }
    std::sort(exact.begin(), exact.end());
    d->kth[q] = exact[kK - 1];
  }
}

double Recall(const Data& d, Similarity sim, const std::vector<std::vector<int64_t>>& got) {
  double sum = 0;
  for (size_t q = 0; q < d.nq; ++q) {
    const double tol = 1e-5 * std::max(1.0, std::abs(d.kth[q]));
    size_t hits = 0;
    for (size_t i = 0; i < std::min(kK, got[q].size()); ++i) {
      if (got[q][i] < 0) continue;
      hits += Exact(d.queries.data() + q * d.dim, d.base.data() + got[q][i] * d.dim, d.dim,
                    sim) <= d.kth[q] + tol;
    }
    sum += static_cast<double>(std::min(hits, kK)) / kK;
  }
  return sum / d.nq;
}

// The best kK of `candidates` by exact distance: what the query layer's
// rerank does with the rerank table.
std::vector<int64_t> Refine(const Data& d, Similarity sim, size_t q,
                            const std::vector<Neighbor>& candidates) {
  std::vector<std::pair<double, int64_t>> scored;
  for (const Neighbor& c : candidates) {
    scored.emplace_back(
        Exact(d.queries.data() + q * d.dim, d.base.data() + c.id * d.dim, d.dim, sim),
        static_cast<int64_t>(c.id));
  }
  std::sort(scored.begin(), scored.end());
  std::vector<int64_t> ids;
  for (size_t i = 0; i < std::min(kK, scored.size()); ++i) ids.push_back(scored[i].second);
  return ids;
}

// ------------------------------------------------------------ phases

struct Args {
  size_t n = 60000, nq = 1000;
  int rounds = 3, build_threads = 2, refine = 0;
  std::string kinds = "IVF_SQ8,IVF_PQ,HNSW_SQ8", nprobes = "4,8,16,32", efs = "16,32,64,128";
  std::string sim_name = "l2", m;
  bool faiss_build = false;
  Similarity sim = Similarity::kL2;
};

// Fashion-MNIST (normalized for cosine) with its exact 10th distances.
bool LoadData(const Args& args, Data* d) {
  size_t dim_q = 0;
  d->base = quiver::testing::FashionImages("train", args.n, &d->dim);
  d->queries = quiver::testing::FashionImages("t10k", args.nq, &dim_q);
  if (d->dim == 0 || dim_q != d->dim) {
    std::fprintf(stderr, "cannot read Fashion-MNIST under %s\n", quiver::testing::kFashionDir);
    return false;
  }
  d->n = d->base.size() / d->dim;
  d->nq = d->queries.size() / d->dim;
  if (args.sim == Similarity::kInnerProduct) {
    Normalize(&d->base, d->dim);
    Normalize(&d->queries, d->dim);
  }
  GroundTruth(d, args.sim);
  return true;
}

// One kind, built by Quiver and read back by FAISS where it can.
struct Built {
  std::string kind;
  std::unique_ptr<VectorIndex> index;
  std::unique_ptr<faiss::Index> faiss_any;  // null: FAISS cannot read it
  faiss::IndexIVF* faiss_ivf = nullptr;     // views of faiss_any
  faiss::IndexHNSW* faiss_hnsw = nullptr;
  bool graph = false;
  double build_s = 0;
  double memory_ratio = 0;  // MemoryBytes / the floats
  int refine = 1;
};

// FAISS's own train + add of the same kind (same nlist, m, threads), timed
// against Quiver's build.
void TimeFaissBuild(const Args& args, const Data& d, const Built& b) {
  omp_set_num_threads(args.build_threads);
  faiss::IndexFlat* quantizer = args.sim == Similarity::kL2
                                    ? static_cast<faiss::IndexFlat*>(new faiss::IndexFlatL2(d.dim))
                                    : new faiss::IndexFlatIP(d.dim);
  std::unique_ptr<faiss::IndexIVF> own;
  const auto metric = args.sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  if (b.kind == "IVF_PQ") {
    auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(b.faiss_ivf);
    own = std::make_unique<faiss::IndexIVFPQ>(quantizer, d.dim, b.faiss_ivf->nlist, pq->pq.M, 8,
                                              metric);
  } else {
    own = std::make_unique<faiss::IndexIVFScalarQuantizer>(
        quantizer, d.dim, b.faiss_ivf->nlist, faiss::ScalarQuantizer::QT_8bit, metric, false);
  }
  own->own_fields = true;
  const auto a = Clock::now();
  own->train(d.n, d.base.data());
  own->add(d.n, d.base.data());
  std::printf("FAISS's own %s train + add: %.1f s (%d threads); Quiver: %.1f s\n\n",
              b.kind.c_str(), Seconds(a, Clock::now()), args.build_threads, b.build_s);
  omp_set_num_threads(1);
}

// Builds `kind` with Quiver, saves it to `tmp` and reads it back with FAISS.
absl::StatusOr<Built> Build(const Args& args, const Data& d, const std::string& kind,
                            const std::string& tmp) {
  quiver::index::IndexSpec spec;
  spec.type = kind;
  spec.dim = static_cast<uint32_t>(d.dim);
  spec.similarity = args.sim;
  if (kind == "IVF_PQ" && !args.m.empty()) spec.params["m"] = args.m;
  Built b;
  b.kind = kind;
  absl::StatusOr<std::unique_ptr<VectorIndex>> created = quiver::index::CreateIndex(spec);
  if (!created.ok()) return created.status();
  b.index = *std::move(created);
  const auto t0 = Clock::now();
  if (absl::Status s = b.index->Build(d.base.data(), d.n, args.build_threads); !s.ok()) return s;
  b.build_s = Seconds(t0, Clock::now());
  if (absl::Status s = b.index->Save(tmp); !s.ok()) return s;
  try {
    b.faiss_any.reset(faiss::read_index(tmp.c_str()));
  } catch (const std::exception&) {
    // Not a FAISS file (HNSW): no FAISS columns.
  }
  std::filesystem::remove(tmp);
  b.faiss_ivf = dynamic_cast<faiss::IndexIVF*>(b.faiss_any.get());
  b.faiss_hnsw = dynamic_cast<faiss::IndexHNSW*>(b.faiss_any.get());
  b.graph = b.index->shape().kind == quiver::index::IndexShape::Kind::kGraph;
  if (args.faiss_build && b.faiss_ivf != nullptr) TimeFaissBuild(args, d, b);
  b.memory_ratio =
      static_cast<double>(b.index->MemoryBytes()) / (double(d.n) * d.dim * sizeof(float));
  b.refine = args.refine > 0 ? args.refine
                             : (kind == "IVF_PQ" ? 10 : b.index->approximate() ? 4 : 1);
  return b;
}

// One nprobe (IVF) or ef (graphs): QPS of each column over interleaved
// rounds, raw and refined recall.
struct Point {
  uint32_t knob = 0;
  double q_ours = 0, q_f1 = 0, q_fb = 0;  // FAISS: NaN where it cannot read the kind
  double r_ours = 0, r_faiss = 0, r_refined = 0;
};

Point Measure(const Args& args, const Data& d, Built& b, uint32_t knob) {
  SearchParams params;
  params.nprobe = knob;
  params.ef = knob;
  if (b.faiss_hnsw != nullptr) b.faiss_hnsw->hnsw.efSearch = static_cast<int>(knob);
  faiss::SearchParametersIVF fparams;
  fparams.nprobe = knob;
  std::vector<double> ours, faiss1, faissb;
  std::vector<std::vector<int64_t>> ours_ids(d.nq), faiss_ids(d.nq), refined(d.nq);
  auto run_ours = [&] {
    const auto a = Clock::now();
    for (size_t q = 0; q < d.nq; ++q) {
      TopK top(kK);
      (void)b.index->Search(d.queries.data() + q * d.dim, params, nullptr, &top);
      std::vector<Neighbor> r = top.Take();
      ours_ids[q].clear();
      for (const Neighbor& nb : r) ours_ids[q].push_back(static_cast<int64_t>(nb.id));
    }
    ours.push_back(d.nq / Seconds(a, Clock::now()));
  };
  const faiss::SearchParameters* fp = b.faiss_ivf != nullptr ? &fparams : nullptr;
  auto run_faiss1 = [&] {
    if (b.faiss_any == nullptr) return;
    std::vector<float> dist(kK);
    std::vector<faiss::Index::idx_t> ids(kK);
    const auto a = Clock::now();
    for (size_t q = 0; q < d.nq; ++q) {
      b.faiss_any->search(1, d.queries.data() + q * d.dim, kK, dist.data(), ids.data(), fp);
      faiss_ids[q].assign(ids.begin(), ids.end());
    }
    faiss1.push_back(d.nq / Seconds(a, Clock::now()));
  };
  auto run_faissb = [&] {
    if (b.faiss_any == nullptr) return;
    std::vector<float> dist(d.nq * kK);
    std::vector<faiss::Index::idx_t> ids(d.nq * kK);
    const auto a = Clock::now();
    b.faiss_any->search(d.nq, d.queries.data(), kK, dist.data(), ids.data(), fp);
    faissb.push_back(d.nq / Seconds(a, Clock::now()));
  };
  for (int r = 0; r < args.rounds; ++r) {
    if (r % 2 == 0) {
      run_ours();
      run_faiss1();
      run_faissb();
    } else {
      run_faissb();
      run_faiss1();
      run_ours();
    }
  }
  for (size_t q = 0; q < d.nq; ++q) {
    TopK top(kK * b.refine);
    (void)b.index->Search(d.queries.data() + q * d.dim, params, nullptr, &top);
    refined[q] = Refine(d, args.sim, q, top.Take());
  }
  Point p;
  p.knob = knob;
  p.r_ours = Recall(d, args.sim, ours_ids);
  p.r_faiss = b.faiss_any != nullptr ? Recall(d, args.sim, faiss_ids)
                                      : std::numeric_limits<double>::quiet_NaN();
  p.r_refined = Recall(d, args.sim, refined);
  p.q_ours = Median(ours);
  p.q_f1 = Median(faiss1);
  p.q_fb = Median(faissb);
  return p;
}

// The kind's table, its rows added to `report`.
void Report(const Args& args, const Data& d, const Built& b, const std::vector<Point>& points,
            nlohmann::json* report) {
  std::printf("## %s: build %.1f s (%d threads), MemoryBytes %.2f MB = %.4f of the floats\n\n",
              b.index->Describe().c_str(), b.build_s, args.build_threads,
              b.index->MemoryBytes() / 1e6, b.memory_ratio);
  Table t({b.graph ? "ef" : "nprobe", "quiver QPS", "faiss-1 QPS", "faiss-batch QPS",
           "quiver/faiss-1", "recall raw (quiver / faiss)",
           absl::StrCat("recall refined x", b.refine)});
  for (const Point& p : points) {
    t.AddRow({std::to_string(p.knob), Fixed(p.q_ours, 0), Fixed(p.q_f1, 0), Fixed(p.q_fb, 0),
              std::isnan(p.q_f1) ? "-" : Fixed(p.q_ours / p.q_f1, 2) + "x",
              Fixed(p.r_ours, 3) + " / " + Fixed(p.r_faiss, 3), Fixed(p.r_refined, 3)});
    report->push_back({{"kind", b.index->Describe()},
                       {"similarity", args.sim_name},
                       {"n", d.n},
                       {"nprobe", p.knob},
                       {"qps_quiver", p.q_ours},
                       {"qps_faiss_single", p.q_f1},
                       {"qps_faiss_batch", p.q_fb},
                       {"recall_raw_quiver", p.r_ours},
                       {"recall_raw_faiss", p.r_faiss},
                       {"refine", b.refine},
                       {"recall_refined", p.r_refined},
                       {"build_seconds", b.build_s},
                       {"memory_ratio", b.memory_ratio}});
  }
  std::ostringstream out;
  t.Print(out);
  std::printf("%s\n", out.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"compressed index kinds vs FAISS searching the same saved index"};
  Args args;
  app.add_option("--n", args.n, "base vectors (Fashion-MNIST train)");
  app.add_option("--queries", args.nq, "queries (Fashion-MNIST t10k)");
  app.add_option("--kinds", args.kinds, "comma-separated index kinds");
  app.add_option("--nprobe", args.nprobes, "comma-separated nprobe values (IVF kinds)");
  app.add_option("--ef", args.efs, "comma-separated ef values (graph kinds)");
  app.add_option("--rounds", args.rounds, "interleaved rounds (median reported)");
  app.add_option("--build-threads", args.build_threads);
  app.add_option("--sim", args.sim_name, "l2 or cosine");
  app.add_option("--m", args.m, "IVF_PQ sub-quantizers (default: the kind's default)");
  app.add_option("--refine", args.refine, "refine factor (default: 4 for SQ8, 10 for PQ)");
  app.add_flag("--faiss-build", args.faiss_build,
               "also time FAISS's own train + add of the same kind (same nlist, m, threads)");
  CLI11_PARSE(app, argc, argv);
  args.sim = args.sim_name == "cosine" ? Similarity::kInnerProduct : Similarity::kL2;
  omp_set_num_threads(1);

  Data d;
  if (!LoadData(args, &d)) return 1;
  std::printf("Fashion-MNIST %zu x %zu, %zu queries, %s, 1 search thread, %d rounds\n\n", d.n,
              d.dim, d.nq, args.sim_name.c_str(), args.rounds);

  const std::filesystem::path out_dir =
      std::filesystem::path(argv[0]).parent_path() / "bench_results";
  std::filesystem::create_directories(out_dir);
  const std::string tmp = (out_dir / absl::StrCat("compressed_bench.", getpid())).string();
  nlohmann::json report = nlohmann::json::array();
  for (const std::string& kind : std::vector<std::string>(absl::StrSplit(args.kinds, ','))) {
    absl::StatusOr<Built> b = Build(args, d, kind, tmp);
    if (!b.ok()) {
      std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
      return 1;
    }
    std::vector<Point> points;
    for (const std::string& knob :
         std::vector<std::string>(absl::StrSplit(b->graph ? args.efs : args.nprobes, ','))) {
      points.push_back(Measure(args, d, *b, static_cast<uint32_t>(std::stoul(knob))));
    }
    Report(args, d, *b, points, &report);
  }
  std::ofstream(out_dir / "compressed_bench.json") << report.dump(2) << "\n";
  return 0;
}
