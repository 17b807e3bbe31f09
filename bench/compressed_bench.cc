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
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"compressed index kinds vs FAISS searching the same saved index"};
  size_t n = 60000, nq = 1000;
  int rounds = 3, build_threads = 2, refine = 0;
  std::string kinds = "IVF_SQ8,IVF_PQ,HNSW_SQ8", nprobes = "4,8,16,32", sim_name = "l2", m;
  app.add_option("--n", n, "base vectors (Fashion-MNIST train)");
  app.add_option("--queries", nq, "queries (Fashion-MNIST t10k)");
  app.add_option("--kinds", kinds, "comma-separated index kinds");
  app.add_option("--nprobe", nprobes, "comma-separated nprobe values (IVF kinds)");
  std::string efs = "16,32,64,128";
  app.add_option("--ef", efs, "comma-separated ef values (graph kinds)");
  app.add_option("--rounds", rounds, "interleaved rounds (median reported)");
  app.add_option("--build-threads", build_threads);
  app.add_option("--sim", sim_name, "l2 or cosine");
  app.add_option("--m", m, "IVF_PQ sub-quantizers (default: the kind's default)");
  app.add_option("--refine", refine, "refine factor (default: 4 for SQ8, 10 for PQ)");
  bool faiss_build = false;
  app.add_flag("--faiss-build", faiss_build,
               "also time FAISS's own train + add of the same kind (same nlist, m, threads)");
  CLI11_PARSE(app, argc, argv);
  const Similarity sim = sim_name == "cosine" ? Similarity::kInnerProduct : Similarity::kL2;
  omp_set_num_threads(1);

  Data d;
  size_t dim_q = 0;
  d.base = quiver::testing::FashionImages("train", n, &d.dim);
  d.queries = quiver::testing::FashionImages("t10k", nq, &dim_q);
  if (d.dim == 0 || dim_q != d.dim) {
    std::fprintf(stderr, "cannot read Fashion-MNIST under %s\n", quiver::testing::kFashionDir);
    return 1;
  }
  d.n = d.base.size() / d.dim;
  d.nq = d.queries.size() / d.dim;
  if (sim == Similarity::kInnerProduct) {
    Normalize(&d.base, d.dim);
    Normalize(&d.queries, d.dim);
  }
  GroundTruth(&d, sim);
  std::printf("Fashion-MNIST %zu x %zu, %zu queries, %s, 1 search thread, %d rounds\n\n", d.n,
              d.dim, d.nq, sim_name.c_str(), rounds);

  const std::filesystem::path out_dir =
      std::filesystem::path(argv[0]).parent_path() / "bench_results";
  std::filesystem::create_directories(out_dir);
  const std::string tmp = (out_dir / absl::StrCat("compressed_bench.", getpid())).string();
  nlohmann::json report = nlohmann::json::array();

  for (const std::string& kind : std::vector<std::string>(absl::StrSplit(kinds, ','))) {
    quiver::index::IndexSpec spec;
    spec.type = kind;
    spec.dim = static_cast<uint32_t>(d.dim);
    spec.similarity = sim;
    if (kind == "IVF_PQ" && !m.empty()) spec.params["m"] = m;
    auto created = quiver::index::CreateIndex(spec);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    std::unique_ptr<VectorIndex> index = std::move(*created);
    const auto t0 = Clock::now();
    if (absl::Status s = index->Build(d.base.data(), d.n, build_threads); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    const double build_s = Seconds(t0, Clock::now());
    if (absl::Status s = index->Save(tmp); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    std::unique_ptr<faiss::Index> faiss_any;
    try {
      faiss_any.reset(faiss::read_index(tmp.c_str()));
    } catch (const std::exception&) {
      // Not a FAISS file (HNSW): no FAISS columns.
    }
    auto* faiss_ivf = dynamic_cast<faiss::IndexIVF*>(faiss_any.get());
    auto* faiss_hnsw = dynamic_cast<faiss::IndexHNSW*>(faiss_any.get());
    const bool graph = index->shape().kind == quiver::index::IndexShape::Kind::kGraph;
    if (faiss_build && faiss_ivf != nullptr) {
      auto* faiss_index = faiss_ivf;
      // The same kind built by FAISS alone: IndexIVF::train + add.
      omp_set_num_threads(build_threads);
      faiss::IndexFlat* quantizer = sim == Similarity::kL2
                                        ? static_cast<faiss::IndexFlat*>(new faiss::IndexFlatL2(d.dim))
                                        : new faiss::IndexFlatIP(d.dim);
      std::unique_ptr<faiss::IndexIVF> own;
      const auto metric = sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
      if (kind == "IVF_PQ") {
        auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(faiss_index);
        own = std::make_unique<faiss::IndexIVFPQ>(quantizer, d.dim, faiss_index->nlist, pq->pq.M,
                                                  8, metric);
      } else {
        own = std::make_unique<faiss::IndexIVFScalarQuantizer>(
            quantizer, d.dim, faiss_index->nlist, faiss::ScalarQuantizer::QT_8bit, metric, false);
      }
      own->own_fields = true;
      const auto a = Clock::now();
      own->train(d.n, d.base.data());
      own->add(d.n, d.base.data());
      std::printf("FAISS's own %s train + add: %.1f s (%d threads); Quiver: %.1f s\n\n",
                  kind.c_str(), Seconds(a, Clock::now()), build_threads, build_s);
      omp_set_num_threads(1);
    }
    std::filesystem::remove(tmp);
    const double ratio =
        static_cast<double>(index->MemoryBytes()) / (double(d.n) * d.dim * sizeof(float));
    const int rf = refine > 0 ? refine : (kind == "IVF_PQ" ? 10 : index->approximate() ? 4 : 1);
    std::printf("## %s: build %.1f s (%d threads), MemoryBytes %.2f MB = %.4f of the floats\n\n",
                index->Describe().c_str(), build_s, build_threads, index->MemoryBytes() / 1e6,
                ratio);
    std::printf(graph ? "| ef " : "| nprobe ");
    std::printf("| quiver QPS | faiss-1 QPS | faiss-batch QPS | quiver/faiss-1 | "
                "recall raw (quiver / faiss) | recall refined x%d |\n", rf);
    std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");

    for (const std::string& np_text :
         std::vector<std::string>(absl::StrSplit(graph ? efs : nprobes, ','))) {
      const uint32_t nprobe = static_cast<uint32_t>(std::stoul(np_text));  // or ef
      SearchParams params;
      params.nprobe = nprobe;
      params.ef = nprobe;
      if (faiss_hnsw != nullptr) faiss_hnsw->hnsw.efSearch = static_cast<int>(nprobe);
      faiss::SearchParametersIVF fparams;
      fparams.nprobe = nprobe;
      std::vector<double> ours, faiss1, faissb;
      std::vector<std::vector<int64_t>> ours_ids(d.nq), faiss_ids(d.nq), refined(d.nq);
      auto run_ours = [&] {
        const auto a = Clock::now();
        for (size_t q = 0; q < d.nq; ++q) {
          TopK top(kK);
          (void)index->Search(d.queries.data() + q * d.dim, params, nullptr, &top);
          std::vector<Neighbor> r = top.Take();
          ours_ids[q].clear();
          for (const Neighbor& nb : r) ours_ids[q].push_back(static_cast<int64_t>(nb.id));
        }
        ours.push_back(d.nq / Seconds(a, Clock::now()));
      };
      const faiss::SearchParameters* fp = faiss_ivf != nullptr ? &fparams : nullptr;
      auto run_faiss1 = [&] {
        if (faiss_any == nullptr) return;
        std::vector<float> dist(kK);
        std::vector<faiss::Index::idx_t> ids(kK);
        const auto a = Clock::now();
        for (size_t q = 0; q < d.nq; ++q) {
          faiss_any->search(1, d.queries.data() + q * d.dim, kK, dist.data(), ids.data(), fp);
          faiss_ids[q].assign(ids.begin(), ids.end());
        }
        faiss1.push_back(d.nq / Seconds(a, Clock::now()));
      };
      auto run_faissb = [&] {
        if (faiss_any == nullptr) return;
        std::vector<float> dist(d.nq * kK);
        std::vector<faiss::Index::idx_t> ids(d.nq * kK);
        const auto a = Clock::now();
        faiss_any->search(d.nq, d.queries.data(), kK, dist.data(), ids.data(), fp);
        faissb.push_back(d.nq / Seconds(a, Clock::now()));
      };
      for (int r = 0; r < rounds; ++r) {
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
        TopK top(kK * rf);
        (void)index->Search(d.queries.data() + q * d.dim, params, nullptr, &top);
        refined[q] = Refine(d, sim, q, top.Take());
      }
      const double r_ours = Recall(d, sim, ours_ids);
      const double r_faiss = faiss_any != nullptr ? Recall(d, sim, faiss_ids) : 0.0;
      const double r_refined = Recall(d, sim, refined);
      const double q_ours = Median(ours), q_f1 = Median(faiss1), q_fb = Median(faissb);
      std::printf("| %u | %.0f | %.0f | %.0f | %.2fx | %.3f / %.3f | %.3f |\n", nprobe, q_ours,
                  q_f1, q_fb, q_ours / q_f1, r_ours, r_faiss, r_refined);
      report.push_back({{"kind", index->Describe()},
                        {"similarity", sim_name},
                        {"n", d.n},
                        {"nprobe", nprobe},
                        {"qps_quiver", q_ours},
                        {"qps_faiss_single", q_f1},
                        {"qps_faiss_batch", q_fb},
                        {"recall_raw_quiver", r_ours},
                        {"recall_raw_faiss", r_faiss},
                        {"refine", rf},
                        {"recall_refined", r_refined},
                        {"build_seconds", build_s},
                        {"memory_ratio", ratio}});
    }
    std::printf("\n");
  }
  std::ofstream(out_dir / "compressed_bench.json") << report.dump(2) << "\n";
  return 0;
}
